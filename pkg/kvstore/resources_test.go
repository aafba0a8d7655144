package kvstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/kvstore"
)

// journal records lifecycle calls in order.
type journal struct {
	mu     sync.Mutex
	events []string // guarded by mu
}

func (j *journal) add(e string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, e)
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.events...)
}

type fakeResource struct {
	name        string
	j           *journal
	setupErr    error
	teardownErr error
	health      kvstore.HealthStatus
}

func (r *fakeResource) Setup(context.Context) error {
	r.j.add("setup " + r.name)
	return r.setupErr
}

func (r *fakeResource) Teardown(context.Context) error {
	r.j.add("teardown " + r.name)
	return r.teardownErr
}

func (r *fakeResource) Health(context.Context) kvstore.HealthStatus { return r.health }

// plainResource has no Health method.
type plainResource struct{ kvstore.ResourceDefaults }

type pool struct {
	kvstore.ResourceDefaults
	dsn string
}

func TestResourcesLifecycle(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		res  *kvstore.Resources
		j    *journal
		logs *bytes.Buffer
		rs   []*fakeResource
	}
	setup := func(t *testing.T, n int) *testBundle {
		t.Helper()
		b := &testBundle{j: &journal{}, logs: &bytes.Buffer{}}
		b.res = kvstore.NewResources(kvstore.ResourcesConfig{Logger: slog.New(slog.NewTextHandler(b.logs, nil))})
		for i := range n {
			r := &fakeResource{name: fmt.Sprintf("r%d", i+1), j: b.j}
			b.rs = append(b.rs, r)
			b.res.Insert(r.name, r)
		}
		return b
	}
	ctx := context.Background()

	t.Run("SetupInOrderTeardownInReverse", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 4)
		require.NoError(t, b.res.SetupAll(ctx))
		b.res.TeardownAll(ctx)
		require.Equal(t, []string{
			"setup r1", "setup r2", "setup r3", "setup r4",
			"teardown r4", "teardown r3", "teardown r2", "teardown r1",
		}, b.j.list())
		b.res.TeardownAll(ctx)
		require.Len(t, b.j.list(), 8, "a second TeardownAll does nothing")
	})

	t.Run("SetupFailureOfThirdOfFourTearsDownFirstTwoInReverse", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 4)
		boom := errors.New("connection refused")
		b.rs[2].setupErr = boom
		err := b.res.SetupAll(ctx)
		require.ErrorIs(t, err, kvstore.ErrSetup)
		require.ErrorIs(t, err, boom)
		var se *kvstore.SetupError
		require.ErrorAs(t, err, &se)
		require.Equal(t, "r3", se.Key)
		require.ErrorContains(t, err, `"r3"`)
		require.Equal(t, []string{
			"setup r1", "setup r2", "setup r3",
			"teardown r2", "teardown r1",
		}, b.j.list())
		b.res.TeardownAll(ctx)
		require.Len(t, b.j.list(), 5, "nothing left to tear down")
	})

	t.Run("TeardownErrorsAreLoggedAndDoNotStop", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 3)
		b.rs[1].teardownErr = errors.New("flush failed")
		b.rs[2].teardownErr = errors.New("close failed")
		require.NoError(t, b.res.SetupAll(ctx))
		b.res.TeardownAll(ctx)
		require.Equal(t, []string{
			"setup r1", "setup r2", "setup r3",
			"teardown r3", "teardown r2", "teardown r1",
		}, b.j.list())
		logs := b.logs.String()
		require.Contains(t, logs, "resource=r2")
		require.Contains(t, logs, "flush failed")
		require.Contains(t, logs, "resource=r3")
		require.NotContains(t, logs, "resource=r1")
	})

	t.Run("SetupAllAgainSetsUpOnlyNewResources", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 1)
		require.NoError(t, b.res.SetupAll(ctx))
		b.res.Insert("late", &fakeResource{name: "late", j: b.j})
		require.NoError(t, b.res.SetupAll(ctx))
		require.Equal(t, []string{"setup r1", "setup late"}, b.j.list())
	})
}

func TestResourcesInsertAndGet(t *testing.T) {
	t.Parallel()
	var res kvstore.Resources // the zero value is usable
	p := &pool{dsn: "postgres://"}
	res.Insert("db", p)
	res.Insert("plain", plainResource{})

	require.PanicsWithError(t, `kvstore: duplicate resource key: "db"`, func() { res.Insert("db", &pool{}) })
	require.ErrorIs(t, res.InsertSafely("db", &pool{}), kvstore.ErrDuplicateKey)
	require.Error(t, res.InsertSafely("nil", nil))
	require.Equal(t, []string{"db", "plain"}, res.Keys())

	got, err := kvstore.Get[*pool](&res, "db")
	require.NoError(t, err)
	require.Same(t, p, got)

	asResource, err := kvstore.Get[kvstore.Resource](&res, "db")
	require.NoError(t, err)
	require.Same(t, p, asResource)

	_, err = kvstore.Get[*pool](&res, "missing")
	require.ErrorIs(t, err, kvstore.ErrResourceNotFound)
	require.NotErrorIs(t, err, kvstore.ErrResourceTypeMismatch)

	_, err = kvstore.Get[*kvstore.Memory](&res, "db")
	require.ErrorIs(t, err, kvstore.ErrResourceTypeMismatch)
	require.NotErrorIs(t, err, kvstore.ErrResourceNotFound)
	require.ErrorContains(t, err, "*kvstore_test.pool")
	require.ErrorContains(t, err, "*kvstore.Memory")

	_, err = kvstore.Get[pool](&res, "db")
	require.ErrorIs(t, err, kvstore.ErrResourceTypeMismatch, "value type, pointer inserted")
}

func TestResourcesConcurrentGet(t *testing.T) {
	t.Parallel()
	res := kvstore.NewResources(kvstore.ResourcesConfig{})
	res.Insert("store", kvstore.NewMemory())
	var wg sync.WaitGroup
	const goroutines, each = 8, 500
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if _, err := kvstore.Get[*kvstore.Memory](res, "store"); err != nil {
					errs <- err
					return
				}
				if g == 0 && i%50 == 0 {
					res.Insert(fmt.Sprintf("extra%d", i), plainResource{})
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, res.Keys(), 1+each/50)
}

func TestHealth(t *testing.T) {
	t.Parallel()
	j := &journal{}
	res := kvstore.NewResources(kvstore.ResourcesConfig{})
	res.Insert("db", &fakeResource{name: "db", j: j, health: kvstore.Degraded("slow queries")})
	res.Insert("cache", &fakeResource{name: "cache", j: j, health: kvstore.Unhealthy("down")})
	res.Insert("plain", &pool{})
	res.Insert("nohealth", &noHealth{})
	require.Equal(t, map[string]kvstore.HealthStatus{
		"db":       kvstore.Degraded("slow queries"),
		"cache":    kvstore.Unhealthy("down"),
		"plain":    kvstore.Healthy(),
		"nohealth": kvstore.Healthy(),
	}, res.CheckHealth(context.Background()))
	require.Equal(t, kvstore.Unhealthy("cache: down"), res.Health(context.Background()))
}

type noHealth struct{}

func (*noHealth) Setup(context.Context) error    { return nil }
func (*noHealth) Teardown(context.Context) error { return nil }

func TestAggregate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   map[string]kvstore.HealthStatus
		want kvstore.HealthStatus
	}{
		{"empty", nil, kvstore.Healthy()},
		{"all healthy", map[string]kvstore.HealthStatus{"a": kvstore.Healthy(), "b": {}}, kvstore.Healthy()},
		{"degraded wins over healthy", map[string]kvstore.HealthStatus{
			"a": kvstore.Healthy(), "b": kvstore.Degraded("slow"),
		}, kvstore.Degraded("b: slow")},
		{"unhealthy wins over degraded", map[string]kvstore.HealthStatus{
			"a": kvstore.Degraded("slow"), "b": kvstore.Unhealthy("down"), "c": kvstore.Healthy(),
		}, kvstore.Unhealthy("b: down")},
		{"every worst one is named, sorted", map[string]kvstore.HealthStatus{
			"z": kvstore.Unhealthy("x"), "a": kvstore.Unhealthy("y"), "m": kvstore.Degraded("w"),
		}, kvstore.Unhealthy("a: y; z: x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := kvstore.Aggregate(tc.in)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestHealthStatusString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   kvstore.HealthStatus
		want string
	}{
		{kvstore.Healthy(), "healthy"},
		{kvstore.HealthStatus{}, "healthy"},
		{kvstore.Degraded("slow"), "degraded: slow"},
		{kvstore.Unhealthy("down"), "unhealthy: down"},
	} {
		require.Equal(t, tc.want, tc.in.String())
		require.Equal(t, tc.in.State == kvstore.StateHealthy, tc.in.IsHealthy())
	}
}
