package engine

import (
	"errors"
	"fmt"

	"github.com/cano-nats/cano/internal/wirecodec"
)

// EncodeOutput encodes a task output for the wire (nil stays nil).
func EncodeOutput(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return wirecodec.EncodeValue(v)
}

// DecodeOutput decodes a run's output (msgpack) into v. The bytes are
// checked before decoding ([wirecodec.DecodeValue]).
func DecodeOutput(data []byte, v any) error {
	if len(data) == 0 {
		return errors.New("fsm: no output")
	}
	if err := wirecodec.DecodeValue(data, v); err != nil {
		return fmt.Errorf("fsm: decode output: %w", err)
	}
	return nil
}
