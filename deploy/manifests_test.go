package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/cano-nats/cano/internal/proctest"
	"github.com/cano-nats/cano/internal/wire/health"
	"github.com/cano-nats/cano/internal/wire/otelenv"
)

// doc is one parsed YAML document.
type doc = map[string]any

// readDocs parses every document of a YAML file.
func readDocs(t *testing.T, path string) []doc {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []doc
	for {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err, path)
		if d != nil {
			out = append(out, d)
		}
	}
}

// at walks d along keys (map keys, or list indexes as numbers) and fails
// when a step is missing.
func at(t *testing.T, d any, keys ...string) any {
	t.Helper()
	cur := d
	for i, k := range keys {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[k]
			require.True(t, ok, "missing %s", strings.Join(keys[:i+1], "."))
			cur = v
		case []any:
			n, err := strconv.Atoi(k)
			require.NoError(t, err, "%s is a list", strings.Join(keys[:i], "."))
			require.Less(t, n, len(c), "%s has no item %d", strings.Join(keys[:i], "."), n)
			cur = c[n]
		default:
			t.Fatalf("%s is not a map or list", strings.Join(keys[:i], "."))
		}
	}
	return cur
}

func str(t *testing.T, d any, keys ...string) string {
	t.Helper()
	s, ok := at(t, d, keys...).(string)
	require.True(t, ok, "%s is not a string", strings.Join(keys, "."))
	return s
}

func list(t *testing.T, d any, keys ...string) []any {
	t.Helper()
	l, ok := at(t, d, keys...).([]any)
	require.True(t, ok, "%s is not a list", strings.Join(keys, "."))
	return l
}

func strs(t *testing.T, l []any) []string {
	t.Helper()
	out := make([]string, len(l))
	for i, v := range l {
		s, ok := v.(string)
		require.True(t, ok, "item %d is not a string", i)
		out[i] = s
	}
	return out
}

// binaryFlags builds cmd/<name> and returns the flags its -h lists.
func binaryFlags(t *testing.T, name string) map[string]bool {
	t.Helper()
	bin := proctest.Build(t, "./cmd/"+name)
	out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 0 or 2
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	require.NotEmpty(t, flags, "no flags in %s -h:\n%s", name, out)
	return flags
}

// shutdownTimeout is the -shutdown-timeout a command line gives its
// binary, or the binary's default (from its -h).
func shutdownTimeout(t *testing.T, args []string) time.Duration {
	t.Helper()
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "shutdown-timeout" {
			if !hasVal {
				val = args[i+1]
			}
			d, err := time.ParseDuration(val)
			require.NoError(t, err)
			return d
		}
	}
	out, _ := exec.Command(proctest.Build(t, "./cmd/"+args[0]), "-h").CombinedOutput()
	m := regexp.MustCompile(`(?m)^  -shutdown-timeout duration\n\s+.*\(default (\S+)\)`).FindSubmatch(out)
	require.NotNil(t, m, "no -shutdown-timeout default in %s -h:\n%s", args[0], out)
	d, err := time.ParseDuration(string(m[1]))
	require.NoError(t, err)
	return d
}

// requireGrace checks that the time a container is given to stop covers
// the process's graceful shutdown and its last trace flush: a SIGKILL
// before that cuts off the hand-back of running tasks.
func requireGrace(t *testing.T, grace time.Duration, args []string) {
	t.Helper()
	need := shutdownTimeout(t, args) + otelenv.FlushTimeout
	require.Greater(t, grace, need, "%s: %s to stop is not more than its -shutdown-timeout plus the %s trace flush",
		args[0], grace, otelenv.FlushTimeout)
}

// requireArgs checks a container's command line: the binary exists in the
// image (coordinator or worker), every flag is one it has, and
// -metrics-addr listens on wantPort.
func requireArgs(t *testing.T, args []string, flags map[string]map[string]bool, wantPort string) {
	t.Helper()
	require.NotEmpty(t, args)
	known, ok := flags[args[0]]
	require.True(t, ok, "unknown binary %q", args[0])
	metrics := ""
	for i, a := range args[1:] {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		require.True(t, known[name], "%s has no flag -%s", args[0], name)
		if name == "metrics-addr" {
			if !hasVal {
				val = args[i+2]
			}
			metrics = val
		}
	}
	_, port, _ := strings.Cut(metrics, ":")
	require.Equal(t, wantPort, port, "-metrics-addr of %v", args)
}

func TestKubernetesManifests(t *testing.T) {
	flags := map[string]map[string]bool{"coordinator": binaryFlags(t, "coordinator"), "worker": binaryFlags(t, "worker")}
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	require.NoError(t, err)
	byKind := map[string][]doc{}
	for _, f := range files {
		for _, d := range readDocs(t, f) {
			if filepath.Base(f) == "nats-values.yaml" {
				byKind["values"] = append(byKind["values"], d)
				continue
			}
			require.NotEmpty(t, str(t, d, "apiVersion"), f)
			byKind[str(t, d, "kind")] = append(byKind[str(t, d, "kind")], d)
			if str(t, d, "kind") != "Kustomization" {
				require.NotEmpty(t, str(t, d, "metadata", "name"), f)
			}
		}
	}
	require.Len(t, byKind["Deployment"], 2)
	require.Len(t, byKind["Secret"], 1)
	secretKeys := at(t, byKind["Secret"][0], "stringData").(map[string]any)
	secretName := str(t, byKind["Secret"][0], "metadata", "name")

	deployLabels := map[string]map[string]any{}
	for _, d := range byKind["Deployment"] {
		name := str(t, d, "metadata", "name")
		t.Run(name, func(t *testing.T) {
			sel := at(t, d, "spec", "selector", "matchLabels").(map[string]any)
			labels := at(t, d, "spec", "template", "metadata", "labels").(map[string]any)
			for k, v := range sel {
				require.Equal(t, v, labels[k], "selector %s does not match the pod labels", k)
			}
			deployLabels[name] = labels
			c := at(t, d, "spec", "template", "spec", "containers", "0")
			require.NotEmpty(t, str(t, c, "image"))
			port := at(t, c, "ports", "0")
			require.Equal(t, "metrics", str(t, port, "name"))
			containerPort := strconv.Itoa(at(t, port, "containerPort").(int))
			requireArgs(t, strs(t, list(t, c, "args")), flags, containerPort)
			require.Equal(t, health.LivePath, str(t, c, "livenessProbe", "httpGet", "path"))
			require.Equal(t, health.ReadyPath, str(t, c, "readinessProbe", "httpGet", "path"))
			require.Equal(t, "metrics", str(t, c, "livenessProbe", "httpGet", "port"))
			require.Equal(t, "metrics", str(t, c, "readinessProbe", "httpGet", "port"))
			timeout, ok := at(t, c, "readinessProbe").(map[string]any)["timeoutSeconds"].(int)
			require.True(t, ok && time.Duration(timeout)*time.Second > health.CheckTimeoutDefault,
				"readinessProbe.timeoutSeconds must exceed /readyz's own %s check timeout", health.CheckTimeoutDefault)
			grace := at(t, d, "spec", "template", "spec", "terminationGracePeriodSeconds").(int)
			requireGrace(t, time.Duration(grace)*time.Second, strs(t, list(t, c, "args")))
			// The "restricted" Pod Security Standard.
			require.Equal(t, "RuntimeDefault", str(t, d, "spec", "template", "spec", "securityContext", "seccompProfile", "type"))
			require.Equal(t, true, at(t, d, "spec", "template", "spec", "securityContext", "runAsNonRoot"))
			require.Equal(t, false, at(t, c, "securityContext", "allowPrivilegeEscalation"))
			require.Equal(t, []string{"ALL"}, strs(t, list(t, c, "securityContext", "capabilities", "drop")))
			for _, e := range list(t, c, "env") {
				em := e.(map[string]any)
				if _, ok := em["valueFrom"]; !ok {
					continue
				}
				require.Equal(t, secretName, str(t, em, "valueFrom", "secretKeyRef", "name"))
				require.Contains(t, secretKeys, str(t, em, "valueFrom", "secretKeyRef", "key"))
			}
		})
	}
	require.Len(t, byKind["PodDisruptionBudget"], 2)
	for _, p := range byKind["PodDisruptionBudget"] {
		sel := at(t, p, "spec", "selector", "matchLabels").(map[string]any)
		matched := false
		for _, labels := range deployLabels {
			ok := true
			for k, v := range sel {
				ok = ok && labels[k] == v
			}
			matched = matched || ok
		}
		require.True(t, matched, "PDB %s selects no Deployment", str(t, p, "metadata", "name"))
	}
	require.Len(t, byKind["HorizontalPodAutoscaler"], 1)
	hpa := byKind["HorizontalPodAutoscaler"][0]
	require.Equal(t, "Deployment", str(t, hpa, "spec", "scaleTargetRef", "kind"))
	require.Contains(t, deployLabels, str(t, hpa, "spec", "scaleTargetRef", "name"))
	require.Equal(t, "cano-worker", str(t, hpa, "spec", "scaleTargetRef", "name"))
	for _, d := range byKind["Deployment"] {
		if str(t, d, "metadata", "name") == "cano-worker" {
			_, has := at(t, d, "spec").(map[string]any)["replicas"]
			require.False(t, has, "cano-worker sets spec.replicas: every kubectl apply would reset what its autoscaler chose")
		}
	}

	// The kustomization lists every manifest but the example secret: an
	// apply -k would put its example passwords back over the real ones.
	res := strs(t, list(t, byKind["Kustomization"][0], "resources"))
	for _, f := range files {
		switch b := filepath.Base(f); b {
		case "kustomization.yaml", "nats-values.yaml":
		case "secret.example.yaml":
			require.False(t, slices.Contains(res, b), "kustomization.yaml applies the example secret over the operator's own")
		default:
			require.True(t, slices.Contains(res, b), "kustomization.yaml misses %s", b)
		}
	}
	// Its image is a registry's, not a bare name that resolves to Docker
	// Hub's library.
	img := list(t, byKind["Kustomization"][0], "images")[0].(map[string]any)
	require.Contains(t, img["newName"], "/", "the image names a registry")
	require.NotEqual(t, "latest", img["newTag"], "a pinned tag, not latest (which Kubernetes pulls Always)")

	// The Helm values: a three-node JetStream cluster, the accounts
	// included, every password from the secret.
	v := byKind["values"][0]
	require.Equal(t, true, at(t, v, "config", "cluster", "enabled"))
	require.Equal(t, 3, at(t, v, "config", "cluster", "replicas"))
	require.Equal(t, true, at(t, v, "config", "jetstream", "enabled"))
	require.Equal(t, "accounts.conf", str(t, v, "config", "merge", "00$include"))
	env := at(t, v, "container", "env").(map[string]any)
	for name := range rolePasswords {
		require.Contains(t, env, name, "the NATS pods need %s for accounts.conf", name)
		require.Equal(t, secretName, str(t, env[name], "valueFrom", "secretKeyRef", "name"))
		require.Contains(t, secretKeys, str(t, env[name], "valueFrom", "secretKeyRef", "key"))
	}
}

// TestComposeFile checks deploy/compose.yaml without running it: the
// services, their flags, health checks and ports.
func TestComposeFile(t *testing.T) {
	flags := map[string]map[string]bool{"coordinator": binaryFlags(t, "coordinator"), "worker": binaryFlags(t, "worker")}
	d := readDocs(t, "compose.yaml")[0]
	services := at(t, d, "services").(map[string]any)
	for _, name := range []string{"nats-1", "nats-2", "nats-3", "coordinator-1", "coordinator-2", "worker-1", "worker-2", "worker-3"} {
		require.Contains(t, services, name)
	}
	for name, s := range services {
		if strings.HasPrefix(name, "nats-") {
			require.Equal(t, []string{"-c", "/etc/nats/cluster.conf"}, strs(t, list(t, s, "command")))
			require.Equal(t, name, str(t, s, "environment", "NATS_SERVER_NAME"))
			continue
		}
		t.Run(name, func(t *testing.T) {
			args := strs(t, list(t, s, "command"))
			requireArgs(t, args, flags, "9090")
			if args[0] == "coordinator" {
				require.Contains(t, args, "-replicas")
				require.Equal(t, "3", args[slices.Index(args, "-replicas")+1])
			} else {
				require.Contains(t, args, "-provision=false")
			}
			grace, err := time.ParseDuration(str(t, s, "stop_grace_period"))
			require.NoError(t, err)
			requireGrace(t, grace, args)
			hc := strs(t, list(t, s, "healthcheck", "test"))
			require.Equal(t, []string{"CMD", args[0], "-healthcheck", "http://127.0.0.1:9090" + health.ReadyPath}, hc)
			require.Equal(t, args[0], str(t, s, "environment", "NATS_USER"))
			ports := strs(t, list(t, s, "ports"))
			want := 1
			if i := slices.Index(args, "-http"); i >= 0 {
				// The dashboard, published on loopback; off loopback in the
				// container it needs its token.
				want = 2
				require.Equal(t, ":8080", args[i+1])
				require.NotEmpty(t, str(t, s, "environment", "CANO_HTTP_TOKEN"))
				require.True(t, strings.HasPrefix(ports[1], "127.0.0.1:") && strings.HasSuffix(ports[1], ":8080"), ports[1])
			}
			require.Len(t, ports, want)
			require.True(t, strings.HasPrefix(ports[0], "127.0.0.1:") && strings.HasSuffix(ports[0], ":9090"), ports[0])
		})
	}
}
