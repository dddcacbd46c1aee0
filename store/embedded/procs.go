package embedded

import (
	"os"
	"runtime"
)

// SpareProc raises GOMAXPROCS by one (the Go runtime's own choice, from
// the CPUs or the container's CPU limit, plus one) and returns a function
// that sets it back. It does nothing when the GOMAXPROCS environment
// variable is set: the operator's value stands.
//
// Why: the engine's SQLite runs in this process, and every commit it
// makes ends in an fsync (Config.Synchronous full), in the calling
// goroutine. Go leaves the processor (P) of a goroutine in a system call
// attached to it until the runtime's monitor takes it back, after 20 µs
// when the monitor is busy but up to 10 ms when it has been idle; an fsync
// of a few hundred µs therefore usually kept one P idle for its whole
// length while other goroutines were ready to run. With the audit trail,
// which commits a few hundred times a second, the execution tracer showed
// one P of two idle 14% of the time during audited reads, mostly while the
// trail's writer was in its syscall with runnable goroutines waiting;
// the spare P runs them (BENCHMARKS.md, issue 7). A thread blocked in
// fsync uses no CPU, so the spare P costs little when nothing syncs.
func SpareProc() (restore func()) {
	if os.Getenv("GOMAXPROCS") != "" {
		return func() {}
	}
	before := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(before + 1)
	return func() { runtime.GOMAXPROCS(before) }
}
