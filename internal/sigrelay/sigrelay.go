// Package sigrelay catches signals for a foreground crossrun run or exec,
// which passes them on to the container's process, without the Go
// runtime's signal thread.
//
// os/signal enables each signal with a round trip between the calling
// goroutine and the runtime's signal-mask thread (ensureSigM), each a pair
// of thread wake-ups; relaying all 64 that way, plus the two threads it
// starts, cost about 0.5 ms of every foreground start on a 2-CPU machine.
// With cgo, Catch installs one small C handler instead (one sigaction call
// per signal) that writes the signal's number to a pipe, and a goroutine
// turns the bytes back into signals. Signals the kernel raises for a fault
// in crossrun itself stay with the Go runtime, and so do those the Go
// runtime or the C library use themselves: Catch returns the ones it did
// not take, for os/signal.
package sigrelay

import (
	"os"

	"golang.org/x/sys/unix"
)

// runtimeOwned reports the signals never caught here: SIGURG is the Go
// scheduler's preemption signal, SIGPROF its profiler's, SIGCHLD tells
// about crossrun's own children, and the rest report faults (a user-sent
// one is relayed by os/signal, which tells the two apart). SIGKILL and
// SIGSTOP cannot be caught at all. A switch, not a map: a map literal is
// built at every process start, init's included.
func runtimeOwned(s unix.Signal) bool {
	switch s {
	case unix.SIGURG, unix.SIGPROF, unix.SIGCHLD,
		unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGSYS,
		unix.SIGKILL, unix.SIGSTOP:
		return true
	}
	return false
}

// Catch starts delivering the signals of set to sigs and returns those of
// set it left alone, in the order of set: the runtime's own
// (runtimeOwned), any the C library keeps for itself, and all of them in a
// build without cgo. It is meant to be called once per process; signals
// already caught stay caught.
func Catch(sigs chan<- os.Signal, set []unix.Signal) (left []unix.Signal) {
	var want []unix.Signal
	for _, s := range set {
		if !runtimeOwned(s) {
			want = append(want, s)
		}
	}
	refused := map[unix.Signal]bool{}
	if len(want) > 0 {
		for _, s := range catch(sigs, want) {
			refused[s] = true
		}
	}
	for _, s := range set {
		if runtimeOwned(s) || refused[s] {
			left = append(left, s)
		}
	}
	return left
}
