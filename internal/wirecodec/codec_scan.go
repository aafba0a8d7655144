package wirecodec

import (
	"encoding/binary"
	"fmt"
)

// maxNesting is the deepest nesting of arrays and maps a decoder accepts.
// The deepest wire type (a definition's split task's breaker policy) nests
// six levels; the rest is headroom for [protocol.ErrorInfo] cause chains.
const maxNesting = 64

// scanStructure walks the msgpack encoding in data without decoding it and
// returns an error (which [Decode] wraps in [protocol.ErrMalformed]) when the bytes
// are truncated, use the reserved byte 0xc1, nest deeper than maxNesting,
// have trailing bytes, or declare an array or map with more elements than
// there are bytes left.
//
// It runs before the reflective decoder, which would otherwise trust a
// length prefix: msgpack v5.4.1 preallocates a slice of the declared length
// (its allocation limit is not applied to slices of structs), so five bytes
// of header could make it allocate gigabytes, and its recursion has no
// depth limit. The walk is iterative and does not allocate.
func scanStructure(data []byte) error {
	var stack [maxNesting]uint64 // values still to read in each open container
	stack[0] = 1
	depth := 1
	i := 0
	need := func(n uint64) error {
		if uint64(len(data)-i) < n {
			return fmt.Errorf("truncated at byte %d", i)
		}
		return nil
	}
	for depth > 0 {
		if stack[depth-1] == 0 {
			depth--
			continue
		}
		stack[depth-1]--
		if err := need(1); err != nil {
			return err
		}
		c := data[i]
		i++
		var skip, elems uint64 // payload bytes to skip; values in a container
		container := false
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			// fixint, nil, bool
		case c <= 0x8f: // fixmap
			elems, container = 2*uint64(c&0x0f), true
		case c <= 0x9f: // fixarray
			elems, container = uint64(c&0x0f), true
		case c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		default:
			var err error
			skip, elems, container, err = scanHeader(c, data, &i)
			if err != nil {
				return err
			}
		}
		if container {
			if elems > uint64(len(data)-i) {
				return fmt.Errorf("container at byte %d declares %d values, %d bytes left",
					i, elems, len(data)-i)
			}
			if elems > 0 {
				if depth == maxNesting {
					return fmt.Errorf("nested deeper than %d", maxNesting)
				}
				stack[depth] = elems
				depth++
			}
			continue
		}
		if err := need(skip); err != nil {
			return err
		}
		i += int(skip)
	}
	if i != len(data) {
		return fmt.Errorf("%d trailing bytes", len(data)-i)
	}
	return nil
}

// scanHeader reads the length bytes following the type byte c (0xc1..0xdf)
// at data[*i:], advancing *i past them.
func scanHeader(c byte, data []byte, i *int) (skip, elems uint64, container bool, err error) {
	length := func(size int) (uint64, error) {
		if len(data)-*i < size {
			return 0, fmt.Errorf("truncated at byte %d", *i)
		}
		b := data[*i : *i+size]
		*i += size
		switch size {
		case 1:
			return uint64(b[0]), nil
		case 2:
			return uint64(binary.BigEndian.Uint16(b)), nil
		default:
			return uint64(binary.BigEndian.Uint32(b)), nil
		}
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		skip, err = length(1)
	case 0xc5, 0xda: // bin16, str16
		skip, err = length(2)
	case 0xc6, 0xdb: // bin32, str32
		skip, err = length(4)
	case 0xc7: // ext8: length, type
		skip, err = length(1)
		skip++
	case 0xc8: // ext16
		skip, err = length(2)
		skip++
	case 0xc9: // ext32
		skip, err = length(4)
		skip++
	case 0xcc, 0xd0: // uint8, int8
		skip = 1
	case 0xcd, 0xd1: // uint16, int16
		skip = 2
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		skip = 4
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		skip = 8
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 plus the type byte
		skip = 1 + 1<<(c-0xd4)
	case 0xdc: // array16
		elems, err = length(2)
		container = true
	case 0xdd: // array32
		elems, err = length(4)
		container = true
	case 0xde: // map16
		elems, err = length(2)
		elems *= 2
		container = true
	case 0xdf: // map32
		elems, err = length(4)
		elems *= 2
		container = true
	default: // 0xc1 is never used
		err = fmt.Errorf("reserved byte 0x%02x at byte %d", c, *i-1)
	}
	return skip, elems, container, err
}
