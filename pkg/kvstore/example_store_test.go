package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cano-nats/cano/pkg/kvstore"
)

// Three parallel fetch branches of one run each write source_N in the run's
// scope; the next state reads them all. Workers use a KV store; a test can
// use the memory store, as here.
func Example_store() {
	ctx := context.Background()
	store := kvstore.NewMemory()
	run := kvstore.Scoped(store, kvstore.RunScope("run-1"))

	var wg sync.WaitGroup
	for n := 1; n <= 3; n++ {
		wg.Go(func() {
			_ = kvstore.PutValue(ctx, run, fmt.Sprintf("source_%d", n), fmt.Sprintf("data from source %d", n))
			_ = kvstore.AppendValue(ctx, run, "fetched", n) // atomic, no append lost
		})
	}
	wg.Wait()

	// The next state reads what the branches wrote.
	keys, _ := run.Keys(ctx, "source_")
	for _, k := range keys {
		v, _ := kvstore.GetAs[string](ctx, run, k)
		fmt.Printf("%s = %q\n", k, v)
	}
	fetched, _ := kvstore.GetAs[[]int](ctx, run, "fetched")
	slices.Sort(fetched)
	fmt.Println("fetched:", fetched)

	// Reading with the wrong type is an error, not a panic.
	_, err := kvstore.GetAs[int](ctx, run, "source_1")
	fmt.Println("type mismatch:", errors.Is(err, kvstore.ErrTypeMismatch))

	// The underlying store sees the scope prefix.
	all, _ := store.Keys(ctx, "")
	fmt.Println(all)

	// Output:
	// source_1 = "data from source 1"
	// source_2 = "data from source 2"
	// source_3 = "data from source 3"
	// fetched: [1 2 3]
	// type mismatch: true
	// [run.run-1.fetched run.run-1.source_1 run.run-1.source_2 run.run-1.source_3]
}
