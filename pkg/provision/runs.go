package provision

import "time"

// runRecordMax caps the runs bucket's maximum value size: 1 MiB, the
// decoders' default limit and nats-server's default max_payload. A run
// record is rewritten whole on every transition, so large data belongs
// elsewhere, with a reference in the run's input. The coordinator refuses
// a trigger whose run record would not fit, and every reader decodes run
// records with the bucket's own limit, so what is written can be read back.
const runRecordMax = 1 << 20

// runsMarkerTTL is how long the runs bucket keeps the marker left when a
// record expires. Setting it lets the bucket's records carry their own
// TTL (server 2.11+): the coordinator writes a run's final record with its
// run retention (coordinator.Config.RunRetention), so finished runs do not
// accumulate until the bucket's max age; watchers of the bucket see the
// marker as a deleted key.
const runsMarkerTTL = time.Minute
