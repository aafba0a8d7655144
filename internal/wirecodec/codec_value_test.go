package wirecodec

import (
	"fmt"
	"reflect"
	"runtime"
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
