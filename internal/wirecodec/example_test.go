package wirecodec_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Encode a task command, decode it on the other side, and build the subject
// and message id it is published with.
func Example() {
	names := protocol.MustNames("") // the default prefix, "cano"
	cmd := &protocol.TaskCommand{
		V:        protocol.SchemaVersion,
		RunID:    "run-1",
		Workflow: "parallel_fetch",
		State:    "fetch",
		Step:     2,
		Branch:   -1,
		Task: protocol.TaskSpec{
			Kind:  "fetch_url",
			Retry: protocol.RetryPolicy{Mode: protocol.RetryFixed, MaxRetries: 3},
		},
	}
	data, err := wirecodec.Encode(cmd)
	if err != nil {
		panic(err)
	}

	var got protocol.TaskCommand
	if err := wirecodec.Decode(data, &got, 0); err != nil {
		panic(err)
	}
	fmt.Println(names.TaskSubject("default", got.Task.Kind))
	fmt.Println(layout.CommandMsgID(got.RunID, got.Step, got.Branch))
	fmt.Println(got.State, got.Task.Retry.Mode, got.Task.Retry.MaxRetries)
	// Output:
	// cano.task.default.fetch_url
	// run-1/2/-1
	// fetch fixed 3
}

// Decoders report what is wrong with a message through sentinel errors.
func ExampleDecode_errors() {
	var cmd protocol.TaskCommand
	err := wirecodec.Decode([]byte{0x81, 0xa1, 'v'}, &cmd, 0) // truncated
	fmt.Println(errors.Is(err, protocol.ErrMalformed))

	data, _ := wirecodec.Encode(&protocol.CancelRequest{V: 99, RunID: "run-1"})
	var req protocol.CancelRequest
	err = wirecodec.Decode(data, &req, 0)
	fmt.Println(errors.Is(err, protocol.ErrSchemaVersion))

	err = wirecodec.Decode(data, &req, 4) // larger than the 4-byte maximum
	fmt.Println(errors.Is(err, protocol.ErrTooLarge))
	// Output:
	// true
	// true
	// true
}

// A trigger published with the stock nats CLI as JSON:
//
//	nats pub cano.trigger.parallel_fetch '{"input": {"n": 3}}' -H Content-Type:application/json
//
// names its workflow in the subject.
func ExampleDecodeTriggerJSON() {
	names := protocol.MustNames("")
	subject := names.TriggerSubject("parallel_fetch")
	body := []byte(`{"input": {"n": 3}}`)

	t, err := wirecodec.DecodeTriggerJSON(body, layout.WorkflowFromTriggerSubject(names, subject), 0, time.Now())
	if err != nil {
		panic(err)
	}
	fmt.Println(t.Workflow, t.InputFormat, string(t.Input))
	// Output:
	// parallel_fetch json {"n": 3}
}
