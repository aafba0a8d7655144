// Package natskv is the [kvstore.Store] every Cano process uses: a
// JetStream KV bucket (<prefix>_store, created by
// provision.Ensure) shared by all workers of one deployment.
//
// pkg/worker builds one for its tasks from its own connection, so hosting
// workers needs nothing from this package. Build one yourself with [New] to
// read or write the store from elsewhere (a client, a test, a tool):
//
//	st, err := natskv.New(ctx, js, natskv.Config{Prefix: "cano"})
//	...
//	err = kvstore.PutValue(ctx, kvstore.Scoped(st, kvstore.GlobalScope()), "greeting", "hi")
//
// Append is a compare-and-set loop on the key's revision (conflicts are
// detected with jetstream.ErrKeyRevisionMismatch and retried until the
// deadline, then reported as kvstore.ErrConflict); concurrent Appends of
// one process are batched into one write. It lives apart from pkg/kvstore
// so that the authoring packages (pkg/fsm, pkg/join) do not import NATS.
package natskv
