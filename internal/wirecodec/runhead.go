package wirecodec

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/cano-nats/cano/pkg/protocol"
)

// RunHead is the part of a [protocol.RunRecord] a list of runs shows. Decoding only
// it ([DecodeRunHead]) skips the history, path, input and output, which
// make up most of a record.
type RunHead struct {
	V          uint16              `msgpack:"v"`
	ID         string              `msgpack:"id"`
	Workflow   string              `msgpack:"workflow"`
	DefVersion string              `msgpack:"def_version"`
	Status     protocol.RunStatus  `msgpack:"status"`
	State      string              `msgpack:"state"`
	Error      *protocol.ErrorInfo `msgpack:"error,omitempty"`
	CreatedAt  int64               `msgpack:"created_at"`
	UpdatedAt  int64               `msgpack:"updated_at"`
	StartAt    int64               `msgpack:"start_at,omitempty"`
}

// DecodeRunHead decodes the head of an encoded protocol.RunRecord, with the checks
// of [Decode] (size, structure, schema version, id present); the other
// fields are skipped. Errors wrap protocol.ErrTooLarge, protocol.ErrMalformed or
// protocol.ErrSchemaVersion.
func DecodeRunHead(data []byte, maxPayload int) (h RunHead, err error) {
	if maxPayload <= 0 {
		maxPayload = protocol.MaxPayloadDefault
	}
	if len(data) > maxPayload {
		return h, fmt.Errorf("%w: %d bytes, maximum %d", protocol.ErrTooLarge, len(data), maxPayload)
	}
	if len(data) == 0 {
		return h, fmt.Errorf("%w: empty", protocol.ErrMalformed)
	}
	if err := scanStructure(data); err != nil {
		return h, fmt.Errorf("%w: run record: %v", protocol.ErrMalformed, err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: run record: decoder panic: %v", protocol.ErrMalformed, r)
		}
	}()
	if err := msgpack.Unmarshal(data, &h); err != nil {
		return RunHead{}, fmt.Errorf("%w: run record: %v", protocol.ErrMalformed, err)
	}
	if h.V != protocol.SchemaVersion {
		return RunHead{}, fmt.Errorf("%w: %d (this build knows %d)", protocol.ErrSchemaVersion, h.V, protocol.SchemaVersion)
	}
	if h.ID == "" {
		return RunHead{}, fmt.Errorf("%w: run_record.id", protocol.ErrMissingField)
	}
	return h, nil
}
