package deadline

import (
	"context"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	t.Run("no deadline gets d", func(t *testing.T) {
		before := time.Now()
		ctx, cancel := Default(context.Background(), time.Hour)
		defer cancel()
		dl, ok := ctx.Deadline()
		if !ok {
			t.Fatal("no deadline set")
		}
		if dl.Before(before.Add(time.Hour)) || dl.After(time.Now().Add(time.Hour)) {
			t.Fatalf("deadline %s is not an hour from now", dl)
		}
		cancel()
		if ctx.Err() == nil {
			t.Fatal("cancel did not end the derived context")
		}
	})
	t.Run("a deadline is kept", func(t *testing.T) {
		parent, pcancel := context.WithTimeout(context.Background(), time.Minute)
		defer pcancel()
		want, _ := parent.Deadline()
		ctx, cancel := Default(parent, time.Hour)
		if ctx != parent {
			t.Fatal("a context with a deadline was wrapped")
		}
		cancel() // does nothing to the caller's context
		if parent.Err() != nil {
			t.Fatal("cancel ended the caller's context")
		}
		if got, _ := ctx.Deadline(); !got.Equal(want) {
			t.Fatalf("deadline %s, want %s", got, want)
		}
	})
}
