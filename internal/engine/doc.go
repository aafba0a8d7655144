// Package engine is the workflow engine's pure core: a compiled definition
// ([Machine], [Compile]), the transition function ([Start], [Apply],
// [Owed]), the run history it keeps, and the retry arithmetic
// ([MaxAttempts], [RetryDelay]). It does no I/O; pkg/coordinator and
// pkg/worker are its shell. Users write workflows against pkg/fsm, which
// imports this package (for Compile, ContentVersion and two sentinels) and
// never the other way round; what the shell needs of pkg/fsm's unexported
// parts it reaches through internal/fsmbridge.
//
// # Transitions
//
// The transition function is pure: [Start] and [Apply] take a compiled
// [Machine], the run record, one input (a task result, a timer fire or a
// cancel request) and the time, and return the next record and the
// [Effects] to publish. [Owed] re-derives what a record owes after a crash.
// Duplicate and late inputs change nothing. Runs are capped at
// MaxTransitions state entries (default 10,000).
//
// # Run history
//
// The transitions keep the run record's History: one step per state
// entered (or split begun), with the times it was entered and left (the
// coordinator's clock, from the now given to Start and Apply), its kind,
// outcome and error, the attempts its task used, the worker of the final
// attempt and that attempt's start and duration (as the task result
// reports them), and for a split the strategy, branch counts and the join's
// decision. Only the last [HistoryMax] steps are kept; the record's Totals
// count every step, attempt and failure, and how many steps were dropped.
// The coordinator sees only a task's final result, so an earlier attempt's
// error is not in the history: it was published as a "retry" event.
package engine
