// Command pidfd is the kernel-ABI test program: it forks a child and calls
// pidfd_open (syscall 434 on every architecture, added in Linux 5.3) on the
// child's pid, the way a C program would, and reports like perror:
//
//	succeed pidfd_open
//	failed pidfd_open: Function not implemented
//
// It exits 0 when pidfd_open succeeded, 1 when it failed, and 2 when the
// test itself could not run (the fork failed). It is built with
// CGO_ENABLED=0 so that one static binary per GOARCH runs in a busybox
// rootfs, natively or through qemu-user.
//
// The child is this program again ("pidfd child"): it blocks reading its
// stdin, a pipe, until the parent closes the other end after the call, so
// the pid is alive (not a zombie) when pidfd_open runs.
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

const sysPidfdOpen = 434

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		var b [1]byte
		for {
			if n, err := os.Stdin.Read(b[:]); n == 0 || err != nil {
				os.Exit(0)
			}
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipe:", err)
		os.Exit(2)
	}
	// syscall.ForkExec, not os/exec: os.StartProcess itself uses pidfds on
	// new kernels, and this program must make exactly one pidfd_open call.
	pid, err := syscall.ForkExec(os.Args[0], []string{os.Args[0], "child"}, &syscall.ProcAttr{
		Files: []uintptr{r.Fd(), os.Stdout.Fd(), os.Stderr.Fd()},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fork:", err)
		os.Exit(2)
	}
	r.Close()
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	w.Close()
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	if errno != 0 {
		fmt.Printf("failed pidfd_open: %s\n", perror(errno))
		os.Exit(1)
	}
	syscall.Close(int(fd))
	fmt.Println("succeed pidfd_open")
}

// perror spells an errno the way glibc's strerror does: Go's table has the
// same text with a lower-case first letter.
func perror(e syscall.Errno) string {
	s := e.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
