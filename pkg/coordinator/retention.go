package coordinator

import "strconv"

// Run-record retention.
//
// A run's final (terminal) record is written with a per-message TTL of
// Config.RunRetention: the runs bucket (provisioned with per-message TTLs)
// removes it when that passes, and leaves a short-lived marker that
// watchers see as a deletion. Records of running runs carry no TTL. The
// KV Update call takes no TTL, so the terminal write publishes to the
// key's subject itself, with the same compare-and-set header Update sends
// (the expected last sequence of the subject is the revision) and the
// Nats-TTL header; a wrong-sequence answer is the same conflict Update
// reports.

// The write is jsRuns.update (runskv.go).

// ttlValue renders a Nats-TTL header value: whole seconds (the header's
// unit), at least 1.
func ttlValue(seconds float64) string {
	return strconv.FormatInt(max(int64(seconds), 1), 10)
}
