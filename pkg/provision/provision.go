// Package provision creates or updates every stream and KV bucket Cano uses.
//
// [Ensure] is idempotent: running it twice, or from several processes at
// once, is safe. Every process calls it on start.
package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Defaults for [Config].
const (
	ReplicasDefault       = 1
	EventsMaxAgeDefault   = time.Hour
	EventsMaxBytesDefault = 64 << 20
	DLQMaxAgeDefault      = 7 * 24 * time.Hour
	DLQMaxBytesDefault    = 256 << 20
	RunsMaxAgeDefault     = 7 * 24 * time.Hour
	LeaderTTLDefault      = 10 * time.Second
	WorkersTTLDefault     = 30 * time.Second
	MaxMsgSizeDefault     = 4 << 20
	TimeoutDefault        = 10 * time.Second
)

// De-duplication windows, one per stream. A window must cover the longest
// time between the first publish of a message id and a re-publish of the
// same id that must be dropped; the server keeps every id it saw for the
// window (ids only: a message without Nats-Msg-Id costs nothing), so the
// memory it costs grows with id'd messages per second × window. The
// figures below assume the default ack waits (coordinator.AckWaitDefault
// and worker.AckWaitDefault, 30 s); give [Config.DuplicateWindow] a longer
// window if the processes run with a longer -ack-wait. A re-publish that
// falls outside its window is not an error: the run record decides, so a
// late duplicate command runs its task once more (as a worker crash
// would) and its result is ignored as already applied.
const (
	// commandsDuplicateWindow (tasks stream, id run/step/branch). A
	// coordinator re-publishes the commands a record owes when it handles
	// an input again: the input it held when it died comes back after the
	// coordinator's ack wait (30 s) and is re-applied after a record read
	// (bounded by 5 s), so the re-publish comes at most ~35 s after the
	// first; a publish-ack timeout (5 s) naks the input, which comes back
	// at once (~10 s). 35 s + 10 s margin for queueing in the shards.
	commandsDuplicateWindow = 45 * time.Second
	// resultsDuplicateWindow (results stream, id r:run/step/branch). A
	// worker re-publishes a result when the command comes back to it: after
	// a failed publish (10 s timeout, then a 1 s nak delay) or, if it died
	// before acking, after the worker's ack wait (30 s) — both plus the
	// task's run time, which no window can bound. 30 s + 5 s publish +
	// 10 s margin covers tasks of a few seconds; a later duplicate result
	// is ignored by the coordinator as already applied.
	resultsDuplicateWindow = 45 * time.Second
	// triggersDuplicateWindow (triggers stream, id trig:run or the flow
	// slot's run id). A client retries a trigger whose ack it lost within
	// its 10 s timeout; a scheduler leader taking over re-publishes a fired
	// slot without a record at the start of its term, at most the leader
	// TTL (10 s) + one scheduler operation (5 s) after the old leader's
	// publish. 15 s + 15 s margin. Past it the run record's create (keyed
	// by run id) still makes a duplicate trigger a no-op.
	triggersDuplicateWindow = 30 * time.Second
	// eventsDuplicateWindow (events stream, id ev:run:step:type). Events
	// are re-published with the commands on the same redelivered input,
	// so the same bound as commands: observers see each event once.
	eventsDuplicateWindow = commandsDuplicateWindow
	// dlqDuplicateWindow (dead letters, id dlq:stream:seq). A letter is
	// re-published when its input comes back after a publish timeout or a
	// coordinator's death: the same bound as commands.
	dlqDuplicateWindow = commandsDuplicateWindow
	// otherDuplicateWindow (control and timers streams). Their messages
	// carry no id today, so the window holds nothing; it is the commands'
	// bound so that an id added later is covered.
	otherDuplicateWindow = commandsDuplicateWindow
)

// Config says how streams and buckets are created. The zero value uses the
// defaults.
type Config struct {
	// Prefix of every name. Defaults to protocol.PrefixDefault.
	Prefix string
	// Replicas is 1 or 3. Zero creates new streams and buckets with
	// ReplicasDefault and keeps the replica count of existing ones, so a
	// process that does not know the deployment's replica count (a worker)
	// never scales a cluster's streams down.
	Replicas int
	// Storage defaults to file storage.
	Memory bool
	// DuplicateWindow, when set, is every stream's de-duplication window.
	// By default each stream has its own, derived from the default ack
	// waits (30 s): 30 s for triggers, 45 s for the others (reasons in
	// provision.go); set it longer if the processes' ack waits are longer
	// than 30 s.
	DuplicateWindow time.Duration
	// EventCapture creates the events capture stream (Names.EventsStream,
	// on the event subjects): the server then stores every event published
	// (one message per event, in memory by default) so observers can replay
	// recent history (client.EventFilter Since and FromStart, canoctl runs
	// watch of an ended run). Off by default: events are core NATS
	// messages for live observers, and the run records are the truth;
	// storing them costs the server a write per event on the hot path.
	// Dev mode turns it on. With it off, Ensure neither creates nor touches
	// the stream: one left by an older deployment (which always had it)
	// keeps capturing until it is deleted (nats stream rm <PREFIX>_EVENTS).
	EventCapture bool
	// EventsMaxAge bounds how long captured events are kept. Defaults to
	// EventsMaxAgeDefault.
	EventsMaxAge time.Duration
	// RunsMaxAge bounds how long run records and branch outcomes are kept.
	// Defaults to RunsMaxAgeDefault; -1 keeps them forever.
	RunsMaxAge time.Duration
	// DLQMaxBytes bounds the dead-letter stream's size: past it the oldest
	// letters go, so a flood of bad input cannot fill the server's store
	// and stop the runs. Defaults to DLQMaxBytesDefault (256 MiB); -1 means
	// no bound (the 7-day age limit only). The server reserves the bound
	// against its max_file_store (max_memory_store with Memory) on each
	// node holding a replica.
	DLQMaxBytes int64
	// EventsFile stores captured events on disk (with EventCapture). By
	// default the capture stream uses memory storage: events are for
	// observers (the run records are the truth), and memory keeps them off
	// the hot path's disk writes.
	EventsFile bool
	// LeaderTTL is the scheduler lease TTL. Defaults to LeaderTTLDefault.
	LeaderTTL time.Duration
	// MaxMsgSize is the largest message or value stored. Defaults to
	// MaxMsgSizeDefault; must not exceed the server's max_payload.
	MaxMsgSize int32
	// CreateOnly creates the streams and buckets that are missing, with
	// this Config, and leaves existing ones as they are. A process that
	// does not own the deployment's settings provisions this way
	// (cmd/worker does), so it never undoes what the coordinators set —
	// a -leader-ttl, an age or size limit — when it starts or reconnects;
	// the coordinators apply settings and a release's upgrades.
	CreateOnly bool
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = protocol.PrefixDefault
	}
	if c.Replicas == 0 {
		c.Replicas = ReplicasDefault
	}
	if c.EventsMaxAge == 0 {
		c.EventsMaxAge = EventsMaxAgeDefault
	}
	if c.RunsMaxAge == 0 {
		c.RunsMaxAge = RunsMaxAgeDefault
	}
	if c.RunsMaxAge < 0 {
		c.RunsMaxAge = 0
	}
	if c.LeaderTTL == 0 {
		c.LeaderTTL = LeaderTTLDefault
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = MaxMsgSizeDefault
	}
	if c.DLQMaxBytes == 0 {
		c.DLQMaxBytes = DLQMaxBytesDefault
	}
	return c
}

func (c Config) validate() error {
	if c.Replicas != 1 && c.Replicas != 3 {
		return &configError{fmt.Errorf("provision: Replicas must be 1 or 3, got %d", c.Replicas)}
	}
	if c.DuplicateWindow < 0 {
		return &configError{fmt.Errorf("provision: DuplicateWindow must not be negative, got %s", c.DuplicateWindow)}
	}
	if c.DLQMaxBytes < -1 {
		return &configError{fmt.Errorf("provision: DLQMaxBytes must be -1 (no bound) or positive, got %d", c.DLQMaxBytes)}
	}
	if c.LeaderTTL < time.Second {
		return &configError{fmt.Errorf("provision: LeaderTTL must be at least 1s, got %s", c.LeaderTTL)}
	}
	if _, err := protocol.NewNames(c.Prefix); err != nil {
		return &configError{fmt.Errorf("provision: Prefix: %w", err)}
	}
	return nil
}

// ErrInvalidConfig is matched (with errors.Is) by the error [Ensure]
// returns for a [Config] it cannot apply, such as an invalid prefix.
var ErrInvalidConfig = errors.New("provision: invalid config")

// configError is a Config validation failure; it reads as its cause.
type configError struct{ err error }

func (e *configError) Error() string        { return e.err.Error() }
func (e *configError) Unwrap() error        { return e.err }
func (e *configError) Is(target error) bool { return target == ErrInvalidConfig }

// Streams returns the stream configurations Ensure applies: the events
// capture stream only with [Config.EventCapture].
func Streams(cfg Config) []jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	n := protocol.MustNames(cfg.Prefix)
	st := jetstream.FileStorage
	if cfg.Memory {
		st = jetstream.MemoryStorage
	}
	window := func(def time.Duration) time.Duration {
		if cfg.DuplicateWindow > 0 {
			return cfg.DuplicateWindow
		}
		return def
	}
	work := func(name, desc, subj string, dup time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subj},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     st,
			Replicas:    cfg.Replicas,
			Duplicates:  window(dup),
			MaxMsgSize:  cfg.MaxMsgSize,
			Discard:     jetstream.DiscardOld,
		}
	}
	evStorage := jetstream.MemoryStorage
	if cfg.EventsFile && !cfg.Memory {
		evStorage = jetstream.FileStorage
	}
	timers := work(layout.TimersStream(n), "durable timers: schedule messages and their fires", n.TimerWildcard(), otherDuplicateWindow)
	timers.AllowMsgSchedules = true
	// The tasks stream also holds the coordinators' anchor messages, which
	// expire by their own TTL (pkg/coordinator, anchor.go).
	tasks := work(layout.TasksStream(n), "task commands, one consumer per task kind", n.TaskWildcard(), commandsDuplicateWindow)
	tasks.Subjects = append(tasks.Subjects, layout.TasksAnchorSubject(n))
	tasks.AllowMsgTTL = true
	streams := []jetstream.StreamConfig{
		work(layout.TriggersStream(n), "run triggers, consumed by coordinators", n.TriggerWildcard(), triggersDuplicateWindow),
		tasks,
		work(layout.ResultsStream(n), "task results, consumed by coordinators", n.ResultWildcard(), resultsDuplicateWindow),
		work(layout.ControlStream(n), "cancel requests, consumed by coordinators", n.ControlWildcard(), otherDuplicateWindow),
		timers,
		{
			Name:        layout.DLQStream(n),
			Description: "dead letters: refused messages with their reason",
			Subjects:    []string{n.DLQWildcard()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     st,
			Replicas:    cfg.Replicas,
			MaxAge:      DLQMaxAgeDefault,
			MaxBytes:    cfg.DLQMaxBytes,
			MaxMsgSize:  cfg.MaxMsgSize,
			Duplicates:  window(dlqDuplicateWindow),
			Discard:     jetstream.DiscardOld,
		},
	}
	if cfg.EventCapture {
		streams = append(streams, jetstream.StreamConfig{
			Name:        layout.EventsStream(n),
			Description: "captured run lifecycle events, for observers' replay (optional)",
			Subjects:    []string{n.EventWildcard()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     evStorage,
			Replicas:    cfg.Replicas,
			MaxAge:      cfg.EventsMaxAge,
			MaxBytes:    EventsMaxBytesDefault,
			MaxMsgSize:  cfg.MaxMsgSize,
			Duplicates:  window(eventsDuplicateWindow),
			Discard:     jetstream.DiscardOld,
		})
	}
	return streams
}

// Buckets returns the KV bucket configurations Ensure applies.
func Buckets(cfg Config) []jetstream.KeyValueConfig {
	cfg = cfg.withDefaults()
	n := protocol.MustNames(cfg.Prefix)
	st := jetstream.FileStorage
	if cfg.Memory {
		st = jetstream.MemoryStorage
	}
	// KV writes carry no Nats-Msg-Id, so a bucket's de-duplication window
	// (nats.go sets 2 min, or the TTL when shorter) holds no ids and costs
	// no memory; it is left as nats.go sets it.
	kv := func(name, desc string, history uint8, ttl time.Duration) jetstream.KeyValueConfig {
		return jetstream.KeyValueConfig{
			Bucket:       name,
			Description:  desc,
			History:      history,
			TTL:          ttl,
			Storage:      st,
			Replicas:     cfg.Replicas,
			MaxValueSize: cfg.MaxMsgSize,
		}
	}
	store := kv(layout.StoreBucket(n), "shared store for tasks (global, workflow and run scopes)", 1, 0)
	store.LimitMarkerTTL = time.Minute
	leader := kv(layout.LeaderBucket(n), "scheduler leader lease", 1, cfg.LeaderTTL)
	leader.LimitMarkerTTL = cfg.LeaderTTL
	runs := kv(layout.RunsBucket(n), "run records, one key per run", 1, cfg.RunsMaxAge)
	runs.MaxValueSize = min(cfg.MaxMsgSize, runRecordMax)
	runs.LimitMarkerTTL = runsMarkerTTL // per-record TTLs (runs.go)
	return []jetstream.KeyValueConfig{
		runs,
		kv(layout.BranchesBucket(n), "split branch outcomes and dynamic split specs", 1, cfg.RunsMaxAge),
		kv(layout.DefinitionsBucket(n), "workflow definitions: name and version", 5, 0),
		kv(layout.SchedulesBucket(n), "scheduler flows and their status", 1, 0),
		kv(layout.BreakersBucket(n), "shared circuit breaker state", 1, 0),
		store,
		kv(layout.WorkersBucket(n), "live workers and their health", 1, WorkersTTLDefault),
		leader,
	}
}

// Ensure creates or updates every stream and bucket. It is idempotent and
// safe to run concurrently from several processes. A setting that cannot be
// changed in place gives a [*SettingError] naming it and what to do.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	keepReplicas := cfg.Replicas == 0
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	ctx, cancel := deadline.Default(ctx, TimeoutDefault)
	defer cancel()
	for _, sc := range Streams(cfg) {
		if cfg.CreateOnly {
			if err := createStream(ctx, js, sc); err != nil {
				return err
			}
			continue
		}
		if keepReplicas {
			sc.Replicas = existingReplicas(ctx, js, sc.Name, sc.Replicas)
		}
		if err := ensureStream(ctx, js, sc); err != nil {
			return err
		}
	}
	for _, bc := range Buckets(cfg) {
		if cfg.CreateOnly {
			if err := createBucket(ctx, js, bc); err != nil {
				return err
			}
			continue
		}
		if keepReplicas {
			bc.Replicas = existingReplicas(ctx, js, "KV_"+bc.Bucket, bc.Replicas)
		}
		if err := ensureBucket(ctx, js, bc); err != nil {
			return err
		}
	}
	return nil
}

// createStream creates want's stream unless a stream of that name exists,
// whatever its settings (Config.CreateOnly).
func createStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	_, err := js.Stream(ctx, want.Name)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("provision: stream %s: %w", want.Name, err)
	}
	_, err = js.CreateStream(ctx, want)
	if err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || isStreamExists(err) {
		return nil // created meanwhile by another process: it stays as that one made it
	}
	return explainStreamError(ctx, js, want, err)
}

// createBucket creates want's bucket unless a bucket of that name exists,
// whatever its settings (Config.CreateOnly).
func createBucket(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig) error {
	_, err := js.KeyValue(ctx, want.Bucket)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("provision: bucket %s: %w", want.Bucket, err)
	}
	_, err = js.CreateKeyValue(ctx, want)
	if err == nil || errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || isStreamExists(err) {
		return nil
	}
	return fmt.Errorf("provision: bucket %s: %w", want.Bucket, err)
}

// existingReplicas is the replica count of stream name, or def when it
// does not exist (yet).
func existingReplicas(ctx context.Context, js jetstream.JetStream, name string, def int) int {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return def
	}
	if r := st.CachedInfo().Config.Replicas; r > 0 {
		return r
	}
	return def
}

// SettingError reports a setting of an existing stream or bucket that
// differs from the wanted one and cannot be changed in place.
type SettingError struct {
	Stream  string
	Setting string
	Have    string
	Want    string
	Cause   error
}

// Error names the setting and why it was refused.
func (e *SettingError) Error() string {
	return fmt.Sprintf("provision: stream %s: %s is %s, want %s; it cannot be changed in place: "+
		"delete the stream (nats stream rm %s) after draining it, or use another prefix (%v)",
		e.Stream, e.Setting, e.Have, e.Want, e.Stream, e.Cause)
}

// Unwrap returns the cause.
func (e *SettingError) Unwrap() error { return e.Cause }

// ErrImmutableSetting is matched by every [*SettingError].
var ErrImmutableSetting = errors.New("provision: setting cannot be changed in place")

// Is makes errors.Is(err, ErrImmutableSetting) true.
func (e *SettingError) Is(target error) bool { return target == ErrImmutableSetting }

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	for attempt := 0; ; attempt++ {
		_, err := js.CreateOrUpdateStream(ctx, want)
		if err == nil {
			return nil
		}
		// Concurrent creators race: one creates, another's create fails with
		// "already exists"/"in use"; the retry then updates.
		if attempt < 3 && (errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || isStreamExists(err)) {
			continue
		}
		return explainStreamError(ctx, js, want, err)
	}
}

func isStreamExists(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNameInUse
}

func explainStreamError(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, cause error) error {
	s, err := js.Stream(ctx, want.Name)
	if err != nil {
		return fmt.Errorf("provision: stream %s: %w", want.Name, cause)
	}
	have := s.CachedInfo().Config
	diff := func(setting string, h, w any) error {
		return &SettingError{Stream: want.Name, Setting: setting,
			Have: fmt.Sprint(h), Want: fmt.Sprint(w), Cause: cause}
	}
	switch {
	case have.Retention != want.Retention:
		return diff("retention", have.Retention, want.Retention)
	case have.Storage != want.Storage:
		return diff("storage", have.Storage, want.Storage)
	case have.Replicas != want.Replicas:
		return diff("replicas", have.Replicas, want.Replicas)
	case have.AllowMsgSchedules != want.AllowMsgSchedules:
		return diff("allow_msg_schedules", have.AllowMsgSchedules, want.AllowMsgSchedules)
	}
	return fmt.Errorf("provision: stream %s: %w", want.Name, cause)
}

func ensureBucket(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig) error {
	for attempt := 0; ; attempt++ {
		_, err := js.CreateOrUpdateKeyValue(ctx, want)
		if err == nil {
			return nil
		}
		if attempt < 3 && (errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || isStreamExists(err) ||
			errors.Is(err, jetstream.ErrBucketExists)) {
			continue
		}
		return explainStreamError(ctx, js, jetstream.StreamConfig{
			Name:     "KV_" + want.Bucket,
			Storage:  want.Storage,
			Replicas: want.Replicas,
		}, err)
	}
}
