// Package timerslack keeps the Go runtime's monitor thread from waking
// every few tens of microseconds while crossrun works, and keeps that from
// reaching the processes crossrun starts.
//
// While any of its Ps is busy or blocked in a system call, the Go runtime's
// sysmon thread sleeps 20 µs at a time (usleep), backing off only after 50
// idle rounds. With the kernel's default timer slack of 50 µs that is a
// wake-up every 70-90 µs for the whole of a start, in crossrun and again in
// init: about 100 wake-ups of each, a context switch and a timer interrupt
// each, most of the context switches of a `crossrun run`, and on a 2-CPU
// machine CPU time taken from the other process of the pair. Timer slack
// lets the kernel defer a thread's timers by up to that much, and a thread
// inherits its creator's: a C constructor (timerslack.c) raises the slack
// of the main thread, before the Go runtime starts any thread, to
// Raised, so sysmon wakes about once a millisecond instead. crossrun's own
// timers are retry delays and timeouts, where a millisecond more does not
// matter.
//
// A child inherits the slack of the thread that forks it, and execve keeps
// it. So every process crossrun starts is started with the slack crossrun
// itself was started with: Do around a fork, Exec or Restore before an
// execve. In a build without cgo nothing is raised and these do nothing
// but start or exec.
package timerslack

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Raised is the timer slack of crossrun's threads, in nanoseconds (unless
// crossrun was started with a larger one, which it keeps).
const Raised = 1_000_000

// Host returns the timer slack crossrun was started with, in nanoseconds,
// or 0 when the constructor left it alone (no cgo, a slack of Raised or
// more to begin with, or a real-time thread, which has none).
func Host() uint64 { return host() }

// Restore sets the calling thread's timer slack back to the one crossrun
// was started with. The caller has locked its goroutine to the thread and
// will execve from it (init and the process exec starts, before any seccomp
// filter that might deny prctl).
func Restore() error {
	if h := host(); h != 0 {
		return set(h)
	}
	return nil
}

// Do calls start, which starts a child process, on a thread whose timer
// slack is the one crossrun was started with, so that the child inherits
// that slack rather than crossrun's. The thread's own slack is put back
// afterwards (init, which has restored it already, runs startContainer
// hooks through Do just before it execs).
func Do(start func() error) error {
	h := host()
	if h == 0 {
		return start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, err := get()
	if err != nil {
		return err
	}
	if err := set(h); err != nil {
		return err
	}
	err = start()
	if serr := set(prev); err == nil {
		err = serr
	}
	return err
}

// Exec is unix.Exec with the timer slack crossrun was started with.
func Exec(path string, argv, envv []string) error {
	return Do(func() error { return unix.Exec(path, argv, envv) })
}

func get() (uint64, error) {
	n, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("read the timer slack: %w", err)
	}
	return uint64(n), nil
}

func set(ns uint64) error {
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(ns), 0, 0, 0); err != nil {
		return fmt.Errorf("set the timer slack to %d ns: %w", ns, err)
	}
	return nil
}
