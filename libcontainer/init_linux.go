package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/internal/timerslack"
	"github.com/crossrun/crossrun/libcontainer/cgroups"
	"github.com/crossrun/crossrun/libcontainer/rootfs"
	"github.com/crossrun/crossrun/seccomp"
)

// IsInit reports whether this process was started as a container's init.
func IsInit() bool {
	return len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv(envInitSync) != ""
}

// InitMain is the body of a container's init process: the crossrun binary
// re-executed by create. It sets the container up from the inside, waits on
// the exec fifo, and execs the user process. It does not return.
func InitMain() {
	if isExecInit() {
		execInitMain()
		return
	}
	runtime.LockOSThread()
	// Non-dumpable until exec: nothing in the container may ptrace init or
	// open its /proc entries (CVE-2016-9962).
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)

	syncFd := envFd(envInitSync)
	sock := &syncSocket{os.NewFile(uintptr(syncFd), "sync")}
	err := runInit(sock)
	// runInit only returns on failure.
	msg := "container init: " + oneLine(err)
	if serr := sock.send(msgError, msg); serr != nil {
		fmt.Fprintln(os.Stderr, "crossrun: "+msg)
	}
	os.Exit(1)
}

func oneLine(err error) string {
	if err == nil {
		return "unknown error"
	}
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

type initState struct {
	boot    bootstrap
	spec    *specs.Spec
	sock    *syncSocket
	console *os.File
	seccomp *seccomp.Filter // compiled before the rlimits are set
}

func runInit(sock *syncSocket) error {
	m, err := sock.expect(msgBootstrap)
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	boot, err := decodeBootstrap(m.Data)
	if err != nil {
		return fmt.Errorf("decode configuration: %w", err)
	}
	st := &initState{sock: sock, boot: *boot}
	st.spec = st.boot.Spec
	m, err = sock.expect(msgCgroup)
	if err != nil {
		return fmt.Errorf("wait for the cgroup: %w", err)
	}
	var cg cgroupReady
	if err := json.Unmarshal(m.Data, &cg); err != nil {
		return fmt.Errorf("decode cgroup message: %w", err)
	}
	if len(cg.Tasks) > 0 {
		// On the thread that will exec, before anything else is done.
		if err := cgroups.JoinThread(cg.Tasks, cg.BestEffort); err != nil {
			return err
		}
	}
	faultPoint("init-after-cgroup")
	if st.boot.Debug {
		logrus.SetLevel(logrus.DebugLevel)
	}
	if fd := envFd(envInitConsole); fd >= 0 {
		st.console = os.NewFile(uintptr(fd), "console-socket")
	}
	s := st.spec

	if err := joinNamespaces(s); err != nil {
		return err
	}
	hasNS := map[specs.LinuxNamespaceType]bool{}
	newNS := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		hasNS[ns.Type] = true
		if ns.Path == "" {
			newNS[ns.Type] = true
		}
	}
	if newNS[specs.CgroupNamespace] {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("create cgroup namespace: %w", err)
		}
	}
	if newNS[specs.TimeNamespace] {
		if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
			return fmt.Errorf("create time namespace: %w", err)
		}
		if err := writeTimeOffsets(s.Linux.TimeOffsets); err != nil {
			return err
		}
	}
	if s.Hostname != "" {
		if !hasNS[specs.UTSNamespace] {
			return errors.New("hostname is set but linux.namespaces has no \"uts\" namespace")
		}
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", s.Hostname, err)
		}
	}
	if s.Domainname != "" {
		if !hasNS[specs.UTSNamespace] {
			return errors.New("domainname is set but linux.namespaces has no \"uts\" namespace")
		}
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("set domainname %q: %w", s.Domainname, err)
		}
	}
	faultPoint("init-after-namespaces")

	ropts := rootfs.Options{
		Rootfs:   st.boot.Rootfs,
		Bundle:   st.boot.Bundle,
		NoPivot:  st.boot.NoPivot,
		UserNS:   hasNS[specs.UserNamespace],
		CgroupNS: hasNS[specs.CgroupNamespace],
	}
	if err := rootfs.Mount(s, ropts); err != nil {
		return err
	}
	// Sysctls name the calling task's namespaces, so the host's procfs,
	// still mounted here, writes the container's values.
	for k, v := range s.Linux.Sysctl {
		if err := rootfs.WriteSysctl(k, v); err != nil {
			return fmt.Errorf("set linux.sysctl %s=%s: %w", k, v, err)
		}
	}
	if h := s.Hooks; h != nil && (len(h.Prestart) > 0 || len(h.CreateRuntime) > 0) {
		if err := sock.send(msgRunHooks, nil); err != nil {
			return err
		}
		if _, err := sock.expect(msgHooksDone); err != nil {
			return err
		}
	}
	if h := s.Hooks; h != nil && len(h.CreateContainer) > 0 {
		if err := RunHooks("createContainer", h.CreateContainer, st.hookState(specs.StateCreating)); err != nil {
			return err
		}
	}
	execPath, err := routeExec(st)
	if err != nil {
		return err
	}
	faultPoint("init-after-mounts")
	if err := rootfs.Pivot(s, ropts); err != nil {
		return err
	}
	faultPoint("init-after-pivot")
	if execPath == "" {
		if execPath, err = lookPath(s.Process.Args[0], s.Process.Env); err != nil {
			return err
		}
	}
	if st.console != nil {
		if err := setupConsole(st.console, s.Process.ConsoleSize, true); err != nil {
			return err
		}
	}
	// Fail at create, not after it, when the exec fifo cannot be reached.
	if err := checkExecFifoPath(envFd(envInitFifo)); err != nil {
		return err
	}
	p := s.Process
	if !st.boot.NoNewKeyring {
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + st.boot.ID); err != nil && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("join a new session keyring: %w", err)
		}
	}
	// This thread execs the container's program, which is to start with
	// the timer slack crossrun was started with, not crossrun's own; set
	// before any seccomp filter, which might deny prctl.
	if err := timerslack.Restore(); err != nil {
		return err
	}
	if err := prepareSeccomp(st); err != nil {
		return err
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	if err := setIOPriority(p.IOPriority); err != nil {
		return err
	}
	if err := setScheduler(p.Scheduler); err != nil {
		return err
	}
	if err := setPersonality(s.Linux.Personality); err != nil {
		return err
	}
	cwdErr := unix.Chdir(p.Cwd)
	if cwdErr != nil && !errors.Is(cwdErr, unix.EACCES) {
		return fmt.Errorf("chdir to process.cwd %q: %w", p.Cwd, cwdErr)
	}
	if cwdErr == nil {
		// Before any seccomp filter, which may deny getcwd.
		if err := checkCwd(); err != nil {
			return err
		}
	}
	if err := dropBoundingSet(p.Capabilities); err != nil {
		return err
	}
	if !p.NoNewPrivileges {
		// Without no_new_privs a filter needs CAP_SYS_ADMIN: install it
		// while init still has it.
		if err := installSeccomp(st); err != nil {
			return err
		}
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	if cwdErr != nil {
		if err := unix.Chdir(p.Cwd); err != nil {
			return fmt.Errorf("chdir to process.cwd %q as uid %d: %w", p.Cwd, p.User.UID, err)
		}
		if err := checkCwd(); err != nil {
			return err
		}
	}
	if err := applyCapabilities(p.Capabilities); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set process.noNewPrivileges: %w", err)
		}
	}
	umask := 0o022
	if p.User.Umask != nil {
		umask = int(*p.User.Umask)
	}
	unix.Umask(umask)
	if err := checkRootSearchable(p.User); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		// As late as possible, but while the parent can still take a
		// notify descriptor.
		if err := installSeccomp(st); err != nil {
			return err
		}
	}
	faultPoint("init-before-ready")
	if err := sock.send(msgReady, nil); err != nil {
		return err
	}
	sock.Close()
	faultPoint("init-before-fifo")

	// From here on the parent is gone; errors go to stderr.
	if err := waitExecFifo(); err != nil {
		return die(err)
	}
	if h := s.Hooks; h != nil && len(h.StartContainer) > 0 {
		if err := RunHooks("startContainer", h.StartContainer, st.hookState(specs.StateCreated)); err != nil {
			return die(err)
		}
	}
	if err := closeExtraFds(3 + st.boot.PreserveFDs); err != nil {
		return die(err)
	}
	if err := unix.Exec(execPath, p.Args, p.Env); err != nil {
		return die(execError(p.Args[0], execPath, err))
	}
	return nil
}

// die reports a failure after the parent has gone and exits.
func die(err error) error {
	fmt.Fprintln(os.Stderr, "crossrun: container init: "+oneLine(err))
	os.Exit(127)
	return err
}

func (st *initState) hookState(status specs.ContainerState) *specs.State {
	return &specs.State{
		Version: specs.Version, ID: st.boot.ID, Status: status, Pid: st.boot.HostPid,
		Bundle: st.boot.Bundle, Annotations: st.spec.Annotations,
	}
}

func writeTimeOffsets(offsets map[string]specs.LinuxTimeOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	var b strings.Builder
	for clock, off := range offsets {
		switch clock {
		case "monotonic", "boottime":
		default:
			return fmt.Errorf("linux.timeOffsets: unknown clock %q (monotonic or boottime)", clock)
		}
		fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	if err := os.WriteFile("/proc/self/timens_offsets", []byte(b.String()), 0); err != nil {
		return fmt.Errorf("set linux.timeOffsets: %w", err)
	}
	return nil
}

// waitExecFifo blocks until "crossrun start" opens the exec fifo.
func waitExecFifo() error {
	fd := envFd(envInitFifo)
	path := "/proc/self/fd/" + strconv.Itoa(fd)
	// checkExecFifoPath checked the path before the seccomp filter; what was
	// opened is checked again, with fstat only.
	var fifo, st unix.Stat_t
	if err := unix.Fstat(fd, &fifo); err != nil {
		return fmt.Errorf("stat exec fifo: %w", err)
	}
	w, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if err := unix.Fstat(w, &st); err != nil || st.Dev != fifo.Dev || st.Ino != fifo.Ino {
		unix.Close(w)
		return fmt.Errorf("open exec fifo: %s in the container is not the exec fifo; /proc must be a procfs: add a proc mount on /proc", path)
	}
	// w stays open, close-on-exec: start reads until it goes away with
	// execve, so poststart hooks run after the user process is executing.
	unix.Close(fd)
	if _, err := unix.Write(w, []byte{'0'}); err != nil {
		unix.Close(w)
		return fmt.Errorf("write exec fifo: %w", err)
	}
	return nil
}

// checkRootSearchable fails create with a one-line error when the process,
// with its final credentials, cannot search the container's root directory
// (a rootfs of another owner with mode 0700, and no CAP_DAC_OVERRIDE):
// nothing in the container could be reached, starting with the exec fifo
// and the program, and the process would die right after create.
func checkRootSearchable(u specs.User) error {
	err := unix.Faccessat(unix.AT_FDCWD, "/", unix.X_OK, unix.AT_EACCESS)
	if err == nil || !errors.Is(err, unix.EACCES) {
		return nil
	}
	var st unix.Stat_t
	_ = unix.Stat("/", &st)
	return fmt.Errorf("the container's root directory (owner uid %d, mode %#o) cannot be searched by process.user %d:%d with its capabilities; make the rootfs directory searchable (chmod o+x) or owned by that user", st.Uid, st.Mode&0o7777, u.UID, u.GID)
}

// checkExecFifoPath checks the path through which init reopens the exec
// fifo (open as fd, O_PATH) for writing, /proc/self/fd/N. The path goes
// through the container's /proc; without a proc mount that is the image's
// directory, where /proc/self/fd/N can be a file of its own: init would
// write to it instead of blocking, and the process would start at create
// (CVE-2025-52881). So the path must lead to the fifo init holds.
func checkExecFifoPath(fd int) error {
	path := "/proc/self/fd/" + strconv.Itoa(fd)
	var fifo, st unix.Stat_t
	if err := unix.Fstat(fd, &fifo); err != nil {
		return fmt.Errorf("stat exec fifo: %w", err)
	}
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return errors.New("open exec fifo: /proc is not mounted in the container; add a proc mount on /proc")
		}
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if st.Dev != fifo.Dev || st.Ino != fifo.Ino || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fmt.Errorf("open exec fifo: %s in the container is not the exec fifo; /proc must be a procfs: add a proc mount on /proc", path)
	}
	return nil
}

// checkCwd refuses a working directory outside the container's root, which a
// leaked host directory descriptor could otherwise provide (CVE-2024-21626).
func checkCwd() error {
	wd, err := unix.Getwd()
	if err != nil {
		return fmt.Errorf("process.cwd is not reachable inside the container: %w", err)
	}
	if !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("process.cwd resolves outside the container (%q)", wd)
	}
	return nil
}

// closeExtraFds marks every descriptor from first up close-on-exec, so the
// user process gets stdio and the preserved descriptors only.
func closeExtraFds(first int) error {
	err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	entries, rerr := os.ReadDir("/proc/self/fd")
	if rerr != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %v (and /proc/self/fd: %v)", err, rerr)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		unix.CloseOnExec(fd)
	}
	return nil
}
