package pretty

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPayload(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		form string
		text string
	}{
		{"empty", nil, "", ""},
		{"json", []byte(`{"input":1}`), "json", `{"input":1}`},
		{"msgpack map", []byte{0x81, 0xa1, 'a', 0x01}, "msgpack", `{"a":1}`},
		{"msgpack html", []byte{0x81, 0xa1, 'v', 0xa3, '<', 'b', '>'}, "msgpack", `{"v":"<b>"}`},
		{"text", []byte("not json, not msgpack: { oops"), "text", "not json, not msgpack: { oops"},
		{"bytes", []byte{0xc1, 0xff}, "bytes", "hex: c1ff"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, form := Payload(c.in)
			require.Equal(t, c.form, form)
			require.Equal(t, c.text, Text(c.in, 0))
		})
	}
}

func TestTextLarge(t *testing.T) {
	big := []byte(strings.Repeat("a", largePayload+1))
	require.Equal(t, "aaaa… (65537 bytes)", Text(big, 4), "not decoded: its start and size")
	bin := append([]byte{0xc1, 0xff}, make([]byte, largePayload)...)
	require.True(t, strings.HasPrefix(Text(bin, 10), "hex: c1ff"), Text(bin, 10))
	require.True(t, strings.HasSuffix(Text(bin, 10), "(65538 bytes)"))
}

func TestValue(t *testing.T) {
	v := Value(map[any]any{1: []any{[]byte("x"), map[any]any{"k": true}}})
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.JSONEq(t, `{"1":["x",{"k":true}]}`, string(b))
}

func TestCut(t *testing.T) {
	require.Equal(t, "abc", Cut("abc", 3))
	require.Equal(t, "ab…", Cut("abcd", 2))
	require.Equal(t, "abc", Cut("abc", 0))
	s := Cut("é"+strings.Repeat("x", 10), 1) // é is two bytes: cut before it
	require.Equal(t, "…", s)
	require.Equal(t, "é…", Cut("éé", 3))
}
