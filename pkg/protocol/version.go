package protocol

import (
	"fmt"

	"github.com/cano-nats/cano/internal/wirecodec/hooks"
)

// SchemaVersion is the wire schema version this build writes and accepts.
const SchemaVersion = 1

// SchemaVersion2 marks a message in a form that builds before it would
// misread rather than refuse: a compact split spec ([SplitSpec.Compact], in
// a TaskResult, a SplitSpecRecord, or a Definition's large static split)
// or a task command whose input stayed in the run record
// ([TaskCommand.InputInRecord]). Those messages are
// written with V = 2 and only then; this build accepts 1 and 2 for their
// types, and an older build refuses 2 with [ErrSchemaVersion] and
// dead-letters the message instead of running a split with no branches or
// a task without its input.
const SchemaVersion2 = 2

// SchemaVersion3 marks a definition with a state whose failures are
// routed to another state ([StateDef.OnFailure]). Such a definition is
// written with V = 3 and only then; a build before it refuses it with
// [ErrSchemaVersion] rather than fail runs the definition says to route.
const SchemaVersion3 = 3

// SchemaVersion4 marks a trigger of a run that starts later
// ([Trigger.StartAt]). Such a trigger is written with V = 4 and only then;
// a build before it refuses it with [ErrSchemaVersion] rather than start
// the run at once.
const SchemaVersion4 = 4

// versioned is implemented by the message types that may carry
// [SchemaVersion2] forms.
type versioned interface{ maxSchemaVersion() uint16 }

// MaxPayloadDefault is the largest message a decoder accepts when no other
// maximum is configured: 1 MiB, the NATS server's default max_payload.
const MaxPayloadDefault = 1 << 20

// Message is implemented by every wire type. The engine's codec checks a
// decoded message's required fields and value domains, and its schema
// version, before anything reads it.
type Message interface {
	// validate checks required fields and value domains after decoding.
	validate() error
	schemaVersion() uint16
}

// ContentTypeJSON is the Content-Type header value that makes a trigger
// or a cancel request decode as JSON instead of msgpack, and that marks
// the JSON events and trigger replies.
const ContentTypeJSON = "application/json"

// HeaderContentType is the header naming a message's encoding.
const HeaderContentType = "Content-Type"

// The codec (internal/wirecodec) checks a decoded message's schema version
// and fields through these hooks.
func init() {
	hooks.CheckSchemaVersion = func(m any) error { return checkSchemaVersion(m.(Message)) }
	hooks.Validate = func(m any) error { return m.(Message).validate() }
}

// checkSchemaVersion returns an error matching [ErrSchemaVersion] when m's
// version is outside what this build knows for its type.
func checkSchemaVersion(m Message) error {
	most := uint16(SchemaVersion)
	if vm, ok := m.(versioned); ok {
		most = vm.maxSchemaVersion()
	}
	if v := m.schemaVersion(); v < SchemaVersion || v > most {
		if most == SchemaVersion {
			return fmt.Errorf("%w: %d (this build knows %d)", ErrSchemaVersion, v, SchemaVersion)
		}
		return fmt.Errorf("%w: %d (this build knows %d to %d)", ErrSchemaVersion, v, SchemaVersion, most)
	}
	return nil
}
