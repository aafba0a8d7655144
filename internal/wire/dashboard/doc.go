// Package dashboard is Cano's web dashboard: runs (filtered, paginated,
// with live counts), a run's detail with its state machine drawn as an SVG
// laid out on the server (the path taken highlighted, the current state
// pulsing), workflows, flows, breakers, workers and dead letters, with the
// actions an operator needs (trigger, cancel, reset, pause and resume a
// flow, replay, delete).
//
// # Runs at scale
//
// The runs page and its counts read a [client.RunIndex] started with the
// events ([Server.StartEvents]): summaries loaded once by a KV watch of the
// runs bucket and kept current by the same watch, so a page costs its own
// size rather than a read of every run record. Config.IndexMaxRuns caps
// it; the page says when older runs are beyond the cap. Until the index
// has loaded (at most a couple of seconds' wait), or without StartEvents,
// the page reads every record instead.
//
// # Live updates
//
// One events stream ([client.Client.Events]) per server feeds every open
// page through server-sent events (/events); the page reacts to events and
// never polls.
//
// # Access
//
// It binds to loopback unless told otherwise; on any other address [New]
// refuses to start without an access token or basic-auth credentials, and
// with credentials every request needs them. Requests that change
// something are refused when a browser says they come from another origin
// (net/http's CrossOriginProtection: Sec-Fetch-Site, or Origin against
// Host). Everything is rendered with html/template.
//
// Assets (templates, CSS, a small script) are embedded in the binary.
package dashboard
