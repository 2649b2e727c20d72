package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/binfmt"
	"github.com/crossrun/crossrun/internal/timerslack"
)

// isExecInit reports whether this re-executed crossrun is a process being
// exec'd into a running container rather than a container's init.
func isExecInit() bool { return os.Getenv(envExecInit) != "" }

// execInitMain is the body of an exec'd process before it execs the user's
// program. The nsenter constructor has put it in the container's namespaces
// (the parent's fork put it in the pid namespace) and the parent has added
// it to the container's cgroup before sending the configuration. It does not
// return.
func execInitMain() {
	runtime.LockOSThread()
	// Non-dumpable until exec: nothing in the container may ptrace this
	// process or open its /proc entries (CVE-2016-9962).
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)

	sock := &syncSocket{os.NewFile(uintptr(envFd(envInitSync)), "sync")}
	code, err := runExecInit(sock)
	msg := oneLine(err)
	if serr := sock.send(msgError, msg); serr != nil {
		fmt.Fprintln(os.Stderr, "crossrun: exec: "+msg)
	}
	os.Exit(code)
}

// runExecInit sets the process up and execs; it returns only on failure,
// with the exit code to report.
func runExecInit(sock *syncSocket) (int, error) {
	m, err := sock.expect(msgExecConfig)
	if err != nil {
		return 1, fmt.Errorf("read exec configuration: %w", err)
	}
	var boot execBootstrap
	if err := json.Unmarshal(m.Data, &boot); err != nil {
		return 1, fmt.Errorf("decode exec configuration: %w", err)
	}
	if boot.Debug {
		logrus.SetLevel(logrus.DebugLevel)
	}
	p := boot.Process
	if p == nil || len(p.Args) == 0 {
		return 1, errors.New("no process to execute")
	}
	if boot.HasConsole {
		fd := envFd(envInitConsole)
		if fd < 0 {
			return 1, errors.New("console descriptor missing")
		}
		if err := setupConsole(os.NewFile(uintptr(fd), "console-socket"), p.ConsoleSize, false); err != nil {
			return 1, err
		}
	}
	// A session keyring of its own, as init has: not crossrun's.
	if _, err := unix.KeyctlJoinSessionKeyring("_ses." + boot.ID); err != nil && !errors.Is(err, unix.ENOSYS) {
		return 1, fmt.Errorf("join a new session keyring: %w", err)
	}
	st := &initState{spec: &specs.Spec{Linux: &specs.Linux{Seccomp: boot.Seccomp}}, sock: sock}
	if err := prepareSeccomp(st); err != nil {
		return 1, err
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return 1, err
	}
	if err := setIOPriority(p.IOPriority); err != nil {
		return 1, err
	}
	if err := setScheduler(p.Scheduler); err != nil {
		return 1, err
	}
	if err := setPersonality(boot.Personality); err != nil {
		return 1, err
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	// Joining the mount namespace made its root (the container's, after
	// its pivot_root) this process's root and working directory.
	cwdErr := unix.Chdir(cwd)
	if cwdErr != nil && !errors.Is(cwdErr, unix.EACCES) {
		return 1, fmt.Errorf("chdir to %q in the container: %w", cwd, cwdErr)
	}
	execPath, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return 127, err
	}
	// The process is to start with the timer slack crossrun was started
	// with (this thread execs it); set before any seccomp filter.
	if err := timerslack.Restore(); err != nil {
		return 1, err
	}
	if err := dropBoundingSet(p.Capabilities); err != nil {
		return 1, err
	}
	if !p.NoNewPrivileges {
		// Without no_new_privs a filter needs CAP_SYS_ADMIN: install it
		// while the process still has it.
		if err := installSeccomp(st); err != nil {
			return 1, err
		}
	}
	if err := setUser(p.User); err != nil {
		return 1, err
	}
	if cwdErr != nil {
		if err := unix.Chdir(cwd); err != nil {
			return 1, fmt.Errorf("chdir to %q in the container as uid %d: %w", cwd, p.User.UID, err)
		}
	}
	if err := applyCapabilities(p.Capabilities); err != nil {
		return 1, err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return 1, fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	umask := 0o022
	if p.User.Umask != nil {
		umask = int(*p.User.Umask)
	}
	unix.Umask(umask)
	// The working directory must be inside the container's root, not a
	// host directory reached through a leaked descriptor (CVE-2024-21626).
	if err := checkCwd(); err != nil {
		return 1, err
	}
	if p.NoNewPrivileges {
		if err := installSeccomp(st); err != nil {
			return 1, err
		}
	}
	// Everything from the sync socket up is close-on-exec; the socket's
	// closing tells the parent that the exec happened.
	if err := closeExtraFds(3 + boot.PreserveFDs); err != nil {
		return 1, err
	}
	err = unix.Exec(execPath, p.Args, p.Env)
	code := 126
	if errors.Is(err, unix.ENOENT) {
		code = 127
	}
	if errors.Is(err, unix.ENOEXEC) || errors.Is(err, unix.ENOENT) {
		// A foreign binary without a handler, a missing ELF loader or #!
		// interpreter: let binfmt say which, from inside the container.
		_, rerr := binfmt.Route("/", p.Args, p.Env, binfmt.Options{UserNS: boot.UserNS, Cwd: cwd, NoPrivate: true})
		var d *binfmt.Diagnosis
		if errors.As(rerr, &d) {
			return code, d
		}
	}
	return code, execError(p.Args[0], execPath, err)
}
