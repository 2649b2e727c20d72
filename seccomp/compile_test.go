package seccomp

import (
	"encoding/json"
	"math/rand"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func uintp(v uint) *uint { return &v }

func loadDockerProfile(t testing.TB) *specs.LinuxSeccomp {
	t.Helper()
	b, err := os.ReadFile("testdata/docker-default.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg specs.LinuxSeccomp
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func TestActionRet(t *testing.T) {
	cases := []struct {
		act   specs.LinuxSeccompAction
		errno *uint
		want  uint32
	}{
		{specs.ActKill, nil, 0},
		{specs.ActKillThread, nil, 0},
		{specs.ActKillProcess, nil, 0x80000000},
		{specs.ActTrap, nil, 0x00030000},
		{specs.ActErrno, nil, 0x00050000 | 1},
		{specs.ActErrno, uintp(38), 0x00050000 | 38},
		{specs.ActTrace, nil, 0x7ff00000 | 1},
		{specs.ActTrace, uintp(7), 0x7ff00007},
		{specs.ActAllow, nil, 0x7fff0000},
		{specs.ActLog, nil, 0x7ffc0000},
		{specs.ActNotify, nil, 0x7fc00000},
	}
	for _, c := range cases {
		got, err := actionRet(c.act, c.errno)
		if err != nil || got != c.want {
			t.Errorf("actionRet(%s) = %#x, %v; want %#x", c.act, got, err, c.want)
		}
	}
	for _, c := range []struct {
		act   specs.LinuxSeccompAction
		errno *uint
		msg   string
	}{
		{specs.ActAllow, uintp(1), "errnoRet is only valid"},
		{specs.ActErrno, uintp(0x10000), "out of range"},
		{"SCMP_ACT_BOGUS", nil, "unknown seccomp action"},
		{"", nil, "empty"},
	} {
		if _, err := actionRet(c.act, c.errno); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("actionRet(%q) error = %v, want %q", c.act, err, c.msg)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	allow := specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	with := func(f func(c *specs.LinuxSeccomp)) *specs.LinuxSeccomp {
		c := allow
		f(&c)
		return &c
	}
	cases := []struct {
		name string
		cfg  *specs.LinuxSeccomp
		arch string
		msg  string
	}{
		{"nil", nil, "amd64", "no seccomp configuration"},
		{"notify default", with(func(c *specs.LinuxSeccomp) { c.DefaultAction = specs.ActNotify }), "amd64", "cannot be the seccomp defaultAction"},
		{"defaultErrnoRet on allow", with(func(c *specs.LinuxSeccomp) { c.DefaultErrnoRet = uintp(1) }), "amd64", "defaultErrnoRet is only valid"},
		{"bad arch param", &allow, "vax", `unknown seccomp architecture "vax"`},
		{"bad listed arch", with(func(c *specs.LinuxSeccomp) { c.Architectures = []specs.Arch{"SCMP_ARCH_VAX"} }), "amd64", `unknown architecture "SCMP_ARCH_VAX"`},
		{"bad op", with(func(c *specs.LinuxSeccomp) {
			c.Syscalls = []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_XX"}}}}
		}), "amd64", "unknown operator"},
		{"bad index", with(func(c *specs.LinuxSeccomp) {
			c.Syscalls = []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}
		}), "amd64", "index 6 out of range"},
		{"notify write", with(func(c *specs.LinuxSeccomp) {
			c.Syscalls = []specs.LinuxSyscall{{Names: []string{"write"}, Action: specs.ActNotify}}
		}), "amd64", "write"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.cfg, c.arch)
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Compile error = %v, want one containing %q", err, c.msg)
			}
		})
	}
}

func TestLookupArch(t *testing.T) {
	for in, want := range map[string]string{
		"amd64": "SCMP_ARCH_X86_64", "SCMP_ARCH_X86_64": "SCMP_ARCH_X86_64", "x86_64": "SCMP_ARCH_X86_64",
		"arm64": "SCMP_ARCH_AARCH64", "riscv64": "SCMP_ARCH_RISCV64", "ppc64le": "SCMP_ARCH_PPC64LE",
		"s390x": "SCMP_ARCH_S390X", "mips64le": "SCMP_ARCH_MIPSEL64", "loong64": "SCMP_ARCH_LOONGARCH64", "386": "SCMP_ARCH_X86",
	} {
		got, err := lookupArch(in)
		if err != nil || got.name != want {
			t.Errorf("lookupArch(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if n, ok := SyscallNumber("SCMP_ARCH_X32", "getpid"); !ok || n != 39|x32SyscallBit {
		t.Errorf("x32 getpid = %#x, %v; want 0x40000027", n, ok)
	}
	if n, ok := SyscallNumber("mips64le", "getpid"); !ok || n != 5038 {
		t.Errorf("mips64 getpid = %d, %v; want 5038", n, ok)
	}
	if n, ok := SyscallNumber("arm64", "pidfd_open"); !ok || n != 434 {
		t.Errorf("aarch64 pidfd_open = %d, %v; want 434", n, ok)
	}
}

type probe struct {
	what string
	d    seccompData
	want uint32
}

func checkProbes(t *testing.T, prog []unix.SockFilter, big bool, probes []probe) {
	t.Helper()
	for _, p := range probes {
		got, _, err := runBPF(prog, p.d, big)
		if err != nil {
			t.Fatalf("%s: %v", p.what, err)
		}
		if got != p.want {
			t.Errorf("%s: filter returned %#x, want %#x", p.what, got, p.want)
		}
	}
}

const (
	rAllow = unix.SECCOMP_RET_ALLOW
	rEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
)

func TestDockerProfileFilter(t *testing.T) {
	cfg := loadDockerProfile(t)
	prog, err := Compile(cfg, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	x64 := func(nr uint32, args ...uint64) seccompData {
		d := seccompData{nr: nr, arch: auditArchX86_64}
		copy(d.args[:], args)
		return d
	}
	checkProbes(t, prog, false, []probe{
		{"getpid", x64(39), rAllow},
		{"acct denied", x64(163), rEPERM},
		{"unknown number inside the table", x64(400), rEPERM},
		{"number above the table", x64(1000), retENOSYS},
		{"clone threads", x64(56, unix.CLONE_VM|unix.CLONE_THREAD), rAllow},
		{"clone new namespace", x64(56, unix.CLONE_NEWNS), rEPERM},
		{"clone3", x64(435), retENOSYS},
		{"personality(8)", x64(135, 8), rAllow},
		{"personality(9)", x64(135, 9), rEPERM},
		{"personality(0xffffffff)", x64(135, 0xffffffff), rAllow},
		{"personality(0x1_00000000)", x64(135, 1<<32), rEPERM},
		{"socket(AF_INET)", x64(41, unix.AF_INET), rAllow},
		{"socket(AF_VSOCK)", x64(41, unix.AF_VSOCK), rEPERM},
		{"i386 getpid", seccompData{nr: 20, arch: auditArchI386}, rAllow},
		{"i386 above table", seccompData{nr: 600, arch: auditArchI386}, retENOSYS},
		{"x32 getpid", x64(39 | x32SyscallBit), rAllow},
		{"x32 above table", x64(600 | x32SyscallBit), retENOSYS},
		{"aarch64 ABI", seccompData{nr: 172, arch: auditArchAARCH64}, retBadArch},
	})
	_, steps, _ := runBPF(prog, x64(39), false)
	t.Logf("docker default profile, x86_64 + x86 + x32: %d instructions; getpid runs %d of them", len(prog), steps)
	if steps > 16 {
		t.Errorf("getpid takes %d instructions, want a short path from a binary search", steps)
	}
	if len(prog) > 400 {
		t.Errorf("filter has %d instructions, want far fewer than one per syscall", len(prog))
	}
}

// TestFirstUnconditionalRuleWins: podman's default profile allows setns in
// one rule and denies it in another; libseccomp keeps the first rule without
// conditions, and so does crossrun.
func TestFirstUnconditionalRuleWins(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getpid", "setns"}, Action: specs.ActAllow},
		{Names: []string{"setns"}, Action: specs.ActErrno, ErrnoRet: uintp(1)},
		{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(1)},
		{Names: []string{"getppid"}, Action: specs.ActAllow},
	}}
	prog, err := Compile(cfg, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	x64 := func(nr uint32) seccompData { return seccompData{nr: nr, arch: auditArchX86_64} }
	checkProbes(t, prog, false, []probe{
		{"getpid", x64(39), rAllow},
		{"setns allowed first", x64(308), rAllow},
		{"getppid denied first", x64(110), rEPERM},
	})
}

func TestX32NotListed(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86}}
	prog, err := Compile(cfg, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	checkProbes(t, prog, false, []probe{
		{"x86_64 getpid", seccompData{nr: 39, arch: auditArchX86_64}, rAllow},
		{"x32 getpid", seccompData{nr: 39 | x32SyscallBit, arch: auditArchX86_64}, retBadArch},
		{"x86 getpid", seccompData{nr: 20, arch: auditArchI386}, rAllow},
		{"arm", seccompData{nr: 20, arch: auditArchARM}, retBadArch},
	})
	// A default-allow filter lets unknown numbers through: no ENOSYS.
	checkProbes(t, prog, false, []probe{{"above table", seccompData{nr: 999, arch: auditArchX86_64}, rAllow}})
}

// randomConfig makes a profile over the given arch's syscalls with random
// actions and conditions.
func randomConfig(r *rand.Rand, t *archTable, nRules int) *specs.LinuxSeccomp {
	var names []string
	for n := range t.syscalls() {
		names = append(names, n)
	}
	sortStrings(names)
	actions := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKillProcess, specs.ActTrap, specs.ActLog, specs.ActTrace, specs.ActKillThread}
	ops := []specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}
	cfg := &specs.LinuxSeccomp{DefaultAction: actions[r.Intn(len(actions))]}
	if cfg.DefaultAction == specs.ActErrno && r.Intn(2) == 0 {
		cfg.DefaultErrnoRet = uintp(uint(r.Intn(200)))
	}
	cfg.Architectures = []specs.Arch{specs.Arch(t.name)}
	for _, c := range t.compat {
		cfg.Architectures = append(cfg.Architectures, specs.Arch(c))
	}
	used := map[string]bool{}
	for i := 0; i < nRules; i++ {
		sc := specs.LinuxSyscall{Action: actions[r.Intn(len(actions))]}
		if sc.Action == specs.ActErrno {
			sc.ErrnoRet = uintp(uint(r.Intn(4000)))
		}
		for j := 0; j <= r.Intn(3); j++ {
			sc.Names = append(sc.Names, names[r.Intn(len(names))])
		}
		if r.Intn(3) > 0 {
			for j := 0; j <= r.Intn(3); j++ {
				sc.Args = append(sc.Args, specs.LinuxSeccompArg{
					Index: uint(r.Intn(6)), Value: interesting(r), ValueTwo: interesting(r), Op: ops[r.Intn(len(ops))],
				})
			}
		} else {
			// Keep at most one unconditional action per syscall.
			var keep []string
			for _, n := range sc.Names {
				if !used[n] {
					keep = append(keep, n)
					used[n] = true
				}
			}
			if len(keep) == 0 {
				continue
			}
			sc.Names = keep
		}
		cfg.Syscalls = append(cfg.Syscalls, sc)
	}
	return cfg
}

var interestingValues = []uint64{0, 1, 2, 5, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, 1<<32 | 5, 1<<32 | 4, 1<<32 | 6, 2 << 32, 1 << 63, ^uint64(0), ^uint64(0) - 1}

func interesting(r *rand.Rand) uint64 {
	if r.Intn(4) == 0 {
		return r.Uint64() >> uint(r.Intn(64))
	}
	return interestingValues[r.Intn(len(interestingValues))]
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestCompileMatchesReference compiles random profiles for every arch and
// checks the BPF program against a direct evaluation of the profile.
func TestCompileMatchesReference(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, name := range Architectures() {
		at := archTables[name]
		t.Run(name, func(t *testing.T) {
			for iter := 0; iter < 15; iter++ {
				cfg := randomConfig(r, at, 5+r.Intn(60))
				prog, err := Compile(cfg, name)
				if err != nil {
					t.Fatalf("iteration %d: %v", iter, err)
				}
				arches := []*archTable{at}
				for _, c := range at.compat {
					arches = append(arches, archTables[c])
				}
				// Syscalls named in the profile plus random numbers.
				var nrs []uint32
				for _, sc := range cfg.Syscalls {
					for _, n := range sc.Names {
						for _, a := range arches {
							if nr, ok := a.syscalls()[n]; ok {
								nrs = append(nrs, nr)
							}
						}
					}
				}
				for i := 0; i < 20; i++ {
					nrs = append(nrs, uint32(r.Intn(int(at.maxNr)+50)), r.Uint32())
				}
				audits := []uint32{at.audit, auditArchS390X, auditArchI386}
				for _, a := range arches {
					audits = append(audits, a.audit)
				}
				for _, nr := range nrs {
					for _, au := range audits {
						for k := 0; k < 4; k++ {
							d := seccompData{nr: nr, arch: au}
							for i := range d.args {
								d.args[i] = interesting(r)
							}
							got, _, err := runBPF(prog, d, at.bigEndian)
							if err != nil {
								t.Fatal(err)
							}
							if want := referenceResult(cfg, at, d); got != want {
								b, _ := json.Marshal(cfg)
								t.Fatalf("nr %#x arch %#x args %x: filter %#x, reference %#x\nprofile: %s", nr, au, d.args, got, want, b)
							}
						}
					}
				}
			}
		})
	}
}

// TestLongJumps builds a profile big enough that conditional jumps must
// be relayed through unconditional ones, and checks the result.
func TestLongJumps(t *testing.T) {
	at := archTables["SCMP_ARCH_X86_64"]
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	var names []string
	for n := range at.syscalls() {
		names = append(names, n)
	}
	sortStrings(names)
	for i, n := range names[:300] {
		cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{
			Names: []string{n}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: uint(i % 6), Value: uint64(i) << 20, Op: specs.OpGreaterEqual}},
		})
	}
	prog, err := Compile(cfg, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	relays := 0
	for _, in := range prog {
		if in.Code == opJa {
			relays++
		}
	}
	t.Logf("%d syscalls with conditions: %d instructions, %d unconditional jumps", 300, len(prog), relays)
	if len(prog) < 600 {
		t.Fatalf("program unexpectedly short (%d), the test does not exercise long jumps", len(prog))
	}
	r := rand.New(rand.NewSource(2))
	for _, n := range names[:300] {
		for k := 0; k < 5; k++ {
			d := seccompData{nr: at.syscalls()[n], arch: at.audit}
			for i := range d.args {
				d.args[i] = r.Uint64() >> uint(r.Intn(64))
			}
			got, _, err := runBPF(prog, d, false)
			if err != nil {
				t.Fatal(err)
			}
			if want := referenceResult(cfg, at, d); got != want {
				t.Fatalf("%s: filter %#x, reference %#x", n, got, want)
			}
		}
	}
}

func TestTooLarge(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	var args []specs.LinuxSeccompArg
	for i := 0; i < 6; i++ {
		args = append(args, specs.LinuxSeccompArg{Index: uint(i), Value: 1 << 40, Op: specs.OpLessThan})
	}
	for i := 0; i < 150; i++ {
		cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{Names: []string{"getpid"}, Action: specs.ActErrno, Args: args})
	}
	_, err := Compile(cfg, "amd64")
	if err == nil || !strings.Contains(err.Error(), "limit of 4096") {
		t.Fatalf("Compile of a huge profile: error %v, want the 4096 instruction limit", err)
	}
}
