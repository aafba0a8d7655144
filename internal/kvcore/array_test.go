package kvcore

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/cano-nats/cano/internal/wirecodec"
)

func TestAppendItemsAcrossHeaderSizes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		existing int
		add      int
	}{
		{"new array", -1, 1},
		{"empty array", 0, 1},
		{"fixarray to array16", 15, 2},
		{"array16 to array32", 65535, 2},
		{"inside array32", 70000, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cur []byte
			var want []int8
			if tc.existing >= 0 {
				want = make([]int8, tc.existing)
				var err error
				cur, err = wirecodec.EncodeValue(want)
				require.NoError(t, err)
			}
			items := make([][]byte, tc.add)
			for i := range items {
				items[i] = []byte{byte(i + 1)}
				want = append(want, int8(i+1))
			}
			out, errs, err := AppendItems(cur, items, 1<<20)
			require.NoError(t, err)
			require.Equal(t, make([]error, tc.add), errs)
			var got []int8
			require.NoError(t, msgpack.Unmarshal(out, &got))
			require.Equal(t, want, got)
		})
	}
}

func TestAppendItemsLimit(t *testing.T) {
	t.Parallel()
	out, errs, err := AppendItems(nil, [][]byte{{0x01}, make([]byte, 8), {0x02}}, 4)
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], ErrValueTooLarge)
	require.NoError(t, errs[2])
	require.Equal(t, []byte{0x92, 0x01, 0x02}, out)
}

func TestArrayHeaderRejectsNonArrays(t *testing.T) {
	t.Parallel()
	for _, b := range [][]byte{{}, {0x01}, {0x80}, {0xa1, 'x'}, {0xdc, 0x00}, {0xdd, 0, 0, 0}, {0xc0}} {
		_, _, err := arrayHeader(b)
		require.ErrorIs(t, err, ErrTypeMismatch, "% x", b)
	}
}

func TestValidateItem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		item []byte
		ok   bool
	}{
		{[]byte{0x01}, true},
		{[]byte{0xc0}, true},
		{[]byte{0x92, 0x01, 0x02}, true},
		{[]byte{0xa1, 'x'}, true},
		{nil, false},
		{[]byte{0xc1}, false},
		{[]byte{0x01, 0x02}, false},
		{[]byte{0x92, 0x01}, false},
		{[]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, false},
		{[]byte{0xc6, 0xff, 0xff, 0xff, 0xff}, false},
	} {
		err := ValidateItem(tc.item)
		if tc.ok {
			require.NoError(t, err, "% x", tc.item)
		} else {
			require.ErrorIs(t, err, ErrInvalidValue, "% x", tc.item)
		}
	}
}

func TestValidateKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"a.b.c", true},
		{"A-z_0/9=", true},
		{"", false},
		{".a", false},
		{"a.", false},
		{"a..b", false},
		{"a*", false},
		{"a>", false},
		{"a b", false},
		{"é", false},
	} {
		err := ValidateKey(tc.key)
		if tc.ok {
			require.NoError(t, err, tc.key)
		} else {
			require.ErrorIs(t, err, ErrInvalidKey, tc.key)
		}
	}
}
