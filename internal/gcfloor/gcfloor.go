// Package gcfloor keeps the Go collector from running more often than once
// per Floor bytes of new allocation while a process's live heap is small.
//
// A coordinator or worker holds little live data (a coordinator about
// 2.5 MB under load) but allocates per message, so with Go's default
// (GOGC=100, a cycle once the heap doubles, and at least every 4 MB) it
// runs the collector dozens of times a second, each cycle paying its fixed
// costs. After each cycle Set's hook sets the collector's percentage so the
// next one starts once the heap reaches Floor, or doubles, whichever is
// more: a small heap gets room up to Floor, a large one Go's default.
//
// It is the process's setting, so only the project's own commands call
// Set (cmd/coordinator, cmd/worker, and canobench as they are run); a
// program that embeds the packages keeps its own. GOGC or GOMEMLIMIT in the
// environment means the operator has chosen: Set then changes nothing.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// Floor is the heap size below which the collector does not start a cycle.
// Measured on 2 cores (canobench -procs, alternating with GOGC=100): 32 MiB
// gave 13 % and 26 % more one-task runs/s in two pairs, 64 MiB 5–22 % in
// four at twice the resident memory. At 32 MiB a coordinator keeps about
// 56 MB resident and a worker about 80 MB, against 27 MB each at GOGC=100.
const Floor = 32 << 20

// on is set while the hook is armed; Stop clears it. adjusted counts the
// hook's runs.
var (
	on       atomic.Bool
	adjusted atomic.Uint64
)

// Set arms the floor unless GOGC or GOMEMLIMIT is set in the environment
// or it is armed already. It reports whether it armed it.
func Set() bool {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return false
	}
	if on.Swap(true) {
		return false
	}
	adjust()
	arm()
	return true
}

// Stop disarms the floor (from its next cycle) and restores Go's default.
func Stop() {
	if on.Swap(false) {
		debug.SetGCPercent(100)
	}
}

// sentinel is the object whose finalizer runs once per collector cycle
// that finds it unreachable: large enough not to share a tiny block, whose
// finalizers may never run.
type sentinel struct{ _ [32]byte }

// arm makes a new sentinel for the next cycle to collect.
func arm() {
	runtime.SetFinalizer(new(sentinel), func(*sentinel) {
		if !on.Load() {
			return
		}
		adjust()
		adjusted.Add(1)
		arm()
	})
}

// adjust sets the collector's percentage from the live heap.
func adjust() {
	debug.SetGCPercent(Percent(liveHeap()))
}

// Percent is the collector percentage that puts the next cycle at Floor
// for a live heap of live bytes, and never below Go's default of 100.
func Percent(live uint64) int {
	if live == 0 || live >= Floor/2 {
		return 100
	}
	return int((Floor - live) * 100 / live)
}

var liveSample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

// liveHeap is the heap the last cycle found live (0 before the first).
func liveHeap() uint64 {
	s := make([]metrics.Sample, 1)
	copy(s, liveSample)
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
