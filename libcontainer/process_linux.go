package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/spec"
)

// setRlimits applies process.rlimits to the calling process. Go's
// syscall.Setrlimit is used so that the runtime does not restore its own
// RLIMIT_NOFILE in the exec'd program.
func setRlimits(rl []specs.POSIXRlimit) error {
	for _, r := range rl {
		res := spec.RlimitResources[r.Type]
		lim := syscall.Rlimit{Cur: r.Soft, Max: r.Hard}
		if err := syscall.Setrlimit(res, &lim); err != nil {
			if errors.Is(err, unix.EPERM) {
				var cur syscall.Rlimit
				_ = syscall.Getrlimit(res, &cur)
				return fmt.Errorf("set process.rlimits %s to soft=%d hard=%d: operation not permitted: raising the hard limit above %d needs CAP_SYS_RESOURCE, which this crossrun process does not have", r.Type, r.Soft, r.Hard, cur.Max)
			}
			return fmt.Errorf("set process.rlimits %s: %w", r.Type, err)
		}
	}
	return nil
}

var ioprioClass = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

func setIOPriority(p *specs.LinuxIOPriority) error {
	if p == nil {
		return nil
	}
	const whoProcess = 1
	prio := ioprioClass[p.Class]<<13 | p.Priority
	if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, whoProcess, 0, uintptr(prio)); e != 0 {
		return fmt.Errorf("set process.ioPriority %s/%d: %w", p.Class, p.Priority, e)
	}
	return nil
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

func setScheduler(s *specs.Scheduler) error {
	if s == nil {
		return nil
	}
	pol, ok := schedPolicies[s.Policy]
	if !ok {
		return fmt.Errorf("process.scheduler.policy %q is not a known policy", s.Policy)
	}
	attr := unix.SchedAttr{
		Size:     unix.SizeofSchedAttr,
		Policy:   pol,
		Nice:     s.Nice,
		Priority: uint32(s.Priority),
		Runtime:  s.Runtime,
		Deadline: s.Deadline,
		Period:   s.Period,
	}
	for _, f := range s.Flags {
		attr.Flags |= schedFlags[f]
	}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("set process.scheduler (%s): %w", s.Policy, err)
	}
	return nil
}

func setPersonality(p *specs.LinuxPersonality) error {
	if p == nil {
		return nil
	}
	var dom uintptr
	switch p.Domain {
	case specs.PerLinux:
		dom = 0x0000
	case specs.PerLinux32:
		dom = 0x0008
	default:
		return fmt.Errorf("linux.personality.domain %q is not LINUX or LINUX32", p.Domain)
	}
	if _, _, e := unix.Syscall(unix.SYS_PERSONALITY, dom, 0, 0); e != 0 {
		return fmt.Errorf("set linux.personality %s: %w", p.Domain, e)
	}
	return nil
}

// setUser switches to process.user, keeping capabilities across the switch
// so that applyCapabilities can set exactly the configured sets.
func setUser(u specs.User) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_KEEPCAPS): %w", err)
	}
	// setgroups is always tried: /proc/self/setgroups is only consulted
	// once the kernel has refused, since in an exec'd process it is the
	// container's procfs, where a "deny" of the container's making would
	// otherwise leave crossrun's own supplementary groups in the process
	// (CVE-2025-52881).
	gids := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		gids = append(gids, int(g))
	}
	if err := setgroupsThread(gids); err != nil {
		if !errors.Is(err, unix.EPERM) || !setgroupsDenied() {
			return fmt.Errorf("set process.user.additionalGids %v: %w", u.AdditionalGids, err)
		}
		if len(u.AdditionalGids) > 0 {
			return fmt.Errorf("process.user.additionalGids is set but setgroups is denied in this user namespace")
		}
	}
	if err := setresThread(sysSetresgid, u.GID); err != nil {
		return fmt.Errorf("set process.user.gid %d: %w (is it mapped in the user namespace?)", u.GID, err)
	}
	if err := setresThread(sysSetresuid, u.UID); err != nil {
		return fmt.Errorf("set process.user.uid %d: %w (is it mapped in the user namespace?)", u.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_KEEPCAPS): %w", err)
	}
	return nil
}

// setresThread and setgroupsThread change the calling thread's credentials
// only. The Go wrappers change every thread of the process, one signal
// round per call; the process here is about to exec from this (locked)
// thread, and execve ends the others.
func setresThread(nr uintptr, id uint32) error {
	if _, _, errno := unix.RawSyscall(nr, uintptr(id), uintptr(id), uintptr(id)); errno != 0 {
		return errno
	}
	return nil
}

func setgroupsThread(gids []int) error {
	list := make([]uint32, len(gids))
	for i, g := range gids {
		list[i] = uint32(g)
	}
	var p unsafe.Pointer
	if len(list) > 0 {
		p = unsafe.Pointer(&list[0])
	}
	_, _, errno := unix.RawSyscall(sysSetgroups, uintptr(len(list)), uintptr(p), 0)
	runtime.KeepAlive(list)
	if errno != 0 {
		return errno
	}
	return nil
}

func setgroupsDenied() bool {
	data, err := os.ReadFile("/proc/self/setgroups")
	if err != nil {
		return false
	}
	return strings.TrimSpace(string(data)) == "deny"
}

// dropBoundingSet limits the bounding set; it needs CAP_SETPCAP, so it runs
// before the user switch. The kernel's last capability is found by asking
// the kernel (PR_CAPBSET_READ fails past it), not by reading
// /proc/sys/kernel/cap_last_cap: in an exec'd process that is the
// container's procfs, where a container allowed to mount can put a file
// saying 1, so that every capability above 1 would stay in the bounding set
// and come back at the next execve of a root process (CVE-2025-52881).
func dropBoundingSet(c *specs.LinuxCapabilities) error {
	var keep capMask
	if c != nil {
		keep = capMaskOf(c.Bounding)
	}
	last := lastCap()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set process.capabilities.bounding: capget: %w", err)
	}
	if data[0].Effective&(1<<unix.CAP_SETPCAP) == 0 {
		// Without CAP_SETPCAP the bounding set cannot shrink; it stays
		// what this process inherited.
		return nil
	}
	for i := 0; i <= last; i++ {
		if keep.has(i) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil {
			return fmt.Errorf("set process.capabilities.bounding: drop capability %d: %w", i, err)
		}
	}
	return nil
}

// applyCapabilities sets the effective, permitted, inheritable and ambient
// sets of the calling thread (the one that execs). The ambient set is only
// touched when process.capabilities.ambient is not empty; otherwise the
// kernel's own rule applies (capset keeps only ambient capabilities that
// stay permitted and inheritable).
func applyCapabilities(c *specs.LinuxCapabilities) error {
	var eff, prm, inh capMask
	if c != nil {
		eff, prm, inh = capMaskOf(c.Effective), capMaskOf(c.Permitted), capMaskOf(c.Inheritable)
	}
	if err := capsetThread(eff, prm, inh); err != nil {
		return fmt.Errorf("set process.capabilities: %w", err)
	}
	if c != nil && len(c.Ambient) > 0 {
		setAmbient(capMaskOf(c.Ambient))
	}
	return nil
}

// lookPath finds the program to exec the way execvp would, inside the
// container's root (which is / by the time this runs).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			path = e[5:]
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in $PATH (%s)", name, path)
}
