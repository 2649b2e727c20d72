package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/libcontainer/cgroups"
	"github.com/crossrun/crossrun/spec"
)

// CreateOptions are create's inputs besides the configuration.
type CreateOptions struct {
	Root          string
	ID            string
	Bundle        string
	Spec          *specs.Spec
	PidFile       string
	ConsoleSocket string // path of a unix socket to send the pty master to
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFDs   int
	SystemdCgroup bool
	Rootless      bool
	// Console, when set, receives the pty master instead of ConsoleSocket
	// (used by a foreground "run" with a terminal).
	Console *os.File
	// Foreground marks a "run" that waits for the container: init dies if
	// crossrun does.
	Foreground bool
}

// bootstrap is what the parent tells init.
type bootstrap struct {
	ID           string      `json:"id"`
	Bundle       string      `json:"bundle"`
	Rootfs       string      `json:"rootfs"`
	Spec         *specs.Spec `json:"spec"`
	NoPivot      bool        `json:"no_pivot"`
	NoNewKeyring bool        `json:"no_new_keyring"`
	PreserveFDs  int         `json:"preserve_fds"`
	HostPid      int         `json:"host_pid"`
	HasConsole   bool        `json:"has_console"`
	Debug        bool        `json:"debug"`
}

// cgroupReady is the msgCgroup message: sent once the cgroup exists with
// its limits. Tasks are the v1 tasks files init's thread writes itself into
// (see cgroups.Placement); none when the parent placed init.
type cgroupReady struct {
	Tasks      []string `json:"tasks,omitempty"`
	BestEffort bool     `json:"best_effort,omitempty"`
}

// Process is a process crossrun started in a container (init, or one run by
// exec), as seen from the crossrun that started it.
type Process struct {
	// cmd is the child crossrun started or, for an exec joining a pid
	// namespace, that child's own child, forked inside the namespace and
	// adopted by crossrun (a child subreaper) when its parent exited.
	cmd *child
	Pid int
}

// Wait waits for the process to exit and returns its wait status.
func (p *Process) Wait() (syscall.WaitStatus, error) {
	return p.cmd.Wait()
}

// Create makes a container: its state directory, cgroup and init process,
// which it leaves blocked on the exec fifo. On any failure nothing is left
// behind.
func Create(opts CreateOptions) (_ *Container, _ *Process, err error) {
	if err := ValidateID(opts.ID); err != nil {
		return nil, nil, err
	}
	s := opts.Spec
	rootfs := spec.RootfsPath(s, opts.Bundle)
	if err := os.MkdirAll(opts.Root, 0o711); err != nil {
		return nil, nil, fmt.Errorf("create state root %s: %w", opts.Root, err)
	}
	dir := filepath.Join(opts.Root, opts.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, nil, fmt.Errorf("container %q already exists; pick another id or \"crossrun delete %s\" first", opts.ID, opts.ID)
		}
		return nil, nil, fmt.Errorf("create state directory: %w", err)
	}
	faultPoint("after-mkdir")
	lock, err := lockDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("container %q was deleted while it was being created; create it again", opts.ID)
		}
		return nil, nil, err
	}
	if err := ownFreshDir(lock, dir, opts.ID); err != nil {
		// A "delete --force" removed the directory before it was locked,
		// and maybe another create has made it again: it is not ours to
		// use or remove.
		lock.Close()
		return nil, nil, err
	}
	faultPoint("after-state-dir")
	c := &Container{root: opts.Root, dir: dir, lock: lock, state: &State{
		ID:            opts.ID,
		Bundle:        opts.Bundle,
		Rootfs:        rootfs,
		Annotations:   s.Annotations,
		Config:        s,
		SystemdCgroup: opts.SystemdCgroup,
		Rootless:      opts.Rootless,
	}}
	var cg cgroups.Manager
	var cmd *child
	defer func() {
		if err == nil {
			return
		}
		if cmd != nil && cmd.Pid != 0 {
			cmd.Kill()
			_, _ = cmd.Wait()
		}
		if c.state.InitPid > 0 && (cmd == nil || c.state.InitPid != cmd.Pid) {
			_ = unix.Kill(c.state.InitPid, unix.SIGKILL)
			_ = c.waitInitExit(5 * time.Second)
		}
		if cg != nil {
			_ = cg.KillAll(unix.SIGKILL)
			if derr := destroyCgroup(cg); derr != nil {
				logrus.Warnf("after a failed create: %v", derr)
			}
		}
		os.RemoveAll(dir)
		lock.Close()
	}()

	if s.Process.Terminal && opts.ConsoleSocket == "" && opts.Console == nil {
		return nil, nil, errors.New("process.terminal is true but no --console-socket was given; pass one, or set terminal to false")
	}
	if !s.Process.Terminal && (opts.ConsoleSocket != "" || opts.Console != nil) {
		return nil, nil, errors.New("--console-socket was given but process.terminal is false")
	}
	fifoPath := filepath.Join(dir, execFifoName)
	if err := unix.Mkfifo(fifoPath, 0o622); err != nil {
		return nil, nil, fmt.Errorf("create exec fifo: %w", err)
	}
	if err := os.Chmod(fifoPath, 0o622); err != nil {
		return nil, nil, fmt.Errorf("chmod exec fifo: %w", err)
	}
	fifoFd, err := unix.Open(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open exec fifo: %w", err)
	}
	fifo := os.NewFile(uintptr(fifoFd), "exec.fifo")
	defer fifo.Close()
	faultPoint("after-fifo")

	parentSock, childSock, err := newSyncPair()
	if err != nil {
		return nil, nil, err
	}
	defer parentSock.Close()
	defer childSock.Close()

	console := opts.Console
	if opts.ConsoleSocket != "" {
		console, err = dialConsoleSocket(opts.ConsoleSocket)
		if err != nil {
			return nil, nil, err
		}
		defer console.Close()
	}

	exe, err := sealedSelf()
	if err != nil {
		return nil, nil, err
	}

	plan, err := planNamespaces(s)
	if err != nil {
		return nil, nil, err
	}

	// The cgroup comes before init does anything, so that its whole setup
	// is accounted and limited. Where init can join it without being
	// migrated (no user namespace, nothing joined by the constructor), init
	// is cloned into the cgroup v2 directory, made now; the v1 directories
	// and the limits are made while init starts up, and init's thread joins
	// the v1 hierarchies itself once told they are ready (msgCgroup).
	// Otherwise the parent moves init in once it exists.
	cg, err = newCgroup(s, opts.ID, opts.SystemdCgroup, opts.Rootless)
	if err != nil {
		return nil, nil, err
	}
	if cg != nil {
		// The cgroup's paths are saved before anything is made there, so
		// that "delete --force" finds what a create killed at any later
		// step leaves behind.
		c.state.CgroupPaths = cg.Paths()
		if err := writeState(dir, c.state); err != nil {
			return nil, nil, err
		}
		faultPoint("after-state-early")
	}
	fastJoin := cg != nil && plan.nsenter == "" && plan.cloneFlags&unix.CLONE_NEWUSER == 0
	cgTarget := ""
	if fastJoin {
		if cgTarget, err = cg.CloneTarget(); err != nil {
			return nil, nil, err
		}
	}

	// Descriptors 3 .. 3+PreserveFDs-1 are passed through untouched; ours
	// follow them.
	var extra []*os.File
	for i := 0; i < opts.PreserveFDs; i++ {
		extra = append(extra, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	base := 3 + len(extra)
	extra = append(extra, childSock.f, fifo)
	env := []string{
		envInitSync + "=" + strconv.Itoa(base),
		envInitFifo + "=" + strconv.Itoa(base+1),
		initGoMaxProcs,
	}
	if console != nil {
		extra = append(extra, console)
		env = append(env, envInitConsole+"="+strconv.Itoa(base+2))
	}
	if plan.nsenter != "" {
		env = append(env, envNsenter+"="+plan.nsenter)
	}
	env = append(env, faultEnv()...)
	cmd = &child{
		Path:       "/proc/self/fd/" + strconv.Itoa(int(exe.Fd())),
		Args:       []string{"crossrun", "init"},
		Env:        env,
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: plan.cloneFlags,
		},
	}
	if s.Process.Terminal {
		// The terminal replaces stdio inside init; do not hold the caller's.
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	}
	if opts.Foreground && plan.pidPath == "" {
		// Pdeathsig follows the forking thread; with a joined pid
		// namespace that thread ends early, so it is not used there.
		cmd.SysProcAttr.Pdeathsig = unix.SIGKILL
	}
	if plan.cloneFlags&unix.CLONE_NEWUSER != 0 {
		cmd.SysProcAttr.UidMappings = idMaps(s.Linux.UIDMappings)
		cmd.SysProcAttr.GidMappings = idMaps(s.Linux.GIDMappings)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		// Become the namespace's root before exec, so that init keeps
		// its capabilities in the new user namespace.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	if cgTarget != "" {
		var into bool
		cmd, into = startIntoCgroup(cmd, cgTarget, func(c *child) error { return startInit(c, plan) })
		fastJoin = fastJoin && into
	}
	if cmd.Pid == 0 {
		if err := startInit(cmd, plan); err != nil {
			return nil, nil, fmt.Errorf("start container init: %w", err)
		}
	}
	p := &Process{cmd: cmd, Pid: cmd.Pid}
	childSock.Close()
	faultPoint("after-clone")

	c.state.InitPid = p.Pid
	// The start time tells this init from a later process with its pid;
	// without it every later command would take the container for stopped.
	start, err := processStartTime(p.Pid)
	if err != nil {
		if errors.Is(err, unix.ESRCH) || errors.Is(err, os.ErrNotExist) {
			err = processGone(p, "container init", io.EOF)
		}
		return nil, nil, fmt.Errorf("read the start time of container init (pid %d): %w", p.Pid, err)
	}
	c.state.InitStartTime = start
	c.state.Created = time.Now().UTC()
	c.state.Owner = ""

	// The configuration goes first: init decodes it while the cgroup is
	// made, and waits for msgCgroup before it does anything else.
	boot := bootstrap{
		ID: opts.ID, Bundle: opts.Bundle, Rootfs: rootfs, Spec: s,
		NoPivot: opts.NoPivot, NoNewKeyring: opts.NoNewKeyring, PreserveFDs: opts.PreserveFDs,
		HostPid: p.Pid, HasConsole: console != nil, Debug: logrus.IsLevelEnabled(logrus.DebugLevel),
	}
	bootJSON, err := encodeBootstrap(&boot)
	if err != nil {
		return nil, nil, fmt.Errorf("encode configuration for init: %w", err)
	}
	if err := parentSock.send(msgBootstrap, json.RawMessage(bootJSON)); err != nil {
		return nil, nil, fmt.Errorf("send configuration to init: %w", processGone(p, "container init", err))
	}

	var ready cgroupReady
	if fastJoin {
		// Made while init starts up; init joins them itself.
		place, err := cg.Prepare()
		if err != nil {
			return nil, nil, err
		}
		ready.Tasks, ready.BestEffort = place.Tasks, place.BestEffort
	} else if cg != nil {
		if err := cg.Apply(p.Pid); err != nil {
			return nil, nil, fmt.Errorf("add init to cgroup: %w", err)
		}
	}
	if cg != nil {
		if r := containerResources(s); r != nil {
			if err := cg.Set(r); err != nil {
				return nil, nil, fmt.Errorf("set cgroup limits: %w", err)
			}
		}
	}
	if cg != nil {
		c.state.CgroupPaths = cg.Paths()
		faultPoint("after-cgroup")
	}
	if err := parentSock.send(msgCgroup, ready); err != nil {
		return nil, nil, fmt.Errorf("send cgroup to init: %w", processGone(p, "container init", err))
	}
	faultPoint("after-bootstrap")
	// Init works on its configuration while the state is written.
	if err := writeState(dir, c.state); err != nil {
		return nil, nil, err
	}
	if s.Process.OOMScoreAdj != nil {
		if err := setOOMScoreAdj(p.Pid, *s.Process.OOMScoreAdj); err != nil {
			return nil, nil, err
		}
	}
	faultPoint("after-state-write")
	for {
		m, fds, err := parentSock.recv()
		if err != nil {
			return nil, nil, processGone(p, "container init", err)
		}
		switch m.Type {
		case msgError:
			return nil, nil, errors.New(m.Message)
		case msgRunHooks:
			st := c.OCIState()
			st.Status = specs.StateCreating
			st.Pid = p.Pid
			var herr error
			if h := s.Hooks; h != nil {
				// prestart is the runtime-spec 1.0 hook, defined to run once
				// the container is created and before its process starts;
				// it sees "created". createRuntime sees "creating".
				pre := *st
				pre.Status = specs.StateCreated
				if herr = RunHooks("prestart", h.Prestart, &pre); herr == nil {
					herr = RunHooks("createRuntime", h.CreateRuntime, st)
				}
			}
			if herr != nil {
				return nil, nil, herr
			}
			if err := parentSock.send(msgHooksDone, nil); err != nil {
				return nil, nil, processGone(p, "container init", err)
			}
		case msgSeccompFd:
			err := handleSeccompFd(s, c, fds)
			for _, fd := range fds {
				unix.Close(fd)
			}
			if err != nil {
				return nil, nil, err
			}
			if err := parentSock.send(msgSeccompDone, nil); err != nil {
				return nil, nil, processGone(p, "container init", err)
			}
		case msgReady:
			c.state.Ready = true
			c.state.NamespacePaths = namespacePaths(p.Pid, s)
			if err := writeState(dir, c.state); err != nil {
				return nil, nil, err
			}
			faultPoint("after-ready")
			if opts.PidFile != "" {
				if err := writePidFile(opts.PidFile, p.Pid); err != nil {
					return nil, nil, err
				}
			}
			return c, p, nil
		default:
			return nil, nil, fmt.Errorf("unexpected message %q from init", m.Type)
		}
	}
}

// startIntoCgroup starts a copy of cmd cloned straight into the cgroup v2
// directory dir (clone3 CLONE_INTO_CGROUP), with start. It returns the
// started copy and true, or cmd unstarted and false when the kernel or the
// cgroup refuses: the caller then starts cmd and moves the process in.
func startIntoCgroup(cmd *child, dir string, start func(*child) error) (*child, bool) {
	d, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		logrus.Debugf("open cgroup %s: %v", dir, err)
		return cmd, false
	}
	defer d.Close()
	attr := *cmd.SysProcAttr
	attr.UseCgroupFD, attr.CgroupFD = true, int(d.Fd())
	into := *cmd
	into.SysProcAttr = &attr
	if err := start(&into); err != nil {
		logrus.Debugf("clone into cgroup %s: %v", dir, err)
		return cmd, false
	}
	return &into, true
}

// processGone turns a broken sync socket into the most useful error: the
// exit status of the process (what names it: "container init", "exec
// process") when it died.
func processGone(p *Process, what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE) {
		ws, werr := p.Wait()
		if werr == nil {
			if ws.Signaled() {
				return fmt.Errorf("%s was killed by signal %d during setup", what, ws.Signal())
			}
			return fmt.Errorf("%s exited with status %d during setup", what, ws.ExitStatus())
		}
		return fmt.Errorf("%s exited during setup", what)
	}
	return err
}

func idMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, x := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)}
	}
	return out
}

func namespacePaths(pid int, s *specs.Spec) map[string]string {
	out := map[string]string{}
	for _, ns := range s.Linux.Namespaces {
		name := spec.NamespaceProcName[ns.Type]
		out[string(ns.Type)] = "/proc/" + strconv.Itoa(pid) + "/ns/" + name
	}
	return out
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, abs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

func setOOMScoreAdj(pid, score int) error {
	path := "/proc/" + strconv.Itoa(pid) + "/oom_score_adj"
	err := os.WriteFile(path, []byte(strconv.Itoa(score)), 0)
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("set process.oomScoreAdj to %d: permission denied: lowering oom_score_adj needs CAP_SYS_RESOURCE, which this crossrun process does not have; use a value >= the current one", score)
	}
	return fmt.Errorf("set process.oomScoreAdj to %d: %w", score, err)
}

func dialConsoleSocket(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to --console-socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), "console-socket"), nil
}

func lockDirNonBlocking(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// initGoMaxProcs is in the environment of init and of an exec'd process's
// setup (never the container's: it execs with process.env). Their work is
// one locked thread; with more Ps the Go runtime starts spinning threads
// that compete for the CPUs with crossrun's own process, which measurably
// delays the container's start on a small machine (docs/performance.md).
// main.go's init() also asks for one P, but only once the runtime has
// started with one per CPU; the variable applies from the start.
const initGoMaxProcs = "GOMAXPROCS=1"

// Environment variables that carry descriptor numbers to init.
const (
	envInitSync    = "_CROSSRUN_SYNC"
	envInitFifo    = "_CROSSRUN_FIFO"
	envInitConsole = "_CROSSRUN_CONSOLE"
	envNsenter     = "_CROSSRUN_NSENTER"
	// The v1 tasks files the nsenter constructor moves the process into
	// (one per line), and whether a permission error is not fatal.
	envCgroupTasks      = "_CROSSRUN_CGROUP_TASKS"
	envCgroupBestEffort = "_CROSSRUN_CGROUP_BEST_EFFORT"
)

func envFd(name string) int {
	v := os.Getenv(name)
	if v == "" {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return -1
	}
	return n
}
