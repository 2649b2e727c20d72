// Command syscallloop times a syscall in a loop and prints nanoseconds per
// call: the seccomp benchmark runs it inside containers with and without a
// profile. Built static (CGO_ENABLED=0).
//
//	syscallloop getpid|personality [iterations]
//
// getpid is allowed outright by Docker's profile, so on Linux 5.11+ the
// kernel's seccomp action cache answers it without running the filter;
// personality(0xffffffff) (a query, no side effect) is allowed by an
// argument check, which the cache cannot answer, so every call runs the
// filter.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: syscallloop getpid|personality [iterations]")
		os.Exit(2)
	}
	n := 2_000_000
	if len(os.Args) > 2 {
		v, err := strconv.Atoi(os.Args[2])
		if err != nil || v <= 0 {
			fmt.Fprintln(os.Stderr, "bad iteration count", os.Args[2])
			os.Exit(2)
		}
		n = v
	}
	var nr, a0 uintptr
	switch os.Args[1] {
	case "getpid":
		nr = syscall.SYS_GETPID
	case "personality":
		nr, a0 = syscall.SYS_PERSONALITY, 0xffffffff
	default:
		fmt.Fprintln(os.Stderr, "unknown syscall", os.Args[1])
		os.Exit(2)
	}
	if _, _, e := syscall.RawSyscall(nr, a0, 0, 0); e != 0 {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], e)
		os.Exit(1)
	}
	best := time.Duration(1<<63 - 1)
	for round := 0; round < 5; round++ {
		start := time.Now()
		for i := 0; i < n; i++ {
			syscall.RawSyscall(nr, a0, 0, 0)
		}
		if d := time.Since(start); d < best {
			best = d
		}
	}
	fmt.Printf("%.1f\n", float64(best.Nanoseconds())/float64(n))
}
