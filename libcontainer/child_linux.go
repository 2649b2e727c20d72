package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/internal/timerslack"
)

// child is a process crossrun starts from its own binary: init, or the
// process exec runs. It does what crossrun needs of os/exec.Cmd through
// syscall.StartProcess. os.StartProcess, under Cmd, first finds out once
// per process whether pidfds work, by cloning a child that exits at once
// and waiting for it: 0.3 ms on the path of every create here. crossrun
// waits for its own children by pid, which their zombies keep until they
// are reaped, so it needs no pidfd.
type child struct {
	Path string
	Args []string
	Env  []string
	// Stdin, Stdout and Stderr become the child's fds 0-2 (/dev/null when
	// nil), ExtraFiles its fds 3 and up.
	Stdin, Stdout, Stderr *os.File
	ExtraFiles            []*os.File
	SysProcAttr           *syscall.SysProcAttr

	// Pid is set once the child is started. A child crossrun adopted
	// (exec.go) is a child with only Pid set.
	Pid int
	// status is set once it has been reaped.
	status *syscall.WaitStatus
}

// Start starts the child. A child cannot be started twice.
func (c *child) Start() error {
	if c.Pid != 0 {
		return errors.New("start: process already started")
	}
	std := []*os.File{c.Stdin, c.Stdout, c.Stderr}
	var devnull *os.File
	files := make([]uintptr, 0, 3+len(c.ExtraFiles))
	for _, f := range std {
		if f == nil {
			if devnull == nil {
				var err error
				if devnull, err = os.Open(os.DevNull); err != nil {
					return err
				}
				defer devnull.Close()
			}
			f = devnull
		}
		files = append(files, f.Fd())
	}
	for _, f := range c.ExtraFiles {
		files = append(files, f.Fd())
	}
	var pid int
	err := timerslack.Do(func() (err error) {
		pid, _, err = syscall.StartProcess(c.Path, c.Args, &syscall.ProcAttr{
			Env:   c.Env,
			Files: files,
			Sys:   c.SysProcAttr,
		})
		return err
	})
	runtime.KeepAlive(std)
	runtime.KeepAlive(c.ExtraFiles)
	if err != nil {
		return &os.PathError{Op: "fork/exec", Path: c.Path, Err: err}
	}
	c.Pid = pid
	return nil
}

// Wait reaps the child and returns its wait status; once it has, it
// returns that status again.
func (c *child) Wait() (syscall.WaitStatus, error) {
	if c.status != nil {
		return *c.status, nil
	}
	if c.Pid == 0 {
		return 0, errors.New("wait: process not started")
	}
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(c.Pid, &ws, 0, nil)
		if err == nil {
			break
		}
		if err != syscall.EINTR {
			return 0, os.NewSyscallError("wait4", err)
		}
	}
	c.status = &ws
	return ws, nil
}

// Exited reports whether the child has been reaped.
func (c *child) Exited() bool { return c.status != nil }

// Kill sends SIGKILL to a started child that has not been reaped (its pid
// is still its own until then).
func (c *child) Kill() {
	if c.Pid != 0 && c.status == nil {
		_ = unix.Kill(c.Pid, unix.SIGKILL)
	}
}

// statusError describes a wait status other than a clean exit, as
// os/exec's ExitError does; nil for exit status 0.
func statusError(ws syscall.WaitStatus) error {
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
		return nil
	case ws.Exited():
		return fmt.Errorf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Errorf("signal: %v", ws.Signal())
	}
	return fmt.Errorf("wait status %#x", uint32(ws))
}
