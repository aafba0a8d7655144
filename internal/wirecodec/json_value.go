package wirecodec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ParseJSON decodes js, one JSON value a person wrote (a run's input typed
// into canoctl or the dashboard), into the Go value a task reads back as
// it was meant: whole numbers become int64 (uint64 above int64's range),
// and so do numbers written as whole floats (1e3, 2.0), so a task decodes
// them into integer fields; other numbers become float64. Its error reads
// after the caller's name for the text: "--input is not valid JSON: …".
func ParseJSON(js []byte) (any, error) {
	return parseJSON(js, true)
}

// parseJSON decodes exactly one JSON value; whole says whether whole floats
// become int64 (see [numbers]).
func parseJSON(js []byte, whole bool) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("is not valid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("holds more than one JSON value")
	}
	return numbers(v, whole), nil
}

// numbers replaces the json.Numbers in v: integers become int64 (uint64
// above int64's range), others float64; with whole, a float that is a
// whole number in int64's range becomes int64 too.
func numbers(v any, whole bool) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := x.Float64()
		if whole && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return int64(f)
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e, whole)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e, whole)
		}
	}
	return v
}
