package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// flagBits maps the OCI seccomp flags to SECCOMP_FILTER_FLAG_ bits.
var flagBits = map[specs.LinuxSeccompFlag]uintptr{
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// UsesNotify reports whether any rule of cfg uses SCMP_ACT_NOTIFY, that is
// whether Install will return a listener fd that must reach
// cfg.ListenerPath.
func UsesNotify(cfg *specs.LinuxSeccomp) bool {
	if cfg == nil {
		return false
	}
	for _, sc := range cfg.Syscalls {
		if sc.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

// Install compiles cfg for the host arch and loads it into the calling
// process with seccomp(SECCOMP_SET_MODE_FILTER).
//
// The filter is applied to every thread of the process
// (SECCOMP_FILTER_FLAG_TSYNC), so the Go runtime's other threads are
// covered too. cfg.Flags adds SECCOMP_FILTER_FLAG_LOG, _SPEC_ALLOW and
// _WAIT_KILLABLE_RECV. When a rule uses SCMP_ACT_NOTIFY the filter is
// loaded with SECCOMP_FILTER_FLAG_NEW_LISTENER (and TSYNC_ESRCH, which the
// kernel requires with TSYNC) and the listener fd (close-on-exec) is
// returned; otherwise listenerFd is -1.
//
// Required ordering in the container's init:
//
//  1. runtime.LockOSThread, and no threads started outside the Go runtime;
//  2. everything that needs syscalls the profile may deny (mounts,
//     pivot_root, capabilities, setuid/setgid, rlimits, ...);
//  3. prctl(PR_SET_NO_NEW_PRIVS, 1) unless the process keeps
//     CAP_SYS_ADMIN; with CAP_SYS_ADMIN (noNewPrivileges false) it can
//     be installed before dropping capabilities, as runc does, at the cost
//     of the profile seeing the capability-dropping syscalls;
//  4. Install, as late as possible, so the filter constrains only the
//     container's own code and the few syscalls up to execve;
//  5. with a listener: hand the fd to the runtime (or directly to the
//     agent with SendListenerFd) before anything that could be notified;
//     then execve.
func Install(cfg *specs.LinuxSeccomp) (listenerFd int, err error) {
	f, err := Prepare(cfg)
	if err != nil {
		return -1, err
	}
	return f.Load()
}

// Filter is a filter compiled for the running arch, ready to be loaded.
type Filter struct {
	prog   []unix.SockFilter
	flags  uintptr
	notify bool
}

// Prepare compiles cfg for the arch this program runs on. Compiling
// allocates memory (the syscall tables, the program); a process that lowers
// its own resource limits (RLIMIT_AS, RLIMIT_DATA) before it loads the
// filter compiles it first.
func Prepare(cfg *specs.LinuxSeccomp) (*Filter, error) {
	filter, err := Compile(cfg, runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_TSYNC)
	for _, f := range cfg.Flags {
		bit, ok := flagBits[f]
		if !ok {
			return nil, fmt.Errorf("unknown seccomp flag %q (known: SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)", f)
		}
		flags |= bit
	}
	notify := UsesNotify(cfg)
	if notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	}
	return &Filter{prog: filter, flags: flags, notify: notify}, nil
}

// Load installs the filter, under the ordering rules given for Install,
// and returns the notify listener's descriptor, or -1.
func (f *Filter) Load() (listenerFd int, err error) {
	filter, flags, notify := f.prog, f.flags, f.notify
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		switch errno {
		case unix.EACCES:
			return -1, fmt.Errorf("load seccomp filter: %w: set no_new_privs (process.noNewPrivileges) or keep CAP_SYS_ADMIN until the filter is loaded", errno)
		case unix.ESRCH:
			return -1, fmt.Errorf("load seccomp filter: %w: another thread of the process could not be synchronized", errno)
		case unix.EINVAL:
			return -1, fmt.Errorf("load seccomp filter (flags %#x): %w: the kernel does not support a requested flag or action", flags, errno)
		}
		return -1, fmt.Errorf("load seccomp filter (flags %#x): %w", flags, errno)
	}
	if notify {
		return int(r), nil
	}
	if r != 0 {
		return -1, fmt.Errorf("load seccomp filter: thread %d could not be synchronized", r)
	}
	return -1, nil
}

// SendListenerFd hands a seccomp notify fd to the agent listening on the
// unix socket listenerPath, the way runc does: one message whose payload is
// a specs.ContainerProcessState in JSON (ociVersion, fds ["seccompFd"], the
// container's pid, metadata, the container state) and whose SCM_RIGHTS
// control message carries fd. state is the container's specs.State as
// JSON. The caller keeps fd and closes it after the call.
func SendListenerFd(listenerPath string, metadata string, state []byte, fd int) error {
	var st specs.State
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("seccomp agent %s: decode container state: %w", listenerPath, err)
	}
	msg, err := json.Marshal(specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      st.Pid,
		Metadata: metadata,
		State:    st,
	})
	if err != nil {
		return fmt.Errorf("seccomp agent %s: encode process state: %w", listenerPath, err)
	}
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("connect to seccomp agent (linux.seccomp.listenerPath): %w", err)
	}
	defer unix.Close(sock)
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: listenerPath}); err != nil {
		return fmt.Errorf("connect to seccomp agent (linux.seccomp.listenerPath) %s: %w", listenerPath, err)
	}
	n, err := unix.SendmsgN(sock, msg, unix.UnixRights(fd), nil, 0)
	if err != nil {
		return fmt.Errorf("send seccomp fd to agent %s: %w", listenerPath, err)
	}
	if n != len(msg) {
		return fmt.Errorf("send seccomp fd to agent %s: short write (%d of %d bytes)", listenerPath, n, len(msg))
	}
	return nil
}

// Features describes the seccomp support for `crossrun features`: every
// action, operator and arch the compiler handles, the flags it knows, and
// those the running kernel accepts.
func Features() *features.Seccomp {
	enabled := true
	f := &features.Seccomp{Enabled: &enabled, Archs: Architectures()}
	for _, a := range []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKill, specs.ActKillProcess,
		specs.ActKillThread, specs.ActLog, specs.ActNotify, specs.ActTrace, specs.ActTrap} {
		f.Actions = append(f.Actions, string(a))
	}
	for _, o := range []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan,
		specs.OpLessEqual, specs.OpLessThan, specs.OpMaskedEqual, specs.OpNotEqual} {
		f.Operators = append(f.Operators, string(o))
	}
	for _, fl := range []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv} {
		f.KnownFlags = append(f.KnownFlags, string(fl))
		if flagSupported(flagBits[fl]) {
			f.SupportedFlags = append(f.SupportedFlags, string(fl))
		}
	}
	return f
}

// flagSupported probes the kernel: seccomp(SET_MODE_FILTER) with a NULL
// program fails with EFAULT after the flags were accepted, EINVAL before.
func flagSupported(bit uintptr) bool {
	if bit == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
		// The kernel accepts it only together with a notify listener.
		bit |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, bit, 0)
	return errors.Is(errno, unix.EFAULT)
}
