package seccomp

import (
	"errors"
	"fmt"
	"math"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// BadArchAction is what a filter does with a syscall made through an ABI
// (seccomp_data.arch) that is neither the target arch nor one of the
// compatible arches listed in the config: SECCOMP_RET_KILL_PROCESS. The
// kernel docs recommend it; libseccomp's default (used by runc) is
// SCMP_ACT_KILL, which kills only the calling thread and can leave a
// multi-threaded program hung.
const BadArchAction = specs.ActKillProcess

// maxInsns is the kernel's BPF_MAXINSNS for a classic BPF program.
const maxInsns = 4096

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// classic BPF opcodes used by the compiler.
const (
	opLdAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAndK   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJa     = unix.BPF_JMP | unix.BPF_JA
	opJeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgt    = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJge    = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opRetK   = unix.BPF_RET | unix.BPF_K
)

var (
	retENOSYS  = uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	retBadArch = uint32(unix.SECCOMP_RET_KILL_PROCESS)
)

// actionRet maps an OCI action (and its errnoRet) to a SECCOMP_RET_ value.
// ERRNO and TRACE default to EPERM as in runc.
func actionRet(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet != nil {
		if act != specs.ActErrno && act != specs.ActTrace {
			return 0, fmt.Errorf("errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s", act)
		}
		if *errnoRet > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("errnoRet %d for %s is out of range (0-%d)", *errnoRet, act, unix.SECCOMP_RET_DATA)
		}
		data = uint32(*errnoRet)
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF, nil
	case "":
		return 0, errors.New("seccomp action is empty")
	}
	return 0, fmt.Errorf("unknown seccomp action %q", act)
}

// blocksByDefault reports whether a default action denies syscalls, in
// which case syscalls newer than the table get ENOSYS instead.
func blocksByDefault(ret uint32) bool {
	switch ret & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG, unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_TRACE:
		return false
	}
	return true
}

// cond is one argument comparison of a rule.
type cond struct {
	index     uint
	op        specs.LinuxSeccompOperator
	value, v2 uint64
}

// rule is one syscall rule: ret when every cond holds.
type rule struct {
	ret   uint32
	conds []cond
	src   int // index in cfg.Syscalls, for messages
}

// sysRules is everything the config says about one syscall number.
type sysRules struct {
	name        string
	conditional []rule // in config order; the first match wins
	uncond      *rule  // the action when no conditional rule matches
}

type parsedConfig struct {
	defRet uint32
	byName map[string][]rule // rules per syscall name, config order
	names  []string          // sorted keys of byName
}

func parseConfig(cfg *specs.LinuxSeccomp) (*parsedConfig, error) {
	if cfg == nil {
		return nil, errors.New("no seccomp configuration")
	}
	if cfg.DefaultAction == specs.ActNotify {
		return nil, errors.New("SCMP_ACT_NOTIFY cannot be the seccomp defaultAction")
	}
	if cfg.DefaultErrnoRet != nil && cfg.DefaultAction != specs.ActErrno && cfg.DefaultAction != specs.ActTrace {
		return nil, fmt.Errorf("defaultErrnoRet is only valid with defaultAction SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s", cfg.DefaultAction)
	}
	defRet, err := actionRet(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp defaultAction: %w", err)
	}
	p := &parsedConfig{defRet: defRet, byName: map[string][]rule{}}
	for i, sc := range cfg.Syscalls {
		ret, err := actionRet(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp syscalls[%d] %v: %w", i, sc.Names, err)
		}
		r := rule{ret: ret, src: i}
		for j, a := range sc.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("seccomp syscalls[%d] %v args[%d]: index %d out of range (0-5)", i, sc.Names, j, a.Index)
			}
			switch a.Op {
			case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
				specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
			default:
				return nil, fmt.Errorf("seccomp syscalls[%d] %v args[%d]: unknown operator %q", i, sc.Names, j, a.Op)
			}
			r.conds = append(r.conds, cond{index: a.Index, op: a.Op, value: a.Value, v2: a.ValueTwo})
		}
		for _, name := range sc.Names {
			if name == "" {
				return nil, fmt.Errorf("seccomp syscalls[%d]: empty syscall name", i)
			}
			if sc.Action == specs.ActNotify && name == "write" {
				// The runtime itself writes after the filter is in place
				// and before an agent holds the listener: it would hang.
				return nil, fmt.Errorf("seccomp syscalls[%d]: SCMP_ACT_NOTIFY cannot be used for the write syscall", i)
			}
			p.byName[name] = append(p.byName[name], r)
		}
	}
	for n := range p.byName {
		p.names = append(p.names, n)
	}
	sort.Strings(p.names)
	return p, nil
}

// rulesFor resolves the rules against one arch's numbers. Names the arch
// does not have are skipped.
func (p *parsedConfig) rulesFor(t *archTable) (map[uint32]*sysRules, error) {
	out := map[uint32]*sysRules{}
	for _, name := range p.names {
		nr, ok := t.syscalls()[name]
		if !ok {
			continue
		}
		sr := out[nr]
		if sr == nil {
			sr = &sysRules{name: name}
			out[nr] = sr
		}
		for _, r := range p.byName[name] {
			r := r
			if len(r.conds) > 0 {
				sr.conditional = append(sr.conditional, r)
				continue
			}
			// Several rules without conditions: the first one's action
			// holds, as with libseccomp, which runc and crun use (podman's
			// default profile lists setns both as allowed and, for
			// containers without CAP_SYS_ADMIN, as denied).
			if sr.uncond == nil {
				sr.uncond = &r
			}
		}
		if len(sr.conditional) == 0 && (sr.uncond == nil || sr.uncond.ret == p.defRet) {
			delete(out, nr) // same as the default action
		}
	}
	return out, nil
}

// interval is a run of syscall numbers [lo, hi] handled the same way:
// return ret, or (rules != nil, lo == hi) run that syscall's rules.
type interval struct {
	lo, hi uint32
	ret    uint32
	rules  *sysRules
	t      *archTable // arch of rules (argument layout)
}

// addRegion appends the intervals covering [lo, hi] for one arch table.
func addRegion(ivs []interval, lo, hi uint32, t *archTable, rules map[uint32]*sysRules, defRet uint32, enosys bool) []interval {
	var nrs []uint32
	for _, nr := range t.syscalls() {
		if nr >= lo && nr <= hi {
			nrs = append(nrs, nr)
		}
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })
	gapRet := func(start uint32) uint32 {
		if enosys && start > t.maxNr {
			return retENOSYS
		}
		return defRet
	}
	next := uint64(lo)
	for i, nr := range nrs {
		if i > 0 && nr == nrs[i-1] {
			continue // two names, one number
		}
		if uint64(nr) > next {
			ivs = appendIv(ivs, interval{lo: uint32(next), hi: nr - 1, ret: gapRet(uint32(next))})
		}
		iv := interval{lo: nr, hi: nr, ret: defRet}
		if sr := rules[nr]; sr != nil {
			if len(sr.conditional) > 0 {
				iv.rules, iv.t = sr, t
			} else {
				iv.ret = sr.uncond.ret
			}
		}
		ivs = appendIv(ivs, iv)
		next = uint64(nr) + 1
	}
	if next <= uint64(hi) {
		ivs = appendIv(ivs, interval{lo: uint32(next), hi: hi, ret: gapRet(uint32(next))})
	}
	return ivs
}

// appendIv appends iv, merging it into the previous interval when both
// simply return the same value.
func appendIv(ivs []interval, iv interval) []interval {
	if n := len(ivs); n > 0 && ivs[n-1].rules == nil && iv.rules == nil && ivs[n-1].ret == iv.ret && uint64(ivs[n-1].hi)+1 == uint64(iv.lo) {
		ivs[n-1].hi = iv.hi
		return ivs
	}
	return append(ivs, iv)
}

// section is the code for one seccomp_data.arch value.
type section struct {
	audit  uint32
	ivs    []interval
	t      *archTable // the arch of this audit value
	t2     *archTable // x32, sharing the x86_64 audit value
	defRet uint32
}

// Compile translates an OCI seccomp configuration into a classic BPF
// program for arch (a GOARCH such as "amd64", or a SCMP_ARCH_ name; "" for
// the host). The program checks seccomp_data.arch first: arch and those of
// cfg.Architectures that a kernel of arch runs (x86 and x32 on x86_64, arm
// on aarch64, ...) each get a section with their own syscall numbers;
// anything else gets BadArchAction. Listed arches that cannot occur on arch
// are ignored.
//
// Within a section the syscall number is found by a binary search over
// ranges of numbers that share an outcome. Rules for a syscall are applied
// in this order: rules with argument conditions, in config order (the first
// whose conditions all hold decides), then the rule without conditions,
// then the default action. All conditions of one rule must hold (AND),
// including several on the same argument. Arguments are compared as
// unsigned 64-bit values, as two 32-bit halves; on 32-bit ABIs only the low
// 32 bits of the argument and of the value are compared, as libseccomp
// does.
//
// Syscall names the arch's table does not know are skipped. When the
// default action denies (ERRNO, KILL*, TRAP), syscall numbers above the
// highest one in the arch's table return ENOSYS, so that programs probing
// for syscalls newer than the table fall back to older ones.
func Compile(cfg *specs.LinuxSeccomp, arch string) ([]unix.SockFilter, error) {
	target, err := lookupArch(arch)
	if err != nil {
		return nil, err
	}
	p, err := parseConfig(cfg)
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{}
	for _, a := range cfg.Architectures {
		t, err := lookupArch(string(a))
		if err != nil || string(a) != t.name {
			return nil, fmt.Errorf("seccomp architectures: unknown architecture %q", a)
		}
		listed[t.name] = true
	}
	tables := []*archTable{target}
	for _, c := range target.compat {
		if listed[c] {
			tables = append(tables, archTables[c])
		}
	}
	enosys := blocksByDefault(p.defRet)

	rulesOf := map[*archTable]map[uint32]*sysRules{}
	for _, t := range tables {
		r, err := p.rulesFor(t)
		if err != nil {
			return nil, err
		}
		rulesOf[t] = r
	}

	// Group by audit value: x86_64 and x32 share one, told apart by
	// __X32_SYSCALL_BIT in the number.
	var sections []*section
	for _, t := range tables {
		var s *section
		for _, o := range sections {
			if o.audit == t.audit {
				s = o
			}
		}
		if s == nil {
			s = &section{audit: t.audit}
			sections = append(sections, s)
		}
		if t.name == "SCMP_ARCH_X32" {
			s.t2 = t
		} else {
			s.t = t
		}
	}
	for _, s := range sections {
		s.defRet = p.defRet
		if s.audit != auditArchX86_64 {
			s.ivs = addRegion(nil, 0, math.MaxUint32, s.t, rulesOf[s.t], p.defRet, enosys)
			continue
		}
		// x86_64 and x32 share the audit value; x32 numbers carry
		// __X32_SYSCALL_BIT. Whichever of the two is not part of the
		// filter is a foreign ABI.
		if s.t != nil {
			s.ivs = addRegion(nil, 0, x32SyscallBit-1, s.t, rulesOf[s.t], p.defRet, enosys)
		} else {
			s.ivs = []interval{{lo: 0, hi: x32SyscallBit - 1, ret: retBadArch}}
		}
		if s.t2 != nil {
			for _, iv := range addRegion(nil, x32SyscallBit, math.MaxUint32, s.t2, rulesOf[s.t2], p.defRet, enosys) {
				s.ivs = appendIv(s.ivs, iv)
			}
		} else {
			s.ivs = appendIv(s.ivs, interval{lo: x32SyscallBit, hi: math.MaxUint32, ret: retBadArch})
		}
	}

	var a asm
	emitProgram(&a, sections)
	out, err := a.assemble()
	if err != nil {
		return nil, err
	}
	if len(out) > maxInsns {
		return nil, fmt.Errorf("seccomp filter has %d instructions, more than the kernel's limit of %d", len(out), maxInsns)
	}
	return out, nil
}

func emitProgram(a *asm, sections []*section) {
	bad := a.newLabel()
	a.load(offArch)
	secLabels := make([]label, len(sections))
	for i, s := range sections {
		secLabels[i] = a.newLabel()
		next := bad
		if i+1 < len(sections) {
			next = a.newLabel()
		}
		a.jump(opJeq, s.audit, secLabels[i], next)
		if next != bad {
			a.bind(next)
		}
	}
	a.bind(bad)
	a.ret(retBadArch)
	for i, s := range sections {
		a.bind(secLabels[i])
		emitSection(a, s)
	}
}

func emitSection(a *asm, s *section) {
	if len(s.ivs) == 1 && s.ivs[0].rules == nil {
		a.ret(s.ivs[0].ret)
		return
	}
	pool := map[uint32]label{}
	var poolOrder []uint32
	retLabel := func(ret uint32) label {
		l, ok := pool[ret]
		if !ok {
			l = a.newLabel()
			pool[ret] = l
			poolOrder = append(poolOrder, ret)
		}
		return l
	}
	a.load(offNr)
	emitTree(a, s, s.ivs, retLabel)
	for _, ret := range poolOrder {
		a.bind(pool[ret])
		a.ret(ret)
	}
}

// emitTree emits a binary search over ivs at the current position.
func emitTree(a *asm, s *section, ivs []interval, retLabel func(uint32) label) {
	if len(ivs) == 1 {
		iv := ivs[0]
		if iv.rules == nil {
			a.ret(iv.ret)
			return
		}
		emitRules(a, iv, s.defRet, retLabel)
		return
	}
	mid := (len(ivs) + 1) / 2
	left, right := ivs[:mid], ivs[mid:]
	target := func(part []interval) (label, bool) {
		if len(part) == 1 && part[0].rules == nil {
			return retLabel(part[0].ret), false
		}
		return a.newLabel(), true
	}
	lt, emitLeft := target(left)
	rt, emitRight := target(right)
	a.jump(opJge, right[0].lo, rt, lt)
	if emitLeft {
		a.bind(lt)
		emitTree(a, s, left, retLabel)
	}
	if emitRight {
		a.bind(rt)
		emitTree(a, s, right, retLabel)
	}
}

func emitRules(a *asm, iv interval, defRet uint32, retLabel func(uint32) label) {
	sr, t := iv.rules, iv.t
	for _, r := range sr.conditional {
		fail := a.newLabel()
		for i, c := range r.conds {
			succ := retLabel(r.ret)
			last := i == len(r.conds)-1
			if !last {
				succ = a.newLabel()
			}
			emitCond(a, t, c, succ, fail)
			if !last {
				a.bind(succ)
			}
		}
		a.bind(fail)
	}
	fallback := defRet
	if sr.uncond != nil {
		fallback = sr.uncond.ret
	}
	a.jump(opJa, 0, retLabel(fallback), 0)
}
