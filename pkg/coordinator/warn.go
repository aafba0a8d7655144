package coordinator

import (
	"sync"
	"time"
)

// WarnIntervalDefault is how often the same warning is logged at most.
const WarnIntervalDefault = 10 * time.Second

// repeatKeysMax bounds the warnings a repeats remembers. When it is full,
// warnings that are not yet remembered are limited by their message alone.
const repeatKeysMax = 4096

// repeatFirstsMax bounds how many warnings with the same message but
// different keys (each about its own run) pass in one interval. Past it,
// new keys of that message are limited by the message alone: a broker
// outage that fails every trigger request in flight logs a few of them
// and a count, not one line per request.
const repeatFirstsMax = 10

// repeats rate-limits repeated warnings: the same key (message, reason,
// and the run or input kind it is about) passes at most once per interval,
// and the next one that passes says how many were held back meanwhile.
// The clock is the caller's (now is a parameter). Safe for concurrent use;
// the zero value lets everything pass.
type repeats struct {
	every  time.Duration // ≤ 0: no limit
	max    int           // keys remembered; 0 means repeatKeysMax
	firsts int           // new keys of one message passing per interval; 0 means repeatFirstsMax

	mu   sync.Mutex
	keys map[string]*repeat    // guarded by mu
	msgs map[string]*msgFirsts // guarded by mu; by message
}

// msgFirsts counts the new keys of one message that passed since start.
type msgFirsts struct {
	start time.Time
	n     int
}

type repeat struct {
	last       time.Time // when it last passed
	suppressed int       // held back since
}

// allow reports whether the warning under key, with message msg, may be
// logged at now, and how many repeats of it were held back since it last
// was.
func (r *repeats) allow(key, msg string, now time.Time) (ok bool, suppressed int) {
	if r.every <= 0 {
		return true, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil {
		r.keys = map[string]*repeat{}
	}
	e, seen := r.keys[key]
	if !seen && r.overFirsts(msg, now) {
		key = "\x00" + msg
		e, seen = r.keys[key]
	}
	if !seen {
		max := r.max
		if max <= 0 {
			max = repeatKeysMax
		}
		if len(r.keys) >= max {
			r.prune(now)
		}
		if len(r.keys) >= max {
			// Too many distinct warnings at once: limit them by message.
			key = "\x00" + msg
			e, seen = r.keys[key]
		}
	}
	if !seen {
		r.keys[key] = &repeat{last: now}
		return true, 0
	}
	if now.Sub(e.last) < r.every {
		e.suppressed++
		return false, 0
	}
	suppressed = e.suppressed
	e.last, e.suppressed = now, 0
	return true, suppressed
}

// overFirsts reports whether msg has had its share of new keys in the
// current interval; if not, it counts one more. Called with mu held.
func (r *repeats) overFirsts(msg string, now time.Time) bool {
	limit := r.firsts
	if limit <= 0 {
		limit = repeatFirstsMax
	}
	if r.msgs == nil {
		r.msgs = map[string]*msgFirsts{}
	}
	f := r.msgs[msg]
	if f == nil || now.Sub(f.start) >= r.every {
		f = &msgFirsts{start: now}
		r.msgs[msg] = f
	}
	if f.n >= limit {
		return true
	}
	f.n++
	return false
}

// prune forgets the warnings last logged an interval or more ago. Their
// held-back counts are lost (a repeat after that logs as a first).
func (r *repeats) prune(now time.Time) {
	for k, e := range r.keys {
		if now.Sub(e.last) >= r.every {
			delete(r.keys, k)
		}
	}
}

// warn logs a warning at most once per Config.WarnInterval for the same
// key and message, with the number of repeats held back since the last.
// key names what the warning is about (a run, an input kind) and its reason.
func (c *Coordinator) warn(key, msg string, args ...any) {
	ok, suppressed := c.repeats.allow(key+"\x00"+msg, msg, c.cfg.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	c.log.Warn(msg, args...)
}
