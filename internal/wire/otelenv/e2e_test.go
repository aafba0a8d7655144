package otelenv_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/proctest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/protocol"
)

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.Cleanup()
	os.Exit(code)
}

// span is one span as the OTLP receiver got it.
type span struct {
	name, service           string
	traceID, spanID, parent string // hex
	runID                   string // the cano.run_id attribute
}

// receiver is a minimal OTLP/HTTP trace receiver: it decodes the
// protobuf ExportTraceServiceRequest a collector would get on /v1/traces.
type receiver struct {
	t     *testing.T
	mu    sync.Mutex
	spans []span // guarded by mu
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		rc.t.Errorf("receiver: unexpected %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		rc.t.Errorf("receiver: decode: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []span
	for _, rs := range req.GetResourceSpans() {
		var service string
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := span{name: s.GetName(), service: service, traceID: hex.EncodeToString(s.GetTraceId()),
					spanID: hex.EncodeToString(s.GetSpanId()), parent: hex.EncodeToString(s.GetParentSpanId())}
				for _, kv := range s.GetAttributes() {
					if kv.GetKey() == "cano.run_id" {
						sp.runID = kv.GetValue().GetStringValue()
					}
				}
				got = append(got, sp)
			}
		}
	}
	rc.mu.Lock()
	rc.spans = append(rc.spans, got...)
	rc.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (rc *receiver) all() []span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]span(nil), rc.spans...)
}

// clearOTELEnv unsets (for this test) the OTEL_* variables the
// environment running the tests may have set.
func clearOTELEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
		}
	}
}

// TestBinariesExportRunTraces runs cmd/coordinator and cmd/worker as built
// binaries with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP
// receiver. Runs triggered under a caller's span arrive as one trace per
// run, every state span (from the coordinator) and task attempt span (from
// the worker) a child of the caller's span; a run triggered without trace
// context records nothing. The batch delay is a minute, so the spans
// arrive only because each process flushes them when it stops.
func TestBinariesExportRunTraces(t *testing.T) {
	clearOTELEnv(t)
	rc := &receiver{t: t}
	collector := httptest.NewServer(rc)
	t.Cleanup(collector.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")

	srv := natstest.Start(t)
	coordBin, workerBin := proctest.Build(t, "./cmd/coordinator"), proctest.Build(t, "./cmd/worker")
	coord := proctest.Start(t, "coordinator", coordBin, "-s", srv.URL, "-log-format", "json")
	wrk := proctest.Start(t, "worker", workerBin, "-s", srv.URL, "-log-format", "json")
	for _, p := range []*proctest.Proc{coord, wrk} {
		natstest.WaitFor(t, 60*time.Second, p.Name+" logs tracing on", func() bool {
			return strings.Contains(p.Output(), `"msg":"tracing on","exporter":"otlp","service":"cano-`+p.Name+`"`)
		})
		require.Contains(t, p.Output(), `"endpoint":"`+collector.URL+`/v1/traces","protocol":"http/protobuf"`)
	}

	nc, js := srv.Connect(t)
	waitDefined(t, js, demo.WorkflowName)
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	untraced, err := cl.Run(ctx, demo.WorkflowName, nil)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, untraced.Status)

	callers := map[string]trace.SpanContext{} // run id → the caller's span
	for range 2 {
		caller := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID(randomBytes(t, 16)),
			SpanID: trace.SpanID(randomBytes(t, 8)), TraceFlags: trace.FlagsSampled})
		run, err := cl.Run(trace.ContextWithSpanContext(ctx, caller), demo.WorkflowName, nil)
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, run.Status)
		callers[run.ID] = caller
	}

	// Graceful stops flush the spans still batched.
	require.NoError(t, wrk.Stop(30*time.Second))
	require.NoError(t, coord.Stop(30*time.Second))
	const perRun = 3 + 4 // states start, aggregate, complete; 3 fetches and the aggregation
	natstest.WaitFor(t, 10*time.Second, "spans of the traced runs", func() bool { return len(rc.all()) >= 2*perRun })

	byRun := map[string][]string{}
	for _, s := range rc.all() {
		require.NotEqual(t, untraced.ID, s.runID, "%s: a run without trace context records no span", s.name)
		caller, ok := callers[s.runID]
		require.True(t, ok, "%s: span of run %q, not one of the traced runs", s.name, s.runID)
		require.Equal(t, caller.TraceID().String(), s.traceID, "%s: in its caller's trace", s.name)
		require.Equal(t, caller.SpanID().String(), s.parent, "%s: a child of the caller's span", s.name)
		want := "cano-coordinator"
		if strings.HasPrefix(s.name, "cano.task ") {
			want = "cano-worker"
		}
		require.Equal(t, want, s.service, s.name)
		byRun[s.runID] = append(byRun[s.runID], s.name)
	}
	require.Len(t, byRun, 2, "one trace per run")
	for id, names := range byRun {
		require.ElementsMatch(t, []string{"cano.state start", "cano.state aggregate", "cano.state complete",
			"cano.task fetch_source", "cano.task fetch_source", "cano.task fetch_source", "cano.task aggregate_sources"}, names, id)
	}
}

// TestBinariesRefuseBadTracingSettings: a value tracing cannot use stops
// the process before it connects, with exit code 2 and a line saying what
// to set; OTEL_SDK_DISABLED=true turns the same settings off.
func TestBinariesRefuseBadTracingSettings(t *testing.T) {
	clearOTELEnv(t)
	for _, name := range []string{"coordinator", "worker"} {
		bin := proctest.Build(t, "./cmd/"+name)
		env := append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
		cmd := exec.Command(bin, "-s", "nats://127.0.0.1:1")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "%s: %v\n%s", name, err, out)
		require.Equal(t, 2, exit.ExitCode(), string(out))
		require.Equal(t, name+": OTEL_EXPORTER_OTLP_PROTOCOL=grpc: Cano's binaries send OTLP over HTTP only (the gRPC exporter is not built in); "+
			"set it to http/protobuf (or unset it) and point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's OTLP/HTTP port, usually 4318\n", string(out))

		// Disabled: the settings are not looked at; the process starts
		// (and waits for the broker, logging that it does).
		p := startEnv(t, name, bin, append(env, "OTEL_SDK_DISABLED=true"), "-s", "nats://127.0.0.1:1", "-log-format", "json")
		natstest.WaitFor(t, 30*time.Second, name+" waits for the broker", func() bool { return strings.Contains(p.output(), "nats://127.0.0.1:1") })
		require.NotContains(t, p.output(), "tracing on")
	}
}

// startEnv runs bin with env until the test ends.
func startEnv(t *testing.T, name, bin string, env []string, args ...string) *bufProc {
	t.Helper()
	p := &bufProc{}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, p, p
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, p.output())
		}
	})
	return p
}

type bufProc struct {
	mu  sync.Mutex
	buf strings.Builder // guarded by mu
}

func (b *bufProc) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *bufProc) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitDefined waits until a worker has registered workflow.
func waitDefined(t *testing.T, js jetstream.JetStream, workflow string) {
	t.Helper()
	natstest.WaitFor(t, 60*time.Second, "workflow "+workflow+" registered", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		kv, err := js.KeyValue(ctx, layout.DefinitionsBucket(protocol.MustNames("")))
		if err != nil {
			return false
		}
		_, err = kv.Get(ctx, layout.LatestDefinitionKey(workflow))
		return err == nil
	})
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}
