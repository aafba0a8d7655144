package wirecodec

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/cano-nats/cano/pkg/protocol"
)

// The value codec encodes the user values a message carries as bytes: task
// parameters ([protocol.TaskSpec.Params]), run inputs, task outputs, store values and
// flow inputs. It is part of the wire contract, not a detail of one
// package: a client in another language that triggers a run or reads an
// output must produce and read the same bytes, and the engine compares
// encodings (a definition registered twice must encode the same), so there
// is exactly one, here.
//
// The encoding is canonical msgpack: integers in their smallest form, and
// the entries of every map (and of every struct, which msgpack writes as a
// map of field names) sorted by key: string keys by their text, other keys
// by their encoded bytes, strings first. The same value therefore always
// encodes to the same bytes, whatever the order Go iterates its maps in
// (msgpack's own SetSortMapKeys sorts only map[string]string,
// map[string]bool and map[string]any, not a map[string]int).
//
// A struct field is named by its msgpack tag, else by its json tag, else
// by its Go name (json:"-" and omitempty are honoured as msgpack's own):
// a struct written for JSON, the habit of most Go code, keeps its field
// names, so an input typed as JSON (canoctl, the dashboard, a scheduler
// flow file) decodes into it as it would from JSON, and a Go client's
// value reaches a task under the same names.
const valueFallbackTag = "json"

// EncodeValue returns the canonical msgpack encoding of v (see above). It
// is safe for concurrent use.
func EncodeValue(v any) ([]byte, error) {
	return AppendEncodeValue(nil, v)
}

// AppendEncodeValue appends the encoding of v (see [EncodeValue]) to dst.
func AppendEncodeValue(dst []byte, v any) ([]byte, error) {
	e := valueEncPool.Get().(*encoder)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		valueEncPool.Put(e)
		return dst, fmt.Errorf("protocol: encode value %T: %w", v, err)
	}
	out, _, err := canonAppend(dst, e.buf.Bytes(), 0, 0)
	if e.buf.Cap() <= 64<<10 {
		valueEncPool.Put(e)
	}
	if err != nil {
		return dst, fmt.Errorf("protocol: encode value %T: %w", v, err)
	}
	return out, nil
}

// canonAppend appends the value at data[i:] to dst with every map's entries
// in canonical order (see [EncodeValue]) and returns the index after it.
// data is the encoder's output, so an error means an encoder bug.
func canonAppend(dst, data []byte, i, depth int) ([]byte, int, error) {
	if depth >= maxNesting {
		return dst, i, fmt.Errorf("nested deeper than %d", maxNesting)
	}
	start := i
	skip, elems, container, isMap, i, err := valueHeader(data, i)
	if err != nil {
		return dst, i, err
	}
	if !container {
		if uint64(len(data)-i) < skip {
			return dst, i, fmt.Errorf("truncated at byte %d", i)
		}
		i += int(skip)
		return append(dst, data[start:i]...), i, nil
	}
	dst = append(dst, data[start:i]...)
	if !isMap {
		for range elems {
			if dst, i, err = canonAppend(dst, data, i, depth+1); err != nil {
				return dst, i, err
			}
		}
		return dst, i, nil
	}
	// The entries are written in the order read, each canonical itself;
	// only when two are out of order is the map's region sorted (struct
	// fields are often written in order, a map's rarely).
	base := len(dst)
	var small [8]mapSpan
	spans := small[:0]
	sorted := true
	for j := uint64(0); j < elems/2; j++ {
		k := len(dst)
		if dst, i, err = canonAppend(dst, data, i, depth+1); err != nil {
			return dst, i, err
		}
		v := len(dst)
		if dst, i, err = canonAppend(dst, data, i, depth+1); err != nil {
			return dst, i, err
		}
		spans = append(spans, mapSpan{k: k - base, v: v - base, end: len(dst) - base})
		if n := len(spans); sorted && n > 1 && compareEntries(dst[base:], spans[n-2], spans[n-1]) > 0 {
			sorted = false
		}
	}
	if !sorted {
		dst = sortEntries(dst, base, spans)
	}
	return dst, i, nil
}

// mapSpan is one map entry written at dst[base:]: its key at [k, v), its
// value at [v, end).
type mapSpan struct{ k, v, end int }

// compareEntries orders two entries of region: by key, then by value.
func compareEntries(region []byte, a, b mapSpan) int {
	if c := compareKeys(region[a.k:a.v], region[b.k:b.v]); c != 0 {
		return c
	}
	return bytes.Compare(region[a.v:a.end], region[b.v:b.end])
}

// sortEntries rewrites the entries at dst[base:] in canonical order (a
// stable sort, as equal entries are equal bytes).
func sortEntries(dst []byte, base int, spans []mapSpan) []byte {
	region := append([]byte(nil), dst[base:]...)
	order := append([]mapSpan(nil), spans...)
	slices.SortStableFunc(order, func(a, b mapSpan) int { return compareEntries(region, a, b) })
	dst = dst[:base]
	for _, e := range order {
		dst = append(dst, region[e.k:e.end]...)
	}
	return dst
}

// valueHeader reads the type byte and length bytes of the value at data[i:]
// and returns the payload bytes to skip, or, for an array or map, its
// number of values (a map's keys and values both count), and the index
// after the header.
func valueHeader(data []byte, i int) (skip, elems uint64, container, isMap bool, next int, err error) {
	if i >= len(data) {
		return 0, 0, false, false, i, fmt.Errorf("truncated at byte %d", i)
	}
	c := data[i]
	i++
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return 0, 0, false, false, i, nil
	case c <= 0x8f:
		return 0, 2 * uint64(c&0x0f), true, true, i, nil
	case c <= 0x9f:
		return 0, uint64(c & 0x0f), true, false, i, nil
	case c <= 0xbf:
		return uint64(c & 0x1f), 0, false, false, i, nil
	}
	skip, elems, container, err = scanHeader(c, data, &i)
	return skip, elems, container, c == 0xde || c == 0xdf, i, err
}

// compareKeys orders two encoded map keys: strings first, by their text;
// other keys by their encoded bytes.
func compareKeys(a, b []byte) int {
	as, aok := strPayload(a)
	bs, bok := strPayload(b)
	switch {
	case aok && bok:
		return bytes.Compare(as, bs)
	case aok:
		return -1
	case bok:
		return 1
	}
	return bytes.Compare(a, b)
}

// strPayload returns the text of an encoded msgpack string.
func strPayload(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	switch c := b[0]; {
	case c >= 0xa0 && c <= 0xbf:
		return b[1:], true
	case c == 0xd9 && len(b) >= 2:
		return b[2:], true
	case c == 0xda && len(b) >= 3:
		return b[3:], true
	case c == 0xdb && len(b) >= 5:
		return b[5:], true
	}
	return nil, false
}

// DecodeValue decodes exactly one msgpack value from data into ptr, for
// bytes that came from outside the process (a trigger's input, a task's
// parameters or output, a store value). Before the reflective decoder runs,
// the encoding's structure is checked without allocating (see
// [protocol.ErrMalformed]): a length prefix claiming more elements than there are
// bytes left, nesting deeper than the wire allows, a truncated value or
// trailing bytes are refused, so a few crafted bytes can never make the
// decoder allocate gigabytes. It never panics.
//
// The errors wrap [protocol.ErrMalformed] (not a msgpack value, or one that does not
// fit ptr's type). DecodeValue does not bound len(data): the message or
// record that carried the bytes was already bounded when it was decoded.
func DecodeValue(data []byte, ptr any) (err error) {
	if len(data) == 0 {
		return fmt.Errorf("%w: empty value, decoding into %T", protocol.ErrMalformed, ptr)
	}
	if err := scanStructure(data); err != nil {
		return fmt.Errorf("%w: value for %T: %v", protocol.ErrMalformed, ptr, err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: value for %T: decoder panic: %v", protocol.ErrMalformed, ptr, r)
		}
	}()
	d := valueDecPool.Get().(*decoder)
	d.r.Reset(data)
	err = d.dec.Decode(ptr)
	remaining := d.r.Len()
	d.r.Reset(nil)
	valueDecPool.Put(d)
	if err != nil {
		return fmt.Errorf("%w: value for %T: %v", protocol.ErrMalformed, ptr, err)
	}
	if remaining != 0 {
		return fmt.Errorf("%w: value for %T: %d trailing bytes", protocol.ErrMalformed, ptr, remaining)
	}
	return nil
}

// CheckValue reports whether data is exactly one well-formed msgpack value
// (the structure check of [DecodeValue], without decoding). Errors wrap
// [protocol.ErrMalformed].
func CheckValue(data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: empty value", protocol.ErrMalformed)
	}
	if err := scanStructure(data); err != nil {
		return fmt.Errorf("%w: %v", protocol.ErrMalformed, err)
	}
	return nil
}
