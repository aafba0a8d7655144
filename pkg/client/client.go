package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/kvread"
	"github.com/cano-nats/cano/internal/kvwatch"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/tracectx"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Defaults for [Config].
const (
	// TimeoutDefault bounds a call whose context has no deadline.
	TimeoutDefault = 10 * time.Second
	// AwaitRecheckDefault is the longest Await waits between two re-reads
	// of a run's record, in case its terminal event was lost.
	AwaitRecheckDefault = 2 * time.Second
	// AwaitRecheckFirst is when Await first re-reads a run's record that
	// was not ended; the wait then doubles up to AwaitRecheckDefault.
	AwaitRecheckFirst = 100 * time.Millisecond
)

// awaitRecheck is the wait before Await's n-th re-read (n from 0):
// AwaitRecheckFirst doubling up to AwaitRecheckDefault. Short runs end
// (and their event wakes Await) before the first re-read; a lost event
// costs a short run little and a long one at most AwaitRecheckDefault.
func awaitRecheck(n int) time.Duration {
	d := AwaitRecheckFirst
	for i := 0; i < n && d < AwaitRecheckDefault; i++ {
		d *= 2
	}
	return min(d, AwaitRecheckDefault)
}

// Config configures a Client. The zero value uses the defaults.
type Config struct {
	// Prefix of every subject, stream and bucket. Defaults to "cano".
	Prefix string
	// Timeout applies to calls whose context has no deadline (not Await).
	// Defaults to TimeoutDefault.
	Timeout time.Duration
}

// ErrNotFound is returned by [Client.Get] for a run id the runs bucket does
// not hold: an unknown run, or one that ended longer ago than the
// coordinators' run retention (coordinator.Config.RunRetention) and whose
// record expired.
var ErrNotFound = errors.New("client: run not found")

// Client talks to a Cano deployment: it triggers, awaits, reads and cancels
// runs, and reads what operator tools show. It does not close the
// connection it is given, and it has nothing to close itself. Safe for
// concurrent use by multiple goroutines.
type Client struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	names protocol.Names
	cfg   Config

	mu       sync.Mutex
	runs     jetstream.KeyValue // guarded by mu; opened on first use
	runsRead *kvread.Reader     // guarded by mu; with runs
}

// New returns a client on nc, whose owner keeps it open while the client is
// used. It does no I/O: the streams and buckets are looked up on first use.
// It returns an error wrapping protocol.ErrInvalidName for a bad
// Config.Prefix.
func New(nc *nats.Conn, cfg Config) (*Client, error) {
	if nc == nil {
		return nil, errors.New("client: no NATS connection (nil): pass one from nats.Connect")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = TimeoutDefault
	}
	names, err := protocol.NewNames(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{nc: nc, js: js, names: names, cfg: cfg}, nil
}

func (c *Client) runsKV(ctx context.Context) (jetstream.KeyValue, error) {
	kv, _, err := c.runsReader(ctx)
	return kv, err
}

// runsReader returns the runs bucket and its consistent reader (kvread).
func (c *Client) runsReader(ctx context.Context) (jetstream.KeyValue, *kvread.Reader, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs != nil {
		return c.runs, c.runsRead, nil
	}
	kv, err := c.js.KeyValue(ctx, layout.RunsBucket(c.names))
	if err != nil {
		return nil, nil, fmt.Errorf("client: runs bucket: %w", err)
	}
	c.runs, c.runsRead = kv, kvread.New(c.js, kv)
	return c.runs, c.runsRead, nil
}

// TriggerOpts are the optional parameters of [Client.Trigger]; nil means defaults.
type TriggerOpts struct {
	// InitialState overrides the definition's initial state.
	InitialState string
	// Input is the run input: a value encoded with the engine's value codec
	// (msgpack, map keys sorted, struct fields named by their msgpack tag,
	// else their json tag, else their Go name; tasks read it with
	// fsm.TaskContext.Input, clients with [Run.Input]), a []byte sent as is
	// (already msgpack: one that is not one msgpack value, JSON bytes
	// included, is refused), or a [json.RawMessage] sent as JSON: tasks then
	// decode it with encoding/json, as a trigger sent as JSON by `nats req`
	// (JSON typed by a person — a form, a file — is best passed this way).
	// Nil means no input.
	Input any
	// IdempotencyKey makes a second trigger with the same key return the
	// first run's id and start nothing.
	IdempotencyKey string
	// RunID chooses the run id; default a fresh unique id.
	RunID string
	// DefVersion pins a definition version; default the latest.
	DefVersion string
	// NoWait publishes the trigger to the triggers stream and returns once
	// the broker has stored it, without waiting for a coordinator to
	// accept it (errors then surface in Await).
	NoWait bool
	// ErrorIfExists makes a trigger that starts nothing, because a run
	// with its RunID or IdempotencyKey already exists, return that run's
	// id with an error matching [ErrRunExists] (Temporal's
	// WorkflowExecutionErrorWhenAlreadyStarted, asynq's ErrTaskIDConflict),
	// instead of the id alone. It needs a coordinator's answer, so it
	// cannot be combined with NoWait. A trigger sent again after its
	// answer was lost (a coordinator that died with it) may find the run
	// its first sending started, and report it as existing.
	ErrorIfExists bool
	// StartAt delays the run's start (asynq's ProcessAt, River's
	// ScheduledAt, Temporal's StartDelay): the run is created at once with
	// status [RunScheduled], so Get, List, Await and Cancel see it, and its
	// initial state is entered at StartAt — by the broker's message
	// scheduler, so it survives restarts of every process. Its total
	// timeout counts from the start. The zero time, or a time already
	// past, starts it at once. Coordinators older than this field refuse
	// such a trigger (schema version 4) rather than start it early.
	StartAt time.Time
}

// ErrRunExists is returned, with the existing run's id, by a
// [Client.Trigger] with TriggerOpts.ErrorIfExists that started nothing
// because a run with its id or idempotency key already existed.
var ErrRunExists = errors.New("client: a run with this id or idempotency key already exists")

// Trigger starts a run of workflow and returns its id. Unless opts.NoWait,
// it blocks until a coordinator answers: an unknown workflow or initial
// state comes back as an error matching fsm.ErrConfiguration. A trigger
// with the run id or idempotency key of an existing run starts nothing and
// returns that run's id (and, with opts.ErrorIfExists, an error matching
// [ErrRunExists]). If ctx has no deadline, Config.Timeout applies.
// Safe for concurrent use.
//
// The trigger is sent as a request to the coordinators
// (protocol.Names.RPCTriggerSubject), answered once the run is durable.
// A request that gets no answer within a couple of seconds, or an answer
// that says to send it again (a coordinator over its bound of requests in
// flight), is sent again with the same run id until ctx ends: a second
// sending never starts a second run. When no coordinator is running, the
// trigger is published to the triggers stream instead (and answered by
// the first coordinator that starts, if ctx lasts). With opts.NoWait it
// is published to the triggers stream and Trigger returns once the broker
// stored it.
func (c *Client) Trigger(ctx context.Context, workflow string, opts *TriggerOpts) (string, error) {
	if opts == nil {
		opts = &TriggerOpts{}
	}
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	trig := &protocol.Trigger{V: protocol.SchemaVersion, Workflow: workflow, InitialState: opts.InitialState,
		IdempotencyKey: opts.IdempotencyKey, RunID: opts.RunID, DefVersion: opts.DefVersion}
	if !opts.StartAt.IsZero() {
		at, err := wirecodec.StartTime(opts.StartAt)
		if err != nil {
			return "", fmt.Errorf("client: TriggerOpts.StartAt %w; leave it zero to start the run at once", err)
		}
		trig.V, trig.StartAt = protocol.SchemaVersion4, at
	}
	switch v := opts.Input.(type) {
	case nil:
	case []byte:
		if len(v) == 0 {
			break // an empty payload is no input, as nil
		}
		if err := wirecodec.CheckValue(v); err != nil {
			if json.Valid(v) {
				return "", errors.New("client: the input is a []byte holding JSON, but a []byte is sent as msgpack; pass json.RawMessage(b) to send JSON, or a Go value")
			}
			return "", fmt.Errorf("client: the input is a []byte that is not one msgpack value (%w); pass a Go value, or json.RawMessage for JSON", err)
		}
		trig.Input = v
	case json.RawMessage:
		if !json.Valid(v) {
			return "", fmt.Errorf("client: the input is a json.RawMessage that is not valid JSON; pass a Go value to send msgpack instead")
		}
		trig.Input, trig.InputFormat = v, protocol.InputJSON
	default:
		b, err := wirecodec.EncodeValue(v)
		if err != nil {
			return "", fmt.Errorf("client: encode input: %w", err)
		}
		trig.Input = b
	}
	runID, fresh := trig.RunID, false
	switch {
	case trig.IdempotencyKey != "":
		runID = layout.IdempotentRunID(workflow, trig.IdempotencyKey)
	case runID == "":
		runID, fresh = "r"+nuid.Next(), true
		trig.RunID = runID
	}
	if err := wirecodec.Validate(trig); err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	data, err := wirecodec.Encode(trig)
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	if opts.NoWait {
		if opts.ErrorIfExists {
			return "", errors.New("client: TriggerOpts.ErrorIfExists needs a coordinator's answer, which NoWait does not wait for: set one of them")
		}
		id, _, err := c.publishTrigger(ctx, workflow, runID, data, true)
		return id, err
	}
	id, existing, err := c.requestTrigger(ctx, workflow, runID, data, fresh)
	if err == nil && existing && opts.ErrorIfExists {
		what := "id " + runID
		if trig.IdempotencyKey != "" {
			what = "idempotency key " + trig.IdempotencyKey
		}
		return id, fmt.Errorf("%w: run %s of %s has the %s; nothing was started", ErrRunExists, id, workflow, what)
	}
	return id, err
}

// triggerAttempt bounds the wait for the answer to one trigger request
// before it is sent again. A coordinator answers within milliseconds
// unless it died with the request or the broker is failing over.
const triggerAttempt = 2 * time.Second

// requestTrigger sends the encoded trigger data (of run runID) as a
// request, again after a timeout or an answer that says so, and falls
// back to the triggers stream when no coordinator listens. fresh says
// runID was generated here: the first sending tells the coordinator so
// (protocol.HeaderNewRunID), sparing it a look-up. existing reports that
// the trigger started nothing: a run with its id already existed (never
// for a fresh id, which only an earlier sending can have started).
func (c *Client) requestTrigger(ctx context.Context, workflow, runID string, data []byte, fresh bool) (id string, existing bool, err error) {
	var last error
	for attempt := 0; ; attempt++ {
		msg := &nats.Msg{Subject: c.names.RPCTriggerSubject(workflow), Data: data, Header: nats.Header{}}
		tracectx.Inject(ctx, msg.Header) // the run joins the caller's trace, if any
		if attempt == 0 && fresh {
			msg.Header.Set(protocol.HeaderNewRunID, "1")
		}
		actx, cancel := context.WithTimeout(ctx, triggerAttempt)
		reply, err := c.nc.RequestMsgWithContext(actx, msg)
		cancel()
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			// No coordinator is running yet: the triggers stream keeps the
			// trigger for the first one that starts.
			id, existing, err := c.publishTrigger(ctx, workflow, runID, data, false)
			return id, existing && !fresh, err
		case err != nil && ctx.Err() == nil:
			last = err
			continue // no answer in time: send again (same run id)
		case err != nil:
			if last == nil {
				last = err
			}
			return runID, false, fmt.Errorf("client: no answer from a coordinator for run %s: %w", runID, last)
		}
		var tr protocol.TriggerReply
		if err := wirecodec.Decode(reply.Data, &tr, 0); err != nil {
			return runID, false, fmt.Errorf("client: trigger reply: %w", err)
		}
		if tr.Error == nil {
			return tr.RunID, tr.Existing && !fresh, nil
		}
		if !tr.Retry {
			return "", false, fsmbridge.FromErrorInfo(tr.Error)
		}
		last = fsmbridge.FromErrorInfo(tr.Error)
		select {
		case <-ctx.Done():
			return runID, false, fmt.Errorf("client: trigger of run %s not taken before the context ended: %w", runID, last)
		case <-time.After(retryPause(attempt)):
		}
	}
}

// retryPause is the wait before sending a trigger request again after an
// answer that asked for it: 50 ms doubling up to a second.
func retryPause(attempt int) time.Duration {
	d := 50 * time.Millisecond
	for i := 0; i < attempt && d < time.Second; i++ {
		d *= 2
	}
	return min(d, time.Second)
}

// publishTrigger publishes the encoded trigger data (of run runID) to the
// triggers stream; unless noWait it then waits for a coordinator's answer
// (on an inbox named in protocol.HeaderReplyTo). existing reports a
// trigger that started nothing: the broker de-duplicated it, or the
// coordinator found the run.
func (c *Client) publishTrigger(ctx context.Context, workflow, runID string, data []byte, noWait bool) (id string, existing bool, err error) {
	msg := &nats.Msg{Subject: c.names.TriggerSubject(workflow), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "trig:"+runID)
	tracectx.Inject(ctx, msg.Header) // the run joins the caller's trace, if any
	var sub *nats.Subscription
	if !noWait {
		inbox := c.nc.NewRespInbox()
		if sub, err = c.nc.SubscribeSync(inbox); err != nil {
			return "", false, fmt.Errorf("client: %w", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		msg.Header.Set(protocol.HeaderReplyTo, inbox)
	}
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		return "", false, fmt.Errorf("client: publish trigger: %w", err)
	}
	if noWait || ack.Duplicate {
		// A duplicate was de-duplicated by the broker: the first trigger
		// with this id (or idempotency key) is the one that counts.
		return runID, ack.Duplicate, nil
	}
	reply, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return runID, false, fmt.Errorf("client: no answer from a coordinator for run %s: %w", runID, err)
	}
	var tr protocol.TriggerReply
	if err := wirecodec.Decode(reply.Data, &tr, 0); err != nil {
		return runID, false, fmt.Errorf("client: trigger reply: %w", err)
	}
	if tr.Error != nil {
		return "", false, fsmbridge.FromErrorInfo(tr.Error)
	}
	return tr.RunID, tr.Existing, nil
}

// Await blocks until run runID ends (or ctx ends) and returns it. For a
// failed or cancelled run it returns the run and the run's typed error
// (Run.Err, matching one of fsm's category sentinels with errors.Is). A
// trigger the coordinators refused (an unknown workflow or state) returns a
// nil Run and an error matching fsm.ErrConfiguration; ctx ending returns a
// nil Run and an error wrapping ctx's.
//
// Await is woken by the run's terminal event, so the Run it returns holds
// what that event carries: ID, Workflow, Status, State, Step, Path, Err,
// UpdatedAt (when it ended) and the output ([Run.Output]). The other fields
// (Version, input, CreatedAt, ...) are zero unless Await found the end in
// the run's record instead (the run had already ended when Await was
// called, or its event was lost); call [Client.Get] for the whole record.
// A run that is not found, and of which no event comes, within
// Config.Timeout gives an error matching [ErrNotFound] — unless triggers
// wait in the triggers stream then (one may be the run's: sent with
// TriggerOpts.NoWait, or while no coordinator runs), when Await looks
// again after another Config.Timeout.
// Events are core NATS messages, at most once: Await subscribes to the
// run's events first, then reads the record (a run already ended is
// returned at once), then waits for the terminal event, re-reading the
// record after AwaitRecheckFirst, doubling up to every
// AwaitRecheckDefault, so a lost event delays Await but never hangs it.
// It works with or without the events capture stream. Safe for
// concurrent use.
func (c *Client) Await(ctx context.Context, runID string) (*Run, error) {
	ch := make(chan *nats.Msg, 16)
	sub, err := c.nc.ChanSubscribe(c.names.RunEventsWildcard(runID), ch)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	rec, err := c.Get(ctx, runID)
	if err == nil && rec.Status.Terminal() {
		return rec, rec.Err
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	// A run not found yet may still come (its trigger waits in the triggers
	// stream, or its record is deferred); one not found after
	// Config.Timeout, with no event of it either and no trigger waiting,
	// is taken for a wrong id.
	var unknown <-chan time.Time
	if err != nil {
		t := time.NewTimer(c.cfg.Timeout)
		defer t.Stop()
		unknown = t.C
	}
	// Events are core NATS messages, published fire-and-forget: one may
	// be lost (a reconnect, a slow subscriber, interest not yet known to
	// every server of a cluster). Re-reads of the record, ever less often,
	// are the safety net; the terminal event is what wakes Await normally.
	rechecks := 0
	recheck := time.NewTimer(awaitRecheck(rechecks))
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("client: await %s: %w", runID, ctx.Err())
		case <-unknown:
			_, err := c.Get(ctx, runID)
			switch {
			case !errors.Is(err, ErrNotFound):
				unknown = nil
			case c.triggersWaiting(ctx):
				// Its trigger may be among them (TriggerOpts.NoWait, or no
				// coordinator running): look again later.
				unknown = time.After(c.cfg.Timeout)
			default:
				return nil, fmt.Errorf("client: await %s: %w after %s, and no trigger waits in the triggers stream: check the id",
					runID, err, c.cfg.Timeout)
			}
		case <-recheck.C:
			rec, err := c.Get(ctx, runID)
			if err == nil && rec.Status.Terminal() {
				return rec, rec.Err
			}
			if err == nil {
				unknown = nil // it exists: wait for its end
			}
			rechecks++
			recheck.Reset(awaitRecheck(rechecks))
		case m := <-ch:
			var ev protocol.Event
			if wirecodec.Decode(m.Data, &ev, 0) != nil {
				continue
			}
			unknown = nil // an event of the run: it exists
			if ev.Type == protocol.EventRejected {
				return nil, fsmbridge.FromErrorInfo(ev.Error)
			}
			if !ev.Type.Terminal() {
				continue
			}
			r := runFromEvent(&ev)
			return r, r.Err
		}
	}
}

// triggersWaiting reports whether the triggers stream holds triggers no
// coordinator has taken yet (it keeps a trigger until one has), or cannot
// tell.
func (c *Client) triggersWaiting(ctx context.Context) bool {
	st, err := c.js.Stream(ctx, layout.TriggersStream(c.names))
	if err != nil {
		return true
	}
	return st.CachedInfo().State.Msgs > 0
}

// Run triggers a run of workflow and awaits it: [Client.Trigger] then
// [Client.Await], with their errors and blocking. It returns the ended run
// (as Await returns it) and, for a failed or cancelled run, its typed
// error. If ctx has no deadline, Config.Timeout bounds the trigger only.
func (c *Client) Run(ctx context.Context, workflow string, opts *TriggerOpts) (*Run, error) {
	id, err := c.Trigger(ctx, workflow, opts)
	if err != nil {
		return nil, err
	}
	return c.Await(ctx, id)
}

// Get returns run runID as its record stands, or an error matching
// [ErrNotFound] when there is no such run (never triggered, or its record
// expired; "not found" is confirmed by the runs stream's
// leader, so a run triggered a moment ago is found even when the replica
// that answers first lags), and one wrapping a protocol sentinel for a record that does not
// decode. If ctx has no deadline, Config.Timeout applies. Safe for
// concurrent use.
func (c *Client) Get(ctx context.Context, runID string) (*Run, error) {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	_, r, err := c.runsReader(ctx)
	if err != nil {
		return nil, err
	}
	e, err := r.Get(ctx, layout.RunKey(runID), 0)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("%w: %s (an unknown run id, or a run that ended longer ago than the "+
				"coordinators' run retention, whose record has expired)", ErrNotFound, runID)
		}
		return nil, fmt.Errorf("client: get %s: %w", runID, err)
	}
	var rec protocol.RunRecord
	if err := wirecodec.Decode(e.Value(), &rec, r.Limit(ctx)); err != nil {
		return nil, fmt.Errorf("client: run %s: %w", runID, err)
	}
	return runFromRecord(&rec), nil
}

// eachEntry calls fn with every current entry of kv (deleted keys left
// out); what names the call in errors.
func (c *Client) eachEntry(ctx context.Context, kv jetstream.KeyValue, what string, fn func(jetstream.KeyValueEntry)) error {
	err := kvwatch.Current(ctx, c.js, kv, jetstream.AllKeys, func(e jetstream.KeyValueEntry) error { fn(e); return nil })
	if err != nil {
		return fmt.Errorf("client: %s: %w", what, err)
	}
	return nil
}

// ListOpts filter [Client.List]; nil lists every run.
type ListOpts struct {
	// Workflow selects one workflow's runs; "" selects all.
	Workflow string
	// Status selects runs in this status; "" selects all.
	Status RunStatus
	// Limit caps the result to the newest Limit runs; 0 means no cap.
	Limit int
}

// List returns the runs matching opts (nil: every run), newest first
// (by CreatedAt). A record that does not decode is left out. It reads every
// record in the runs bucket: meant for tools, not hot paths. If ctx has no
// deadline, Config.Timeout applies. Safe for concurrent use.
func (c *Client) List(ctx context.Context, opts *ListOpts) ([]*Run, error) {
	if opts == nil {
		opts = &ListOpts{}
	}
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.runsKV(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Run
	err = c.eachEntry(ctx, kv, "list", func(e jetstream.KeyValueEntry) {
		var rec protocol.RunRecord
		if wirecodec.Decode(e.Value(), &rec, 0) != nil {
			return
		}
		if opts.Workflow != "" && rec.Workflow != opts.Workflow {
			return
		}
		if opts.Status != "" && RunStatus(rec.Status) != opts.Status {
			return
		}
		out = append(out, runFromRecord(&rec))
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

// Cancel asks the coordinators to cancel run runID: dispatching stops, a
// running task's context is cancelled, and the run ends [RunCancelled] with
// an error matching fsm.ErrCancelled. Cancel of an ended run changes
// nothing. It returns once the request is stored, not when the run has
// ended ([Client.Await] that). It does not check that the run exists: the
// coordinators log a cancel of an unknown run and drop it, so call
// [Client.Get] first to tell a wrong id. If ctx has no deadline,
// Config.Timeout applies.
func (c *Client) Cancel(ctx context.Context, runID, reason string) error {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	data, err := wirecodec.Encode(&protocol.CancelRequest{V: protocol.SchemaVersion, RunID: runID, Reason: reason})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if _, err := c.js.Publish(ctx, c.names.CancelSubject(runID), data); err != nil {
		return fmt.Errorf("client: cancel %s: %w", runID, err)
	}
	return nil
}
