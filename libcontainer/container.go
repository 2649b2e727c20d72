// Package libcontainer is crossrun's engine: it creates containers from a
// runtime-spec configuration, keeps their state, and implements the lifecycle
// operations the command line exposes.
package libcontainer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/libcontainer/cgroups"
)

// Container is a handle on one container's state directory, held under an
// exclusive lock for the handle's lifetime.
type Container struct {
	root  string
	dir   string
	state *State
	lock  *os.File
}

// ID returns the container id.
func (c *Container) ID() string { return c.state.ID }

// State returns the container's saved state.
func (c *Container) State() *State { return c.state }

// Dir returns the container's state directory.
func (c *Container) Dir() string { return c.dir }

// Release drops the container's lock.
func (c *Container) Release() {
	if c.lock != nil {
		c.lock.Close()
		c.lock = nil
	}
}

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// Load opens an existing container without locking it: enough for state
// and list. Operations that change a container call Lock first.
func Load(root, id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q does not exist", id)
		}
		return nil, err
	}
	c := &Container{root: root, dir: dir, state: &State{ID: id}}
	st, err := readStateOf(dir, id)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// The directory exists but state.json does not (yet): a create
			// is under way, or one died before saving anything.
			return c, nil
		}
		return nil, err
	}
	c.state = st
	return c, nil
}

// Lock takes the container's exclusive lock and rereads its state.
func (c *Container) Lock() error {
	if c.lock != nil {
		return nil
	}
	lock, err := lockDir(c.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("container %q does not exist", c.state.ID)
		}
		return err
	}
	c.lock = lock
	st, err := readStateOf(c.dir, c.state.ID)
	if err == nil {
		c.state = st
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Status computes the container's current status.
func (c *Container) Status() Status {
	st := c.state
	if !st.initAlive() {
		// A caller holding the lock itself (delete) knows that no
		// create is under way.
		if st.InitPid == 0 && !st.Ready && c.lock == nil && c.creatorAlive() {
			return Creating
		}
		return Stopped
	}
	if !st.Ready {
		return Creating
	}
	if _, err := os.Lstat(filepath.Join(c.dir, execFifoName)); err == nil {
		return Created
	}
	if m := c.cgroup(); m != nil {
		if fs, err := m.FreezerState(); err == nil && fs == cgroups.Frozen {
			return Paused
		}
	}
	return Running
}

// OCIState returns the runtime-spec state of the container.
func (c *Container) OCIState() *specs.State {
	status := c.Status()
	s := &specs.State{
		Version:     specs.Version,
		ID:          c.state.ID,
		Status:      specs.ContainerState(status),
		Bundle:      c.state.Bundle,
		Annotations: c.state.Annotations,
	}
	if status != Stopped {
		s.Pid = c.state.InitPid
	}
	if status == Paused {
		// The runtime-spec has no "paused"; hooks see "running".
		s.Status = specs.StateRunning
	}
	return s
}

func (c *Container) cgroup() cgroups.Manager {
	if len(c.state.CgroupPaths) == 0 {
		return nil
	}
	m, err := loadCgroup(c.state.CgroupPaths, c.state.SystemdCgroup, c.state.Rootless)
	if err != nil {
		logrus.Debugf("load cgroup of %s: %v", c.state.ID, err)
		return nil
	}
	return m
}

// Start releases a created container's process: it opens the exec fifo,
// which lets init exec the user process, then runs the poststart hooks.
func (c *Container) Start() error {
	status := c.Status()
	if status != Created {
		return fmt.Errorf("cannot start container %s in state %s: only a created container can be started", c.state.ID, status)
	}
	fifoPath := filepath.Join(c.dir, execFifoName)
	if err := releaseExecFifo(fifoPath, c.state.InitPid); err != nil {
		return err
	}
	os.Remove(fifoPath)
	if h := c.state.Config.Hooks; h != nil && len(h.Poststart) > 0 {
		st := c.OCIState()
		st.Status = specs.StateRunning
		RunHooksWarn("poststart", h.Poststart, st)
	}
	return nil
}

// releaseExecFifo opens the fifo for reading and consumes init's byte,
// watching init so that a dead init is reported instead of hanging.
func releaseExecFifo(path string, pid int) error {
	// The pidfd first: once the fifo is open, init may exec a process that
	// exits and is reaped at once, and its pid could not be opened then.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("container init (pid %d) is gone: %w", pid, err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo %s: %w", path, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1)
	got := false
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(pidfd), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait on exec fifo: %w", err)
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			n, err := unix.Read(fd, buf)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("read exec fifo: %w", err)
			}
			if n == 1 {
				got = true
				continue
			}
			if n == 0 && got {
				// EOF: init's end, close-on-exec, went away with execve.
				return nil
			}
		}
		if fds[0].Revents&unix.POLLHUP != 0 && got {
			return nil
		}
		if fds[1].Revents&unix.POLLIN != 0 {
			if got {
				// Started, then exited (or failed to exec).
				return nil
			}
			return fmt.Errorf("container init (pid %d) exited before it could be started", pid)
		}
	}
}

// Signal sends sig to the container's init, or with all to every process in
// its cgroup.
func (c *Container) Signal(sig unix.Signal, all bool) error {
	status := c.Status()
	if status == Stopped || status == Creating && c.state.InitPid == 0 {
		// runc's words: containerd's shim takes "container not running"
		// from kill as "process already finished".
		return fmt.Errorf("cannot signal container %s: %w", c.state.ID, ErrNotRunning)
	}
	if all {
		m := c.cgroup()
		if m == nil {
			return fmt.Errorf("kill --all: container %s has no cgroup to find its processes in", c.state.ID)
		}
		if err := m.KillAll(sig); err != nil {
			return fmt.Errorf("signal processes of %s: %w", c.state.ID, err)
		}
		if status == Paused && (sig == unix.SIGKILL || sig == unix.SIGTERM) {
			// Signals are held while frozen; let them be delivered.
			if err := m.Thaw(); err != nil {
				logrus.Warnf("thaw %s after signalling: %v", c.state.ID, err)
			}
		}
		return nil
	}
	pidfd, err := c.initPidfd()
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		if err == unix.ESRCH {
			return fmt.Errorf("cannot signal container %s: %w", c.state.ID, ErrNotRunning)
		}
		return fmt.Errorf("signal container %s init: %w", c.state.ID, err)
	}
	return nil
}

// initPidfd opens a pidfd on init and checks it is still the same process.
func (c *Container) initPidfd() (int, error) {
	pidfd, err := unix.PidfdOpen(c.state.InitPid, 0)
	if err != nil {
		return -1, fmt.Errorf("container %s: %w", c.state.ID, ErrNotRunning)
	}
	if !c.state.initAlive() {
		unix.Close(pidfd)
		return -1, fmt.Errorf("container %s: %w", c.state.ID, ErrNotRunning)
	}
	return pidfd, nil
}

// waitInitExit waits until init has exited (it need not be our child).
func (c *Container) waitInitExit(timeout time.Duration) error {
	pidfd, err := unix.PidfdOpen(c.state.InitPid, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(pidfd)
	if !c.state.initAlive() {
		return nil
	}
	ms := int(timeout / time.Millisecond)
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("container %s init (pid %d) did not exit within %s", c.state.ID, c.state.InitPid, timeout)
		}
		return nil
	}
}

// Delete removes a stopped container. With force a created, running or
// paused one is killed first; without it, deleting a container that is not
// stopped is an error, as the runtime-spec requires.
func (c *Container) Delete(force bool) error {
	status := c.Status()
	switch status {
	case Stopped:
		c.killAll()
	case Created, Creating, Running, Paused:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s; stop it first or use --force", c.state.ID, status)
		}
		c.killAll()
	}
	return c.destroy()
}

func (c *Container) killAll() {
	// An empty cgroup (the common case once init has exited) needs no
	// freeze-signal-thaw round.
	if m := c.cgroup(); m != nil {
		if pids, err := m.Pids(); err != nil || len(pids) > 0 {
			if err := m.KillAll(unix.SIGKILL); err != nil {
				logrus.Debugf("kill cgroup of %s: %v", c.state.ID, err)
			}
			_ = m.Thaw()
		}
	}
	if c.state.initAlive() {
		if pidfd, err := c.initPidfd(); err == nil {
			_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
			unix.Close(pidfd)
		}
		if err := c.waitInitExit(10 * time.Second); err != nil {
			logrus.Warnf("%v", err)
		}
	}
}

// destroy removes the cgroup and the state directory and runs the poststop
// hooks.
func (c *Container) destroy() error {
	return c.destroyWith(c.cgroup())
}

// destroyWith is destroy with the container's cgroup manager m (nil when
// it has none). A cgroup that processes still hold keeps the state
// directory, so that a later delete finds the cgroup again; the poststop
// hooks wait for that delete.
func (c *Container) destroyWith(m cgroups.Manager) error {
	var errs []error
	if m != nil {
		if err := destroyCgroup(m); err != nil {
			if errors.Is(err, unix.EBUSY) {
				c.Release()
				return err
			}
			errs = append(errs, err) // names the cgroup already
		}
	}
	if c.state.Config != nil && c.state.Config.Hooks != nil && len(c.state.Config.Hooks.Poststop) > 0 {
		st := &specs.State{Version: specs.Version, ID: c.state.ID, Status: specs.StateStopped, Bundle: c.state.Bundle, Annotations: c.state.Annotations}
		RunHooksWarn("poststop", c.state.Config.Hooks.Poststop, st)
	}
	if err := removeStateDir(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove state directory: %w", err))
	}
	c.Release()
	return errors.Join(errs...)
}

// removeStateDir removes a container's state directory. After start it
// holds state.json only: that and the directory go with two calls, and
// anything else with a walk.
func removeStateDir(dir string) error {
	if err := unix.Unlink(filepath.Join(dir, stateFile)); err == nil || errors.Is(err, unix.ENOENT) {
		if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
	}
	return os.RemoveAll(dir)
}

// ownFreshDir checks that lock, taken on the state directory dir that this
// create made, still holds the directory at dir and that it is empty: a
// "delete --force" may have removed it before it was locked, and another
// create may have made and filled a new one since.
func ownFreshDir(lock *os.File, dir, id string) error {
	var held, now unix.Stat_t
	if err := unix.Fstat(int(lock.Fd()), &held); err != nil {
		return fmt.Errorf("stat state directory %s: %w", dir, err)
	}
	if err := unix.Stat(dir, &now); err != nil || held.Dev != now.Dev || held.Ino != now.Ino {
		return fmt.Errorf("container %q was deleted while it was being created; create it again", id)
	}
	if names, err := lock.Readdirnames(1); len(names) > 0 || !errors.Is(err, io.EOF) {
		return fmt.Errorf("container %q already exists; pick another id or \"crossrun delete %s\" first", id, id)
	}
	return nil
}

// DestroyUnreadable removes a container whose state.json cannot be read (see
// ErrCorruptState). What can still be read of the file identifies its init
// (by pid and start time) and its cgroups; without them the cgroup a
// create would have made for id with no linux.cgroupsPath is tried. What
// that finds is killed and removed, then the state directory.
func DestroyUnreadable(root, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	dir := filepath.Join(root, id)
	lock, err := lockDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	st := salvageState(dir, id)
	if len(st.CgroupPaths) == 0 {
		if m, err := newCgroup(&specs.Spec{Linux: &specs.Linux{}}, id, false, false); err == nil && m != nil && m.Exists() {
			st.CgroupPaths = m.Paths()
		}
	}
	if len(st.CgroupPaths) == 0 && st.InitPid == 0 {
		logrus.Warnf("%s: no init pid or cgroup could be read from its state; only the state directory is removed", id)
	}
	c := &Container{root: root, dir: dir, lock: lock, state: st}
	c.killAll()
	return c.destroy()
}

// List returns the ids of all containers under root.
func List(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && ValidateID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// cgroupRemoveLimit bounds how long destroyCgroup retries (a variable for
// the tests).
var cgroupRemoveLimit = 10 * time.Second

// destroyCgroup removes a cgroup whose processes have been killed. Killed
// processes leave their cgroup a moment after the signal, so removal is
// retried, with the survivors killed again, for a bounded time. A cgroup
// still busy then is reported with the processes that hold it.
func destroyCgroup(m cgroups.Manager) error {
	limit := cgroupRemoveLimit
	deadline := time.Now().Add(limit)
	delay := time.Millisecond
	for {
		err := m.Destroy()
		if err == nil || !errors.Is(err, unix.EBUSY) {
			return err
		}
		pids, perr := m.Pids()
		if time.Now().After(deadline) {
			return cgroupBusy(err, pids, limit)
		}
		if perr == nil && len(pids) > 0 {
			_ = m.KillAll(unix.SIGKILL)
		}
		time.Sleep(delay)
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// cgroupBusy explains a cgroup that could not be removed: which processes
// are still in it (at most five named), or that none is.
func cgroupBusy(err error, pids []int, limit time.Duration) error {
	// On a v1 host every hierarchy fails alike: name the first.
	what := err.Error()
	if first, _, more := strings.Cut(what, "\n"); more {
		what = fmt.Sprintf("%s (and %d more cgroup directories)", first, strings.Count(what, "\n"))
	}
	if len(pids) == 0 {
		return &busyError{fmt.Sprintf("%s: no process is left in it after %v, yet the kernel still counts it in use (a process exiting slowly, or a cgroup made inside it that cannot be removed); run delete --force again later", what, limit), err}
	}
	var names []string
	stuck := false
	for i, pid := range pids {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(pids)-i))
			break
		}
		name, state := describeProcess(pid)
		names = append(names, name)
		stuck = stuck || state == "D"
	}
	procs, them := "1 process is", "it has"
	if len(pids) > 1 {
		procs, them = fmt.Sprintf("%d processes are", len(pids)), "they have"
	}
	hint := ""
	if stuck {
		hint = "; a process in uninterruptible sleep (D) dies only when what it waits for (often I/O) ends"
	}
	return &busyError{fmt.Sprintf("%s: %s still in it %v after SIGKILL: %s%s; run delete --force again once %s exited", what, procs, limit, strings.Join(names, ", "), hint, them), err}
}

// busyError is cgroupBusy's error: its own message, the removal's error
// underneath (EBUSY).
type busyError struct {
	msg string
	err error
}

func (e *busyError) Error() string { return e.msg }
func (e *busyError) Unwrap() error { return e.err }

// readProcStat reads /proc/PID/stat (a variable for the tests).
var readProcStat = func(pid int) ([]byte, error) {
	return os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
}

// describeProcess names a process for an error: pid, command and state,
// from /proc/PID/stat. It also returns the state letter ("" if unknown).
func describeProcess(pid int) (string, string) {
	data, err := readProcStat(pid)
	if err != nil {
		return "pid " + strconv.Itoa(pid), ""
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || len(s) < end+3 {
		return "pid " + strconv.Itoa(pid), ""
	}
	state := s[end+2 : end+3]
	what := "state " + state
	switch state {
	case "R":
		what = "R, running"
	case "S":
		what = "S, sleeping"
	case "D":
		what = "D, uninterruptible sleep"
	case "Z":
		what = "Z, zombie"
	case "T", "t":
		what = state + ", stopped"
	}
	return fmt.Sprintf("pid %d %q (%s)", pid, s[open+1:end], what), state
}
