package wirecodec

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/cano-nats/cano/pkg/protocol"
)

// fastTypes are the messages with hand-written codecs (fast.go).
var fastTypes = []func() protocol.Message{
	func() protocol.Message { return new(protocol.TaskCommand) },
	func() protocol.Message { return new(protocol.TaskResult) },
	func() protocol.Message { return new(protocol.RunRecord) },
	func() protocol.Message { return new(protocol.Trigger) },
	func() protocol.Message { return new(protocol.TriggerReply) },
}

// reflectEncode is the reflective encoding Encode made before fast.go.
func reflectEncode(t testing.TB, m any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	require.NoError(t, enc.Encode(m))
	return buf.Bytes()
}

// fill sets every field of v (a struct, at every depth) at random: each
// field is left zero with probability pZero (0: every field set), so the
// omitempty fields are covered both ways. A field added to a message with
// a hand-written codec is filled too, so the comparisons below fail until
// fast.go writes and reads it.
func fill(rng *rand.Rand, v reflect.Value, pZero float64, depth int) {
	if pZero > 0 && rng.Float64() < pZero {
		v.SetZero()
		return
	}
	switch v.Kind() {
	case reflect.String:
		n := []int{1, 5, 31, 32, 255, 256, 70000}[rng.IntN(7)]
		if rng.IntN(4) != 0 {
			n = 1 + rng.IntN(20)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(rng.IntN(26))
		}
		v.SetString(string(b))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		bits := v.Type().Bits()
		n := rng.Int64() >> (64 - bits)
		if rng.IntN(2) == 0 {
			n >>= rng.IntN(bits)
		}
		if n == 0 {
			n = -1
		}
		v.SetInt(n)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		bits := v.Type().Bits()
		n := rng.Uint64() >> (64 - bits)
		n >>= rng.IntN(bits)
		if n == 0 {
			n = 1
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		v.SetFloat([]float64{0.5, 1, 2.25, math.Inf(1), -0.125, 1e300}[rng.IntN(6)])
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			n := []int{0, 1, 255, 256, 70000}[rng.IntN(5)]
			if rng.IntN(2) == 0 {
				n = rng.IntN(40)
			}
			if pZero == 0 {
				n = max(n, 1)
			}
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			v.SetBytes(b)
			return
		}
		n := rng.IntN(4)
		if pZero == 0 {
			n = 1 + rng.IntN(3)
		}
		if rng.IntN(8) == 0 {
			n = 17
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(rng, s.Index(i), pZero/2, depth+1)
		}
		v.Set(s)
	case reflect.Pointer:
		if depth > 4 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(rng, p.Elem(), pZero, depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(rng, v.Field(i), pZero, depth+1)
			}
		}
	case reflect.Map:
		// The split spec's join holds no maps; left empty.
	}
}

// TestFastCodecMatchesReflection: the hand-written encoders write the
// reflective encoder's bytes, and the hand-written decoders read them into
// the value the reflective decoder gives, for values with every field set
// and with random fields left zero.
func TestFastCodecMatchesReflection(t *testing.T) {
	require.True(t, fastTaskCommand && fastTaskResult && fastRunRecord && fastTrigger && fastTriggerReply,
		"a message's fields changed: update its hand-written codec (fast.go, fast_record.go, fast_trigger.go) and fast_guard.go")
	require.False(t, tagsAre(protocol.TaskCommand{}, "v", "run_id"), "the guard sees a field list that differs")
	rng := rand.New(rand.NewPCG(1, 2))
	for _, zero := range fastTypes {
		for i := range 3000 {
			m := zero()
			pZero := 0.0
			if i > 0 {
				pZero = []float64{0.1, 0.3, 0.6, 0.9, 1}[i%5]
			}
			fill(rng, reflect.ValueOf(m).Elem(), pZero, 0)
			if i == 0 {
				// Every field set: a field fast.go does not know shows here.
				requireAllSet(t, reflect.ValueOf(m).Elem(), reflect.TypeOf(m).Elem().Name())
			}
			want := reflectEncode(t, m)
			got, ok, err := appendFast(nil, m)
			require.True(t, ok)
			require.NoError(t, err)
			require.Equal(t, want, got, "%T %d: %+v", m, i, m)

			fast, slow := zero(), zero()
			require.True(t, decodeFast(want, fast), "%T %d: the fast decoder gave up on the encoder's bytes", m, i)
			require.NoError(t, msgpack.Unmarshal(want, slow))
			require.Equal(t, slow, fast, "%T %d", m, i)
		}
	}
}

// requireAllSet fails on a zero field anywhere in v (the fill of the
// first case must set every field).
func requireAllSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() {
				requireAllSet(t, v.Field(i), path+"."+f.Name)
			}
		}
	case reflect.Pointer:
		if !v.IsNil() {
			requireAllSet(t, v.Elem(), path)
		}
	default:
		require.False(t, v.IsZero(), "%s is zero", path)
	}
}

// TestFastDecodeOtherForms: bytes a reflective encoder with other settings
// writes (integers at full width, unknown fields, fields out of order, nil
// in place of values) decode to what the reflective decoder gives, through
// the fast decoder or its fallback.
func TestFastDecodeOtherForms(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, zero := range fastTypes {
		for i := range 500 {
			m := zero()
			fill(rng, reflect.ValueOf(m).Elem(), []float64{0, 0.3, 0.7}[i%3], 0)
			var buf bytes.Buffer
			enc := msgpack.NewEncoder(&buf)
			enc.UseCompactInts(i%2 == 0)
			var data []byte
			switch i % 4 {
			case 0, 1: // every field, zero ones included; full-width integers on odd i
				require.NoError(t, enc.Encode(m))
				data = buf.Bytes()
			case 2: // fields as a map in another order, with an unknown one
				var asMap map[string]any
				require.NoError(t, msgpack.Unmarshal(reflectEncode(t, m), &asMap))
				asMap["zz_unknown"] = []any{1, "x"}
				require.NoError(t, enc.Encode(asMap))
				data = buf.Bytes()
			case 3: // nil for every field
				var asMap map[string]any
				require.NoError(t, msgpack.Unmarshal(reflectEncode(t, m), &asMap))
				for k := range asMap {
					asMap[k] = nil
				}
				require.NoError(t, enc.Encode(asMap))
				data = buf.Bytes()
			}
			fast, slow := zero(), zero()
			fastErr := Decode(data, fast, 64<<20)
			require.NoError(t, scanStructure(data))
			slowErr := msgpack.Unmarshal(data, slow)
			if slowErr != nil {
				require.Error(t, fastErr)
				continue
			}
			require.Equal(t, slow, fast, "%T %d", m, i)
		}
	}
}

// FuzzFastDecode: on any input that passes the structure scan, the fast
// decoder either gives up or gives what the reflective decoder gives.
func FuzzFastDecode(f *testing.F) {
	for _, name := range []string{"task_command", "task_result", "run_record"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "pkg", "protocol", "testdata", "golden", name+".msgpack"))
		require.NoError(f, err)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if scanStructure(data) != nil {
			return
		}
		for _, zero := range fastTypes {
			fast, slow := zero(), zero()
			if !decodeFast(data, fast) {
				require.Equal(t, zero(), fast, "a fast decoder that gave up left the message changed")
				continue
			}
			var err error
			func() {
				defer func() {
					if recover() != nil {
						err = errPanic
					}
				}()
				err = msgpack.Unmarshal(data, slow)
			}()
			require.NoError(t, err, "the fast decoder read what the reflective one refuses")
			require.Equal(t, slow, fast)
		}
	})
}

var errPanic = errors.New("panic")

// benchMessages are a one-task run's messages as the engine makes them.
func benchMessages() []protocol.Message {
	return []protocol.Message{
		&protocol.TaskCommand{V: 1, RunID: "r3zYBv8VqkR6qcMd0E2b1Xq", Workflow: "one_task", State: "work", Branch: -1,
			Task: protocol.TaskSpec{Kind: "noop", Params: []byte{0x80}, Retry: protocol.RetryPolicy{Mode: protocol.RetryNone}},
			Path: []string{"work"}},
		&protocol.TaskResult{V: 1, RunID: "r3zYBv8VqkR6qcMd0E2b1Xq", Branch: -1, Status: protocol.ResultOK, Next: "done",
			Attempts: 1, Worker: "host-12345", AttemptStarted: 1767225600000000000, AttemptDuration: 2100},
		&protocol.RunRecord{V: 1, ID: "r3zYBv8VqkR6qcMd0E2b1Xq", Workflow: "one_task", DefVersion: "d19599cfe85f",
			Status: protocol.RunCompleted, State: "done", Step: 1, Path: []string{"work", "done"},
			CreatedAt: 1767225600000000000, UpdatedAt: 1767225600001000000,
			History: []protocol.Step{
				{Seq: 0, State: "work", Kind: protocol.StepTask, Entered: 1767225600000000000, Left: 1767225600001000000,
					Outcome: protocol.StepOK, Attempts: 1, Worker: "host-12345", AttemptStarted: 1767225600000500000, AttemptDuration: 2100},
				{Seq: 1, State: "done", Kind: protocol.StepExit, Entered: 1767225600001000000, Outcome: protocol.StepOK},
			},
			Totals: protocol.RunTotals{Steps: 2, Attempts: 1}},
	}
}

// BenchmarkCodec compares the hand-written codecs with the reflective ones
// on a one-task run's messages.
func BenchmarkCodec(b *testing.B) {
	for _, m := range benchMessages() {
		name := reflect.TypeOf(m).Elem().Name()
		data := reflectEncode(b, m)
		zero := reflect.New(reflect.TypeOf(m).Elem()).Interface().(protocol.Message)
		b.Run(name+"/encode/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encode/reflect", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e := encPool.Get().(*encoder)
				e.buf.Reset()
				if err := e.enc.Encode(m); err != nil {
					b.Fatal(err)
				}
				_ = append([]byte(nil), e.buf.Bytes()...)
				encPool.Put(e)
			}
		})
		b.Run(name+"/decode/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				reflect.ValueOf(zero).Elem().SetZero()
				if err := Decode(data, zero, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/decode/reflect", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				reflect.ValueOf(zero).Elem().SetZero()
				if err := decodeReflect(data, zero); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
