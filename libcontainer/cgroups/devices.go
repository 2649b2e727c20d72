package cgroups

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Device rule semantics, shared by the v1 list and the v2 program: the
// policy starts as deny-all, and each kind of access (r, w, m) to a device
// is decided by the last rule that names that device and that access.

// Access bits as the kernel's BPF device context encodes them.
const (
	accMknod = 1
	accRead  = 2
	accWrite = 4
	accAll   = accMknod | accRead | accWrite
)

// Device types as the BPF context encodes them; 0 stands for "a".
const (
	devBlock = 1
	devChar  = 2
)

type deviceRule struct {
	allow  bool
	typ    int   // 0 (all), devBlock, devChar
	major  int64 // -1: any
	minor  int64 // -1: any
	access int   // accMknod|accRead|accWrite
}

func (r deviceRule) wildcard() bool {
	return r.typ == 0 && r.major == -1 && r.minor == -1 && r.access == accAll
}

// v1String renders the rule for devices.allow / devices.deny.
func (r deviceRule) v1String() string {
	t := "a"
	switch r.typ {
	case devBlock:
		t = "b"
	case devChar:
		t = "c"
	}
	num := func(n int64) string {
		if n == -1 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	acc := ""
	if r.access&accRead != 0 {
		acc += "r"
	}
	if r.access&accWrite != 0 {
		acc += "w"
	}
	if r.access&accMknod != 0 {
		acc += "m"
	}
	return fmt.Sprintf("%s %s:%s %s", t, num(r.major), num(r.minor), acc)
}

// parseDeviceRules validates the spec rules and normalises them: an "a"
// rule that is not the full wildcard becomes a "b" and a "c" rule, and
// everything before the last full wildcard is dropped (it cannot matter).
func parseDeviceRules(in []specs.LinuxDeviceCgroup) ([]deviceRule, error) {
	var out []deviceRule
	for i, d := range in {
		r := deviceRule{allow: d.Allow, major: -1, minor: -1}
		switch d.Type {
		case "", "a":
		case "b":
			r.typ = devBlock
		case "c":
			r.typ = devChar
		default:
			return nil, fmt.Errorf("linux.resources.devices[%d]: invalid type %q (want a, b or c)", i, d.Type)
		}
		if d.Major != nil {
			r.major = *d.Major
		}
		if d.Minor != nil {
			r.minor = *d.Minor
		}
		if r.major < -1 || r.minor < -1 || r.major > 0xffffffff || r.minor > 0xffffffff {
			return nil, fmt.Errorf("linux.resources.devices[%d]: invalid device number %d:%d", i, r.major, r.minor)
		}
		acc := d.Access
		if acc == "" {
			acc = "rwm"
		}
		for _, c := range acc {
			switch c {
			case 'r':
				r.access |= accRead
			case 'w':
				r.access |= accWrite
			case 'm':
				r.access |= accMknod
			default:
				return nil, fmt.Errorf("linux.resources.devices[%d]: invalid access %q (letters r, w, m)", i, d.Access)
			}
		}
		switch {
		case r.wildcard():
			out = append(out[:0], r)
		case r.typ == 0:
			b, c := r, r
			b.typ, c.typ = devBlock, devChar
			out = append(out, b, c)
		default:
			out = append(out, r)
		}
	}
	return out, nil
}

// allowed evaluates rules for one request; the reference for both the
// v1 writes and the BPF program (tests compare them against it).
func allowed(rules []deviceRule, typ int, major, minor int64, access int) bool {
	undecided := access
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		if (r.typ != 0 && r.typ != typ) || (r.major != -1 && r.major != major) || (r.minor != -1 && r.minor != minor) {
			continue
		}
		hit := undecided & r.access
		if hit == 0 {
			continue
		}
		if !r.allow {
			return false
		}
		undecided &^= hit
		if undecided == 0 {
			return true
		}
	}
	return false
}

// v1DeviceWrites returns the (file, rule) writes that give a v1 devices
// cgroup the policy of rules, starting from a reset.
func v1DeviceWrites(rules []deviceRule) [][2]string {
	var w [][2]string
	if len(rules) == 0 || !rules[0].wildcard() {
		w = append(w, [2]string{"devices.deny", "a"})
	}
	for _, r := range rules {
		file := "devices.deny"
		if r.allow {
			file = "devices.allow"
		}
		if r.wildcard() {
			w = append(w, [2]string{file, "a"})
			continue
		}
		w = append(w, [2]string{file, r.v1String()})
	}
	return w
}

// deviceFilter builds a BPF_PROG_TYPE_CGROUP_DEVICE program for rules.
//
// Registers: R2 type, R3 access bits still undecided, R4 major, R5 minor.
// Rules are tested last to first; a deny rule that touches an undecided
// bit rejects, an allow rule settles its bits and accepts once none are
// left. Falling off the end rejects.
func deviceFilter(rules []deviceRule) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.Mov.Reg32(asm.R3, asm.R2),
		asm.RSh.Imm32(asm.R3, 16),
		asm.And.Imm32(asm.R2, 0xffff),
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word),
	}
	label := func(i int) string { return "rule" + strconv.Itoa(i) }
	for n, i := 0, len(rules)-1; i >= 0; i, n = i-1, n+1 {
		r := rules[i]
		next := label(n + 1)
		var block asm.Instructions
		if r.typ != 0 {
			block = append(block, asm.JNE.Imm32(asm.R2, int32(r.typ), next))
		}
		if r.major != -1 {
			block = append(block, asm.JNE.Imm32(asm.R4, int32(uint32(r.major)), next))
		}
		if r.minor != -1 {
			block = append(block, asm.JNE.Imm32(asm.R5, int32(uint32(r.minor)), next))
		}
		block = append(block,
			asm.Mov.Reg32(asm.R1, asm.R3),
			asm.And.Imm32(asm.R1, int32(r.access)),
			asm.JEq.Imm32(asm.R1, 0, next),
		)
		if !r.allow {
			block = append(block, asm.Mov.Imm32(asm.R0, 0), asm.Return())
		} else {
			block = append(block,
				asm.And.Imm32(asm.R3, int32(^r.access&accAll)),
				asm.JNE.Imm32(asm.R3, 0, next),
				asm.Mov.Imm32(asm.R0, 1),
				asm.Return(),
			)
		}
		block[0] = block[0].WithSymbol(label(n))
		insns = append(insns, block...)
	}
	insns = append(insns,
		asm.Mov.Imm32(asm.R0, 0).WithSymbol(label(len(rules))),
		asm.Return(),
	)
	return insns
}

// attachDeviceFilter loads the program for rules and attaches it to the
// cgroup v2 directory dir, then detaches any device programs that were
// there before, so there is no window without a filter.
func attachDeviceFilter(dir string, rules []deviceRule) error {
	spec := &ebpf.ProgramSpec{
		Type:         ebpf.CGroupDevice,
		Instructions: deviceFilter(rules),
		License:      "Apache-2.0",
	}
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		return fmt.Errorf("load device cgroup program: %w", err)
	}
	defer prog.Close()

	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer unix.Close(fd)

	var old []*ebpf.Program
	if res, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice}); err == nil {
		for _, p := range res.Programs {
			op, err := ebpf.NewProgramFromID(p.ID)
			if err != nil {
				continue
			}
			defer op.Close()
			old = append(old, op)
		}
	}
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  fd,
		Program: prog,
		Attach:  ebpf.AttachCGroupDevice,
		Flags:   unix.BPF_F_ALLOW_MULTI,
	}); err != nil {
		return fmt.Errorf("attach device cgroup program to %s: %w", dir, err)
	}
	var errs []error
	for _, op := range old {
		if err := link.RawDetachProgram(link.RawDetachProgramOptions{
			Target:  fd,
			Program: op,
			Attach:  ebpf.AttachCGroupDevice,
		}); err != nil {
			errs = append(errs, fmt.Errorf("detach old device program from %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

// deviceRulesString is for messages.
func deviceRulesString(rules []deviceRule) string {
	var b []string
	for _, r := range rules {
		pfx := "deny "
		if r.allow {
			pfx = "allow "
		}
		b = append(b, pfx+r.v1String())
	}
	return strings.Join(b, "; ")
}
