package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/crossrun/crossrun/internal/sigrelay"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// newConsolePair makes the socketpair over which a foreground run or exec
// with a terminal receives the pty master: local stays with crossrun,
// remote goes to the process being started.
func newConsolePair() (local, remote *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "console-local"), os.NewFile(uintptr(fds[1]), "console-remote"), nil
}

// forwardAndWait attaches the terminal (when master is set), forwards the
// signals arriving on sigs to pid until wait returns, and returns the exit
// code as a shell reports it: the status, or 128+N after signal N.
func forwardAndWait(pid int, master *os.File, sigs chan os.Signal, wait func() (syscall.WaitStatus, error)) (int, error) {
	var restore func()
	if master != nil {
		restore = attachTerminal(master)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				sig := s.(unix.Signal)
				switch sig {
				case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
					continue
				case unix.SIGWINCH:
					if master != nil {
						resizeFromStdin(master)
					}
					continue
				}
				if err := unix.Kill(pid, sig); err != nil {
					logrus.Debugf("forward %v to %d: %v", sig, pid, err)
				}
			case <-done:
				return
			}
		}
	}()
	ws, err := wait()
	close(done)
	if restore != nil {
		restore()
	}
	if err != nil && ws == 0 {
		return 0, fmt.Errorf("wait for process %d: %w", pid, err)
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// relaySignals relays every signal crossrun can catch to sigs. Most are
// caught at once by sigrelay's C handler, which costs a system call each.
// What it leaves to os/signal (user-sent fault signals, and everything in a
// build without cgo) comes in two steps, because enabling a signal there
// is a round trip to the Go runtime's signal thread (about 7 us of two
// threads' time each) that competes for the CPUs with the container's init
// starting up: the signals a runtime in the foreground is sent in practice
// (commonSignals) are enabled in the background while the container is set
// up, and ready waits for them; the caller calls it before the process
// starts. rest enables all the others, in the background: the caller calls
// it once the process runs. Until then such a signal does to crossrun what
// it does to any Go program. The relay is never stopped: the caller exits
// when the process does.
func relaySignals(sigs chan os.Signal) (ready, rest func()) {
	var all []unix.Signal
	for s := unix.Signal(1); s <= maxSignal; s++ {
		all = append(all, s)
	}
	left := sigrelay.Catch(sigs, all)
	var early, late []os.Signal
	for _, s := range left {
		if isCommonSignal(s) {
			early = append(early, s)
		} else if !notRelayed(s) {
			late = append(late, s)
		}
	}
	done := make(chan struct{})
	if len(early) > 0 {
		go func() {
			signal.Notify(sigs, early...)
			close(done)
		}()
	} else {
		close(done)
	}
	ready = func() { <-done }
	rest = func() {
		go func() {
			<-done
			if len(late) > 0 {
				signal.Notify(sigs, late...)
			}
			logrus.Debug("every signal is relayed to the container's process")
		}()
	}
	return ready, rest
}

// notRelayed reports the signals not asked of os/signal: SIGKILL and
// SIGSTOP cannot be caught, forwardAndWait drops SIGCHLD and SIGURG (the Go
// scheduler's), and os/signal never delivers SIGPROF.
func notRelayed(s unix.Signal) bool {
	switch s {
	case unix.SIGKILL, unix.SIGSTOP, unix.SIGCHLD, unix.SIGURG, unix.SIGPROF:
		return true
	}
	return false
}

// commonSignals are relayed from before the container's process starts.
var commonSignals = []unix.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGALRM, unix.SIGWINCH, unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU,
}

func isCommonSignal(s unix.Signal) bool {
	for _, c := range commonSignals {
		if s == c {
			return true
		}
	}
	return false
}

// recvConsole receives the pty master sent over the console socket.
func recvConsole(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receive console: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, errors.New("receive console: no descriptor sent")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, errors.New("receive console: no descriptor sent")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// attachTerminal copies between our stdio and the container's pty, with our
// terminal in raw mode when stdin is one. It returns a function that
// restores the terminal.
func attachTerminal(master *os.File) func() {
	var saved *unix.Termios
	if t, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		saved = t
		raw := *t
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN] = 1
		raw.Cc[unix.VTIME] = 0
		_ = unix.IoctlSetTermios(0, unix.TCSETS, &raw)
		resizeFromStdin(master)
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	outDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(os.Stdout, master)
		close(outDone)
	}()
	return func() {
		<-outDone
		if saved != nil {
			_ = unix.IoctlSetTermios(0, unix.TCSETS, saved)
		}
	}
}

func resizeFromStdin(master *os.File) {
	ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
}
