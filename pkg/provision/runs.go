package provision

// RunRecordMax caps the runs bucket's maximum value size: 1 MiB, the
// decoders' default limit and nats-server's default max_payload. A run
// record is rewritten whole on every transition, so large data belongs
// elsewhere, with a reference in the run's input. The coordinator refuses
// a trigger whose run record would not fit, and every reader decodes run
// records with the bucket's own limit, so what is written can be read back.
const RunRecordMax = 1 << 20
