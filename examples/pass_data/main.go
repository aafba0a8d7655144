// Pass_data hands data from one state to the next: each task returns its
// output with fsm.NextWith and the next task reads it with tc.Previous. The
// output is kept in the run record, so it reaches whichever worker runs the
// next state, even after a restart.
package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Parse  State = "parse"
	Enrich State = "enrich"
	Format State = "format"
	Done   State = "done"
)

// User is what parse hands to enrich.
type User struct {
	Name  string `msgpack:"name"`
	Email string `msgpack:"email"`
}

// Profile is what enrich hands to format.
type Profile struct {
	User   User   `msgpack:"user"`
	Domain string `msgpack:"domain"`
}

// ParseTask reads "name <email>" from the run's input.
type ParseTask struct{}

// Kind implements fsm.Task.
func (ParseTask) Kind() string { return "parse_user" }

// Run implements fsm.Task.
func (ParseTask) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var line string
	if err := tc.Input(&line); err != nil {
		return fsm.Result{}, err
	}
	name, email, ok := strings.Cut(line, " <")
	if !ok {
		return fsm.Result{}, fsm.Permanent(fmt.Errorf("input %q: want \"name <email>\"", line))
	}
	return fsm.NextWith(Enrich, User{Name: name, Email: strings.TrimSuffix(email, ">")}), nil
}

// EnrichTask adds the e-mail domain.
type EnrichTask struct{}

// Kind implements fsm.Task.
func (EnrichTask) Kind() string { return "enrich_user" }

// Run implements fsm.Task.
func (EnrichTask) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var u User
	if err := tc.Previous(&u); err != nil {
		return fsm.Result{}, err
	}
	_, domain, _ := strings.Cut(u.Email, "@")
	return fsm.NextWith(Format, Profile{User: u, Domain: domain}), nil
}

// FormatTask completes with a one-line summary.
type FormatTask struct{}

// Kind implements fsm.Task.
func (FormatTask) Kind() string { return "format_user" }

// Run implements fsm.Task.
func (FormatTask) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var p Profile
	if err := tc.Previous(&p); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(Done, fmt.Sprintf("%s (%s) at %s", p.User.Name, p.User.Email, p.Domain)), nil
}

func workflow() *fsm.Workflow[State] {
	return fsm.New[State]("pass_data", Parse).
		Register(Parse, ParseTask{}, fsm.TaskConfig{Retry: fsm.RetryNone()}).
		Register(Enrich, EnrichTask{}).
		Register(Format, FormatTask{}).
		Exit(Done)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[ParseTask](reg)
	fsm.Register[EnrichTask](reg)
	fsm.Register[FormatTask](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	for _, in := range []string{"Ada Lovelace <ada@example.org>", "no email here"} {
		r, err := env.Client.Run(ctx, "pass_data", &client.TriggerOpts{Input: in})
		if r == nil {
			return err // the trigger was refused
		}
		if err != nil {
			fmt.Fprintf(out, "%q: %s at %s: %v\n", in, r.Status, r.State, err)
			continue
		}
		var summary string
		if err := r.Output(&summary); err != nil {
			return err
		}
		fmt.Fprintf(out, "%q: %s via %s: %s\n", in, r.Status, strings.Join(r.Path, " → "), summary)
	}
	return nil
}
