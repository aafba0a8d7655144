package protocol_test

import (
	"bytes"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// update rewrites the golden files and the generated fuzz seeds:
//
//	go test ./pkg/protocol -run 'TestGolden|TestFuzzSeeds' -update
var update = flag.Bool("update", false, "rewrite testdata/golden and the generated fuzz seeds")

// TestWireCasesCoverEveryType parses the package source and checks that
// every type implementing Message (it has a schemaVersion method) has a
// fully populated fixture in wireCases.
func TestWireCasesCoverEveryType(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	var inSource []string
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || fn.Name.Name != "schemaVersion" {
				continue
			}
			star, ok := fn.Recv.List[0].Type.(*ast.StarExpr)
			require.True(t, ok, "schemaVersion on a non-pointer receiver")
			inSource = append(inSource, star.X.(*ast.Ident).Name)
		}
	}
	var inFixtures []string
	for _, c := range wireCases() {
		inFixtures = append(inFixtures, reflect.TypeOf(c.msg).Elem().Name())
	}
	sort.Strings(inSource)
	sort.Strings(inFixtures)
	inFixtures = slices.Compact(inFixtures) // a type may have a case per form
	require.Equal(t, inSource, inFixtures, "every wire type needs a case in wireCases")
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range wireCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			requireFullyPopulated(t, reflect.ValueOf(c.msg), c.name)
			require.NoError(t, wirecodec.Validate(c.msg))

			data, err := wirecodec.Encode(c.msg)
			require.NoError(t, err)
			got := c.zero()
			require.NoError(t, wirecodec.Decode(data, got, 0))
			require.Equal(t, c.msg, got)

			// AppendEncode appends after existing bytes and agrees with Encode.
			prefix := []byte("prefix")
			appended, err := wirecodec.AppendEncode(prefix, c.msg)
			require.NoError(t, err)
			require.Equal(t, "prefix", string(appended[:len(prefix)]))
			require.Equal(t, data, appended[len(prefix):])
		})
	}
}

// TestGolden pins the byte encoding of every wire type. Messages outlive the
// processes that wrote them (streams, KV), and coordinators and workers of
// different builds run side by side during a deploy, so the encoding must
// not change by accident. If this test fails, the wire format changed: if
// that was deliberate and compatible, regenerate with -update and review
// the diff; if it is incompatible, bump SchemaVersion and keep decoding the
// old version.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, c := range wireCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", "golden", c.name+".msgpack")
			data, err := wirecodec.Encode(c.msg)
			require.NoError(t, err)
			if *update {
				require.NoError(t, os.WriteFile(path, data, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "missing golden file; run with -update")
			require.Truef(t, bytes.Equal(want, data),
				"encoding of %s changed (see TestGolden's doc):\nwant %x\ngot  %x", c.name, want, data)

			// The golden bytes also decode to the fixture, so old data stays readable.
			got := c.zero()
			require.NoError(t, wirecodec.Decode(want, got, 0))
			require.Equal(t, c.msg, got)
		})
	}
}

// TestEncodeDeterministic checks that encoding the same value twice gives
// the same bytes, including map fields (DeadLetter.Headers).
func TestEncodeDeterministic(t *testing.T) {
	t.Parallel()
	for _, c := range wireCases() {
		first, err := wirecodec.Encode(c.msg)
		require.NoError(t, err)
		for range 20 {
			again, err := wirecodec.Encode(c.msg)
			require.NoError(t, err)
			require.Equal(t, first, again, c.name)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	valid, err := wirecodec.Encode(&protocol.CancelRequest{V: protocol.SchemaVersion, RunID: "r1"})
	require.NoError(t, err)
	v2, err := wirecodec.Encode(&protocol.CancelRequest{V: 2, RunID: "r1"})
	require.NoError(t, err)
	noRun, err := wirecodec.Encode(&protocol.CancelRequest{V: protocol.SchemaVersion})
	require.NoError(t, err)
	badRun, err := wirecodec.Encode(&protocol.CancelRequest{V: protocol.SchemaVersion, RunID: "a.b"})
	require.NoError(t, err)

	tests := []struct {
		name       string
		data       []byte
		maxPayload int
		want       error
	}{
		{"empty", nil, 0, protocol.ErrMalformed},
		{"truncated", valid[:len(valid)-1], 0, protocol.ErrMalformed},
		{"trailing bytes", append(append([]byte{}, valid...), 0xc0), 0, protocol.ErrMalformed},
		{"not a map", []byte{0xa3, 'a', 'b', 'c'}, 0, protocol.ErrMalformed},
		{"reserved byte", []byte{0xc1}, 0, protocol.ErrMalformed},
		{"wrong field type", []byte{0x81, 0xa1, 'v', 0xa1, 'x'}, 0, protocol.ErrMalformed},
		{"over max payload", valid, len(valid) - 1, protocol.ErrTooLarge},
		{"over default max payload", make([]byte, protocol.MaxPayloadDefault+1), 0, protocol.ErrTooLarge},
		{"schema version 0 (missing)", []byte{0x81, 0xa6, 'r', 'u', 'n', '_', 'i', 'd', 0xa2, 'r', '1'}, 0, protocol.ErrSchemaVersion},
		{"schema version 2", v2, 0, protocol.ErrSchemaVersion},
		{"missing run id", noRun, 0, protocol.ErrInvalidName},
		{"run id not a token", badRun, 0, protocol.ErrInvalidName},
		// A five-byte array header declaring four billion states must be
		// refused before anything is allocated.
		{"huge array length", []byte{0x82, 0xa1, 'v', 0x01, 0xa6, 's', 't', 'a', 't', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}, 0, protocol.ErrMalformed},
		{"huge map length", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, 0, protocol.ErrMalformed},
		{"huge string length", []byte{0x81, 0xa6, 'r', 'e', 'a', 's', 'o', 'n', 0xdb, 0xff, 0xff, 0xff, 0xff}, 0, protocol.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var m protocol.CancelRequest
			err := wirecodec.Decode(tc.data, &m, tc.maxPayload)
			require.ErrorIs(t, err, tc.want)
		})
	}
	var m protocol.CancelRequest
	require.NoError(t, wirecodec.Decode(valid, &m, len(valid)), "a payload of exactly maxPayload is accepted")
}

// TestDecodeDeepNesting checks that a deeply nested error cause chain,
// which would recurse once per level in the reflective decoder, is refused.
func TestDecodeDeepNesting(t *testing.T) {
	t.Parallel()
	data := []byte{0x84, 0xa1, 'v', 0x01, 0xa6, 'r', 'u', 'n', '_', 'i', 'd', 0xa1, 'r',
		0xa6, 's', 't', 'a', 't', 'u', 's', 0xa6, 'f', 'a', 'i', 'l', 'e', 'd', 0xa5, 'e', 'r', 'r', 'o', 'r'}
	for range 100000 {
		data = append(data, 0x81, 0xa5, 'c', 'a', 'u', 's', 'e')
	}
	data = append(data, 0xc0)
	var m protocol.TaskResult
	require.ErrorIs(t, wirecodec.Decode(data, &m, 0), protocol.ErrMalformed)
}

// TestDecodeUnknownFieldsIgnored checks forward compatibility: a field added
// by a newer build of the same schema version is skipped.
func TestDecodeUnknownFieldsIgnored(t *testing.T) {
	t.Parallel()
	data := []byte{0x83, 0xa1, 'v', 0x01, 0xa6, 'r', 'u', 'n', '_', 'i', 'd', 0xa2, 'r', '1',
		0xa3, 'n', 'e', 'w', 0x92, 0x01, 0x81, 0xa1, 'k', 0xc3}
	var m protocol.CancelRequest
	require.NoError(t, wirecodec.Decode(data, &m, 0))
	require.Equal(t, protocol.CancelRequest{V: 1, RunID: "r1"}, m)
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := wirecodec.Encode(c.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendEncode(b *testing.B) {
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				var err error
				if buf, err = wirecodec.AppendEncode(buf[:0], c.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range benchCases() {
		data, err := wirecodec.Encode(c.msg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := wirecodec.Decode(data, c.zero(), 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchCases are the hot-path messages in their typical shape: a task
// command for a single-task state and a successful task result.
func benchCases() []wireCase {
	spec := taskSpec("fetch_url")
	spec.BreakerPolicy = nil
	return []wireCase{
		{name: "TaskCommand", msg: &protocol.TaskCommand{
			V:        protocol.SchemaVersion,
			RunID:    "run-01HZXK8N4Q6W7P3J2V9T5R1M0B",
			Workflow: "parallel_fetch",
			State:    "fetch",
			Step:     3,
			Branch:   -1,
			Task:     spec,
			Deadline: t1,
			Input:    bytes.Repeat([]byte{0xa1, 'x'}, 64),
			Path:     []string{"start", "plan", "fetch"},
		}, zero: func() protocol.Message { return new(protocol.TaskCommand) }},
		{name: "TaskResult", msg: &protocol.TaskResult{
			V:        protocol.SchemaVersion,
			RunID:    "run-01HZXK8N4Q6W7P3J2V9T5R1M0B",
			Step:     3,
			Branch:   -1,
			Status:   protocol.ResultOK,
			Next:     "aggregate",
			Output:   bytes.Repeat([]byte{0xa1, 'y'}, 64),
			Attempts: 1,
			Worker:   "worker-7",
		}, zero: func() protocol.Message { return new(protocol.TaskResult) }},
	}
}
