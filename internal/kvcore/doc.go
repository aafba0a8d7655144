// Package kvcore holds what every kvstore.Store implementation shares:
// the store's sentinel errors (re-exported by pkg/kvstore), key and prefix
// validation, and the msgpack array arithmetic behind Append. It exists so
// that pkg/kvstore (interface, memory store, scopes: no NATS) and
// pkg/kvstore/natskv (the JetStream store) agree on both without widening
// pkg/kvstore's public surface.
package kvcore
