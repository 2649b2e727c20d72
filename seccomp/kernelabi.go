package seccomp

import (
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// KernelABIAnnotation in config.json asks for the kernel-ABI profile of
// the version given as its value ("5.2").
const KernelABIAnnotation = "run.crossrun.kernel-abi"

// minKernelABI is the oldest version the syscall tables can describe.
var minKernelABI = Version{3, 0}

// Version is a kernel release, major.minor.
type Version struct {
	Major, Minor int
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less reports whether v is an earlier release than o.
func (v Version) Less(o Version) bool {
	return v.Major < o.Major || (v.Major == o.Major && v.Minor < o.Minor)
}

// hostKernel returns the running kernel's major.minor (a variable so tests
// can pretend another host).
var hostKernel = func() (Version, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return Version{}, fmt.Errorf("uname: %w", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	v, ok := parseMajorMinor(rel)
	if !ok {
		return Version{}, fmt.Errorf("cannot parse the host kernel release %q", rel)
	}
	return v, nil
}

// parseMajorMinor reads the leading "X.Y" of s ("6.18.44-foo" -> 6.18).
func parseMajorMinor(s string) (Version, bool) {
	maj, rest, ok := strings.Cut(s, ".")
	if !ok {
		return Version{}, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil {
		return Version{}, false
	}
	return Version{a, b}, true
}

// ParseKernelVersion parses a kernel-ABI version "X.Y". It must be at
// least 3.0 and no newer than the running kernel: a container can be shown
// an older kernel, not a newer one.
func ParseKernelVersion(s string) (Version, error) {
	host, err := hostKernel()
	if err != nil {
		return Version{}, err
	}
	valid := fmt.Sprintf("valid: %s to %s (the running kernel)", minKernelABI, host)
	maj, min, ok := strings.Cut(s, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	// Digits only: Atoi also takes a sign ("5.-0", "+5.2").
	if !ok || err1 != nil || err2 != nil || strings.Trim(maj+min, "0123456789") != "" {
		return Version{}, fmt.Errorf("kernel ABI version %q is not of the form X.Y, like 5.2 (%s)", s, valid)
	}
	v := Version{a, b}
	if v.Less(minKernelABI) {
		return Version{}, fmt.Errorf("kernel ABI version %s is older than the syscall tables go (%s)", v, valid)
	}
	if host.Less(v) {
		return Version{}, fmt.Errorf("kernel ABI version %s is newer than the running kernel (%s)", v, valid)
	}
	return v, nil
}

// SyscallSince returns the kernel release that introduced a syscall, for
// syscalls the tables can date.
func SyscallSince(name string) (Version, bool) {
	v, ok := syscallSince()[name]
	return v, ok
}

// SyscallsAfter returns, sorted, the syscalls of any arch that appeared
// after kernel v.
func SyscallsAfter(v Version) []string {
	var names []string
	for n, since := range syscallSince() {
		if v.Less(since) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// KernelABIProfile returns a seccomp profile under which every syscall
// introduced after kernel version (see ParseKernelVersion) fails with
// ENOSYS, as if the kernel were that old. The names are the union over all
// arches; a syscall gets one release for all arches (the x86_64 one where
// it exists there).
//
// With base nil the profile allows everything else (defaultAction
// SCMP_ACT_ALLOW) and lists the host's arch and its compat arches. With a
// base profile the result is base, except that the newer syscalls return
// ENOSYS even where base allows them (rules for them are removed from base,
// also conditional ones), unless every rule of base for such a syscall
// (or, without rules, its default action) kills or traps, which is
// stricter and kept. base is not modified.
func KernelABIProfile(version string, base *specs.LinuxSeccomp) (*specs.LinuxSeccomp, error) {
	v, err := ParseKernelVersion(version)
	if err != nil {
		return nil, err
	}
	newer := SyscallsAfter(v)
	enosys := uint(unix.ENOSYS)
	if base == nil {
		arches, err := NativeArchitectures(runtime.GOARCH)
		if err != nil {
			return nil, err
		}
		p := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		for _, a := range arches {
			p.Architectures = append(p.Architectures, specs.Arch(a))
		}
		if len(newer) > 0 {
			p.Syscalls = []specs.LinuxSyscall{{Names: newer, Action: specs.ActErrno, ErrnoRet: &enosys}}
		}
		return p, nil
	}

	// Which newer syscalls does base already kill or trap outright?
	harsh := func(a specs.LinuxSeccompAction) bool {
		switch a {
		case specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap:
			return true
		}
		return false
	}
	uncond := map[string]specs.LinuxSeccompAction{}
	soft := map[string]bool{} // some rule lets the syscall run or answer
	for _, sc := range base.Syscalls {
		for _, n := range sc.Names {
			if len(sc.Args) == 0 {
				uncond[n] = sc.Action
			}
			if !harsh(sc.Action) {
				soft[n] = true
			}
		}
	}
	override := map[string]bool{}
	var names []string
	for _, n := range newer {
		act, ok := uncond[n]
		if !ok {
			act = base.DefaultAction
		}
		if harsh(act) && !soft[n] {
			continue
		}
		override[n] = true
		names = append(names, n)
	}

	out := *base
	out.Architectures = append([]specs.Arch(nil), base.Architectures...)
	out.Flags = append([]specs.LinuxSeccompFlag(nil), base.Flags...)
	out.Syscalls = nil
	for _, sc := range base.Syscalls {
		var keep []string
		for _, n := range sc.Names {
			if !override[n] {
				keep = append(keep, n)
			}
		}
		if len(keep) == 0 {
			continue
		}
		sc.Names = keep
		sc.Args = append([]specs.LinuxSeccompArg(nil), sc.Args...)
		out.Syscalls = append(out.Syscalls, sc)
	}
	if len(names) > 0 {
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: names, Action: specs.ActErrno, ErrnoRet: &enosys})
	}
	return &out, nil
}
