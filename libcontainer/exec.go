package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/libcontainer/cgroups"
	"github.com/crossrun/crossrun/spec"
)

// An exec'd process is this binary re-executed through its protected view
// (exeseal.go), like init, with _CROSSRUN_EXEC set. It enters the
// container's namespaces as follows:
//
//   - all of them (user first, then mnt, net, ipc, uts, cgroup, time, pid):
//     the nsenter constructor, before the Go runtime starts. Joining user
//     and mount namespaces needs a single-threaded process, and so does
//     joining a time namespace (the kernel returns EUSERS otherwise), so all
//     of them are joined there, at once;
//   - pid: setns on a pid namespace applies to the children made
//     afterwards, so the constructor then forks, the child goes on inside
//     it, and the parent reports the child's pid and exits. crossrun, a
//     child subreaper, adopts the child. The container thus never sees a
//     process of crossrun that is outside its mount namespace or runs the
//     host's crossrun file: forked from crossrun directly into the pid
//     namespace, the process would show the host's root directory through
//     /proc/PID/root, and the host's binary through /proc/PID/exe, to a
//     container allowed to ptrace, until it execs and joins.
//
// The parent opens the namespace files of the container's init itself and
// checks that init is still the same process afterwards, so a recycled pid
// cannot send the process into a stranger's namespaces; the child gets the
// descriptors and joins /proc/self/fd/N.
//
// The parent then adds the child to the container's cgroup and only then
// sends the configuration: the child does nothing inside the container
// before it is accounted there. The child sets the process attributes up and
// execs; its end of the sync socket is close-on-exec, so the parent reads
// EOF once the exec has happened, or an error message when it failed.

const (
	envExecInit = "_CROSSRUN_EXEC"

	msgExecConfig msgType = "exec-config" // parent -> exec'd process: what to run
)

// ExecOptions describe a process to start in a running container.
type ExecOptions struct {
	// Process is the complete process to run (args, env, cwd, user,
	// capabilities, rlimits ...); the caller merges the container's
	// defaults in.
	Process *specs.Process
	// ConsoleSocket is the path of a unix socket that receives the pty
	// master when Process.Terminal is set.
	ConsoleSocket string
	// Console, when set, receives the pty master instead of ConsoleSocket.
	Console *os.File
	// PidFile receives the process's pid once it has exec'd.
	PidFile string
	// PreserveFDs passes descriptors 3 .. 3+PreserveFDs-1 on.
	PreserveFDs int
}

// ExecStartError is a failure to start an exec'd process. Code is the exit
// code crossrun exec reports: 127 when the program does not exist, 126 when
// it exists but cannot be executed, 1 for any other failure.
type ExecStartError struct {
	Code int
	Msg  string
}

func (e *ExecStartError) Error() string { return e.Msg }

// execBootstrap is what the parent tells the exec'd process.
type execBootstrap struct {
	ID          string                  `json:"id"`
	Process     *specs.Process          `json:"process"`
	Seccomp     *specs.LinuxSeccomp     `json:"seccomp,omitempty"`
	Personality *specs.LinuxPersonality `json:"personality,omitempty"`
	PreserveFDs int                     `json:"preserve_fds"`
	HasConsole  bool                    `json:"has_console"`
	Debug       bool                    `json:"debug"`
	UserNS      bool                    `json:"user_ns"`
}

// Exec starts opts.Process inside the container: in all of its namespaces,
// its cgroup, with its seccomp filter. It returns once the process has
// exec'd the program (or failed to).
func (c *Container) Exec(opts ExecOptions) (_ *Process, err error) {
	// The lock is held while the process is set up, so that a concurrent
	// delete waits; not while it runs. A foreground "crossrun run" holds it
	// for the container's whole life, so exec does not wait for it: it
	// goes on unlocked, and relies on the checks below (init's namespaces
	// opened, then init verified alive; the cgroup joined, never created).
	lock, lerr := lockDirNonBlocking(c.dir)
	switch {
	case lerr == nil:
		defer lock.Close()
	case errors.Is(lerr, unix.EWOULDBLOCK):
		logrus.Debugf("container %s is locked by another crossrun; exec goes on without the lock", c.state.ID)
	case errors.Is(lerr, os.ErrNotExist):
		return nil, fmt.Errorf("container %q does not exist", c.state.ID)
	default:
		return nil, fmt.Errorf("lock container %s: %w", c.state.ID, lerr)
	}
	if st, err := readState(c.dir); err == nil {
		c.state = st
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	id := c.state.ID
	switch st := c.Status(); st {
	case Created, Running:
	case Stopped:
		return nil, fmt.Errorf("cannot exec in a stopped container %s; start a new one", id)
	case Paused:
		return nil, fmt.Errorf("cannot exec in a paused container %s; resume it first", id)
	default:
		return nil, fmt.Errorf("cannot exec in container %s while it is %s", id, st)
	}
	p := opts.Process
	if p == nil || len(p.Args) == 0 || p.Args[0] == "" {
		return nil, errors.New("exec: no program given; pass it after the container id or in --process")
	}
	if p.Terminal && opts.ConsoleSocket == "" && opts.Console == nil {
		return nil, errors.New("exec: a terminal was asked for but no --console-socket was given")
	}
	if !p.Terminal && (opts.ConsoleSocket != "" || opts.Console != nil) {
		return nil, errors.New("exec: --console-socket was given without --tty (or process.terminal)")
	}
	if opts.PreserveFDs < 0 {
		return nil, fmt.Errorf("--preserve-fds %d must not be negative", opts.PreserveFDs)
	}
	cfg := c.state.Config
	if cfg == nil || cfg.Linux == nil {
		return nil, fmt.Errorf("container %s has no saved configuration", id)
	}
	if !nsenterAvailable {
		return nil, errors.New("exec needs crossrun built with cgo (the nsenter constructor joins the container's user and mount namespaces)")
	}

	// Open init's namespaces, then make sure init is still the process
	// the state names: the descriptors are then certainly the container's.
	var nsFiles []*os.File
	defer func() {
		for _, f := range nsFiles {
			f.Close()
		}
	}()
	var pidNS *os.File
	var nsNames []string
	userNS := false
	for _, ns := range cfg.Linux.Namespaces {
		name := spec.NamespaceProcName[ns.Type]
		if name == "" {
			continue
		}
		path := "/proc/" + strconv.Itoa(c.state.InitPid) + "/ns/" + name
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("cannot exec in a stopped container %s; start a new one", id)
			}
			return nil, fmt.Errorf("open the container's %s namespace %s: %w", ns.Type, path, err)
		}
		nsFiles = append(nsFiles, f)
		if ns.Type == specs.UserNamespace {
			userNS = true
		}
		if ns.Type == specs.PIDNamespace {
			pidNS = f
		}
		nsNames = append(nsNames, name)
	}
	if !c.state.initAlive() {
		return nil, fmt.Errorf("cannot exec in a stopped container %s; start a new one", id)
	}

	exe, err := sealedSelf()
	if err != nil {
		return nil, err
	}
	parentSock, childSock, err := newSyncPair()
	if err != nil {
		return nil, err
	}
	defer parentSock.Close()
	defer childSock.Close()

	console := opts.Console
	if p.Terminal && console == nil {
		console, err = dialConsoleSocket(opts.ConsoleSocket)
		if err != nil {
			return nil, err
		}
		defer console.Close()
	}

	// Descriptors 3 .. 3+PreserveFDs-1 are passed through untouched; ours
	// follow them and are closed (close-on-exec) before the exec.
	var extra []*os.File
	for i := 0; i < opts.PreserveFDs; i++ {
		extra = append(extra, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	base := 3 + len(extra)
	extra = append(extra, childSock.f)
	env := []string{
		envInitSync + "=" + strconv.Itoa(base),
		envExecInit + "=1",
		initGoMaxProcs,
	}
	if console != nil {
		env = append(env, envInitConsole+"="+strconv.Itoa(3+len(extra)))
		extra = append(extra, console)
	}
	var joins []string
	for i, f := range nsFiles {
		joins = append(joins, nsNames[i]+":/proc/self/fd/"+strconv.Itoa(3+len(extra)))
		extra = append(extra, f)
	}
	if len(joins) > 0 {
		env = append(env, envNsenter+"="+strings.Join(joins, ","))
	}

	// The cgroup is joined as the process starts: cloned into the v2
	// directory, and moving itself into the v1 ones in the constructor.
	var cgTasks []string
	cgUnified := ""
	for k, dir := range c.state.CgroupPaths {
		if k == "" {
			cgUnified = dir
		} else {
			cgTasks = append(cgTasks, filepath.Join(dir, "tasks"))
		}
	}
	sort.Strings(cgTasks)
	if len(cgTasks) > 0 {
		env = append(env, envCgroupTasks+"="+strings.Join(cgTasks, "\n"))
		if c.state.Rootless {
			env = append(env, envCgroupBestEffort+"=1")
		}
	}
	if pidNS != nil {
		// The nsenter constructor forks the process inside the pid
		// namespace and its parent exits: crossrun, a child subreaper,
		// adopts it and waits for it.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("exec: become a child subreaper: %w", err)
		}
	}
	cmd := &child{
		Path:        "/proc/self/fd/" + strconv.Itoa(int(exe.Fd())),
		Args:        []string{"crossrun", "init"},
		Env:         env,
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  extra,
		SysProcAttr: &syscall.SysProcAttr{},
	}
	if p.Terminal {
		// The pty replaces stdio inside the process.
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	}
	joinUnified := cgUnified != ""
	if cgUnified != "" {
		var into bool
		cmd, into = startIntoCgroup(cmd, cgUnified, (*child).Start)
		joinUnified = !into
	}
	if cmd.Pid == 0 {
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start exec process: %w", err)
		}
	}
	ep := &Process{cmd: cmd, Pid: cmd.Pid}
	childSock.Close()
	defer func() {
		switch {
		case err == nil:
		case !ep.cmd.Exited():
			ep.cmd.Kill()
			_, _ = ep.cmd.Wait()
		}
	}()
	if pidNS != nil {
		// The constructor forked the process inside the pid namespace and
		// says its pid; cmd, its parent, exits.
		m, _, rerr := parentSock.recv()
		ws, werr := cmd.Wait()
		if werr == nil {
			werr = statusError(ws)
		}
		switch {
		case rerr != nil:
			if werr != nil {
				return nil, fmt.Errorf("exec process: %w", werr)
			}
			return nil, fmt.Errorf("exec process: %w", rerr)
		case m.Type == msgError:
			return nil, &ExecStartError{Code: 1, Msg: strings.TrimPrefix(m.Message, "container init: ")}
		case m.Type != msgPid:
			return nil, fmt.Errorf("unexpected message %q from the exec process", m.Type)
		}
		var pid int
		if err := json.Unmarshal(m.Data, &pid); err != nil || pid <= 0 {
			return nil, fmt.Errorf("exec process: bad pid message %s", m.Data)
		}
		ep = &Process{cmd: &child{Pid: pid}, Pid: pid}
	}

	if joinUnified {
		if err := joinCgroups(c.state.Rootless, map[string]string{"": cgUnified}, ep.Pid); err != nil {
			return nil, err
		}
	}
	boot := execBootstrap{
		ID: id, Process: p, Seccomp: cfg.Linux.Seccomp, Personality: cfg.Linux.Personality,
		PreserveFDs: opts.PreserveFDs, HasConsole: console != nil,
		Debug:  logrus.IsLevelEnabled(logrus.DebugLevel),
		UserNS: userNS,
	}
	if err := parentSock.send(msgExecConfig, boot); err != nil {
		// The nsenter constructor may have failed and said why.
		if m, _, rerr := parentSock.recv(); rerr == nil && m.Type == msgError {
			return nil, &ExecStartError{Code: 1, Msg: strings.TrimPrefix(m.Message, "container init: ")}
		}
		return nil, processGone(ep, "exec process", err)
	}
	for {
		m, fds, err := parentSock.recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				// The sync socket closed on exec: the program runs.
				break
			}
			return nil, processGone(ep, "exec process", err)
		}
		switch m.Type {
		case msgError:
			code := 1
			if ws, werr := ep.Wait(); werr == nil && ws.Exited() && ws.ExitStatus() != 0 {
				code = ws.ExitStatus()
			}
			return nil, &ExecStartError{Code: code, Msg: m.Message}
		case msgSeccompFd:
			herr := handleSeccompFd(cfg, c, fds)
			for _, fd := range fds {
				unix.Close(fd)
			}
			if herr != nil {
				return nil, herr
			}
			if err := parentSock.send(msgSeccompDone, nil); err != nil {
				return nil, processGone(ep, "exec process", err)
			}
		default:
			return nil, fmt.Errorf("unexpected message %q from the exec process", m.Type)
		}
	}
	if opts.PidFile != "" {
		if err := writePidFile(opts.PidFile, ep.Pid); err != nil {
			return nil, err
		}
	}
	return ep, nil
}

// joinCgroups moves pid into each of the container's cgroup directories.
// Unlike cgroups.Manager.Apply it never creates one: a cgroup that is gone
// belongs to a deleted container.
func joinCgroups(rootless bool, paths map[string]string, pid int) error {
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dir := paths[k]
		err := cgroups.WritePid(dir, pid)
		if err == nil {
			continue
		}
		if rootless && (errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EROFS)) {
			logrus.Debugf("exec: join cgroup %s: %v (rootless, continuing without it)", dir, err)
			continue
		}
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("add exec process to the container's cgroup: %s is gone; the container is being deleted", dir)
		}
		return fmt.Errorf("add exec process to the container's cgroup %s: %w", dir, err)
	}
	return nil
}
