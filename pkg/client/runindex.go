package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/kvwatch"
	"github.com/cano-nats/cano/internal/wirecodec"
)

// RunIndexMaxRunsDefault is RunIndexConfig.MaxRuns's default.
const RunIndexMaxRunsDefault = 200_000

// RunIndexConfig configures [Client.WatchRuns]. The zero value uses the
// defaults.
type RunIndexConfig struct {
	// MaxRuns caps the runs the index holds: the newest by creation time
	// are kept, and [RunPage] says how many older ones were dropped.
	// Defaults to RunIndexMaxRunsDefault; -1 means no cap.
	MaxRuns int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// RunIndex is a live, in-memory index of run summaries, for screens that
// list runs (a dashboard): it reads the runs bucket once with a KV watch,
// then keeps current from the same watch (new runs, status and state
// changes, deletions and expired records), and answers filtered,
// newest-first pages with per-status counts in time proportional to the
// page ([RunIndex.Page]), without reading the bucket again.
//
// It holds only [RunSummary] fields (the error message cut to
// RunSummaryErrorMax bytes; workflow, version and state names shared):
// about 215 bytes per run with 26-byte ids and one run in four failed with
// a 100-byte error (BenchmarkRunIndexMemory), so the default cap of
// 200,000 runs is about 45 MB.
// Safe for concurrent use.
type RunIndex struct {
	c   *Client
	cfg RunIndexConfig
	log *slog.Logger

	ready    chan struct{} // closed once the first load is complete
	stop     context.CancelFunc
	done     chan struct{}
	mu       sync.RWMutex // guards set and err
	set      *runSet
	err      error
	readyOne sync.Once
}

// WatchRuns starts a [RunIndex] and returns it at once; it loads in the
// background ([RunIndex.Ready] says when it has). It runs until ctx ends or
// [RunIndex.Stop]. If the watch fails (the server restarted, the
// connection dropped), it starts again from a full read, serving the last
// contents meanwhile ([RunIndex.Err] tells).
func (c *Client) WatchRuns(ctx context.Context, cfg RunIndexConfig) (*RunIndex, error) {
	if cfg.MaxRuns < -1 {
		return nil, fmt.Errorf("client: RunIndexConfig.MaxRuns %d: want a positive number, 0 for the default or -1 for no cap", cfg.MaxRuns)
	}
	if cfg.MaxRuns == 0 {
		cfg.MaxRuns = RunIndexMaxRunsDefault
	}
	if cfg.MaxRuns == -1 {
		cfg.MaxRuns = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	ix := &RunIndex{c: c, cfg: cfg, log: cfg.Logger.With("component", "run_index"), ready: make(chan struct{}),
		stop: cancel, done: make(chan struct{}), set: newRunSet(cfg.MaxRuns)}
	go ix.run(ctx)
	return ix, nil
}

// Ready is closed once the index has read every run present when it
// started; until then Page answers from a partial (or empty) index.
func (ix *RunIndex) Ready() <-chan struct{} { return ix.ready }

// Err is the last watch failure, nil while the watch is healthy.
func (ix *RunIndex) Err() error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.err
}

// Stop ends the watch and waits for it. Safe to call twice. Page keeps
// answering from the last contents.
func (ix *RunIndex) Stop() {
	ix.stop()
	<-ix.done
}

// Page returns the runs matching q, newest first, and the counts around
// them. It does no I/O.
func (ix *RunIndex) Page(q RunQuery) RunPage {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.set.page(q)
}

func (ix *RunIndex) run(ctx context.Context) {
	defer close(ix.done)
	for {
		err := ix.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		ix.mu.Lock()
		ix.err = err
		ix.mu.Unlock()
		ix.log.Warn("run index: the watch of the runs bucket ended; reading it again in 1s", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// watch loads the bucket into a fresh set, swaps it in, then applies
// updates until the watch ends.
func (ix *RunIndex) watch(ctx context.Context) error {
	kv, err := ix.c.runsKV(ctx)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("client: watch the runs bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()
	fresh := newRunSet(ix.cfg.MaxRuns)
	loading := true
	loaded := func() {
		loading = false
		ix.mu.Lock()
		ix.set, ix.err = fresh, nil
		ix.mu.Unlock()
		ix.readyOne.Do(func() { close(ix.ready) })
	}
	// While loading, a quiet watch may be waiting for a record (or an
	// expired record's marker) that expired before it was delivered: the
	// end-of-initial-values marker would never come (see kvwatch).
	left := kvwatch.NewLeft(ix.c.js, kv.Bucket(), jetstream.AllKeys)
	var last uint64 // the revision of the last entry delivered
	quiet := time.NewTimer(kvwatch.Quiet)
	defer quiet.Stop()
	quietC := quiet.C
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-quietC:
			more, err := left.After(ctx, last)
			if err != nil {
				return err
			}
			if more {
				quiet.Reset(kvwatch.Quiet)
				continue
			}
			loaded()
			quietC = nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("client: the runs bucket watch closed")
			}
			if e == nil {
				if loading {
					loaded()
					quietC = nil
				}
				continue
			}
			if loading {
				last = max(last, e.Revision())
				apply(fresh, e)
				quiet.Reset(kvwatch.Quiet)
				continue
			}
			ix.mu.Lock()
			apply(ix.set, e)
			ix.mu.Unlock()
		}
	}
}

// apply folds one watch entry into s: a put adds or updates the run, a
// delete or purge (including an expired record's marker) removes it. A
// record that does not decode is left out.
func apply(s *runSet, e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		s.delete(e.Key())
		return
	}
	rec, err := wirecodec.DecodeRunHead(e.Value(), 0)
	if err != nil {
		s.delete(e.Key())
		return
	}
	r := RunSummary{ID: rec.ID, Workflow: rec.Workflow, Version: rec.DefVersion, Status: RunStatus(rec.Status),
		State: rec.State, CreatedAt: timeOf(rec.CreatedAt), UpdatedAt: timeOf(rec.UpdatedAt), StartAt: timeOf(rec.StartAt)}
	if rec.Error != nil {
		r.Error = rec.Error.Message
	}
	s.put(r)
}
