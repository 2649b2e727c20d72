//go:build linux && cgo

package sigrelay

/*
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int relay_fd = -1;

// relay runs on the Go thread's signal stack (SA_ONSTACK, which the Go
// runtime requires of non-Go handlers) and only makes one write(2), which
// is async-signal-safe. The pipe is non-blocking: with 64 KiB of signals
// not yet read, further ones are dropped rather than block a thread.
static void relay(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	(void)!write(relay_fd, &b, 1);
	errno = saved;
}

// crossrun_catch installs relay for sig, writing to fd; 0 or an errno.
static int crossrun_catch(int fd, int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = relay;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	relay_fd = fd;
	return sigaction(sig, &sa, NULL) == 0 ? 0 : errno;
}
*/
import "C"

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// direct says that Catch installs the C handler in this build.
const direct = true

var (
	pipeOnce sync.Once
	pipeW    int = -1
	pipeErr  error
	pipeOut  chan<- os.Signal
)

func catch(sigs chan<- os.Signal, want []unix.Signal) (left []unix.Signal) {
	pipeOnce.Do(func() {
		var p [2]int
		if pipeErr = unix.Pipe2(p[:], unix.O_CLOEXEC); pipeErr != nil {
			return
		}
		if pipeErr = unix.SetNonblock(p[1], true); pipeErr != nil {
			unix.Close(p[0])
			unix.Close(p[1])
			return
		}
		pipeW, pipeOut = p[1], sigs
		go forward(p[0], sigs)
	})
	if pipeErr != nil || pipeOut != sigs {
		return want
	}
	for _, s := range want {
		if C.crossrun_catch(C.int(pipeW), C.int(s)) != 0 {
			// EINVAL: a signal the C library reserves (32 to 34).
			left = append(left, s)
		}
	}
	return left
}

// forward turns the bytes the handler writes back into signals. Its read
// blocks one thread while there is nothing to relay.
func forward(fd int, sigs chan<- os.Signal) {
	buf := make([]byte, 64)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return
		}
		for _, b := range buf[:n] {
			sigs <- unix.Signal(b)
		}
	}
}
