// Package leader elects one leader among many candidates with a lease on a
// JetStream KV bucket, without any lock service besides the broker.
//
// # Protocol
//
// The bucket has a TTL (provision creates the leader bucket with
// TTL = LeaderTTL and LimitMarkerTTL, so an expiry leaves a marker that
// watchers see). A candidate campaigns with KV Create on one key; the winner's
// revision is its fencing epoch ([Term.Epoch]). The leader renews every
// RenewInterval (TTL/3 by default) with a compare-and-set Update. On any
// renewal error, timeouts included, and on any foreign write to the key seen
// by its watcher, it steps down at once: the term's context is cancelled
// before the lease could have expired on the server. Followers watch the key
// and campaign again as soon as it is deleted or expires, and at least every
// RenewInterval, so an abandoned lease (a leader killed with SIGKILL) is taken
// over within TTL plus one renewal interval. A graceful [Elector.Stop]
// releases the lease (delete with a last-revision check) for a fast hand-over.
//
// # Use
//
//	e, err := leader.New(js, leader.Config{
//		Bucket: layout.LeaderBucket(names),
//		OnElected: func(ctx context.Context, t leader.Term) {
//			// lead until ctx is done; carry t.Epoch on what you publish
//		},
//	})
//	err = e.Start(ctx)
//	defer e.Stop(ctx)
package leader
