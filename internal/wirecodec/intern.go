package wirecodec

import (
	"hash/maphash"
	"sync/atomic"
)

// Names — workflow, state and task kind names, statuses, formats, worker
// ids — recur in every message, where run ids and payloads do not. A
// decoded name is looked up in a small table of names decoded before and,
// when found, shares that string instead of allocating its own (with the
// canonical-order change of codec_value.go, 3.5 objects fewer per one-task
// run in a coordinator and 3 in a worker, canobench -procs).
//
// The table is direct-mapped (a name's hash picks its one slot) and
// lock-free: a slot holds an immutable string, replaced whole when another
// name hashing to it is decoded. So it never grows, never blocks, and two
// names that collide merely allocate as they would without it.
const (
	internSlots  = 1 << 12 // power of two
	internMaxLen = 64      // longer strings are not names
)

var (
	internSeed  = maphash.MakeSeed()
	internTable [internSlots]atomic.Pointer[string]
)

// intern returns p as a string, shared with an equal one decoded before
// when the table has it.
func intern(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	if len(p) > internMaxLen {
		return string(p)
	}
	slot := &internTable[maphash.Bytes(internSeed, p)&(internSlots-1)]
	if s := slot.Load(); s != nil && *s == string(p) { // (the comparison allocates nothing)
		return *s
	}
	s := string(p)
	slot.Store(&s)
	return s
}

// name reads a string that is a name (see intern); nil reads as "".
func (r *reader) name() string {
	p, _ := r.raw()
	return intern(p)
}
