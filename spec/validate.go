package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// NamespaceFlags maps each OCI namespace type to its clone flag.
var NamespaceFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// NamespaceProcName is the name of each namespace under /proc/PID/ns.
var NamespaceProcName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.MountNamespace:   "mnt",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.UserNamespace:    "user",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// Validate checks a configuration for the mistakes crossrun can detect before
// starting anything. Each error names the offending field.
func Validate(s *specs.Spec, bundle string) error {
	if s.Version == "" {
		return errors.New("field ociVersion is missing; set it to \"" + specs.Version + "\"")
	}
	major, _, _, err := Version(s.Version)
	if err != nil {
		return err
	}
	if major != specs.VersionMajor {
		return fmt.Errorf("ociVersion %q is not supported: crossrun reads runtime-spec %d.x (up to %s)", s.Version, specs.VersionMajor, specs.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("field root.path is missing; point it at the container's root filesystem (e.g. \"rootfs\")")
	}
	rootfs := RootfsPath(s, bundle)
	st, err := os.Stat(rootfs)
	if err != nil {
		return fmt.Errorf("root.path %q: %w", s.Root.Path, unwrapPathError(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("root.path %q: not a directory", s.Root.Path)
	}
	if s.Process == nil {
		return errors.New("field process is missing; the container needs a process to run")
	}
	if err := validateProcess(s.Process); err != nil {
		return err
	}
	if s.Linux == nil {
		return errors.New("field linux is missing; crossrun runs Linux containers only")
	}
	if err := validateNamespaces(s); err != nil {
		return err
	}
	for i, m := range s.Mounts {
		if m.Destination == "" {
			return fmt.Errorf("mounts[%d].destination is missing", i)
		}
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mounts[%d].destination %q is not an absolute path", i, m.Destination)
		}
	}
	for i, d := range s.Linux.Devices {
		if !filepath.IsAbs(d.Path) {
			return fmt.Errorf("linux.devices[%d].path %q is not an absolute path", i, d.Path)
		}
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return fmt.Errorf("linux.devices[%d].type %q is not one of c, b, u, p", i, d.Type)
		}
	}
	for i, p := range s.Linux.MaskedPaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("linux.maskedPaths[%d] %q is not an absolute path", i, p)
		}
	}
	for i, p := range s.Linux.ReadonlyPaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("linux.readonlyPaths[%d] %q is not an absolute path", i, p)
		}
	}
	switch s.Linux.RootfsPropagation {
	case "", "shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable":
	default:
		return fmt.Errorf("linux.rootfsPropagation %q is not a propagation mode (shared, slave, private, unbindable, and their r- forms)", s.Linux.RootfsPropagation)
	}
	if err := validateHooks(s.Hooks); err != nil {
		return err
	}
	for k := range s.Linux.Sysctl {
		if k == "" || strings.Contains(k, "..") || strings.HasPrefix(k, "/") {
			return fmt.Errorf("linux.sysctl key %q is not a valid sysctl name", k)
		}
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		// Quoted: the path comes from config.json and may hold a line
		// break, which would split the one-line error.
		return fmt.Errorf("%q: %w", pe.Path, pe.Err)
	}
	return err
}

func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return errors.New("field process.args is empty; give the command to run")
	}
	if p.Cwd == "" {
		return errors.New("field process.cwd is missing; use \"/\"")
	}
	if !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd %q is not an absolute path", p.Cwd)
	}
	for i, e := range p.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("process.env[%d] %q is not of the form NAME=value", i, e)
		}
	}
	for i, r := range p.Rlimits {
		if _, ok := RlimitResources[r.Type]; !ok {
			return fmt.Errorf("process.rlimits[%d].type %q is not a known rlimit", i, r.Type)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits[%d] %s: soft limit %d is above hard limit %d", i, r.Type, r.Soft, r.Hard)
		}
	}
	if p.Capabilities != nil {
		for set, list := range map[string][]string{
			"bounding": p.Capabilities.Bounding, "effective": p.Capabilities.Effective,
			"inheritable": p.Capabilities.Inheritable, "permitted": p.Capabilities.Permitted,
			"ambient": p.Capabilities.Ambient,
		} {
			for _, c := range list {
				if _, ok := CapabilityNames[strings.ToUpper(c)]; !ok {
					return fmt.Errorf("process.capabilities.%s: unknown capability %q", set, c)
				}
			}
		}
	}
	if p.IOPriority != nil {
		switch p.IOPriority.Class {
		case specs.IOPRIO_CLASS_RT, specs.IOPRIO_CLASS_BE, specs.IOPRIO_CLASS_IDLE:
		default:
			return fmt.Errorf("process.ioPriority.class %q is not IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE", p.IOPriority.Class)
		}
		if p.IOPriority.Priority < 0 || p.IOPriority.Priority > 7 {
			return fmt.Errorf("process.ioPriority.priority %d is outside 0..7", p.IOPriority.Priority)
		}
	}
	return nil
}

func validateNamespaces(s *specs.Spec) error {
	seen := map[specs.LinuxNamespaceType]bool{}
	hasUser := false
	for i, ns := range s.Linux.Namespaces {
		if _, ok := NamespaceFlags[ns.Type]; !ok {
			return fmt.Errorf("linux.namespaces[%d].type %q is not a namespace type (pid, network, mount, ipc, uts, user, cgroup, time)", i, ns.Type)
		}
		if seen[ns.Type] {
			return fmt.Errorf("linux.namespaces[%d]: namespace %q is listed twice", i, ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" {
			if !filepath.IsAbs(ns.Path) {
				return fmt.Errorf("linux.namespaces[%d].path %q is not an absolute path", i, ns.Path)
			}
			if _, err := os.Stat(ns.Path); err != nil {
				return fmt.Errorf("linux.namespaces[%d].path: %w", i, unwrapPathError(err))
			}
		}
		if ns.Type == specs.UserNamespace {
			hasUser = true
		}
	}
	if !seen[specs.MountNamespace] {
		return errors.New("linux.namespaces has no \"mount\" namespace; crossrun needs one to set up the root filesystem")
	}
	if hasUser {
		if len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0 {
			for _, ns := range s.Linux.Namespaces {
				if ns.Type == specs.UserNamespace && ns.Path != "" {
					return nil
				}
			}
			return errors.New("linux.uidMappings and linux.gidMappings are required with a new user namespace")
		}
	} else if len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0 {
		return errors.New("linux.uidMappings/gidMappings are set but linux.namespaces has no \"user\" namespace")
	}
	if s.Linux.TimeOffsets != nil && !seen[specs.TimeNamespace] {
		return errors.New("linux.timeOffsets is set but linux.namespaces has no \"time\" namespace")
	}
	if len(s.Linux.Sysctl) > 0 {
		for k := range s.Linux.Sysctl {
			if strings.HasPrefix(k, "net.") && !seen[specs.NetworkNamespace] {
				return fmt.Errorf("linux.sysctl %q needs a \"network\" namespace of the container's own", k)
			}
		}
	}
	return nil
}

func validateHooks(h *specs.Hooks) error {
	if h == nil {
		return nil
	}
	lists := map[string][]specs.Hook{
		"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer,
		"startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop,
	}
	for name, hooks := range lists {
		for i, hk := range hooks {
			if !filepath.IsAbs(hk.Path) {
				return fmt.Errorf("hooks.%s[%d].path %q is not an absolute path", name, i, hk.Path)
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				return fmt.Errorf("hooks.%s[%d].timeout %d must be greater than zero", name, i, *hk.Timeout)
			}
		}
	}
	return nil
}

// RlimitResources maps OCI rlimit names to resource numbers.
var RlimitResources = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// CapabilityNames maps "CAP_X" names to capability numbers (as in
// linux/capability.h).
var CapabilityNames = map[string]int{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
	"CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
	"CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
	"CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18,
	"CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28,
	"CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32,
	"CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37,
	"CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}
