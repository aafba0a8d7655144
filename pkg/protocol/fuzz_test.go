package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// The fuzz targets below run their committed seed corpus
// (testdata/fuzz/FuzzXxx/) as ordinary tests on every `go test`. To search
// for new failures, run one target at a time:
//
//	go test -run='^$' -fuzz='^FuzzDecodeTaskResult$' -fuzztime=30s ./pkg/protocol
//
// A failing input is written to testdata/fuzz/FuzzXxx/ and from then on
// runs as a seed; commit it with the fix. The generated seeds (seed-*) are
// rewritten by `go test -run TestFuzzSeeds -update`.

// fuzzMaxPayload is the payload limit the fuzz targets decode with; the
// oversized seeds are one byte longer.
const fuzzMaxPayload = 4096

// requireSentinel fails unless err wraps one of the protocol sentinels.
func requireSentinel(t *testing.T, err error) {
	t.Helper()
	for _, s := range []error{
		protocol.ErrMalformed, protocol.ErrTooLarge, protocol.ErrSchemaVersion,
		protocol.ErrMissingField, protocol.ErrInvalidField, protocol.ErrInvalidName,
	} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error is not a protocol sentinel: %v", err)
}

// fuzzDecode is the body of every msgpack decoder target: Decode never
// panics (not even one it recovers from), fails only with a protocol sentinel, and whatever it accepts
// re-encodes to bytes that decode again to the same encoding.
func fuzzDecode(f *testing.F, name string) {
	c := caseNamed(f, name)
	f.Fuzz(func(t *testing.T, data []byte) {
		m := c.zero()
		err := wirecodec.Decode(data, m, fuzzMaxPayload)
		if err != nil {
			requireSentinel(t, err)
			require.NotContains(t, err.Error(), "decoder panic", "Decode recovered from a panic")
			return
		}
		first, err := wirecodec.Encode(m)
		require.NoError(t, err)
		again := c.zero()
		require.NoError(t, wirecodec.Decode(first, again, 0), "an accepted message must survive a round trip")
		second, err := wirecodec.Encode(again)
		require.NoError(t, err)
		require.Equal(t, first, second)
	})
}

func caseNamed(tb testing.TB, name string) wireCase {
	for _, c := range wireCases() {
		if c.name == name {
			return c
		}
	}
	tb.Fatalf("no wire case %q", name)
	return wireCase{}
}

func FuzzDecodeTrigger(f *testing.F)         { fuzzDecode(f, "trigger") }
func FuzzDecodeTriggerReply(f *testing.F)    { fuzzDecode(f, "trigger_reply") }
func FuzzDecodeTaskCommand(f *testing.F)     { fuzzDecode(f, "task_command") }
func FuzzDecodeTaskResult(f *testing.F)      { fuzzDecode(f, "task_result") }
func FuzzDecodeRunRecord(f *testing.F)       { fuzzDecode(f, "run_record") }
func FuzzDecodeBranchOutcome(f *testing.F)   { fuzzDecode(f, "branch_outcome") }
func FuzzDecodeEvent(f *testing.F)           { fuzzDecode(f, "event") }
func FuzzDecodeCancelRequest(f *testing.F)   { fuzzDecode(f, "cancel_request") }
func FuzzDecodeCancelNotice(f *testing.F)    { fuzzDecode(f, "cancel_notice") }
func FuzzDecodeTimerFire(f *testing.F)       { fuzzDecode(f, "timer_fire") }
func FuzzDecodeDefinition(f *testing.F)      { fuzzDecode(f, "definition") }
func FuzzDecodeBreakerState(f *testing.F)    { fuzzDecode(f, "breaker_state") }
func FuzzDecodeSchedule(f *testing.F)        { fuzzDecode(f, "schedule") }
func FuzzDecodeFlowStatus(f *testing.F)      { fuzzDecode(f, "flow_status") }
func FuzzDecodeDeadLetter(f *testing.F)      { fuzzDecode(f, "dead_letter") }
func FuzzDecodeSplitSpecRecord(f *testing.F) { fuzzDecode(f, "split_spec_record") }
func FuzzDecodeWorkerInfo(f *testing.F)      { fuzzDecode(f, "worker_info") }

// FuzzDecodeTriggerJSON fuzzes the JSON trigger decoder with the body and
// the workflow token taken from the subject.
func FuzzDecodeTriggerJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, workflow string) {
		tr, err := wirecodec.DecodeTriggerJSON(data, workflow, fuzzMaxPayload, time.Unix(0, 1))
		if err != nil {
			requireSentinel(t, err)
			require.Nil(t, tr)
			return
		}
		require.NoError(t, protocol.ValidToken(tr.Workflow))
		if tr.Input != nil {
			require.Equal(t, protocol.InputJSON, tr.InputFormat)
			require.True(t, json.Valid(tr.Input), "input kept as valid JSON")
		}
		// An accepted JSON trigger is a valid msgpack trigger.
		b, err := wirecodec.Encode(tr)
		require.NoError(t, err)
		var back protocol.Trigger
		require.NoError(t, wirecodec.Decode(b, &back, 0))
		require.Equal(t, *tr, back)
	})
}

// seed is one generated corpus entry: a label (the file name after
// "seed-") and the fuzz arguments.
type seed struct {
	label string
	args  []any
}

// msgpackSeeds returns the generated seeds of a msgpack decoder target:
// valid, truncated, garbage, wrong schema versions, oversized, hostile
// length prefixes and nesting.
func msgpackSeeds(t *testing.T, c wireCase) []seed {
	valid, err := wirecodec.Encode(c.msg)
	require.NoError(t, err)
	withVersion := func(v uint16) []byte {
		m := reflect.New(reflect.TypeOf(c.msg).Elem())
		m.Elem().Set(reflect.ValueOf(c.msg).Elem())
		m.Elem().FieldByName("V").SetUint(uint64(v))
		b, err := wirecodec.Encode(m.Interface().(protocol.Message))
		require.NoError(t, err)
		return b
	}
	zeroV1 := c.zero()
	reflect.ValueOf(zeroV1).Elem().FieldByName("V").SetUint(protocol.SchemaVersion)
	empty, err := wirecodec.Encode(zeroV1)
	require.NoError(t, err)

	garbage := make([]byte, 64)
	r := rand.New(rand.NewPCG(uint64(len(c.name)), 42))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	oversized := append(append([]byte{}, valid...), bytes.Repeat([]byte{'a'}, fuzzMaxPayload+1-len(valid))...)
	nested := append(bytes.Repeat([]byte{0x91}, 100), 0xc0)

	return []seed{
		{"valid", []any{valid}},
		{"empty-fields", []any{empty}},
		{"truncated", []any{valid[:len(valid)/2]}},
		{"truncated-by-one", []any{valid[:len(valid)-1]}},
		{"trailing", []any{append(append([]byte{}, valid...), 0xc0)}},
		{"garbage", []any{garbage}},
		{"empty", []any{[]byte{}}},
		{"schema-v0", []any{withVersion(0)}},
		{"schema-v2", []any{withVersion(2)}},
		{"oversized", []any{oversized}},
		{"huge-array", []any{[]byte{0xdd, 0xff, 0xff, 0xff, 0xff}}},
		{"huge-map", []any{[]byte{0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01}}},
		{"huge-str", []any{[]byte{0x81, 0xdb, 0xff, 0xff, 0xff, 0xff, 'v'}}},
		{"deep-nesting", []any{nested}},
		{"reserved-byte", []any{[]byte{0x81, 0xa1, 'v', 0xc1}}},
	}
}

func jsonSeeds() []seed {
	deep := bytes.Repeat([]byte{'['}, 20000)
	return []seed{
		{"valid-cli", []any{[]byte(`{"input": {"urls": ["https://a", "https://b"]}}`), "parallel_fetch"}},
		{"valid-full", []any{[]byte(`{"v": 1, "workflow": "parallel_fetch", "initial_state": "start", "input": [1, 2, 3], "run_id": "run-1"}`), "other"}},
		{"valid-no-input", []any{[]byte(`{}`), "parallel_fetch"}},
		{"empty-body", []any{[]byte(""), "parallel_fetch"}},
		{"null-input", []any{[]byte(`{"input": null}`), "parallel_fetch"}},
		{"no-workflow", []any{[]byte(`{"input": {}}`), ""}},
		{"bad-workflow", []any{[]byte(`{"input": {}}`), "a.b"}},
		{"bad-run-id", []any{[]byte(`{"run_id": "x y"}`), "wf"}},
		{"truncated", []any{[]byte(`{"input": {"urls": ["https://a"`), "wf"}},
		{"garbage", []any{[]byte("\x93\xa1v\x01\xff\x00{]"), "wf"}},
		{"not-object", []any{[]byte(`[1, 2]`), "wf"}},
		{"schema-v2", []any{[]byte(`{"v": 2, "input": {}}`), "wf"}},
		{"schema-negative", []any{[]byte(`{"v": -1}`), "wf"}},
		{"wrong-type", []any{[]byte(`{"workflow": 7}`), "wf"}},
		{"oversized", []any{append([]byte(`{"input": "`), bytes.Repeat([]byte{'a'}, fuzzMaxPayload)...), "wf"}},
		{"deep-nesting", []any{append([]byte(`{"input": `), deep[:fuzzMaxPayload-20]...), "wf"}},
	}
}

// marshalCorpus writes args in the go test fuzz v1 corpus file format.
func marshalCorpus(args []any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
		case string:
			fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
		default:
			panic(fmt.Sprintf("unsupported corpus type %T", a))
		}
	}
	return b.Bytes()
}

// TestFuzzSeeds checks that the committed seed corpus matches the seeds
// generated from the fixtures (rewrite with -update), so a wire change that
// updates the golden files also refreshes the valid seeds.
func TestFuzzSeeds(t *testing.T) {
	targets := map[string][]seed{"FuzzDecodeTriggerJSON": jsonSeeds()}
	for _, c := range wireCases() {
		if prev, ok := targets[c.fuzz]; ok {
			// Another form of a type (definition_v3): its valid encoding
			// is one more seed of the type's target.
			valid, err := wirecodec.Encode(c.msg)
			require.NoError(t, err)
			targets[c.fuzz] = append(prev, seed{"valid-" + c.name, []any{valid}})
			continue
		}
		targets[c.fuzz] = msgpackSeeds(t, c)
	}
	for target, seeds := range targets {
		dir := filepath.Join("testdata", "fuzz", target)
		if *update {
			require.NoError(t, os.MkdirAll(dir, 0o755))
		}
		for _, s := range seeds {
			path := filepath.Join(dir, "seed-"+s.label)
			want := marshalCorpus(s.args)
			if *update {
				require.NoError(t, os.WriteFile(path, want, 0o644))
			}
			got, err := os.ReadFile(path)
			require.NoError(t, err, "missing seed; run with -update")
			require.Equal(t, string(want), string(got), "stale seed %s; run with -update", path)
		}
	}
}
