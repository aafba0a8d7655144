package startstop

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLifePhases(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps func(l *Life) error
		want  error
	}{
		{"start once", func(l *Life) error { return l.Start("x") }, nil},
		{"start twice", func(l *Life) error { _ = l.Start("x"); return l.Start("x") }, ErrAlreadyStarted},
		{"start after stop", func(l *Life) error { _ = l.Start("x"); l.Stop(); return l.Start("x") }, ErrAlreadyStarted},
		{"start after stop before start", func(l *Life) error { l.Stop(); return l.Start("x") }, ErrAlreadyStarted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l Life
			if err := tc.steps(&l); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLifeStopReports(t *testing.T) {
	var idle Life
	if first, started := idle.Stop(); !first || started {
		t.Fatalf("Stop before Start: first %v started %v, want true false", first, started)
	}
	var l Life
	_ = l.Start("x")
	if !l.Running() {
		t.Fatal("not running after Start")
	}
	if first, started := l.Stop(); !first || !started {
		t.Fatalf("first Stop: first %v started %v, want true true", first, started)
	}
	if first, _ := l.Stop(); first {
		t.Fatal("second Stop reported first")
	}
	if l.Running() {
		t.Fatal("running after Stop")
	}
}

// TestWaitBounded: Wait returns once the goroutines are done, or with the
// context's error when they are not.
func TestWaitBounded(t *testing.T) {
	var l Life
	release := make(chan struct{})
	l.Go(func() { <-release })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with a goroutine running: %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestUndoFreshContext: the stop that undoes a failed Start runs even
// though the Start's context has ended, within UndoTimeout.
func TestUndoFreshContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stopErr error
	var left time.Duration
	Undo(ctx, func(sctx context.Context) error {
		stopErr = sctx.Err()
		dl, _ := sctx.Deadline()
		left = time.Until(dl)
		return errors.New("dropped")
	})
	if stopErr != nil || left <= 0 || left > UndoTimeout {
		t.Fatalf("stop got ctx err %v with %s left, want a live context bounded by %s", stopErr, left, UndoTimeout)
	}
}

func TestSignal(t *testing.T) {
	s := NewSignal()
	if s.Fired() {
		t.Fatal("fired at birth")
	}
	s.Fire()
	s.Fire() // twice is fine
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Fire")
	}
	if !s.Fired() || s.Context().Err() == nil {
		t.Fatal("the context did not end with the signal")
	}
}
