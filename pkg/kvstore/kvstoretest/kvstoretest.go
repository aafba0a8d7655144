// Package kvstoretest is the conformance suite every [kvstore.Store]
// implementation passes. It may only be imported from tests.
package kvstoretest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/kvpurge"
	"github.com/cano-nats/cano/pkg/kvstore"
)

// Timeout bounds every operation and wait in the suite.
const Timeout = 20 * time.Second

// TooLarge is a value size every store under test must refuse with
// [kvstore.ErrValueTooLarge]: 8 MiB + 1, above the maximum value size of
// [kvstore.Memory] and of a KV store on the embedded test server (whose
// max payload is 8 MiB).
const TooLarge = 8<<20 + 1

// RunStoreTests runs the conformance suite against the stores newStore
// returns. newStore is called once per subtest, concurrently, and must
// return an empty store not shared with other calls; it registers any
// cleanup with t.Cleanup.
func RunStoreTests(t *testing.T, newStore func(t *testing.T) kvstore.Store) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			t.Cleanup(cancel)
			tc.run(ctx, t, newStore(t))
		})
	}
}

type test struct {
	name string
	run  func(ctx context.Context, t *testing.T, s kvstore.Store)
}

type record struct {
	Name  string   `msgpack:"name"`
	Count int      `msgpack:"count"`
	Tags  []string `msgpack:"tags"`
}

var tests = []test{
	{"GetMissing", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		_, err := s.Get(ctx, "missing")
		require.ErrorIs(t, err, kvstore.ErrNotFound)
		_, err = kvstore.GetAs[int](ctx, s, "missing")
		require.ErrorIs(t, err, kvstore.ErrNotFound)
	}},
	{"PutGetOverwrite", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		require.NoError(t, s.Put(ctx, "a.b", []byte("one")))
		got, err := s.Get(ctx, "a.b")
		require.NoError(t, err)
		require.Equal(t, []byte("one"), got)
		require.NoError(t, s.Put(ctx, "a.b", []byte("two")))
		got, err = s.Get(ctx, "a.b")
		require.NoError(t, err)
		require.Equal(t, []byte("two"), got)

		require.NoError(t, s.Put(ctx, "empty", nil))
		got, err = s.Get(ctx, "empty")
		require.NoError(t, err)
		require.NotNil(t, got)
		require.Empty(t, got)
	}},
	{"PutDoesNotKeepCallerSlice", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		v := []byte("abc")
		require.NoError(t, s.Put(ctx, "k", v))
		v[0] = 'X'
		got, err := s.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, []byte("abc"), got)
	}},
	{"Delete", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		require.NoError(t, s.Put(ctx, "k", []byte("v")))
		require.NoError(t, s.Delete(ctx, "k"))
		_, err := s.Get(ctx, "k")
		require.ErrorIs(t, err, kvstore.ErrNotFound)
		require.NoError(t, s.Delete(ctx, "k"), "deleting a deleted key")
		require.NoError(t, s.Delete(ctx, "never"), "deleting a missing key")
		require.NoError(t, s.Put(ctx, "k", []byte("again")))
		got, err := s.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, []byte("again"), got)
	}},
	{"InvalidKeys", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		for _, key := range []string{
			"", ".a", "a.", "a..b", "a b", "a*", "a.>", "ü", "a\x00", "a:b",
			strings.Repeat("k", kvstore.MaxKeyLen+1),
		} {
			_, err := s.Get(ctx, key)
			require.ErrorIs(t, err, kvstore.ErrInvalidKey, "Get %q", key)
			require.ErrorIs(t, s.Put(ctx, key, []byte("v")), kvstore.ErrInvalidKey, "Put %q", key)
			require.ErrorIs(t, s.Append(ctx, key, []byte{0x01}), kvstore.ErrInvalidKey, "Append %q", key)
			require.ErrorIs(t, s.Delete(ctx, key), kvstore.ErrInvalidKey, "Delete %q", key)
		}
		for _, prefix := range []string{".a", "a..", "a b", "a*", ">"} {
			_, err := s.Keys(ctx, prefix)
			require.ErrorIs(t, err, kvstore.ErrInvalidKey, "Keys %q", prefix)
			_, err = s.Watch(ctx, prefix)
			require.ErrorIs(t, err, kvstore.ErrInvalidKey, "Watch %q", prefix)
		}
		for _, key := range []string{"a", "A-z_0/9=x.y", strings.Repeat("k", kvstore.MaxKeyLen)} {
			require.NoError(t, s.Put(ctx, key, []byte("v")), "Put %q", key)
			got, err := s.Get(ctx, key)
			require.NoError(t, err, "Get %q", key)
			require.Equal(t, []byte("v"), got)
		}
	}},
	{"ValueTooLarge", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		big := make([]byte, TooLarge)
		err := s.Put(ctx, "big", big)
		require.ErrorIs(t, err, kvstore.ErrValueTooLarge)
		require.Contains(t, err.Error(), "maximum value size")
		_, err = s.Get(ctx, "big")
		require.ErrorIs(t, err, kvstore.ErrNotFound)

		err = kvstore.AppendValue(ctx, s, "list", big)
		require.ErrorIs(t, err, kvstore.ErrValueTooLarge)
		_, err = s.Get(ctx, "list")
		require.ErrorIs(t, err, kvstore.ErrNotFound)
	}},
	{"TypedValues", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		want := record{Name: "fetch", Count: 3, Tags: []string{"a", "b"}}
		require.NoError(t, kvstore.PutValue(ctx, s, "rec", want))
		got, err := kvstore.GetAs[record](ctx, s, "rec")
		require.NoError(t, err)
		require.Equal(t, want, got)

		require.NoError(t, kvstore.PutValue(ctx, s, "n", 42))
		n, err := kvstore.GetAs[int64](ctx, s, "n")
		require.NoError(t, err)
		require.Equal(t, int64(42), n)
	}},
	{"TypeMismatch", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		require.NoError(t, kvstore.PutValue(ctx, s, "str", "hello"))
		require.NoError(t, kvstore.PutValue(ctx, s, "rec", record{Name: "x"}))
		require.NoError(t, s.Put(ctx, "raw", []byte{0xc1, 0xff, 0x00})) // 0xc1 is never used by msgpack
		require.NoError(t, s.Put(ctx, "two", []byte{0x01, 0x02}))       // two values

		cases := []struct {
			name string
			get  func() error
		}{
			{"int from string", func() error { _, err := kvstore.GetAs[int](ctx, s, "str"); return err }},
			{"struct from string", func() error { _, err := kvstore.GetAs[record](ctx, s, "str"); return err }},
			{"string from struct", func() error { _, err := kvstore.GetAs[string](ctx, s, "rec"); return err }},
			{"slice from struct", func() error { _, err := kvstore.GetAs[[]int](ctx, s, "rec"); return err }},
			{"string from garbage", func() error { _, err := kvstore.GetAs[string](ctx, s, "raw"); return err }},
			{"map from garbage", func() error { _, err := kvstore.GetAs[map[string]any](ctx, s, "raw"); return err }},
			{"trailing bytes", func() error { _, err := kvstore.GetAs[int](ctx, s, "two"); return err }},
		}
		for _, tc := range cases {
			var err error
			require.NotPanics(t, func() { err = tc.get() }, tc.name)
			require.ErrorIs(t, err, kvstore.ErrTypeMismatch, tc.name)
		}
	}},
	{"Append", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		var want []int
		for i := range 20 { // crosses the fixarray/array16 boundary at 16
			require.NoError(t, kvstore.AppendValue(ctx, s, "list", i))
			want = append(want, i)
			got, err := kvstore.GetAs[[]int](ctx, s, "list")
			require.NoError(t, err)
			require.Equal(t, want, got)
		}

		require.NoError(t, kvstore.PutValue(ctx, s, "names", []string{"a"}))
		require.NoError(t, kvstore.AppendValue(ctx, s, "names", "b"))
		names, err := kvstore.GetAs[[]string](ctx, s, "names")
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, names)

		require.NoError(t, kvstore.AppendValue(ctx, s, "recs", record{Name: "r1"}))
		require.NoError(t, kvstore.AppendValue(ctx, s, "recs", record{Name: "r2"}))
		recs, err := kvstore.GetAs[[]record](ctx, s, "recs")
		require.NoError(t, err)
		require.Equal(t, []record{{Name: "r1"}, {Name: "r2"}}, recs)

		require.NoError(t, s.Delete(ctx, "names"))
		require.NoError(t, kvstore.AppendValue(ctx, s, "names", "c"), "append after delete")
		names, err = kvstore.GetAs[[]string](ctx, s, "names")
		require.NoError(t, err)
		require.Equal(t, []string{"c"}, names)
	}},
	{"AppendTypeMismatch", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		for key, put := range map[string]func() error{
			"str":   func() error { return kvstore.PutValue(ctx, s, "str", "x") },
			"map":   func() error { return kvstore.PutValue(ctx, s, "map", map[string]int{"a": 1}) },
			"empty": func() error { return s.Put(ctx, "empty", []byte{}) },
			"raw":   func() error { return s.Put(ctx, "raw", []byte("not msgpack")) },
		} {
			require.NoError(t, put())
			before, err := s.Get(ctx, key)
			require.NoError(t, err)
			err = kvstore.AppendValue(ctx, s, key, 1)
			require.ErrorIs(t, err, kvstore.ErrTypeMismatch, key)
			after, err := s.Get(ctx, key)
			require.NoError(t, err)
			require.Equal(t, before, after, "a failed append changes nothing")
		}
	}},
	{"AppendInvalidItem", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		for _, item := range [][]byte{nil, {}, {0xc1}, {0x01, 0x02}, {0x92, 0x01}} {
			require.ErrorIs(t, s.Append(ctx, "list", item), kvstore.ErrInvalidValue, "% x", item)
		}
		_, err := s.Get(ctx, "list")
		require.ErrorIs(t, err, kvstore.ErrNotFound)
	}},
	{"AppendConcurrent", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		const goroutines, each = 16, 100
		var wg sync.WaitGroup
		errs := make(chan error, goroutines*each)
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					if err := kvstore.AppendValue(ctx, s, "shared", g*each+i); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		got, err := kvstore.GetAs[[]int](ctx, s, "shared")
		require.NoError(t, err)
		require.Len(t, got, goroutines*each)
		slices.Sort(got)
		for i, v := range got {
			require.Equal(t, i, v, "every item exactly once")
		}
	}},
	{"Keys", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		keys, err := s.Keys(ctx, "")
		require.NoError(t, err)
		require.Empty(t, keys)
		for _, k := range []string{"b.1", "a.2", "a.1", "ab", "a.x.y", "gone"} {
			require.NoError(t, s.Put(ctx, k, []byte("v")))
		}
		require.NoError(t, s.Delete(ctx, "gone"))
		cases := []struct {
			prefix string
			want   []string
		}{
			{"", []string{"a.1", "a.2", "a.x.y", "ab", "b.1"}},
			{"a.", []string{"a.1", "a.2", "a.x.y"}},
			{"a", []string{"a.1", "a.2", "a.x.y", "ab"}},
			{"a.x", []string{"a.x.y"}},
			{"a.x.y", []string{"a.x.y"}},
			{"b.1", []string{"b.1"}},
			{"c", nil},
			{"gone", nil},
		}
		for _, tc := range cases {
			keys, err := s.Keys(ctx, tc.prefix)
			require.NoError(t, err, tc.prefix)
			if tc.want == nil {
				require.Empty(t, keys, tc.prefix)
			} else {
				require.Equal(t, tc.want, keys, tc.prefix)
			}
		}
	}},
	{"Watch", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		require.NoError(t, s.Put(ctx, "w.before", []byte("old")))
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		ch, err := s.Watch(wctx, "w.")
		require.NoError(t, err)

		require.NoError(t, s.Put(ctx, "x.other", []byte("no")))
		require.NoError(t, s.Put(ctx, "w.a", []byte("1")))
		require.NoError(t, kvstore.AppendValue(ctx, s, "w.b", "item"))
		require.NoError(t, s.Put(ctx, "w.c", []byte("2")))
		require.NoError(t, s.Delete(ctx, "w.c"))
		require.NoError(t, s.Put(ctx, "w.end", []byte("end")))

		// A store may skip a key's intermediate values (KV keeps one
		// revision per key); every key's latest change arrives, in order.
		last := map[string]kvstore.Change{}
		var order []string
		for len(order) == 0 || order[len(order)-1] != "w.end" {
			c := recv(t, ch)
			if _, seen := last[c.Key]; !seen {
				order = append(order, c.Key)
			}
			last[c.Key] = c
		}
		require.NotContains(t, order, "w.before", "no replay of values older than the watch")
		require.NotContains(t, order, "x.other", "only keys with the prefix")
		require.Equal(t, []string{"w.a", "w.b", "w.c", "w.end"}, order)
		require.Equal(t, kvstore.Change{Key: "w.a", Op: kvstore.OpPut, Value: []byte("1")}, last["w.a"])
		require.Equal(t, kvstore.OpPut, last["w.b"].Op)
		item, err := kvstore.Decode[[]string](last["w.b"].Value)
		require.NoError(t, err)
		require.Equal(t, []string{"item"}, item)
		require.Equal(t, kvstore.Change{Key: "w.c", Op: kvstore.OpDelete}, last["w.c"])
		require.Equal(t, kvstore.Change{Key: "w.end", Op: kvstore.OpPut, Value: []byte("end")}, last["w.end"])

		stop()
		waitClosed(t, ch)
	}},
	{"WatchSlowReaderDoesNotBlockWriters", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		ch, err := s.Watch(wctx, "")
		require.NoError(t, err)
		const n = 300
		for i := range n {
			require.NoError(t, s.Put(ctx, fmt.Sprintf("k%d", i), []byte{byte(i)}))
		}
		for i := range n {
			c := recv(t, ch)
			require.Equal(t, fmt.Sprintf("k%d", i), c.Key)
		}
		stop()
		waitClosed(t, ch)
	}},
	{"ScopesAreIsolated", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		g := kvstore.Scoped(s, kvstore.GlobalScope())
		wf := kvstore.Scoped(s, kvstore.WorkflowScope("fetch"))
		r1 := kvstore.Scoped(s, kvstore.RunScope("r1"))
		r2 := kvstore.Scoped(s, kvstore.RunScope("r2"))
		for i, v := range []*kvstore.View{g, wf, r1, r2} {
			require.NoError(t, v.Put(ctx, "k", []byte{byte(i)}))
		}
		for i, v := range []*kvstore.View{g, wf, r1, r2} {
			got, err := v.Get(ctx, "k")
			require.NoError(t, err)
			require.Equal(t, []byte{byte(i)}, got)
			keys, err := v.Keys(ctx, "")
			require.NoError(t, err)
			require.Equal(t, []string{"k"}, keys)
		}
		all, err := s.Keys(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []string{"g.k", "run.r1.k", "run.r2.k", "wf.fetch.k"}, all)

		_, err = r1.Get(ctx, "missing")
		require.ErrorIs(t, err, kvstore.ErrNotFound)
		require.ErrorIs(t, r1.Put(ctx, "a..b", nil), kvstore.ErrInvalidKey)
		bad := kvstore.Scoped(s, kvstore.RunScope("no.dots"))
		require.ErrorIs(t, bad.Put(ctx, "k", nil), kvstore.ErrInvalidKey)
		_, err = bad.Keys(ctx, "")
		require.ErrorIs(t, err, kvstore.ErrInvalidKey)
		require.ErrorIs(t, kvpurge.PurgeRun(ctx, s, ""), kvstore.ErrInvalidKey)
	}},
	{"ScopedAppendAndWatch", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		r := kvstore.Scoped(s, kvstore.RunScope("run-7"))
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		ch, err := r.Watch(wctx, "source_")
		require.NoError(t, err)
		require.NoError(t, kvstore.Scoped(s, kvstore.RunScope("run-8")).Put(ctx, "source_1", []byte("x")))
		require.NoError(t, kvstore.AppendValue(ctx, r, "source_1", 10))
		c := recv(t, ch)
		require.Equal(t, "source_1", c.Key)
		got, err := kvstore.GetAs[[]int](ctx, r, "source_1")
		require.NoError(t, err)
		require.Equal(t, []int{10}, got)
		stop()
		waitClosed(t, ch)
	}},
	{"PurgeRun", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		r1 := kvstore.Scoped(s, kvstore.RunScope("r1"))
		for _, k := range []string{"a", "b.c", "d"} {
			require.NoError(t, r1.Put(ctx, k, []byte("v")))
		}
		require.NoError(t, kvstore.Scoped(s, kvstore.RunScope("r10")).Put(ctx, "a", []byte("keep")))
		require.NoError(t, kvstore.Scoped(s, kvstore.GlobalScope()).Put(ctx, "a", []byte("keep")))
		require.NoError(t, kvpurge.PurgeRun(ctx, s, "r1"))
		keys, err := r1.Keys(ctx, "")
		require.NoError(t, err)
		require.Empty(t, keys)
		all, err := s.Keys(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []string{"g.a", "run.r10.a"}, all)
		require.NoError(t, kvpurge.PurgeRun(ctx, s, "r1"), "purging again")
	}},
	{"CanceledContext", func(ctx context.Context, t *testing.T, s kvstore.Store) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Get(cctx, "k")
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, s.Put(cctx, "k", []byte("v")), context.Canceled)
		require.ErrorIs(t, kvstore.AppendValue(cctx, s, "k", 1), context.Canceled)
		_, err = s.Get(ctx, "k")
		require.ErrorIs(t, err, kvstore.ErrNotFound)
	}},
}

func recv(t *testing.T, ch <-chan kvstore.Change) kvstore.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		require.True(t, ok, "watch channel closed early")
		return c
	case <-time.After(Timeout):
		require.FailNow(t, "no change received", "within %s", Timeout)
		return kvstore.Change{}
	}
}

func waitClosed(t *testing.T, ch <-chan kvstore.Change) {
	t.Helper()
	deadline := time.After(Timeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			require.FailNow(t, "watch channel not closed after its context ended")
		}
	}
}
