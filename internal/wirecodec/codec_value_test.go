package wirecodec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sort"
	"testing"

	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

func TestEncodeValueIsCanonical(t *testing.T) {
	t.Parallel()
	big := map[string]int{}
	for i := range 100 {
		big[fmt.Sprintf("k%03d", i)] = i
	}
	type inner struct {
		B map[int]string `msgpack:"b"`
		A []map[string]uint8
	}
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"map[string]int", big},
		{"map[int]string", map[int]string{3: "c", 1: "a", 2: "b", 300: "x", -1: "m"}},
		{"nested in struct and slices", inner{B: map[int]string{2: "b", 1: "a"},
			A: []map[string]uint8{{"z": 1, "y": 2}, {"b": 3, "a": 4}}}},
		{"map[string]any", map[string]any{"b": big, "a": []any{map[string]int{"y": 1, "x": 2}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			first, err := EncodeValue(tc.v)
			require.NoError(t, err)
			require.NoError(t, CheckValue(first))
			for range 50 {
				again, err := EncodeValue(tc.v)
				require.NoError(t, err)
				require.Equal(t, first, again, "encoding changed between calls")
			}
			// It decodes back to the same value, as the standard encoding does.
			plain, err := msgpack.Marshal(tc.v)
			require.NoError(t, err)
			want := reflect.New(reflect.TypeOf(tc.v))
			got := reflect.New(reflect.TypeOf(tc.v))
			require.NoError(t, msgpack.Unmarshal(plain, want.Interface()))
			require.NoError(t, DecodeValue(first, got.Interface()))
			require.Equal(t, want.Elem().Interface(), got.Elem().Interface())
		})
	}
}

func TestEncodeValueKeyOrder(t *testing.T) {
	t.Parallel()
	// String keys sort by text (not by encoded length), before other keys.
	b, err := EncodeValue(map[string]int{"bb": 2, "a": 1, "c": 3})
	require.NoError(t, err)
	require.Equal(t, []byte{0x83, 0xa1, 'a', 1, 0xa2, 'b', 'b', 2, 0xa1, 'c', 3}, b)
	b, err = EncodeValue(map[any]int{int8(1): 1, "x": 2})
	require.NoError(t, err)
	require.Equal(t, []byte{0x82, 0xa1, 'x', 2, 1, 1}, b)
	// A struct's fields are sorted by name too.
	b, err = EncodeValue(struct {
		Z int `msgpack:"z"`
		A int `msgpack:"a"`
	}{Z: 1, A: 2})
	require.NoError(t, err)
	require.Equal(t, []byte{0x82, 0xa1, 'a', 2, 0xa1, 'z', 1}, b)
	// AppendEncodeValue appends.
	out, err := AppendEncodeValue([]byte{0xff}, 1)
	require.NoError(t, err)
	require.Equal(t, []byte{0xff, 1}, out)
	_, err = EncodeValue(make(chan int))
	require.Error(t, err)
}

func TestDecodeValueRefuses(t *testing.T) {
	t.Parallel()
	type item struct{ A, B int64 }
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty value"},
		{"array32 claiming 2^31 items", []byte{0xdd, 0x80, 0, 0, 0, 1, 2, 3}, "declares 2147483648 values"},
		{"map32 claiming 2^31 entries", []byte{0xdf, 0x80, 0, 0, 0, 1, 2, 3}, "declares 4294967296 values"},
		{"truncated", []byte{0x92, 1, 0xcd, 1}, "truncated"},
		{"trailing", []byte{0x90, 1}, "trailing"},
		{"reserved byte", []byte{0xc1}, "reserved byte"},
		{"wrong type", []byte{0xa1, 'x'}, "value for *[]wirecodec.item"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v []item
			err := DecodeValue(tc.data, &v)
			require.ErrorIs(t, err, protocol.ErrMalformed)
			require.ErrorContains(t, err, tc.want)
			if len(tc.data) > 0 && tc.name != "wrong type" {
				require.ErrorIs(t, CheckValue(tc.data), protocol.ErrMalformed)
			}
		})
	}
	require.ErrorIs(t, CheckValue(nil), protocol.ErrMalformed)
}

// A few bytes claiming a huge array are refused before the decoder
// preallocates anything.
func TestDecodeValueHugeClaimDoesNotAllocate(t *testing.T) {
	data := []byte{0xdd, 0x80, 0, 0, 0, 1, 2, 3} // array32 of 2^31 items, 3 bytes follow
	type item struct{ A, B, C, D int64 }
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var v []item
	err := DecodeValue(data, &v)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, protocol.ErrMalformed)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "bytes allocated")
}

// A struct written for JSON keeps its field names: an input typed as JSON
// (parsed into maps, as canoctl and flow files do) decodes into it, and
// the encoding of the struct reads back into a map under the JSON names.
func TestValueFieldsNamedByJSONTags(t *testing.T) {
	t.Parallel()
	type order struct {
		Customer string `json:"customer"`
		Amount   int    `json:"amount,omitempty"`
		Secret   string `json:"-"`
		Note     string `msgpack:"note_mp" json:"note"` // msgpack's tag wins
		Plain    bool
	}
	in, err := ParseJSON([]byte(`{"customer":"ada","amount":5,"note_mp":"n","Plain":true}`))
	require.NoError(t, err)
	b, err := EncodeValue(in)
	require.NoError(t, err)
	var got order
	require.NoError(t, DecodeValue(b, &got))
	require.Equal(t, order{Customer: "ada", Amount: 5, Note: "n", Plain: true}, got)

	b, err = EncodeValue(order{Customer: "bo", Secret: "s", Note: "x"})
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, DecodeValue(b, &m))
	require.Equal(t, map[string]any{"customer": "bo", "note_mp": "x", "Plain": false}, m,
		"json names, omitempty and json:\"-\" honoured; msgpack tags first")
}

// canonReference is the canonical order as first written: every map's
// entries gathered, then stably sorted by key and value. canonAppend writes
// them in place and sorts only maps found out of order; both must give the
// same bytes.
func canonReference(dst, data []byte, i int) ([]byte, int) {
	start := i
	skip, elems, container, isMap, i, err := valueHeader(data, i)
	if err != nil {
		panic(err)
	}
	if !container {
		i += int(skip)
		return append(dst, data[start:i]...), i
	}
	dst = append(dst, data[start:i]...)
	if !isMap {
		for range elems {
			dst, i = canonReference(dst, data, i)
		}
		return dst, i
	}
	type entry struct{ k, v []byte }
	entries := make([]entry, elems/2)
	for j := range entries {
		var k, v []byte
		k, i = canonReference(nil, data, i)
		v, i = canonReference(nil, data, i)
		entries[j] = entry{k, v}
	}
	sort.SliceStable(entries, func(a, b int) bool {
		if c := compareKeys(entries[a].k, entries[b].k); c != 0 {
			return c < 0
		}
		return bytes.Compare(entries[a].v, entries[b].v) < 0
	})
	for _, e := range entries {
		dst = append(append(dst, e.k...), e.v...)
	}
	return dst, i
}

func TestEncodeValueMatchesReferenceOrder(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var value func(depth int) any
	value = func(depth int) any {
		switch k := rng.IntN(6); {
		case depth > 3 || k == 0:
			return rng.IntN(5) // small: equal keys and values are common
		case k == 1:
			return fmt.Sprint("s", rng.IntN(4))
		case k == 2:
			a := make([]any, rng.IntN(4))
			for j := range a {
				a[j] = value(depth + 1)
			}
			return a
		case k == 3:
			m := map[any]any{}
			for range rng.IntN(12) {
				var key any = rng.IntN(8) // keys of mixed kinds
				if rng.IntN(2) == 0 {
					key = fmt.Sprint(rng.IntN(8))
				}
				m[key] = value(depth + 1)
			}
			return m
		default:
			m := map[string]any{}
			for range rng.IntN(12) {
				m[fmt.Sprint("k", rng.IntN(20))] = value(depth + 1)
			}
			return m
		}
	}
	for n := range 2000 {
		v := value(0)
		plain, err := msgpack.Marshal(v)
		require.NoError(t, err)
		want, _ := canonReference(nil, plain, 0)
		got, _, err := canonAppend(nil, plain, 0, 0)
		require.NoError(t, err)
		require.Equal(t, want, got, "value %d: %#v", n, v)
	}
}
