package wirecodec

import (
	"encoding/binary"
	"math"
)

// The msgpack primitives of the hand-written codecs (fast.go). The writers
// produce exactly the bytes of the encoder Encode configures (compact
// integers, the shortest string, binary and container headers, float64
// kept as float64); the reader accepts what those writers produce, plus the
// other forms the reflective decoder reads the same way, and gives up
// (bad) on anything else, so the caller decodes reflectively instead.

func appendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 256:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// appendBin writes v as binary; nil as nil.
func appendBin(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, 0xc0)
	}
	switch n := len(v); {
	case n < 256:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, v...)
}

func appendUint(b []byte, n uint64) []byte {
	switch {
	case n <= math.MaxInt8:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), n)
}

func appendInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendUint(b, uint64(n))
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

func appendFloat64(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

// appendStrs writes ss as an array of strings; nil as nil.
func appendStrs(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, 0xc0)
	}
	b = appendArrayLen(b, len(ss))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

// reader reads msgpack values from b for the hand-written decoders. The
// first value it cannot read as the reflective decoder would sets bad (and
// every later read returns a zero value): the caller then decodes
// reflectively. It never reads outside b.
type reader struct {
	b   []byte
	i   int
	bad bool
}

func (r *reader) fail() {
	r.bad = true
	r.i = len(r.b)
}

// unset gives up when set: a pointer or slice field read a second time.
func (r *reader) unset(set bool) {
	if set {
		r.fail()
	}
}

func (r *reader) code() byte {
	if r.i >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

// next returns the next n bytes.
func (r *reader) next(n uint64) []byte {
	if uint64(len(r.b)-r.i) < n {
		r.fail()
		return nil
	}
	s := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return s
}

func (r *reader) be(size int) uint64 {
	p := r.next(uint64(size))
	switch len(p) {
	case 1:
		return uint64(p[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(p))
	case 4:
		return uint64(binary.BigEndian.Uint32(p))
	case 8:
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// mapLen reads a map header (a struct); anything else is bad.
func (r *reader) mapLen() int {
	c := r.code()
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f)
	case c == 0xde:
		return int(r.be(2))
	case c == 0xdf:
		return int(r.be(4))
	}
	r.fail()
	return 0
}

// arrayLen reads an array header; isNil reports nil instead.
func (r *reader) arrayLen() (n int, isNil bool) {
	c := r.code()
	switch {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), false
	case c == 0xdc:
		return int(r.be(2)), false
	case c == 0xdd:
		return int(r.be(4)), false
	case c == 0xc0:
		return 0, true
	}
	r.fail()
	return 0, false
}

// raw reads a string or binary value (they decode alike into both strings
// and byte slices); isNil reports nil instead.
func (r *reader) raw() (p []byte, isNil bool) {
	c := r.code()
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9, c == 0xc4:
		n = r.be(1)
	case c == 0xda, c == 0xc5:
		n = r.be(2)
	case c == 0xdb, c == 0xc6:
		n = r.be(4)
	case c == 0xc0:
		return nil, true
	default:
		r.fail()
		return nil, false
	}
	return r.next(n), false
}

// key reads a map key: a string.
func (r *reader) key() []byte {
	p, isNil := r.raw()
	if isNil {
		r.fail()
	}
	return p
}

// str reads a string; nil reads as "".
func (r *reader) str() string {
	p, _ := r.raw()
	return string(p)
}

// bytes reads a copy of a binary (or string) value; nil reads as nil.
func (r *reader) bytes() []byte {
	p, isNil := r.raw()
	if isNil || r.bad {
		return nil
	}
	return append(make([]byte, 0, len(p)), p...)
}

// strs reads an array of strings; nil leaves old as it is.
func (r *reader) strs(old []string) []string {
	n, isNil := r.arrayLen()
	if isNil || r.bad {
		return old
	}
	if n > len(r.b)-r.i { // each string takes a byte at least
		r.fail()
		return old
	}
	ss := make([]string, n)
	for k := range ss {
		ss[k] = r.name() // state names
	}
	return ss
}

// integer reads any integer; nil reads as 0. neg reports a negative value
// (v is then its two's complement).
func (r *reader) integer() (v uint64, neg bool) {
	c := r.code()
	switch {
	case c <= 0x7f:
		return uint64(c), false
	case c >= 0xe0:
		return uint64(int64(int8(c))), true
	}
	switch c {
	case 0xc0:
		return 0, false
	case 0xcc:
		return r.be(1), false
	case 0xcd:
		return r.be(2), false
	case 0xce:
		return r.be(4), false
	case 0xcf:
		return r.be(8), false
	case 0xd0:
		n := int64(int8(r.be(1)))
		return uint64(n), n < 0
	case 0xd1:
		n := int64(int16(r.be(2)))
		return uint64(n), n < 0
	case 0xd2:
		n := int64(int32(r.be(4)))
		return uint64(n), n < 0
	case 0xd3:
		n := int64(r.be(8))
		return uint64(n), n < 0
	}
	r.fail()
	return 0, false
}

// uint reads an unsigned integer of at most limit; a value outside
// [0, limit] is bad (the reflective decoder would truncate it).
func (r *reader) uint(limit uint64) uint64 {
	v, neg := r.integer()
	if neg || v > limit {
		r.fail()
		return 0
	}
	return v
}

// int reads a signed integer within [lo, hi].
func (r *reader) int(lo, hi int64) int64 {
	v, neg := r.integer()
	if !neg && v > math.MaxInt64 {
		r.fail()
		return 0
	}
	n := int64(v)
	if n < lo || n > hi {
		r.fail()
		return 0
	}
	return n
}

func (r *reader) bool() bool {
	switch r.code() {
	case 0xc2:
		return false
	case 0xc3:
		return true
	}
	r.fail()
	return false
}

// float64 reads a float64 (the only form the encoder writes).
func (r *reader) float64() float64 {
	if r.code() != 0xcb {
		r.fail()
		return 0
	}
	return math.Float64frombits(r.be(8))
}

// skip steps over one value, returning its bytes. The bytes passed
// scanStructure, so the nesting is bounded.
func (r *reader) skip() []byte {
	start := r.i
	if r.bad {
		return nil
	}
	remaining := uint64(1)
	for remaining > 0 && !r.bad {
		remaining--
		c := r.code()
		var skip, elems uint64
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c <= 0x8f:
			elems = 2 * uint64(c&0x0f)
		case c <= 0x9f:
			elems = uint64(c & 0x0f)
		case c <= 0xbf:
			skip = uint64(c & 0x1f)
		default:
			var container bool
			var err error
			skip, elems, container, err = scanHeader(c, r.b, &r.i)
			if err != nil {
				r.fail()
				return nil
			}
			_ = container
		}
		if elems > uint64(len(r.b)-r.i) {
			r.fail()
			return nil
		}
		remaining += elems
		r.next(skip)
	}
	if r.bad {
		return nil
	}
	return r.b[start:r.i]
}

// fieldCount is the number of fields a hand-written encoder writes: the
// always-written ones plus each optional one that is set.
func fieldCount(always int, set ...bool) int {
	n := always
	for _, v := range set {
		if v {
			n++
		}
	}
	return n
}

// nilValue consumes a msgpack nil and reports whether there was one.
func (r *reader) nilValue() bool {
	if r.i < len(r.b) && r.b[r.i] == 0xc0 {
		r.i++
		return true
	}
	return false
}
