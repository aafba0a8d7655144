package coordinator

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/cano-nats/cano/internal/connwatch"
	"github.com/cano-nats/cano/internal/kvread"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/startstop"
	"github.com/cano-nats/cano/pkg/kvstore/natskv"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// Defaults for [Config].
const (
	// ShardsPerCPU sets the default shard count: this many per GOMAXPROCS.
	// A shard sends its record writes without waiting for them (shard.go,
	// "Pipelined stores"), so it needs no more shards than the cores that
	// run them: on 2 cores, 4 shards did 19–24 % more one-task runs/s for
	// 18 % less CPU per run than 256 waiting shards, and 16 sat between.
	ShardsPerCPU     = 2
	AckWaitDefault   = 30 * time.Second
	BatchSizeDefault = 512
	ConsumerDefault  = "coordinator"
	// ShardQueueDefault is each shard's input (and pending-ack) queue; at
	// least maxGroup, so a split's results arriving together are folded
	// into writes of up to maxGroup inputs.
	ShardQueueDefault = 256
	// PublishAckTimeout bounds the wait for the server's acknowledgement of
	// an asynchronous publish (a command, a timer, a dead letter). Without
	// it a publish lost in a leader change would never resolve, and the
	// shard waiting on it would stop acknowledging its inputs for good.
	// A timed-out publish naks its input, whose redelivery publishes again
	// (with the same message id, so a publish that did land is not doubled).
	PublishAckTimeout = 5 * time.Second
	// RunStoreRetentionDefault keeps an ended run's store keys for an hour.
	RunStoreRetentionDefault = time.Hour
	// RunRetentionDefault keeps a finished run's record for an hour, like
	// its store scope (RunStoreRetentionDefault). Sized for a laptop: a
	// finished one-task run's record is about 300 bytes of stored data
	// (measured: TestRunRecordBytes), so an hour at 100 runs/s is about
	// 360,000 records and 110 MB on disk; the server's memory per retained
	// record is several times that. Set it longer where runs are read
	// long after they end.
	RunRetentionDefault = time.Hour
	// RunRetentionMin is the shortest run retention (the TTL's unit).
	RunRetentionMin = time.Second
	// MaxRequestsDefault bounds the trigger requests a coordinator holds
	// at once (Config.MaxRequests).
	MaxRequestsDefault = 4096
	// DeferStartMax bounds Config.DeferStart: a trigger request's sender
	// waits for its answer up to about that long, within the client's
	// 2 s per attempt before it sends the request again.
	DeferStartMax = time.Second
	// RequestQueueGroup is the queue group the coordinators take trigger
	// requests in (protocol.Names.RPCTriggerSubject): each request goes to
	// one of them.
	RequestQueueGroup = "cano_coordinators"
)

// Config configures a Coordinator. The zero value uses the defaults.
type Config struct {
	// Prefix of every subject, stream and bucket. Defaults to "cano".
	Prefix string
	// Shards is the number of goroutines that apply transitions; a run is
	// always handled by the same shard. Defaults to ShardsPerCPU ×
	// GOMAXPROCS.
	Shards int
	// MaxPayload is the largest input accepted. Defaults to
	// provision.MaxMsgSizeDefault, the streams' maximum message size.
	MaxPayload int
	// AckWait is the redelivery deadline of un-acked inputs. Defaults to AckWaitDefault.
	AckWait time.Duration
	// BatchSize is how many messages each consumer pulls at once. Defaults to BatchSizeDefault.
	BatchSize int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Provision, when non-nil, is applied with provision.Ensure on Start.
	Provision *provision.Config
	// RunStoreRetention is how long an ended run's store scope
	// (kvstore.RunScope) is kept before a durable timer removes it.
	// Defaults to RunStoreRetentionDefault; -1 keeps it.
	RunStoreRetention time.Duration
	// StallCheckInterval is how often each shard looks for stalled runs
	// among those it caches (see Stats.Stalled). Defaults to
	// StallCheckIntervalDefault; -1 disables the check.
	StallCheckInterval time.Duration
	// StallAfter is how long a run may stay at a step whose time has no
	// bound (no attempt timeout, no join or total timeout) before it counts
	// as stalled and what it owes is re-published. Steps with a bound use
	// it instead (attempts × attempt timeout + backoffs + AckWait, or the
	// join or total timeout). Defaults to StallAfterDefault.
	StallAfter time.Duration
	// MaxDeliveries is how many times an input (trigger, result, cancel
	// request, timer) is handled before, still failing, it is given up:
	// dead-lettered with its last error and terminated. Between deliveries
	// the delay grows from NakDelayMin to NakDelayMax. Defaults to
	// MaxDeliveriesDefault (about 16.5 minutes of failures in a row); at
	// least 1.
	MaxDeliveries int
	// WarnInterval is the shortest interval between two logs of the same
	// warning (same message and reason, about the same run or input
	// kind); the next log after it says how many were held back
	// ("suppressed"). Defaults to WarnIntervalDefault; -1 logs every one.
	WarnInterval time.Duration
	// RunRetention is how long a finished (completed, failed or
	// cancelled) run's record is kept: its final write carries this TTL,
	// and once it passes the record is gone (client.Get then reports the
	// run as not found). Idempotency keys and caller-chosen run ids are
	// remembered as long as the record is. Defaults to RunRetentionDefault;
	// -1 keeps records until the runs bucket's max age
	// (provision.Config.RunsMaxAge); at least RunRetentionMin otherwise.
	RunRetention time.Duration
	// OnEnded, when set, is called after a run reached a terminal status
	// (used by the scheduler and tests). It must not block.
	OnEnded func(rec *protocol.RunRecord)
	// Metrics, when set, gets the coordinator's Prometheus metrics (the
	// list is in metrics.go). Coordinators sharing a registerer share the
	// counters (the stall count and consumer gauges are the first one's).
	// Nil: no metrics.
	Metrics prometheus.Registerer
	// MaxRequests bounds the trigger requests (protocol.Names.RPCTriggerSubject)
	// this coordinator holds at once, from their arrival to their answer,
	// and, separately, the result requests (protocol.Names.RPCResultSubject).
	// A request over it is answered at once, not queued: a trigger with an
	// error that says to send it again (TriggerReply.Retry), a result with
	// protocol.HeaderResultError (the worker publishes it to the results
	// stream). Defaults to MaxRequestsDefault.
	MaxRequests int
	// DeferStart, when positive, defers the record write of a run started
	// by a trigger request on the fast path (a first state that is one
	// task; see requests.go): the record is first written together with
	// the run's first input (its first task's result, usually), which
	// saves the broker a stored message, a PubAck and a record replaced per
	// run. A run with no input within DeferStart has its start record
	// written then, as without this mode. The request is answered once the
	// record is written, so a run its answer names is readable at once:
	// the answer comes after the first task (or after DeferStart). Until
	// then Get and List do not find the run, which its sender has not been
	// told of yet; a cancel for it (possible with a run id the sender
	// chose) is applied by the coordinator holding the start and refused
	// as for an unknown run by any other. A trigger published to the
	// triggers stream is unaffected. Zero (the default):
	// the record is written at the start, before the answer. At most
	// DeferStartMax. See deferred.go.
	DeferStart time.Duration
	// Tracing, when set, records OpenTelemetry spans: one per step a run
	// leaves, under the trace context the input carried (tracing.go). Nil:
	// tracing off.
	Tracing trace.TracerProvider
}

func (c Config) withDefaults() Config {
	if c.Shards == 0 {
		c.Shards = ShardsPerCPU * runtime.GOMAXPROCS(0)
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = provision.MaxMsgSizeDefault
	}
	if c.AckWait == 0 {
		c.AckWait = AckWaitDefault
	}
	if c.BatchSize == 0 {
		c.BatchSize = BatchSizeDefault
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.StallCheckInterval == 0 {
		c.StallCheckInterval = StallCheckIntervalDefault
	}
	if c.StallAfter == 0 {
		c.StallAfter = StallAfterDefault
	}
	if c.WarnInterval == 0 {
		c.WarnInterval = WarnIntervalDefault
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = MaxDeliveriesDefault
	}
	if c.RunStoreRetention == 0 {
		c.RunStoreRetention = RunStoreRetentionDefault
	}
	if c.RunRetention == 0 {
		c.RunRetention = RunRetentionDefault
	}
	if c.MaxRequests == 0 {
		c.MaxRequests = MaxRequestsDefault
	}
	return c
}

func (c Config) validate() error {
	if c.Shards < 1 {
		return fmt.Errorf("coordinator: Shards must be at least 1, got %d", c.Shards)
	}
	if c.AckWait < time.Second {
		return fmt.Errorf("coordinator: AckWait must be at least 1s, got %s", c.AckWait)
	}
	if c.RunRetention != -1 && c.RunRetention < RunRetentionMin {
		return fmt.Errorf("coordinator: RunRetention must be -1 or at least %s, got %s", RunRetentionMin, c.RunRetention)
	}
	if c.BatchSize < 1 {
		return fmt.Errorf("coordinator: BatchSize must be at least 1, got %d", c.BatchSize)
	}
	if c.StallCheckInterval < 0 && c.StallCheckInterval != -1 {
		return fmt.Errorf("coordinator: StallCheckInterval must be positive or -1 (disabled), got %s", c.StallCheckInterval)
	}
	if c.WarnInterval < 0 && c.WarnInterval != -1 {
		return fmt.Errorf("coordinator: WarnInterval must be positive or -1 (log every warning), got %s", c.WarnInterval)
	}
	if c.MaxDeliveries < 1 {
		return fmt.Errorf("coordinator: MaxDeliveries must be at least 1, got %d", c.MaxDeliveries)
	}
	if c.MaxRequests < 1 {
		return fmt.Errorf("coordinator: MaxRequests must be at least 1, got %d", c.MaxRequests)
	}
	if c.StallAfter < 0 {
		return fmt.Errorf("coordinator: StallAfter must be positive, got %s", c.StallAfter)
	}
	if c.DeferStart < 0 || c.DeferStart > DeferStartMax {
		return fmt.Errorf("coordinator: DeferStart must be between 0 (off) and %s, got %s", DeferStartMax, c.DeferStart)
	}
	return nil
}

// ErrAlreadyStarted is returned by a second Start (also after Stop or a
// failed Start): a coordinator starts once. It is one value shared by
// every package with a Start (worker.ErrAlreadyStarted,
// scheduler.ErrAlreadyStarted), so errors.Is matches it under any name.
var ErrAlreadyStarted = startstop.ErrAlreadyStarted

// Coordinator drives runs. It does not close the connection it is given.
// Safe for concurrent use.
type Coordinator struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	cfg   Config
	names protocol.Names
	log   *slog.Logger

	runs     jetstream.KeyValue
	runsRead *kvread.Reader // consistent reads of runs (consistent.go)
	// conn ends the KV requests in flight when the connection is lost, so
	// a shard retries right after the reconnect instead of waiting out
	// kvTimeout for a reply a dead server will never send. Set in Start.
	conn     *connwatch.Watch
	branches jetstream.KeyValue
	store    *natskv.Store
	defs     *definitions

	shards []*shard
	seed   maphash.Seed

	// Trigger requests (requests.go): a slot is taken per request in hand;
	// reqSub is the queue subscription (guarded by mu). afterCommands is
	// the fault hook of the request fast path, afterRecord the one after a
	// record write (faults*.go, tests).
	reqSlots      chan struct{}
	reqSub        *nats.Subscription
	afterCommands func(runID string) bool
	afterRecord   func(applied []job)
	// afterStartRecord is the fault hook after a scheduled run's record is
	// created (faults.go).
	afterStartRecord func(runID string)
	// Result requests (resultrpc.go): id names this coordinator on the
	// commands it publishes (protocol.HeaderCoordinator); resSlots bounds
	// the result requests in hand; resSubs are this coordinator's own
	// subject and the queue group's (guarded by mu).
	id       string
	resSlots chan struct{}
	resSubs  []*nats.Subscription

	stalled atomic.Uint64 // runs re-driven by the stall check
	// unscheduled counts moot timers by outcome (unschedule.go).
	unscheduled [unscheduleOutcomes]atomic.Uint64
	metrics     *metrics // nil without Config.Metrics (metrics.go)
	repeats     *repeats // rate-limits repeated warnings

	life     startstop.Life
	mu       sync.Mutex                 // serializes Start and Stop
	consume  []jetstream.ConsumeContext // guarded by mu
	run      *startstop.Signal          // fired by Stop: ends the shards and the definitions watch
	anchored chan struct{}              // closed when the anchor loop has returned (anchor.go)
	unsched  chan string                // timer subjects to purge (unschedule.go)
	unsDone  chan struct{}              // closed when the unschedule loop has returned
	status   chan nats.Status           // guarded by mu; connection status for defs
	wg       sync.WaitGroup             // the shards' goroutines
}

// New returns a coordinator on nc.
func New(nc *nats.Conn, cfg Config) (*Coordinator, error) {
	if nc == nil {
		return nil, errors.New("coordinator: no NATS connection (nil): pass one from nats.Connect")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	names, err := protocol.NewNames(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(PublishAckTimeout))
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	c := &Coordinator{nc: nc, js: js, cfg: cfg, names: names, log: cfg.Logger.With("component", "coordinator"),
		seed: maphash.MakeSeed(), repeats: &repeats{every: cfg.WarnInterval}, run: startstop.NewSignal(), unsched: make(chan string, unscheduleQueue),
		reqSlots: make(chan struct{}, cfg.MaxRequests), afterCommands: faultAfterCommands(), afterRecord: faultAfterRecord(),
		afterStartRecord: faultAfterStartRecord(),
		id:               nuid.Next(), resSlots: make(chan struct{}, cfg.MaxRequests)}
	if cfg.Metrics != nil {
		if c.metrics, err = newMetrics(c, cfg.Metrics); err != nil {
			return nil, fmt.Errorf("coordinator: metrics: %w", err)
		}
	}
	return c, nil
}

// Start provisions (if configured), loads definitions and starts consuming.
// It returns once consuming has begun. A Start that fails stops what it
// had started; a second Start returns [ErrAlreadyStarted].
func (c *Coordinator) Start(ctx context.Context) (err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.life.Start("coordinator"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			startstop.Undo(ctx, c.stopLocked)
		}
	}()
	if c.cfg.Provision != nil {
		p := *c.cfg.Provision
		p.Prefix = c.cfg.Prefix
		if err := provision.Ensure(ctx, c.js, p); err != nil {
			return err
		}
	}
	if c.runs, err = c.js.KeyValue(ctx, layout.RunsBucket(c.names)); err != nil {
		return fmt.Errorf("coordinator: runs bucket: %w", err)
	}
	c.runsRead = kvread.New(c.js, c.runs)
	c.conn = connwatch.New(c.nc)
	if c.branches, err = c.js.KeyValue(ctx, layout.BranchesBucket(c.names)); err != nil {
		return fmt.Errorf("coordinator: branches bucket: %w", err)
	}
	if c.store, err = natskv.New(ctx, c.js, natskv.Config{Bucket: layout.StoreBucket(c.names)}); err != nil {
		return fmt.Errorf("coordinator: store bucket: %w", err)
	}
	defsKV, err := c.js.KeyValue(ctx, layout.DefinitionsBucket(c.names))
	if err != nil {
		return fmt.Errorf("coordinator: definitions bucket: %w", err)
	}
	runCtx := c.run.Context()
	c.status = c.nc.StatusChanged(nats.CONNECTED)
	c.defs = newDefinitions(defsKV, c.status, func() uint64 { return c.nc.Stats().Reconnects }, c.log)
	c.defs.warn = c.warn
	if err := c.defs.start(ctx, runCtx); err != nil {
		return err
	}
	c.shards = make([]*shard, c.cfg.Shards)
	for i := range c.shards {
		s := newShard(c, i)
		c.shards[i] = s
		c.wg.Add(2)
		go s.loop(runCtx)
		go s.ackLoop()
	}
	// Requests first: a command dispatched from the streams' backlog names
	// this coordinator, and its worker's result request must find it
	// listening (else it falls back to the results stream, a stored
	// message more).
	if c.reqSub, err = c.nc.QueueSubscribe(c.names.RPCTriggerWildcard(), RequestQueueGroup, c.onRequest); err != nil {
		return fmt.Errorf("coordinator: subscribe to trigger requests: %w", err)
	}
	// The in-flight bound (MaxRequests) is the limit that answers; the
	// subscription's buffer only has to outlast a burst.
	_ = c.reqSub.SetPendingLimits(64*1024, 256<<20)
	own, err := c.nc.Subscribe(c.names.RPCResultSubject(c.id), c.onResultRequest)
	if err != nil {
		return fmt.Errorf("coordinator: subscribe to result requests: %w", err)
	}
	c.resSubs = append(c.resSubs, own)
	anyc, err := c.nc.QueueSubscribe(c.names.RPCResultAnySubject(), RequestQueueGroup, c.onResultRequest)
	if err != nil {
		return fmt.Errorf("coordinator: subscribe to result requests: %w", err)
	}
	c.resSubs = append(c.resSubs, anyc)
	for _, sub := range c.resSubs {
		_ = sub.SetPendingLimits(64*1024, 256<<20)
	}
	inputs := []struct {
		stream, filter string
		handle         func(jetstream.Msg)
	}{
		{layout.TriggersStream(c.names), c.names.TriggerWildcard(), c.onTrigger},
		{layout.ResultsStream(c.names), c.names.ResultWildcard(), c.onResult},
		{layout.ControlStream(c.names), c.names.ControlWildcard(), c.onControl},
		{layout.TimersStream(c.names), c.names.TimerFireWildcard(), c.onTimer},
	}
	for _, in := range inputs {
		cons, err := c.js.CreateOrUpdateConsumer(ctx, in.stream, jetstream.ConsumerConfig{
			Durable:       ConsumerDefault,
			FilterSubject: in.filter,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       c.cfg.AckWait,
			// The bound is ours (Config.MaxDeliveries): the server would
			// stop delivering silently, we dead-letter with the reason.
			MaxDeliver:    -1,
			MaxAckPending: 64 * 1024,
		})
		if err != nil {
			return fmt.Errorf("coordinator: consumer on %s: %w", in.stream, err)
		}
		cc, err := cons.Consume(in.handle, jetstream.PullMaxMessages(c.cfg.BatchSize),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if !errors.Is(err, jetstream.ErrNoHeartbeat) {
					c.log.Debug("consume", "stream", in.stream, "err", err)
				}
			}))
		if err != nil {
			return fmt.Errorf("coordinator: consume %s: %w", in.stream, err)
		}
		c.consume = append(c.consume, cc)
	}
	c.anchored = make(chan struct{})
	go c.anchorLoop(runCtx, c.anchored)
	c.unsDone = make(chan struct{})
	go c.unscheduleLoop(runCtx, c.unsDone)
	c.log.Info("coordinator started", "prefix", c.names.Prefix(), "shards", c.cfg.Shards)
	return nil
}

// Stop stops consuming, finishes the inputs in hand within ctx, and
// returns once every goroutine the coordinator started has returned (or
// ctx ended). Inputs not acknowledged are redelivered to another replica.
// Calling Stop twice, or without Start, is safe.
func (c *Coordinator) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopLocked(ctx)
}

func (c *Coordinator) stopLocked(ctx context.Context) error {
	first, started := c.life.Stop()
	if !first {
		return nil
	}
	defer c.run.Fire()
	if !started {
		return nil
	}
	if c.reqSub != nil {
		// Requests not yet taken time out at their senders, who send again
		// (client.Trigger: to another coordinator, or to the triggers
		// stream when none is left).
		_ = c.reqSub.Unsubscribe()
	}
	// Result requests not yet taken time out at their workers, which
	// publish them to the results stream.
	for _, sub := range c.resSubs {
		_ = sub.Unsubscribe()
	}
	for _, cc := range c.consume {
		cc.Drain()
	}
	// err is the first step that ran out of time: the later ones find ctx
	// done as well and would only name themselves.
	var err error
	for _, cc := range c.consume {
		select {
		case <-cc.Closed():
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("coordinator: stop: stream consumers still draining (messages delivered but not handled): %w", ctx.Err())
			}
		}
	}
	for _, s := range c.shards {
		select {
		case s.in <- job{stop: true}:
		case <-ctx.Done():
		}
	}
	if werr := startstop.Wait(ctx, &c.wg); werr != nil && err == nil {
		err = fmt.Errorf("coordinator: stop: %w", werr)
	}
	c.run.Fire()
	if c.status != nil {
		c.nc.RemoveStatusListener(c.status)
	}
	if c.conn != nil {
		c.conn.Stop()
	}
	if c.defs != nil {
		if derr := c.defs.wait(ctx); err == nil {
			err = derr
		}
	}
	for _, done := range []chan struct{}{c.anchored, c.unsDone} {
		if done != nil {
			select {
			case <-done:
			case <-ctx.Done():
			}
		}
	}
	if err == nil {
		c.log.Info("coordinator stopped")
	}
	return err
}

func (c *Coordinator) shardFor(runID string) *shard {
	return c.shards[maphash.String(c.seed, runID)%uint64(len(c.shards))]
}
