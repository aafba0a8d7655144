package protocol

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// RunHead is the part of a [RunRecord] a list of runs shows. Decoding only
// it ([DecodeRunHead]) skips the history, path, input and output, which
// make up most of a record.
type RunHead struct {
	V          uint16     `msgpack:"v"`
	ID         string     `msgpack:"id"`
	Workflow   string     `msgpack:"workflow"`
	DefVersion string     `msgpack:"def_version"`
	Status     RunStatus  `msgpack:"status"`
	State      string     `msgpack:"state"`
	Error      *ErrorInfo `msgpack:"error,omitempty"`
	CreatedAt  int64      `msgpack:"created_at"`
	UpdatedAt  int64      `msgpack:"updated_at"`
}

// DecodeRunHead decodes the head of an encoded RunRecord, with the checks
// of [Decode] (size, structure, schema version, id present); the other
// fields are skipped. Errors wrap ErrTooLarge, ErrMalformed or
// ErrSchemaVersion.
func DecodeRunHead(data []byte, maxPayload int) (h RunHead, err error) {
	if maxPayload <= 0 {
		maxPayload = MaxPayloadDefault
	}
	if len(data) > maxPayload {
		return h, fmt.Errorf("%w: %d bytes, maximum %d", ErrTooLarge, len(data), maxPayload)
	}
	if len(data) == 0 {
		return h, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if err := scanStructure(data); err != nil {
		return h, fmt.Errorf("%w: run record: %v", ErrMalformed, err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: run record: decoder panic: %v", ErrMalformed, r)
		}
	}()
	if err := msgpack.Unmarshal(data, &h); err != nil {
		return RunHead{}, fmt.Errorf("%w: run record: %v", ErrMalformed, err)
	}
	if h.V != SchemaVersion {
		return RunHead{}, fmt.Errorf("%w: %d (this build knows %d)", ErrSchemaVersion, h.V, SchemaVersion)
	}
	if h.ID == "" {
		return RunHead{}, missing("run_record", "id")
	}
	return h, nil
}
