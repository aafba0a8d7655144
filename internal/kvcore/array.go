package kvcore

import (
	"encoding/binary"
	"fmt"

	"github.com/cano-nats/cano/internal/wirecodec"
)

// ValidateItem checks that b is exactly one msgpack value.
func ValidateItem(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty item", ErrInvalidValue)
	}
	if err := wirecodec.CheckValue(b); err != nil {
		return fmt.Errorf("%w: not a single msgpack value: %v", ErrInvalidValue, err)
	}
	return nil
}

// Msgpack array headers.
const (
	fixArrayMin = 0x90
	fixArrayMax = 0x9f
	array16     = 0xdc
	array32     = 0xdd
)

// arrayHeader parses the msgpack array header at the start of b and returns
// the element count and the header's length. It only looks at the header:
// the elements are trusted to be what Append wrote.
func arrayHeader(b []byte) (n uint64, hdr int, err error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("%w: value is empty, not a msgpack array", ErrTypeMismatch)
	}
	switch c := b[0]; {
	case c >= fixArrayMin && c <= fixArrayMax:
		return uint64(c - fixArrayMin), 1, nil
	case c == array16 && len(b) >= 3:
		return uint64(binary.BigEndian.Uint16(b[1:3])), 3, nil
	case c == array32 && len(b) >= 5:
		return uint64(binary.BigEndian.Uint32(b[1:5])), 5, nil
	default:
		return 0, 0, fmt.Errorf("%w: value is not a msgpack array (first byte 0x%02x)", ErrTypeMismatch, c)
	}
}

func appendArrayHeader(dst []byte, n uint64) []byte {
	switch {
	case n <= 15:
		return append(dst, byte(fixArrayMin+n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, array16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(dst, array32), uint32(n))
	}
}

// AppendItems returns the array cur (nil: none yet) with items appended in
// order. An item that would make the array larger than maxSize bytes is
// left out and its slot in errs (len(items)) is set; the others are kept.
// A cur that is not an array gives a non-nil err and changes nothing.
func AppendItems(cur []byte, items [][]byte, maxSize int) (out []byte, errs []error, err error) {
	var n uint64
	body := []byte(nil)
	if cur != nil {
		var hdr int
		n, hdr, err = arrayHeader(cur)
		if err != nil {
			return nil, nil, err
		}
		body = cur[hdr:]
	}
	errs = make([]error, len(items))
	size := len(body)
	var keep [][]byte
	for i, it := range items {
		if total := size + len(it) + headerLen(n+1); total > maxSize {
			errs[i] = fmt.Errorf("%w: the array would be %d bytes, the maximum value size is %d (values are refused, not chunked)",
				ErrValueTooLarge, total, maxSize)
			continue
		}
		size += len(it)
		n++
		keep = append(keep, it)
	}
	if n > 0xffffffff {
		return nil, nil, fmt.Errorf("%w: array would have more than 2^32-1 items", ErrValueTooLarge)
	}
	out = make([]byte, 0, headerLen(n)+size)
	out = appendArrayHeader(out, n)
	out = append(out, body...)
	for _, it := range keep {
		out = append(out, it...)
	}
	return out, errs, nil
}

func headerLen(n uint64) int {
	switch {
	case n <= 15:
		return 1
	case n <= 0xffff:
		return 3
	default:
		return 5
	}
}

// TooLarge is the error for a value of size bytes under key, larger than
// maxSize.
func TooLarge(key string, size, maxSize int) error {
	return fmt.Errorf("%w: %q: %d bytes, the maximum value size is %d (values are refused, not chunked)",
		ErrValueTooLarge, key, size, maxSize)
}
