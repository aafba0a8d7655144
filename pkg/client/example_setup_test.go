package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/embedded"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// Greeting is the state type of the examples' "greet" workflow.
type Greeting string

const (
	Hello   Greeting = "hello"
	Excited Greeting = "excited"
	Greeted Greeting = "greeted"
)

// helloTask reads the run's input (a name) and hands a greeting on.
type helloTask struct{}

func (helloTask) Kind() string { return "hello" }
func (helloTask) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var name string
	if err := tc.Input(&name); err != nil {
		return fsm.Result{}, err
	}
	if name == "" {
		return fsm.Result{}, fsm.Permanent(errors.New("greet whom? the input is an empty name"))
	}
	return fsm.NextWith(Excited, "hello, "+name), nil
}

// excitedTask reads the previous state's greeting and shouts it.
type excitedTask struct{}

func (excitedTask) Kind() string { return "excited" }
func (excitedTask) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var greeting string
	if err := tc.Previous(&greeting); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(Greeted, strings.ToUpper(greeting)+"!"), nil
}

// greetWorkflow is hello → excited → greeted.
func greetWorkflow() *fsm.Workflow[Greeting] {
	return fsm.New[Greeting]("greet", Hello).
		Register(Hello, helloTask{}, fsm.TaskConfig{Retry: fsm.RetryNone()}).
		Register(Excited, excitedTask{}).
		Exit(Greeted)
}

// deployment starts what a Cano deployment runs, in this process: an
// embedded NATS server with the streams and buckets, a coordinator and a
// worker hosting the greet workflow. It returns a client and a stop
// function.
func deployment() (*client.Client, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var undo []func()
	stop := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	fail := func(err error) (*client.Client, func(), error) { stop(); return nil, nil, err }

	dir, err := os.MkdirTemp("", "cano-example")
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { _ = os.RemoveAll(dir) })
	srv, err := embedded.Start(embedded.Config{StoreDir: dir, Port: -1})
	if err != nil {
		return fail(err)
	}
	undo = append(undo, srv.Stop)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return fail(err)
	}
	undo = append(undo, nc.Close)
	js, _ := jetstream.New(nc)
	if err := provision.Ensure(ctx, js, provision.Config{}); err != nil {
		return fail(err)
	}
	quiet := slog.New(slog.DiscardHandler)

	reg := &fsm.Registry{}
	fsm.Register[helloTask](reg)
	fsm.Register[excitedTask](reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{greetWorkflow()}, Logger: quiet})
	if err != nil {
		return fail(err)
	}
	if err := w.Start(ctx); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{Logger: quiet})
	if err != nil {
		return fail(err)
	}
	if err := co.Start(ctx); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { _ = co.Stop(context.Background()) })

	cl, err := client.New(nc, client.Config{})
	if err != nil {
		return fail(err)
	}
	return cl, stop, nil
}

// must stops an example on a setup error.
func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("example setup: %v", err))
	}
}
