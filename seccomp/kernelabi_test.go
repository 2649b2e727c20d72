package seccomp

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func fakeHost(t *testing.T, v Version) {
	old := hostKernel
	hostKernel = func() (Version, error) { return v, nil }
	t.Cleanup(func() { hostKernel = old })
}

func TestParseKernelVersion(t *testing.T) {
	fakeHost(t, Version{6, 18})
	for in, want := range map[string]Version{"5.2": {5, 2}, "3.0": {3, 0}, "6.18": {6, 18}, "4.19": {4, 19}} {
		got, err := ParseKernelVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseKernelVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"5": "not of the form X.Y", "5.x": "not of the form X.Y", "5.2.1": "not of the form X.Y", "": "not of the form X.Y",
		"-1.2": "not of the form X.Y", "v5.2": "not of the form X.Y", "2.6": "older than", "6.19": "newer than the running kernel",
		"7.0": "newer than the running kernel",
	} {
		_, err := ParseKernelVersion(in)
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "3.0 to 6.18") || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseKernelVersion(%q) error = %v, want a one-line error with %q and the valid range", in, err, msg)
		}
	}
}

func TestParseMajorMinor(t *testing.T) {
	for in, want := range map[string]Version{"6.18.44-fc-v595": {6, 18}, "5.3.0": {5, 3}, "6.1": {6, 1}, "4.19-rc1": {4, 19}} {
		if got, ok := parseMajorMinor(in); !ok || got != want {
			t.Errorf("parseMajorMinor(%q) = %v, %v", in, got, ok)
		}
	}
	if host, err := hostKernel(); err != nil || host.Less(Version{3, 0}) {
		t.Errorf("host kernel %v, %v", host, err)
	}
}

func TestSyscallSince(t *testing.T) {
	for name, want := range map[string]Version{
		"pidfd_open": {5, 3}, "clone3": {5, 3}, "openat2": {5, 6}, "statx": {4, 11}, "io_uring_setup": {5, 1},
		"mseal": {6, 10}, "open_tree_attr": {6, 15}, "file_getattr": {6, 17}, "listns": {6, 19}, "read": {3, 0},
		"riscv_hwprobe": {6, 4},
	} {
		if got, ok := SyscallSince(name); !ok || got != want {
			t.Errorf("SyscallSince(%s) = %v, %v; want %v", name, got, ok, want)
		}
	}
}

func namesOf(p *specs.LinuxSeccomp, act specs.LinuxSeccompAction) map[string]bool {
	m := map[string]bool{}
	for _, sc := range p.Syscalls {
		if sc.Action == act {
			for _, n := range sc.Names {
				m[n] = true
			}
		}
	}
	return m
}

func TestKernelABIProfileAlone(t *testing.T) {
	fakeHost(t, Version{6, 18})
	p52, err := KernelABIProfile("5.2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p52.DefaultAction != specs.ActAllow || len(p52.Syscalls) != 1 || *p52.Syscalls[0].ErrnoRet != uint(unix.ENOSYS) {
		t.Fatalf("profile %+v", p52)
	}
	denied := namesOf(p52, specs.ActErrno)
	for _, n := range []string{"pidfd_open", "clone3", "openat2", "io_uring_setup_x"} {
		if want := n != "io_uring_setup_x"; denied[n] != want {
			t.Errorf("5.2 denies %s: %v, want %v", n, denied[n], want)
		}
	}
	if denied["io_uring_setup"] || denied["read"] || denied["statx"] {
		t.Errorf("5.2 denies a syscall 5.2 has")
	}
	p53, _ := KernelABIProfile("5.3", nil)
	if namesOf(p53, specs.ActErrno)["pidfd_open"] || !namesOf(p53, specs.ActErrno)["openat2"] {
		t.Errorf("5.3 profile wrong for pidfd_open/openat2")
	}
	// The profile compiles, and x86/x32 code is not killed.
	prog, err := Compile(p52, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	checkProbes(t, prog, false, []probe{
		{"pidfd_open", seccompData{nr: 434, arch: auditArchX86_64}, retENOSYS},
		{"getpid", seccompData{nr: 39, arch: auditArchX86_64}, rAllow},
		{"i386 pidfd_open", seccompData{nr: 434, arch: auditArchI386}, retENOSYS},
		{"x32 getpid", seccompData{nr: 39 | x32SyscallBit, arch: auditArchX86_64}, rAllow},
	})
	if _, err := KernelABIProfile("9.9", nil); err == nil {
		t.Error("KernelABIProfile accepted a version newer than the host")
	}
}

func TestKernelABIProfileMerge(t *testing.T) {
	fakeHost(t, Version{6, 18})
	base := loadDockerProfile(t)
	base.Syscalls = append(base.Syscalls,
		specs.LinuxSyscall{Names: []string{"openat2", "getpid"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpGreaterEqual}}},
		specs.LinuxSyscall{Names: []string{"pidfd_getfd"}, Action: specs.ActKillProcess},
	)
	before := len(base.Syscalls[0].Names)
	p, err := KernelABIProfile("5.2", base)
	if err != nil {
		t.Fatal(err)
	}
	if len(base.Syscalls[0].Names) != before {
		t.Fatal("base was modified")
	}
	if p.DefaultAction != base.DefaultAction || len(p.Architectures) != 3 {
		t.Fatalf("base settings lost: %+v", p)
	}
	prog, err := Compile(p, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	x64 := func(nr uint32, args ...uint64) seccompData {
		d := seccompData{nr: nr, arch: auditArchX86_64}
		copy(d.args[:], args)
		return d
	}
	checkProbes(t, prog, false, []probe{
		{"pidfd_open allowed by base", x64(434), retENOSYS},
		{"openat2 conditionally allowed by base", x64(437, 5), retENOSYS},
		{"pidfd_getfd killed by base", x64(438), retBadArch},
		{"mseal (6.10)", x64(462), retENOSYS},
		{"getpid", x64(39), rAllow},
		{"getpid conditional rule kept", x64(39, 7), rAllow},
		{"acct still EPERM", x64(163), rEPERM},
		{"clone3 (base ENOSYS)", x64(435), retENOSYS},
	})
}
