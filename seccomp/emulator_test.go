package seccomp

import (
	"encoding/binary"
	"fmt"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// seccompData mirrors struct seccomp_data.
type seccompData struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d seccompData) bytes(big bool) []byte {
	var bo binary.ByteOrder = binary.LittleEndian
	if big {
		bo = binary.BigEndian
	}
	b := make([]byte, 64)
	bo.PutUint32(b[0:], d.nr)
	bo.PutUint32(b[4:], d.arch)
	bo.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		bo.PutUint64(b[16+8*i:], a)
	}
	return b
}

// runBPF interprets the subset of classic BPF the compiler emits, checking
// what the kernel's verifier checks, and returns the filter's result and
// the number of instructions executed.
func runBPF(prog []unix.SockFilter, d seccompData, big bool) (uint32, int, error) {
	if len(prog) == 0 || len(prog) > maxInsns {
		return 0, 0, fmt.Errorf("bad program length %d", len(prog))
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if big {
		bo = binary.BigEndian
	}
	mem := d.bytes(big)
	var acc uint32
	steps := 0
	for pc := 0; pc < len(prog); {
		in := prog[pc]
		steps++
		switch in.Code {
		case opLdAbsW:
			if in.K%4 != 0 || in.K+4 > uint32(len(mem)) {
				return 0, steps, fmt.Errorf("pc %d: bad load offset %d", pc, in.K)
			}
			acc = bo.Uint32(mem[in.K:])
			pc++
		case opAndK:
			acc &= in.K
			pc++
		case opJa:
			pc += 1 + int(in.K)
		case opJeq, opJgt, opJge:
			var t bool
			switch in.Code {
			case opJeq:
				t = acc == in.K
			case opJgt:
				t = acc > in.K
			case opJge:
				t = acc >= in.K
			}
			if t {
				pc += 1 + int(in.Jt)
			} else {
				pc += 1 + int(in.Jf)
			}
		case opRetK:
			return in.K, steps, nil
		default:
			return 0, steps, fmt.Errorf("pc %d: unexpected opcode %#x", pc, in.Code)
		}
	}
	return 0, steps, fmt.Errorf("fell off the end of the program")
}

var (
	parsedCache  = map[*specs.LinuxSeccomp]*parsedConfig{}
	reverseCache = map[*archTable]map[uint32][]string{}
)

// referenceResult evaluates cfg for one syscall directly, without BPF, as
// the documentation of Compile describes it.
func referenceResult(cfg *specs.LinuxSeccomp, target *archTable, d seccompData) uint32 {
	p, ok := parsedCache[cfg]
	if !ok {
		var err error
		if p, err = parseConfig(cfg); err != nil {
			panic(err)
		}
		parsedCache = map[*specs.LinuxSeccomp]*parsedConfig{cfg: p}
	}
	allowed := map[string]bool{target.name: true}
	for _, a := range cfg.Architectures {
		for _, c := range target.compat {
			if string(a) == c {
				allowed[c] = true
			}
		}
	}
	var t *archTable
	for name := range allowed {
		at := archTables[name]
		if at.audit != d.arch {
			continue
		}
		if at.audit == auditArchX86_64 {
			isX32 := d.nr&x32SyscallBit != 0
			if isX32 != (at.name == "SCMP_ARCH_X32") {
				continue
			}
		}
		t = at
	}
	if t == nil {
		return retBadArch
	}
	rev, ok := reverseCache[t]
	if !ok {
		rev = map[uint32][]string{}
		for n, nr := range t.syscalls() {
			rev[nr] = append(rev[nr], n)
		}
		reverseCache[t] = rev
	}
	names := append([]string(nil), rev[d.nr]...)
	sort.Strings(names)
	if len(names) == 0 {
		if blocksByDefault(p.defRet) && d.nr > t.maxNr {
			return retENOSYS
		}
		return p.defRet
	}
	var all []rule
	for _, n := range names {
		all = append(all, p.byName[n]...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].src < all[j].src })
	for _, r := range all {
		if len(r.conds) == 0 {
			continue
		}
		ok := true
		for _, c := range r.conds {
			if !refCond(t, c, d.args[c.index]) {
				ok = false
			}
		}
		if ok {
			return r.ret
		}
	}
	for _, r := range all {
		if len(r.conds) == 0 {
			return r.ret
		}
	}
	return p.defRet
}

func refCond(t *archTable, c cond, arg uint64) bool {
	v, v2 := c.value, c.v2
	if t.bits == 32 {
		arg, v, v2 = arg&0xffffffff, v&0xffffffff, v2&0xffffffff
	}
	switch c.op {
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
	panic("bad op " + c.op)
}
