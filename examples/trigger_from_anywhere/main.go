// Trigger_from_anywhere starts a run without the Go client: a plain NATS
// request with a JSON body and the header Content-Type: application/json,
// which any NATS client in any language (or the nats CLI) can send.
//
// The request subject, cano.rpc.trigger.<workflow>, is answered by a
// coordinator once the run is stored: with its run id, or with why it was
// refused (a bad body, an unknown workflow), at once:
//
//	nats req cano.rpc.trigger.hello '{"input":{"name":"Ada"},"run_id":"hello-ada"}' -H Content-Type:application/json
//
// The stream subject, cano.trigger.<workflow>, is fire and forget (`nats
// pub`, or a request answered by the broker once the trigger is stored):
// the coordinator takes it from there, and a trigger it refuses is
// dead-lettered with the reason, which the example reads back.
package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Greet State = "greet"
	Done  State = "done"
)

// Person is the run input; a JSON trigger's input decodes with its json
// tags.
type Person struct {
	Name string `json:"name" msgpack:"name"`
}

// SayHello greets the input's person.
type SayHello struct{}

// Kind implements fsm.Task.
func (SayHello) Kind() string { return "say_hello" }

// Run implements fsm.Task.
func (SayHello) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var p Person
	if err := tc.Input(&p); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(Done, "Hello, "+p.Name+"!"), nil
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[SayHello](reg)
	wf := fsm.New[State]("hello", Greet).Register(Greet, SayHello{}).Exit(Done)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{wf}})
	if err != nil {
		return err
	}
	defer env.Close()

	// A plain core-NATS request: no cano package involved. The reply
	// names the run.
	reply, err := jsonRequest(ctx, env.NC, "cano.rpc.trigger.hello", `{"input":{"name":"Ada"},"run_id":"hello-ada"}`)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "trigger reply: %s\n", reply)
	r, err := env.Client.Await(ctx, "hello-ada")
	if err != nil {
		return err
	}
	var greeting string
	if err := r.Output(&greeting); err != nil {
		return err
	}
	fmt.Fprintf(out, "run %s: %s via %s, output %q\n", r.ID, r.Status, strings.Join(r.Path, " → "), greeting)

	// A body that is not JSON: the reply says why it was refused.
	reply, err = jsonRequest(ctx, env.NC, "cano.rpc.trigger.hello", `{"input": {"name": "Ada"`)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "bad body reply: %s\n", reply)

	// Fire and forget on the stream subject: the broker acknowledges the
	// stored trigger; the coordinator refuses it and dead-letters it.
	reply, err = jsonRequest(ctx, env.NC, "cano.trigger.hello", `{"input": {"name": "Ada"`)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "stored by the broker: %s\n", reply)
	dl, err := firstDeadLetter(ctx, env.Client)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "dead-lettered (%s) from %s: %s\n", dl.Category, dl.Subject, dl.Reason)
	return nil
}

// jsonRequest sends body as a JSON trigger on subject and returns the reply.
func jsonRequest(ctx context.Context, nc *nats.Conn, subject, body string) (string, error) {
	msg := nats.NewMsg(subject)
	msg.Header.Set("Content-Type", "application/json")
	msg.Data = []byte(body)
	reply, err := nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return "", fmt.Errorf("trigger request on %s: %w", subject, err)
	}
	return string(reply.Data), nil
}

// firstDeadLetter waits (bounded by ctx) for the coordinator to
// dead-letter a refused trigger.
func firstDeadLetter(ctx context.Context, c *client.Client) (client.DeadLetter, error) {
	for {
		dls, err := c.DeadLetters(ctx, &client.DeadLetterFilter{Source: "trigger", Limit: 1})
		if err != nil {
			return client.DeadLetter{}, err
		}
		if len(dls) > 0 {
			return dls[0], nil
		}
		select {
		case <-ctx.Done():
			return client.DeadLetter{}, fmt.Errorf("the bad trigger was never dead-lettered: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
