// Package deadline gives a context a default timeout when it has none: the
// one place the engine's calls that must not wait for ever ("bounded by the
// caller's deadline, or by a default") take their bound from.
package deadline

import (
	"context"
	"time"
)

// Default returns ctx unchanged (with a cancel that does nothing) when it
// has a deadline, and otherwise ctx bounded by d. Call the cancel func when
// done, as with context.WithTimeout.
func Default(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
