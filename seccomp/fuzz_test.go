package seccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The fuzz targets of this file check the compiler against a reference
// written from Compile's documentation, independently of compile.go:
//
//   - fzModel decides whether a profile is valid and, if it is, what the
//     filter must return for a given seccomp_data;
//   - fzStaticCheck checks a program the way the kernel's filter checker
//     does (lengths, opcodes, loads, jumps in range, ends in a return);
//   - runBPF (emulator_test.go) runs the compiled program.
//
// FuzzCompile builds profiles from raw bytes (names from the generated
// syscall tables), FuzzCompileJSON starts from JSON profiles, and
// FuzzKernelABIProfile checks KernelABIProfile and ParseKernelVersion.

// fzBytes hands out fuzz input a little at a time; past the end it
// returns zeros, so every input decodes to something.
type fzBytes struct{ b []byte }

func (r *fzBytes) u8() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fzBytes) u16() uint16 { return uint16(r.u8()) | uint16(r.u8())<<8 }
func (r *fzBytes) u32() uint32 { return uint32(r.u16()) | uint32(r.u16())<<16 }
func (r *fzBytes) u64() uint64 { return uint64(r.u32()) | uint64(r.u32())<<32 }

// pick returns an index below n (n > 0).
func (r *fzBytes) pick(n int) int {
	if n <= 256 {
		return int(r.u8()) % n
	}
	return int(r.u16()) % n
}

var (
	fzActions = []specs.LinuxSeccompAction{
		specs.ActAllow, specs.ActErrno, specs.ActKillProcess, specs.ActTrap, specs.ActLog,
		specs.ActTrace, specs.ActKillThread, specs.ActKill, specs.ActNotify,
	}
	fzOps = []specs.LinuxSeccompOperator{
		specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
	}
	fzValues = []uint64{
		0, 1, 2, 5, 8, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, 1<<32 | 1, 1<<32 | 0xffffffff,
		0xffffffff00000000, 1 << 63, ^uint64(0), ^uint64(0) - 1, unix.CLONE_NEWNS, unix.AF_INET,
	}
	// fzNames holds each arch's syscall names, sorted; fzAllNames the
	// union; fzByNr each arch's names per number.
	fzNames    = map[string][]string{}
	fzAllNames []string
	fzByNr     = map[string]map[uint32][]string{}
)

func init() {
	all := map[string]bool{}
	for name, t := range archTables {
		var ns []string
		byNr := map[uint32][]string{}
		for n, nr := range t.syscalls() {
			ns = append(ns, n)
			byNr[nr] = append(byNr[nr], n)
			all[n] = true
		}
		sort.Strings(ns)
		fzNames[name] = ns
		fzByNr[name] = byNr
	}
	for n := range all {
		fzAllNames = append(fzAllNames, n)
	}
	sort.Strings(fzAllNames)
}

// fzArchParams are values for Compile's arch parameter: every SCMP_ARCH_
// name, the GOARCH and lower-case spellings, and some that must fail.
func fzArchParams() []string {
	var ps []string
	for _, n := range Architectures() {
		ps = append(ps, n, strings.ToLower(strings.TrimPrefix(n, "SCMP_ARCH_")))
		if g := archTables[n].goarch; g != "" {
			ps = append(ps, g)
		}
	}
	return append(ps, "", "vax", "X86_64", "scmp_arch_x86_64", "SCMP_ARCH_x86_64", "SCMP_ARCH_")
}

var fzArchParamList = fzArchParams()

func (r *fzBytes) value() uint64 {
	if c := r.u8(); c < 160 {
		return fzValues[int(c)%len(fzValues)]
	}
	return r.u64()
}

func (r *fzBytes) action() specs.LinuxSeccompAction {
	c := int(r.u8())
	switch {
	case c < 240:
		return fzActions[c%len(fzActions)]
	case c < 248:
		return ""
	}
	return "SCMP_ACT_BOGUS"
}

func (r *fzBytes) errno() *uint {
	c := r.u8()
	if c < 192 {
		return nil
	}
	var v uint
	switch {
	case c < 250:
		v = uint(r.u16() % 300)
	case c < 253:
		v = unix.SECCOMP_RET_DATA
	default:
		v = uint(r.u32())
	}
	return &v
}

// fzConfig decodes a profile whose syscall names mostly come from the
// target's table.
func fzConfig(r *fzBytes, target *archTable) *specs.LinuxSeccomp {
	cfg := &specs.LinuxSeccomp{DefaultAction: r.action(), DefaultErrnoRet: r.errno()}
	arches := Architectures()
	for i := r.pick(5); i > 0; i-- {
		c := r.pick(len(arches) + 3)
		switch {
		case c < len(arches):
			cfg.Architectures = append(cfg.Architectures, specs.Arch(arches[c]))
		case c == len(arches):
			cfg.Architectures = append(cfg.Architectures, "SCMP_ARCH_VAX")
		case c == len(arches)+1:
			cfg.Architectures = append(cfg.Architectures, "x86_64")
		default:
			// The target and its compatible ABIs: the usual list.
			if target != nil {
				cfg.Architectures = append(cfg.Architectures, specs.Arch(target.name))
				for _, a := range target.compat {
					cfg.Architectures = append(cfg.Architectures, specs.Arch(a))
				}
			}
		}
	}
	var own []string
	if target != nil {
		own = fzNames[target.name]
	}
	for i := r.pick(48); i > 0; i-- {
		sc := specs.LinuxSyscall{Action: r.action(), ErrnoRet: r.errno()}
		for j := 1 + r.pick(3); j > 0; j-- {
			c := r.u8()
			switch {
			case c < 200 && len(own) > 0:
				sc.Names = append(sc.Names, own[r.pick(len(own))])
			case c < 245:
				sc.Names = append(sc.Names, fzAllNames[r.pick(len(fzAllNames))])
			case c < 252:
				sc.Names = append(sc.Names, "no_such_syscall")
			case c < 254:
				sc.Names = append(sc.Names, "write")
			default:
				sc.Names = append(sc.Names, "")
			}
		}
		for j := r.pick(4); j > 0; j-- {
			a := specs.LinuxSeccompArg{Value: r.value(), ValueTwo: r.value()}
			if c := r.u8(); c < 250 {
				a.Index = uint(c % 6)
			} else {
				a.Index = uint(c)
			}
			if c := int(r.u8()); c < 250 {
				a.Op = fzOps[c%len(fzOps)]
			} else {
				a.Op = "SCMP_CMP_BOGUS"
			}
			sc.Args = append(sc.Args, a)
		}
		cfg.Syscalls = append(cfg.Syscalls, sc)
	}
	return cfg
}

// fzModel is the reference: a profile as Compile's documentation
// describes it, for one target arch.
type fzModel struct {
	invalid string       // why Compile must fail; "" if it must succeed
	target  *archTable   // resolved arch parameter
	tables  []*archTable // ABIs in the filter: target, then listed compat ones
	defRet  uint32
	block   bool // default action denies: unknown numbers above the table get ENOSYS
	rules   []fzRule
}

type fzRule struct {
	names map[string]bool
	ret   uint32
	args  []specs.LinuxSeccompArg
}

// fzTarget resolves Compile's arch parameter the way its documentation
// says: a SCMP_ARCH_ name, a lower-case libseccomp name, a GOARCH, or ""
// for the host.
func fzTarget(p string) *archTable {
	if p == "" {
		p = runtime.GOARCH
	}
	if t, ok := archTables[p]; ok {
		return t
	}
	if p == strings.ToLower(p) && !strings.HasPrefix(p, "scmp_") {
		if t, ok := archTables["SCMP_ARCH_"+strings.ToUpper(p)]; ok {
			return t
		}
	}
	for _, t := range archTables {
		if t.goarch != "" && t.goarch == p {
			return t
		}
	}
	return nil
}

// fzRet is the SECCOMP_RET_ value of an action, written out from
// <linux/seccomp.h>. ok is false for what Compile must refuse.
func fzRet(act specs.LinuxSeccompAction, errno *uint) (uint32, bool) {
	data := uint32(1) // EPERM unless errnoRet says otherwise
	if errno != nil {
		if act != specs.ActErrno && act != specs.ActTrace || *errno > 0xffff {
			return 0, false
		}
		data = uint32(*errno)
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return 0x00000000, true
	case specs.ActKillProcess:
		return 0x80000000, true
	case specs.ActTrap:
		return 0x00030000, true
	case specs.ActErrno:
		return 0x00050000 | data, true
	case specs.ActTrace:
		return 0x7ff00000 | data, true
	case specs.ActLog:
		return 0x7ffc0000, true
	case specs.ActNotify:
		return 0x7fc00000, true
	case specs.ActAllow:
		return 0x7fff0000, true
	}
	return 0, false
}

const (
	fzRetENOSYS  = 0x00050000 | 38
	fzRetBadArch = 0x80000000
)

func newFzModel(cfg *specs.LinuxSeccomp, archParam string) *fzModel {
	m := &fzModel{target: fzTarget(archParam)}
	fail := func(format string, args ...any) *fzModel {
		if m.invalid == "" {
			m.invalid = fmt.Sprintf(format, args...)
		}
		return m
	}
	if m.target == nil {
		return fail("unknown arch parameter %q", archParam)
	}
	if cfg.DefaultAction == specs.ActNotify {
		fail("notify as default action")
	}
	var ok bool
	if m.defRet, ok = fzRet(cfg.DefaultAction, cfg.DefaultErrnoRet); !ok {
		fail("default action %q", cfg.DefaultAction)
	}
	switch cfg.DefaultAction {
	case specs.ActErrno, specs.ActKill, specs.ActKillThread, specs.ActKillProcess, specs.ActTrap:
		m.block = true
	}
	for i, sc := range cfg.Syscalls {
		r := fzRule{names: map[string]bool{}, args: sc.Args}
		if r.ret, ok = fzRet(sc.Action, sc.ErrnoRet); !ok {
			fail("syscalls[%d] action %q", i, sc.Action)
		}
		for _, a := range sc.Args {
			if a.Index > 5 {
				fail("syscalls[%d] index %d", i, a.Index)
			}
			found := false
			for _, op := range fzOps {
				found = found || a.Op == op
			}
			if !found {
				fail("syscalls[%d] operator %q", i, a.Op)
			}
		}
		for _, n := range sc.Names {
			if n == "" {
				fail("syscalls[%d] empty name", i)
			}
			if n == "write" && sc.Action == specs.ActNotify {
				fail("syscalls[%d] notify on write", i)
			}
			r.names[n] = true
		}
		m.rules = append(m.rules, r)
	}
	listed := map[string]bool{}
	for _, a := range cfg.Architectures {
		if _, ok := archTables[string(a)]; !ok {
			fail("architecture %q", a)
		}
		listed[string(a)] = true
	}
	m.tables = []*archTable{m.target}
	for _, c := range m.target.compat {
		if listed[c] {
			m.tables = append(m.tables, archTables[c])
		}
	}
	return m
}

// verdict is what the filter must return for d.
func (m *fzModel) verdict(d seccompData) uint32 {
	var t *archTable
	for _, c := range m.tables {
		if c.audit != d.arch {
			continue
		}
		// x86_64 and x32 share the audit value. Numbers from
		// __X32_SYSCALL_BIT up, 0xffffffff (-1) included, count as x32:
		// without x32 in the filter they get BadArchAction (the kernel
		// would answer the ones that are not x32 syscalls with ENOSYS).
		if c.audit == auditArchX86_64 && (d.nr >= x32SyscallBit) != (c.name == "SCMP_ARCH_X32") {
			continue
		}
		t = c
	}
	if t == nil {
		return fzRetBadArch
	}
	names := fzByNr[t.name][d.nr]
	if len(names) == 0 {
		if m.block && d.nr > t.maxNr {
			return fzRetENOSYS
		}
		return m.defRet
	}
	applies := func(r fzRule) bool {
		for _, n := range names {
			if r.names[n] {
				return true
			}
		}
		return false
	}
	// Rules with conditions, in config order: the first that holds wins.
	for _, r := range m.rules {
		if len(r.args) == 0 || !applies(r) {
			continue
		}
		holds := true
		for _, a := range r.args {
			holds = holds && fzCompare(t.bits, a, d.args[a.Index])
		}
		if holds {
			return r.ret
		}
	}
	// Then the first rule without conditions, then the default action.
	for _, r := range m.rules {
		if len(r.args) == 0 && applies(r) {
			return r.ret
		}
	}
	return m.defRet
}

// fzCompare evaluates one condition: unsigned 64-bit comparison, or on a
// 32-bit ABI of the low halves only.
func fzCompare(bits int, a specs.LinuxSeccompArg, arg uint64) bool {
	v, v2 := a.Value, a.ValueTwo
	if bits == 32 {
		arg, v, v2 = uint64(uint32(arg)), uint64(uint32(v)), uint64(uint32(v2))
	}
	switch a.Op {
	case specs.OpEqualTo:
		return arg == v
	case specs.OpNotEqual:
		return arg != v
	case specs.OpLessThan:
		return arg < v
	case specs.OpLessEqual:
		return arg <= v
	case specs.OpGreaterThan:
		return arg > v
	case specs.OpGreaterEqual:
		return arg >= v
	case specs.OpMaskedEqual:
		return arg&v == v2
	}
	panic("fzCompare: operator " + string(a.Op))
}

// fzStaticCheck checks prog as the kernel's classic BPF and seccomp
// checkers would, plus that every return value is one the profile can
// produce.
func fzStaticCheck(prog []unix.SockFilter, rets map[uint32]bool) error {
	n := len(prog)
	if n == 0 || n > maxInsns {
		return fmt.Errorf("program length %d", n)
	}
	for pc, in := range prog {
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || uint64(in.K)+4 > 64 {
				return fmt.Errorf("pc %d: load at offset %d outside seccomp_data", pc, in.K)
			}
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
		case unix.BPF_JMP | unix.BPF_JA:
			if uint64(pc)+1+uint64(in.K) >= uint64(n) {
				return fmt.Errorf("pc %d: ja %d out of range", pc, in.K)
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			if pc+1+int(in.Jt) >= n || pc+1+int(in.Jf) >= n {
				return fmt.Errorf("pc %d: jump %d/%d out of range", pc, in.Jt, in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			if !rets[in.K] {
				return fmt.Errorf("pc %d: returns %#x, which the profile cannot produce", pc, in.K)
			}
		default:
			return fmt.Errorf("pc %d: unexpected opcode %#x", pc, in.Code)
		}
	}
	if prog[n-1].Code != unix.BPF_RET|unix.BPF_K {
		return fmt.Errorf("last instruction %#x is not a return", prog[n-1].Code)
	}
	return nil
}

// checkCompile compiles cfg for archParam and checks the result against
// the model: the same verdict on validity, a program the kernel would
// load, and the same return value for every probe. Probes come from pr:
// the numbers and argument values named in cfg, plus fuzz-chosen ones.
func checkCompile(t *testing.T, cfg *specs.LinuxSeccomp, archParam string, pr *fzBytes) {
	m := newFzModel(cfg, archParam)
	prog, err := Compile(cfg, archParam)
	if err != nil {
		if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\n\r") {
			t.Fatalf("Compile error is not one line: %q", msg)
		}
		if m.invalid == "" && !strings.Contains(err.Error(), "kernel's limit") {
			t.Fatalf("Compile(%q) failed on a valid profile: %v\nprofile: %s", archParam, err, fzJSON(cfg))
		}
		return
	}
	if m.invalid != "" {
		t.Fatalf("Compile(%q) accepted an invalid profile (%s)\nprofile: %s", archParam, m.invalid, fzJSON(cfg))
	}
	rets := map[uint32]bool{m.defRet: true, fzRetENOSYS: true, fzRetBadArch: true}
	for _, r := range m.rules {
		rets[r.ret] = true
	}
	if err := fzStaticCheck(prog, rets); err != nil {
		t.Fatalf("Compile(%q): %v\nprofile: %s", archParam, err, fzJSON(cfg))
	}
	again, err := Compile(cfg, archParam)
	if err != nil || len(again) != len(prog) {
		t.Fatalf("second Compile differs: %d instructions, %v", len(again), err)
	}
	for i := range prog {
		if prog[i] != again[i] {
			t.Fatalf("second Compile differs at pc %d", i)
		}
	}

	big := m.target.bigEndian
	probe := func(d seccompData) {
		got, _, err := runBPF(prog, d, big)
		if err != nil {
			t.Fatalf("emulator: %v", err)
		}
		if want := m.verdict(d); got != want {
			t.Fatalf("Compile(%q): nr %#x arch %#x args %#x: filter returns %#x, reference %#x\nprofile: %s",
				archParam, d.nr, d.arch, d.args, got, want, fzJSON(cfg))
		}
	}

	// The values of the conditions, and their neighbours.
	var vals []uint64
	for _, r := range m.rules {
		for _, a := range r.args {
			vals = append(vals, a.Value, a.Value+1, a.Value-1, a.ValueTwo, a.Value&a.ValueTwo)
		}
	}
	vals = append(vals, 0)
	// Every syscall the profile names, on every ABI of the filter, with
	// all arguments zero and with all arguments set to one condition
	// value.
	for _, tb := range m.tables {
		seen := map[uint32]bool{}
		for _, r := range m.rules {
			for n := range r.names {
				nr, ok := tb.syscalls()[n]
				if !ok || seen[nr] {
					continue
				}
				seen[nr] = true
				d := seccompData{nr: nr, arch: tb.audit}
				probe(d)
				for _, a := range r.args {
					for i := range d.args {
						d.args[i] = a.Value
					}
					probe(d)
				}
			}
		}
	}
	// Fuzz-chosen probes.
	audits := []uint32{auditArchX86_64, auditArchI386, auditArchAARCH64}
	for _, tb := range m.tables {
		audits = append(audits, tb.audit)
	}
	for i := 0; i < 16 && len(pr.b) > 0; i++ {
		var d seccompData
		tb := m.tables[pr.pick(len(m.tables))]
		switch c := pr.u8(); {
		case c < 200:
			d.arch = tb.audit
		case c < 240:
			d.arch = audits[pr.pick(len(audits))]
		default:
			d.arch = pr.u32()
		}
		switch c := pr.u8(); {
		case c < 120 && len(m.rules) > 0:
			r := m.rules[pr.pick(len(m.rules))]
			var names []string
			for n := range r.names {
				names = append(names, n)
			}
			sort.Strings(names)
			if len(names) > 0 {
				d.nr = tb.syscalls()[names[pr.pick(len(names))]]
			}
		case c < 180:
			d.nr = tb.maxNr - 2 + uint32(pr.pick(5))
		case c < 220:
			d.nr = uint32(pr.u16())
		default:
			d.nr = pr.u32()
		}
		if pr.u8() >= 224 {
			d.nr ^= x32SyscallBit
		}
		for j := range d.args {
			if c := pr.u8(); c < 128 && len(vals) > 0 {
				d.args[j] = vals[int(c)%len(vals)]
			} else {
				d.args[j] = pr.value()
			}
		}
		probe(d)
	}
}

func fzJSON(cfg *specs.LinuxSeccomp) []byte {
	b, _ := json.Marshal(cfg)
	return b
}

// FuzzCompile builds a profile and an arch parameter from raw bytes,
// compiles it and checks the program against the reference model.
func FuzzCompile(f *testing.F) {
	// Seeds: arch index, then a profile, then probes.
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 2, 0xff, 3, 0, 0, 0, 1, 0, 2, 3, 4})
	enc := func(archParam string, body ...byte) []byte {
		for i, p := range fzArchParamList {
			if p == archParam {
				return append([]byte{byte(i)}, body...)
			}
		}
		panic(archParam)
	}
	for _, a := range []string{"amd64", "arm64", "SCMP_ARCH_X32", "s390x", "mips", "SCMP_ARCH_MIPSEL64N32", "ppc64", "riscv64", "386"} {
		// default ERRNO, listed compat ABIs, 3 rules with conditions.
		f.Add(enc(a, 1, 0, 1, 25, 3, 0, 0, 0, 1, 2, 3, 0, 0, 3, 0x10, 0, 7, 0, 0, 0, 2, 0, 5, 0, 2, 1, 9, 2, 0, 0, 9, 1, 3, 0, 0, 6, 200, 1, 2, 3, 4, 5, 6, 7, 8, 9))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fzBytes{b: data}
		archParam := fzArchParamList[r.pick(len(fzArchParamList))]
		cfg := fzConfig(r, fzTarget(archParam))
		checkCompile(t, cfg, archParam, r)
	})
}

// FuzzCompileJSON compiles JSON profiles (the Docker default profile and
// KernelABIProfile output among the seeds) for a fuzz-chosen arch and
// checks the result against the reference model, with probes from the
// third argument.
func FuzzCompileJSON(f *testing.F) {
	if b, err := os.ReadFile("testdata/docker-default.json"); err == nil {
		f.Add(b, "amd64", []byte{0, 0, 1, 2, 3})
		f.Add(b, "arm64", []byte{1, 130, 0, 0, 0, 0})
		f.Add(b, "SCMP_ARCH_X32", []byte{})
	} else {
		f.Fatal(err)
	}
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), "", []byte{})
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}`), "amd64", []byte{0, 0, 40, 0})
	f.Fuzz(func(t *testing.T, profile []byte, archParam string, probes []byte) {
		var cfg specs.LinuxSeccomp
		if err := json.Unmarshal(profile, &cfg); err != nil {
			return
		}
		checkCompile(t, &cfg, archParam, &fzBytes{b: probes})
	})
}

// FuzzKernelABIProfile checks ParseKernelVersion and KernelABIProfile on a
// pretend 6.18 host: versions it accepts are X.Y in digits within the
// valid range and print back to themselves; a profile leaves base
// unchanged, and its filter returns ENOSYS for the syscalls newer than
// the version (or what base returns when base kills or traps them) and
// what base returns for all others.
func FuzzKernelABIProfile(f *testing.F) {
	old := hostKernel
	hostKernel = func() (Version, error) { return Version{6, 18}, nil }
	f.Cleanup(func() { hostKernel = old })
	for _, v := range []string{"5.2", "3.0", "6.18", "4.19", "5.10", "2.6", "6.19", "5", "5.2.1", "v5.2", "-0.5", "05.02", ""} {
		f.Add(v, []byte{})
	}
	f.Add("5.4", []byte{1, 0, 3, 40, 0, 0, 2, 1, 0, 0, 0})
	f.Add("4.0", []byte{2, 0, 0, 30, 0, 3, 0, 1, 9, 9, 0, 1})
	f.Fuzz(func(t *testing.T, version string, baseBytes []byte) {
		parseMajorMinor(version) // must not panic

		v, verr := ParseKernelVersion(version)
		if verr != nil {
			if msg := verr.Error(); msg == "" || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("ParseKernelVersion error is not one line: %q", msg)
			}
		} else {
			maj, min, _ := strings.Cut(version, ".")
			if !fzDigits(maj) || !fzDigits(min) {
				t.Fatalf("ParseKernelVersion accepted %q, which is not X.Y in digits", version)
			}
			if v.Less(Version{3, 0}) || (Version{6, 18}).Less(v) {
				t.Fatalf("ParseKernelVersion(%q) = %v, outside 3.0..6.18", version, v)
			}
			if v2, err := ParseKernelVersion(v.String()); err != nil || v2 != v {
				t.Fatalf("ParseKernelVersion(%q) = %v, but %q gives %v, %v", version, v, v.String(), v2, err)
			}
		}

		var base *specs.LinuxSeccomp
		if len(baseBytes) > 0 {
			base = fzConfig(&fzBytes{b: baseBytes}, fzTarget(""))
		}
		baseJSON := fzJSON(base)
		prof, err := KernelABIProfile(version, base)
		if !bytes.Equal(baseJSON, fzJSON(base)) {
			t.Fatalf("KernelABIProfile modified base")
		}
		if (err == nil) != (verr == nil) {
			t.Fatalf("KernelABIProfile(%q) error %v, ParseKernelVersion error %v", version, err, verr)
		}
		if err != nil {
			return
		}

		newer := map[string]bool{}
		for _, n := range SyscallsAfter(v) {
			newer[n] = true
			if since, ok := SyscallSince(n); !ok || !v.Less(since) {
				t.Fatalf("SyscallsAfter(%v) lists %s, introduced in %v (%v)", v, n, since, ok)
			}
		}
		effective := base
		if base == nil {
			natives, _ := NativeArchitectures("")
			effective = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
			for _, a := range natives {
				effective.Architectures = append(effective.Architectures, specs.Arch(a))
			}
			if prof.DefaultAction != specs.ActAllow || fmt.Sprint(prof.Architectures) != fmt.Sprint(effective.Architectures) {
				t.Fatalf("profile without base: %s", fzJSON(prof))
			}
		}

		baseProg, berr := Compile(effective, "")
		prog, perr := Compile(prof, "")
		if berr != nil {
			return
		}
		if perr != nil {
			if !strings.Contains(perr.Error(), "kernel's limit") {
				t.Fatalf("base compiles, the %s profile does not: %v\nprofile: %s", version, perr, fzJSON(prof))
			}
			return
		}
		m := newFzModel(effective, "")
		harsh := func(ret uint32) bool {
			switch ret & unix.SECCOMP_RET_ACTION_FULL {
			case unix.SECCOMP_RET_KILL_PROCESS, unix.SECCOMP_RET_KILL_THREAD, unix.SECCOMP_RET_TRAP:
				return true
			}
			return false
		}
		check := func(tb *archTable, d seccompData) {
			want, _, err1 := runBPF(baseProg, d, tb.bigEndian)
			got, _, err2 := runBPF(prog, d, tb.bigEndian)
			if err1 != nil || err2 != nil {
				t.Fatalf("emulator: %v, %v", err1, err2)
			}
			isNewer := false
			for _, n := range fzByNr[tb.name][d.nr] {
				isNewer = isNewer || newer[n]
			}
			switch {
			case !isNewer && got != want:
				t.Fatalf("%s nr %d (%v): profile returns %#x, base %#x", tb.name, d.nr, fzByNr[tb.name][d.nr], got, want)
			case isNewer && got != fzRetENOSYS && !(got == want && harsh(want)):
				t.Fatalf("%s nr %d (%v, after %v): profile returns %#x, base %#x; want ENOSYS", tb.name, d.nr, fzByNr[tb.name][d.nr], v, got, want)
			}
		}
		pr := &fzBytes{b: baseBytes}
		for _, tb := range m.tables {
			for _, n := range fzNames[tb.name] {
				if !newer[n] && (base == nil || pr.u8() < 250) {
					continue
				}
				d := seccompData{nr: tb.syscalls()[n], arch: tb.audit}
				check(tb, d)
				for i := range d.args {
					d.args[i] = pr.value()
				}
				check(tb, d)
			}
		}
	})
}

func fzDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
