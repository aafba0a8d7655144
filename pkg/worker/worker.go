package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/cano-nats/cano/internal/connwatch"
	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/kvread"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/startstop"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/kvstore/natskv"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// Defaults for [Config].
const (
	ConcurrencyDefault = 256
	// AckWaitDefault is short because live tasks heartbeat: a command whose
	// worker was killed is redelivered to another worker within it (between
	// two thirds of it and all of it after the kill), while a live task
	// keeps its command however long it runs.
	AckWaitDefault = 4 * time.Second
	// ResultRetryDefault bounds how long a worker that finished a task
	// retries handing its outcome to a broker that refuses it (an outage).
	ResultRetryDefault     = 5 * time.Minute
	ShutdownTimeoutDefault = 10 * time.Second
	CancelMemoryDefault    = 10 * time.Minute
	// PresenceIntervalDefault is how often a worker refreshes its
	// presence entry: a third of the workers bucket's TTL, so one failed
	// heartbeat never makes a live worker disappear.
	PresenceIntervalDefault = provision.WorkersTTLDefault / 3
)

// Limits of [Config].PresenceInterval. The maximum is half the workers
// bucket's TTL (provision.WorkersTTLDefault), so a live worker's entry
// outlives one failed heartbeat.
const (
	PresenceIntervalMin = 10 * time.Millisecond
	PresenceIntervalMax = provision.WorkersTTLDefault / 2
)

// Definer is a workflow the worker registers: *fsm.Workflow[S] for any S.
type Definer interface {
	Definition() (*protocol.Definition, error)
}

// Config configures a Worker. Registry is required.
type Config struct {
	// Prefix of every subject, stream and bucket. Defaults to "cano".
	Prefix string
	// ID names the worker in results and logs. Defaults to host-pid.
	ID string
	// Registry holds the task kinds this worker runs. Required.
	Registry *fsm.Registry
	// Workflows are registered in the definitions bucket on Start.
	Workflows []Definer
	// Queues are the task queues pulled. Defaults to the queues of
	// Workflows, or "default".
	Queues []string
	// Concurrency bounds tasks running at once. Defaults to ConcurrencyDefault.
	Concurrency int
	// AckWait is the broker's redelivery deadline for a command in a
	// worker's hands: the lease. A live worker keeps the lease of every
	// command it holds by heartbeating (InProgress every AckWait/3, one
	// ticker for all its commands) from delivery until it acknowledges or
	// hands back the command — through the attempt however long it runs,
	// and through storing and publishing the result — so only the commands
	// of a worker that died (or stopped answering for longer than
	// AckWait*2/3) are redelivered, to another worker, at most AckWait after
	// the death. It is set on the task consumers on Start, also on existing
	// ones (the last worker started wins: give every worker the same
	// value). At least 1s. Defaults to AckWaitDefault (4s).
	AckWait time.Duration
	// ResultRetry bounds how long a worker that finished a task (success or
	// final failure) retries storing its branch outcome and publishing its
	// result while the broker refuses them (a stream without a leader, a
	// server restarting). Meanwhile it keeps the command's lease, so an
	// outage costs no attempt; retries back off from 100 ms up to 5 s
	// apart, and the outage is logged once when it starts and once when it
	// ends.
	// After ResultRetry, or when Stop's grace period ends, the command is
	// handed back for redelivery, which counts as an attempt (the attempt
	// number is the broker's delivery count). Defaults to
	// ResultRetryDefault (5 minutes).
	ResultRetry time.Duration
	// Resources are set up on Start (insertion order) and torn down on Stop.
	Resources *kvstore.Resources
	// Store backs TaskContext.Store (scoped per run). Defaults to the
	// JetStream KV store bucket.
	Store kvstore.Store
	// Breakers checks the circuit breaker a task names before each attempt.
	// Defaults to a [BreakerSet] on the shared breakers bucket
	// ([NewSharedBreakers]), created on Start and stopped on Stop, unless
	// DisableBreakers is set.
	Breakers Breakers
	// DisableBreakers, when Breakers is nil, turns breaker checks off: tasks
	// naming a breaker run as if they named none.
	DisableBreakers bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Provision, when non-nil, is applied with provision.Ensure on Start.
	Provision *provision.Config
	// MaxPayload is the largest command accepted. Defaults to protocol.MaxPayloadDefault.
	MaxPayload int
	// Hooks observe task execution (tests, metrics). Zero value does nothing.
	Hooks Hooks
	// PresenceInterval is how often the worker refreshes its presence
	// entry (a protocol.WorkerInfo under protocol.WorkerKey(ID)) in the
	// workers bucket, which client.Client.Workers lists. The entry is put
	// on Start, marked stopping when Stop begins and deleted when it ends;
	// the bucket's TTL (provision.WorkersTTLDefault, 30 s) removes the
	// entry of a worker that died, so the interval must stay well below
	// it: between PresenceIntervalMin and PresenceIntervalMax. A failed
	// heartbeat is logged at Warn and retried at the next tick. This is
	// not the in-progress heartbeat of running tasks (see AckWait).
	// Defaults to PresenceIntervalDefault; -1 disables presence. IDs must
	// be unique: two workers with one ID share one entry.
	PresenceInterval time.Duration
	// Metrics, when set, gets the worker's Prometheus metrics (the list is
	// in metrics.go). Workers sharing a registerer share the counters (the
	// consumer gauges are the first one's). Nil: no metrics.
	Metrics prometheus.Registerer
	// Tracing, when set, records an OpenTelemetry span per task attempt,
	// in the trace the task command carries, and hands it to the task in
	// its context (tracing.go). Nil: tracing off.
	Tracing trace.TracerProvider

	// resultsToStream: results go to the results stream only (tests).
	resultsToStream bool
	// resultTimeout replaces resultRequestTimeout when set (tests).
	resultTimeout time.Duration
	// loseAnswer, when set, is asked about each answer to a result request
	// (with the command whose result it answers); true drops it as if lost
	// on the way (tests).
	loseAnswer func(cmd *protocol.TaskCommand) bool
}

// Hooks observe a worker's task execution. Every field may be nil.
type Hooks struct {
	// AttemptStarted and AttemptEnded bracket each attempt.
	AttemptStarted func(cmd *protocol.TaskCommand, attempt int)
	AttemptEnded   func(cmd *protocol.TaskCommand, attempt int, err error)
}

// Breakers is how the worker consults shared circuit breakers.
type Breakers interface {
	// Acquire asks the named breaker for a permit; an error matching
	// fsm.ErrCircuitOpen means the attempt must not be made.
	Acquire(ctx context.Context, name string, policy *protocol.BreakerPolicy) (Permit, error)
}

// Permit is one admitted call; exactly one of Success or Failure is called.
type Permit interface {
	Success(ctx context.Context)
	Failure(ctx context.Context)
}

func (c Config) withDefaults() Config {
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.AckWait == 0 {
		c.AckWait = AckWaitDefault
	}
	if c.ResultRetry == 0 {
		c.ResultRetry = ResultRetryDefault
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = protocol.MaxPayloadDefault
	}
	if c.PresenceInterval == 0 {
		c.PresenceInterval = PresenceIntervalDefault
	}
	return c
}

func (c Config) validate() error {
	if c.Registry == nil {
		return errors.New("worker: Registry is required")
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("worker: Concurrency must be at least 1, got %d", c.Concurrency)
	}
	if c.AckWait < time.Second {
		return fmt.Errorf("worker: AckWait must be at least 1s, got %s", c.AckWait)
	}
	if c.ResultRetry < 0 {
		return fmt.Errorf("worker: ResultRetry must not be negative, got %s", c.ResultRetry)
	}
	if c.PresenceInterval != -1 && (c.PresenceInterval < PresenceIntervalMin || c.PresenceInterval > PresenceIntervalMax) {
		return fmt.Errorf("worker: PresenceInterval must be -1 or between %s and %s, got %s",
			PresenceIntervalMin, PresenceIntervalMax, c.PresenceInterval)
	}
	if len(c.ID) > protocol.MaxWorkerIDLen {
		return fmt.Errorf("worker: ID must be at most %d bytes, got %d", protocol.MaxWorkerIDLen, len(c.ID))
	}
	return nil
}

// ErrAlreadyStarted is returned by a second Start (also after Stop or a
// failed Start): a worker starts once. It is one value shared by every
// package with a Start (coordinator.ErrAlreadyStarted,
// scheduler.ErrAlreadyStarted), so errors.Is matches it under any name.
var ErrAlreadyStarted = startstop.ErrAlreadyStarted

// Worker runs tasks. It does not close the connection it is given. Safe for
// concurrent use.
type Worker struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	cfg   Config
	names protocol.Names
	log   *slog.Logger

	consumerSet          // task consumer names, for the metrics scrape (metrics.go)
	metrics     *metrics // nil without Config.Metrics

	branches jetstream.KeyValue
	runs     jetstream.KeyValue // read for inputs left out of commands
	runsRead *kvread.Reader     // consistent reads of runs (loadInput)
	rcalls   *resultCalls       // results sent to coordinators (resultrpc.go); set in Start
	// afterResultSent is the fault hook after a result request is sent
	// (faults*.go, the fault suite).
	afterResultSent func(rc *resultCalls, token uint64)
	// conn ends an outcome's publish in flight when the connection is
	// lost, so it is sent again right after the reconnect rather than
	// after publishTimeout (a join timeout may be shorter). Set in Start.
	conn     *connwatch.Watch
	store    kvstore.Store
	breakers *BreakerSet // the default breakers, owned by the worker
	machines []*engine.Machine

	slots    chan struct{}
	idle     chan jetstream.Msg // idle runners receive commands (see dispatch)
	tasks    sync.WaitGroup
	inFlight atomic.Int64   // tasks executing, reported by presence
	leases   leases         // commands in hand, heartbeated by one goroutine
	results  pendingResults // results published, awaiting their PubAck (results.go)
	outage   outage         // the broker refusing finished tasks' outcomes
	beatStop context.CancelFunc
	beats    sync.WaitGroup

	life      startstop.Life
	mu        sync.Mutex        // serializes Start and Stop
	consumers int               // set in Start before pulling: consumers in all
	pulling   *startstop.Signal // fired by Stop: ends the pull loops
	pulls     sync.WaitGroup
	noticeSub *nats.Subscription // guarded by mu
	resUp     bool               // guarded by mu
	presence  *presence          // guarded by mu; nil if disabled or before Start

	cmu       sync.Mutex
	running   map[string]*running   // guarded by cmu; run id → its tasks (a list: one, mostly)
	cancelled map[string]cancelMark // guarded by cmu; run id → mark

	stopping *startstop.Signal // fired by Stop after the grace period: tasks still running are cancelled
}

type running struct {
	step   uint32
	branch int32
	cancel context.CancelCauseFunc
	next   *running // guarded by cmu; the run's next task
}

type cancelMark struct {
	all   bool
	steps map[uint32]bool
	at    time.Time
}

// New returns a worker on nc.
func New(nc *nats.Conn, cfg Config) (*Worker, error) {
	if nc == nil {
		return nil, errors.New("worker: no NATS connection (nil): pass one from nats.Connect")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	names, err := protocol.NewNames(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	w := &Worker{nc: nc, cfg: cfg, names: names, log: cfg.Logger.With("component", "worker", "worker_id", cfg.ID),
		slots: make(chan struct{}, cfg.Concurrency), idle: make(chan jetstream.Msg), running: map[string]*running{},
		cancelled: map[string]cancelMark{}, afterResultSent: faultAfterResultSent()}
	// Results are published asynchronously (results.go): the PubAck
	// handlers settle their commands. At most Concurrency results await
	// their PubAck (each holds its task slot), within the pending bound.
	w.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(max(4096, cfg.Concurrency)),
		jetstream.WithPublishAsyncTimeout(min(publishTimeout, cfg.ResultRetry)),
		jetstream.WithPublishAsyncAckHandler(w.resultAcked), jetstream.WithPublishAsyncErrHandler(w.resultRefused))
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	w.pulling, w.stopping = startstop.NewSignal(), startstop.NewSignal()
	for _, d := range cfg.Workflows {
		def, err := d.Definition()
		if err != nil {
			return nil, fmt.Errorf("worker: %w", err)
		}
		m, err := engine.Compile(def)
		if err != nil {
			return nil, fmt.Errorf("worker: %w", err)
		}
		if err := m.CheckKinds(cfg.Registry); err != nil {
			return nil, fmt.Errorf("worker: %w", err)
		}
		w.machines = append(w.machines, m)
	}
	if cfg.Metrics != nil {
		if w.metrics, err = newMetrics(w, cfg.Metrics); err != nil {
			return nil, fmt.Errorf("worker: metrics: %w", err)
		}
	}
	return w, nil
}

// Start sets up resources, registers the definitions, starts pulling, and
// puts the worker's presence entry (see Config.PresenceInterval; a failed
// put is logged, not returned). A Start that fails stops what it had
// started (resources set up are torn down) and returns the error; a
// second Start returns [ErrAlreadyStarted]. The streams and buckets must
// exist (provision.Ensure, Config.Provision, or a coordinator creates
// them): without them the error matches jetstream.ErrBucketNotFound or
// jetstream.ErrStreamNotFound and says so.
func (w *Worker) Start(ctx context.Context) (err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.life.Start("worker"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			startstop.Undo(ctx, w.stopLocked)
		}
	}()
	if w.cfg.Provision != nil {
		p := *w.cfg.Provision
		p.Prefix = w.cfg.Prefix
		if err := provision.Ensure(ctx, w.js, p); err != nil {
			return err
		}
	}
	if w.cfg.Resources != nil {
		if err := w.cfg.Resources.SetupAll(ctx); err != nil {
			return fmt.Errorf("worker: resources: %w", err)
		}
		w.resUp = true
	}
	if w.branches, err = w.js.KeyValue(ctx, layout.BranchesBucket(w.names)); err != nil {
		return fmt.Errorf("worker: branches bucket: %w", notProvisioned(err))
	}
	if w.runs, err = w.js.KeyValue(ctx, layout.RunsBucket(w.names)); err != nil {
		return fmt.Errorf("worker: runs bucket: %w", notProvisioned(err))
	}
	w.runsRead = kvread.New(w.js, w.runs)
	w.conn = connwatch.New(w.nc)
	if !w.cfg.resultsToStream {
		if w.rcalls, err = w.startResultCalls(); err != nil { // resultrpc.go
			return fmt.Errorf("worker: subscribe to result answers: %w", err)
		}
	}
	if w.cfg.PresenceInterval > 0 {
		kv, err := w.js.KeyValue(ctx, layout.WorkersBucket(w.names))
		if err != nil {
			return fmt.Errorf("worker: workers bucket: %w", notProvisioned(err))
		}
		w.presence = newPresence(w, kv)
	}
	w.store = w.cfg.Store
	if w.store == nil {
		kv, err := natskv.New(ctx, w.js, natskv.Config{Bucket: layout.StoreBucket(w.names)})
		if err != nil {
			return fmt.Errorf("worker: store: %w", notProvisioned(err))
		}
		w.store = connStore{Store: kv, conn: w.conn, timeout: natskv.TimeoutDefault}
	}
	if w.cfg.Breakers == nil && !w.cfg.DisableBreakers {
		kv, err := w.js.KeyValue(ctx, layout.BreakersBucket(w.names))
		if err != nil {
			return fmt.Errorf("worker: breakers bucket: %w", notProvisioned(err))
		}
		// The set adds component=breakers: the worker's own logger would
		// give its lines the key component twice.
		blog := w.cfg.Logger.With("worker_id", w.cfg.ID)
		if w.breakers, err = NewSharedBreakers(w.nc, kv, BreakersConfig{Prefix: w.cfg.Prefix, Logger: blog,
			OnTransitionFunc: w.metrics.onBreaker(nil)}); err != nil {
			return err
		}
		w.cfg.Breakers = w.breakers
	}
	if err := w.registerDefinitions(ctx); err != nil {
		return err
	}
	sub, err := w.nc.Subscribe(w.names.NoticeCancelWildcard(), w.onNotice)
	if err != nil {
		return fmt.Errorf("worker: subscribe cancel notices: %w", err)
	}
	w.noticeSub = sub
	w.consumers = len(w.queues()) * len(w.cfg.Registry.Kinds())
	var beatCtx context.Context
	beatCtx, w.beatStop = context.WithCancel(context.Background())
	w.beats.Add(1)
	go func() { defer w.beats.Done(); w.leases.run(beatCtx, w.cfg.AckWait/3) }()
	for _, q := range w.queues() {
		for _, kind := range w.cfg.Registry.Kinds() {
			if err := w.consumeKind(ctx, q, kind); err != nil {
				return err
			}
		}
	}
	if w.presence != nil {
		w.presence.start(ctx)
	}
	w.log.Info("worker started", "kinds", w.cfg.Registry.Kinds(), "queues", w.queues(), "concurrency", w.cfg.Concurrency)
	return nil
}

// notProvisioned adds to a missing stream or bucket error what to do: the
// worker found nothing to work on because nothing created it. Other errors
// are returned as they are.
func notProvisioned(err error) error {
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: the streams and buckets do not exist yet: run provision.Ensure (or set "+
			"worker.Config.Provision, or start a coordinator, which provisions) before starting a worker", err)
	}
	return err
}

func (w *Worker) queues() []string {
	if len(w.cfg.Queues) > 0 {
		return w.cfg.Queues
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range w.machines {
		q := m.Definition().Queue
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	if len(out) == 0 {
		out = []string{fsm.QueueDefault}
	}
	return out
}

func (w *Worker) consumeKind(ctx context.Context, queue, kind string) error {
	cons, err := w.js.CreateOrUpdateConsumer(ctx, layout.TasksStream(w.names), jetstream.ConsumerConfig{
		Durable:       layout.TaskConsumer(queue, kind),
		FilterSubject: w.names.TaskSubject(queue, kind),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 64 * 1024,
	})
	if err != nil {
		return fmt.Errorf("worker: consumer for %s/%s: %w", queue, kind, notProvisioned(err))
	}
	// Each consumer may hold at most its share of the slots in an open
	// pull request, so idle kinds never starve busy ones.
	share := max(1, w.cfg.Concurrency/(2*max(1, w.consumers)))
	info := cons.CachedInfo()
	long := w.cfg.Concurrency >= 2*max(1, w.consumers) // see pull.go
	p, err := w.newPuller(protocol.ConsumerNextSubject(protocol.JSAPIPrefix("", ""), info.Stream, info.Name), kind, share, long)
	if err != nil {
		return err
	}
	w.addConsumerName(layout.TaskConsumer(queue, kind))
	w.pulls.Add(1)
	go w.pull(w.pulling.Context(), p)
	return nil
}

// Stop marks the worker's presence entry stopping, stops pulling, lets
// tasks in flight finish within ctx, cancels the rest (their commands are
// handed back for redelivery), tears down resources, and deletes the
// presence entry (each presence write is best effort, bounded by a second).
// It returns once every goroutine the worker started has returned (tasks
// still running when ctx ends are cancelled and waited for). Safe to call
// twice or without Start.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopLocked(ctx)
}

func (w *Worker) stopLocked(ctx context.Context) error {
	first, started := w.life.Stop()
	if !first {
		return nil
	}
	if !started {
		w.pulling.Fire()
		w.stopping.Fire()
		return nil
	}
	if w.presence != nil {
		w.presence.stopping(ctx)
	}
	// Each pull loop drains its subscription: commands its open request
	// still brings are run (their slots are reserved), not handed back.
	w.pulling.Fire()
	_ = startstop.Wait(ctx, &w.pulls)
	if w.noticeSub != nil {
		_ = w.noticeSub.Unsubscribe()
	}
	done := make(chan struct{})
	go func() { w.tasks.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		w.stopping.Fire() // tasks still running are cancelled and handed back
		<-done
		err = fmt.Errorf("worker: stop: tasks cancelled after %w", ctx.Err())
	}
	w.stopping.Fire()
	if w.beatStop != nil {
		w.beatStop()
		w.beats.Wait()
	}
	// No result awaits its answer or its PubAck now (each is a task waited
	// for above): the subscriptions for them go.
	w.rcalls.close()
	w.js.CleanupPublisher()
	if w.breakers != nil {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = w.breakers.Stop(bctx)
		cancel()
	}
	if w.resUp {
		w.cfg.Resources.TeardownAll(context.WithoutCancel(ctx))
	}
	if w.presence != nil {
		w.presence.remove(ctx)
	}
	if w.conn != nil {
		w.conn.Stop()
	}
	w.log.Info("worker stopped")
	return err
}

// Health aggregates the health of the worker's resources (worst wins).
func (w *Worker) Health(ctx context.Context) kvstore.HealthStatus {
	if w.cfg.Resources == nil {
		return kvstore.Healthy()
	}
	return w.cfg.Resources.Health(ctx)
}
