package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/cano-nats/cano/internal/wirecodec"
)

// fileFlow is one flow in a flow file. Exactly one of Cron, Every and
// Manual is set.
type fileFlow struct {
	ID           string          `json:"id"`
	Workflow     string          `json:"workflow"`
	InitialState string          `json:"initial_state"`
	Input        json.RawMessage `json:"input"`
	Cron         string          `json:"cron"`
	TimeZone     string          `json:"time_zone"`
	Every        string          `json:"every"`
	Manual       bool            `json:"manual"`
	Misfire      string          `json:"misfire"`
	Backoff      *struct {
		Initial     string  `json:"initial"`
		Multiplier  float64 `json:"multiplier"`
		MaxDelay    string  `json:"max_delay"`
		Jitter      float64 `json:"jitter"`
		StreakLimit uint32  `json:"streak_limit"`
	} `json:"backoff"`
}

// LoadFlowFile reads a JSON flow file and returns its flows, validated.
// Durations are Go duration strings; input is any JSON value, passed to
// each run msgpack-encoded. Omitted backoff fields get the defaults.
//
//	{"flows": [
//	  {"id": "nightly", "workflow": "report", "cron": "0 0 2 * * *",
//	   "time_zone": "Europe/Paris", "misfire": "catch_up", "input": {"days": 1},
//	   "backoff": {"initial": "1s", "max_delay": "5m", "streak_limit": 3}},
//	  {"id": "poll", "workflow": "poll", "every": "30s"},
//	  {"id": "cleanup", "workflow": "cleanup", "manual": true}
//	]}
//
// Errors wrap [ErrInvalidFlow] and name the flow and field.
func LoadFlowFile(path string) ([]Flow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scheduler: flow file: %w", err)
	}
	return parseFlowFile(data)
}

func parseFlowFile(data []byte) ([]Flow, error) {
	var file struct {
		Flows []fileFlow `json:"flows"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("%w: flow file: %v", ErrInvalidFlow, err)
	}
	out := make([]Flow, 0, len(file.Flows))
	seen := map[string]bool{}
	for i, ff := range file.Flows {
		f, err := ff.toFlow()
		if err != nil {
			return nil, fmt.Errorf("%w: flow file: flows[%d] (%q): %v", ErrInvalidFlow, i, ff.ID, err)
		}
		if _, err := compile(&f); err != nil {
			return nil, fmt.Errorf("flow file: flows[%d]: %w", i, err)
		}
		if seen[f.ID] {
			return nil, fmt.Errorf("%w: flow file: flows[%d]: duplicate id %q", ErrInvalidFlow, i, f.ID)
		}
		seen[f.ID] = true
		out = append(out, f)
	}
	return out, nil
}

func (ff *fileFlow) toFlow() (Flow, error) {
	f := Flow{ID: ff.ID, Workflow: ff.Workflow, InitialState: ff.InitialState, Misfire: Misfire(ff.Misfire)}
	n := 0
	if ff.Cron != "" {
		n++
		f.Schedule = CronIn(ff.Cron, ff.TimeZone)
	}
	if ff.Every != "" {
		n++
		d, err := time.ParseDuration(ff.Every)
		if err != nil {
			return Flow{}, fmt.Errorf("every: %v", err)
		}
		f.Schedule = Every(d)
	}
	if ff.Manual {
		n++
		f.Schedule = Manual()
	}
	if n != 1 {
		return Flow{}, errors.New("exactly one of cron, every and manual must be set")
	}
	if ff.TimeZone != "" && ff.Cron == "" {
		return Flow{}, errors.New("time_zone needs cron")
	}
	if b := ff.Backoff; b != nil {
		f.Backoff = BackoffPolicy{Multiplier: b.Multiplier, Jitter: b.Jitter, StreakLimit: b.StreakLimit}
		var err error
		if b.Initial != "" {
			if f.Backoff.Initial, err = time.ParseDuration(b.Initial); err != nil {
				return Flow{}, fmt.Errorf("backoff.initial: %v", err)
			}
		}
		if b.MaxDelay != "" {
			if f.Backoff.MaxDelay, err = time.ParseDuration(b.MaxDelay); err != nil {
				return Flow{}, fmt.Errorf("backoff.max_delay: %v", err)
			}
		}
	}
	if len(ff.Input) > 0 && string(ff.Input) != "null" {
		var v any
		if err := json.Unmarshal(ff.Input, &v); err != nil {
			return Flow{}, fmt.Errorf("input: %v", err)
		}
		in, err := wirecodec.EncodeValue(intsFromJSON(v))
		if err != nil {
			return Flow{}, fmt.Errorf("input: %v", err)
		}
		f.Input = in
	}
	return f, nil
}

// intsFromJSON turns whole JSON numbers into int64, so they decode into Go
// integer fields on the worker side.
func intsFromJSON(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
		return x
	case []any:
		for i := range x {
			x[i] = intsFromJSON(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = intsFromJSON(x[k])
		}
		return x
	}
	return v
}

// seed adds each flow, or updates the stored one when it differs. Two
// processes seeding the same file concurrently is safe.
func (c *Client) seed(ctx context.Context, flows []Flow) error {
	for _, f := range flows {
		err := c.Add(ctx, f)
		if !errors.Is(err, ErrFlowExists) {
			if err != nil {
				return err
			}
			continue
		}
		cur, err := c.Status(ctx, f.ID)
		if errors.Is(err, ErrFlowNotFound) {
			continue // removed meanwhile: leave it removed
		}
		if err != nil {
			return err
		}
		if sameFlow(cur.Flow, f) {
			continue
		}
		if err := c.Update(ctx, f); err != nil && !errors.Is(err, ErrFlowNotFound) {
			return err
		}
	}
	return nil
}

func sameFlow(a, b Flow) bool {
	ea, err1 := wirecodec.Encode(a.toWire(0))
	eb, err2 := wirecodec.Encode(b.toWire(0))
	return err1 == nil && err2 == nil && bytes.Equal(ea, eb)
}

// EncodeInput encodes v for [Flow.Input] as the engine encodes every run
// input a Go value gives (client.TriggerOpts.Input): msgpack with sorted
// map keys, struct fields named by their msgpack tag, else their json tag,
// else their Go name. Tasks read it back with fsm.TaskContext.Input.
func EncodeInput(v any) ([]byte, error) {
	b, err := wirecodec.EncodeValue(v)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	return b, nil
}
