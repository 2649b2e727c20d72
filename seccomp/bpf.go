package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// label names a position in a program under construction.
type label int

// item is an instruction with symbolic jump targets, or (isLabel) the
// position of a label.
type item struct {
	isLabel bool
	lbl     label
	code    uint16
	k       uint32
	jt, jf  label // conditional jumps: both targets; BPF_JA: jt
}

// asm builds a classic BPF program with symbolic, forward-only jumps.
// Conditional jumps reach at most 255 instructions ahead; assemble inserts
// unconditional jumps (32-bit offsets) as stepping stones where needed.
type asm struct {
	items  []item
	labels int
}

func (a *asm) newLabel() label {
	a.labels++
	return label(a.labels)
}

func (a *asm) bind(l label) { a.items = append(a.items, item{isLabel: true, lbl: l}) }

func (a *asm) load(off uint32) { a.items = append(a.items, item{code: opLdAbsW, k: off}) }

func (a *asm) and(k uint32) { a.items = append(a.items, item{code: opAndK, k: k}) }

func (a *asm) ret(k uint32) { a.items = append(a.items, item{code: opRetK, k: k}) }

// jump emits a conditional jump (code with k) or, for opJa, a jump to jt.
func (a *asm) jump(code uint16, k uint32, jt, jf label) {
	a.items = append(a.items, item{code: code, k: k, jt: jt, jf: jf})
}

func isJump(code uint16) bool { return code&0x07 == unix.BPF_JMP }

// assemble resolves labels, adding stepping stones for far conditional
// jumps until every offset fits.
func (a *asm) assemble() ([]unix.SockFilter, error) {
	for round := 0; ; round++ {
		pos := make(map[label]int, a.labels)
		n := 0
		for _, it := range a.items {
			if it.isLabel {
				pos[it.lbl] = n
			} else {
				n++
			}
		}
		var out []unix.SockFilter
		var fixed []item
		far := false
		idx := 0
		for _, it := range a.items {
			if it.isLabel {
				fixed = append(fixed, it)
				continue
			}
			ins := unix.SockFilter{Code: it.code, K: it.k}
			var stones []item
			if isJump(it.code) {
				if it.code == opJa {
					p, ok := pos[it.jt]
					if !ok || p <= idx {
						return nil, fmt.Errorf("internal error: bad jump target %d", it.jt)
					}
					ins.K = uint32(p - idx - 1)
				} else {
					off := func(l label) (int, error) {
						p, ok := pos[l]
						if !ok || p <= idx {
							return 0, fmt.Errorf("internal error: bad jump target %d", l)
						}
						return p - idx - 1, nil
					}
					ot, err := off(it.jt)
					if err != nil {
						return nil, err
					}
					of, err := off(it.jf)
					if err != nil {
						return nil, err
					}
					if ot > 255 {
						l := a.newLabel()
						stones = append(stones, item{isLabel: true, lbl: l}, item{code: opJa, jt: it.jt})
						it.jt = l
					}
					if of > 255 {
						l := a.newLabel()
						stones = append(stones, item{isLabel: true, lbl: l}, item{code: opJa, jt: it.jf})
						it.jf = l
					}
					ins.Jt, ins.Jf = uint8(ot), uint8(of)
					if len(stones) > 0 {
						// Stones go right after the jump; near targets are
						// labels and move along with the code.
						far = true
					}
				}
			}
			fixed = append(fixed, it)
			fixed = append(fixed, stones...)
			out = append(out, ins)
			idx++
		}
		if !far {
			return out, nil
		}
		if round > 64 {
			return nil, fmt.Errorf("internal error: jump layout did not converge")
		}
		a.items = fixed
	}
}

// argOffsets returns where the high and low 32-bit halves of argument i
// sit in seccomp_data for arch t.
func argOffsets(t *archTable, i uint) (hi, lo uint32) {
	base := uint32(offArgs + 8*i)
	if t.bigEndian {
		return base, base + 4
	}
	return base + 4, base
}

// emitCond emits a test of c: on success control goes to succ, otherwise
// to fail. The accumulator is clobbered.
func emitCond(a *asm, t *archTable, c cond, succ, fail label) {
	hiOff, loOff := argOffsets(t, c.index)
	vh, vl := uint32(c.value>>32), uint32(c.value)
	mh, ml := vh, vl // MASKED_EQ: value is the mask, valueTwo the result
	rh, rl := uint32(c.v2>>32), uint32(c.v2)

	if t.bits == 32 {
		a.load(loOff)
		switch c.op {
		case specs.OpEqualTo:
			a.jump(opJeq, vl, succ, fail)
		case specs.OpNotEqual:
			a.jump(opJeq, vl, fail, succ)
		case specs.OpGreaterThan:
			a.jump(opJgt, vl, succ, fail)
		case specs.OpGreaterEqual:
			a.jump(opJge, vl, succ, fail)
		case specs.OpLessThan:
			a.jump(opJge, vl, fail, succ)
		case specs.OpLessEqual:
			a.jump(opJgt, vl, fail, succ)
		case specs.OpMaskedEqual:
			a.and(ml)
			a.jump(opJeq, rl, succ, fail)
		}
		return
	}

	l1 := a.newLabel()
	a.load(hiOff)
	switch c.op {
	case specs.OpEqualTo, specs.OpNotEqual:
		hiMiss := fail
		if c.op == specs.OpNotEqual {
			hiMiss = succ
		}
		a.jump(opJeq, vh, l1, hiMiss)
		a.bind(l1)
		a.load(loOff)
		if c.op == specs.OpEqualTo {
			a.jump(opJeq, vl, succ, fail)
		} else {
			a.jump(opJeq, vl, fail, succ)
		}
	case specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpLessThan, specs.OpLessEqual:
		// hi > vh decides "greater"; hi == vh defers to the low half.
		greater, notGreater := succ, fail
		if c.op == specs.OpLessThan || c.op == specs.OpLessEqual {
			greater, notGreater = fail, succ
		}
		l2 := a.newLabel()
		a.jump(opJgt, vh, greater, l1)
		a.bind(l1)
		a.jump(opJeq, vh, l2, notGreater)
		a.bind(l2)
		a.load(loOff)
		switch c.op {
		case specs.OpGreaterThan:
			a.jump(opJgt, vl, succ, fail)
		case specs.OpGreaterEqual:
			a.jump(opJge, vl, succ, fail)
		case specs.OpLessThan:
			a.jump(opJge, vl, fail, succ)
		case specs.OpLessEqual:
			a.jump(opJgt, vl, fail, succ)
		}
	case specs.OpMaskedEqual:
		a.and(mh)
		a.jump(opJeq, rh, l1, fail)
		a.bind(l1)
		a.load(loOff)
		a.and(ml)
		a.jump(opJeq, rl, succ, fail)
	}
}
