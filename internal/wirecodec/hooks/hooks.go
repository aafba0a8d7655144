// Package hooks is how internal/wirecodec reaches the checks that
// pkg/protocol keeps unexported (the Message interface's methods).
// pkg/protocol sets it in an init function; internal/wirecodec imports
// pkg/protocol, so it is set before any decode runs.
package hooks

// CheckSchemaVersion returns an error matching protocol.ErrSchemaVersion
// when m, a decoded protocol.Message, carries a schema version this build
// does not know.
var CheckSchemaVersion func(m any) error

// Validate runs the field checks of m, a protocol.Message: required fields
// and value domains.
var Validate func(m any) error
