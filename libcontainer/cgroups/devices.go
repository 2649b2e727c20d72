package cgroups

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

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
// left. Falling off the end rejects. Comparisons are 32-bit (the context
// fields are u32), so device numbers above 2^31 compare as written.
func deviceFilter(rules []deviceRule) *program {
	p := &program{}
	// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
	// with access_type = access << 16 | type.
	p.emit(
		ldxW(r2, r1, 0),
		mov32(r3, r2),
		rsh32Imm(r3, 16),
		and32Imm(r2, 0xffff),
		ldxW(r4, r1, 4),
		ldxW(r5, r1, 8),
	)
	label := func(i int) string { return "rule" + strconv.Itoa(i) }
	for n, i := 0, len(rules)-1; i >= 0; i, n = i-1, n+1 {
		r := rules[i]
		next := label(n + 1)
		p.label(label(n))
		if r.typ != 0 {
			p.emit(jne32(r2, int32(r.typ), next))
		}
		if r.major != -1 {
			p.emit(jne32(r4, int32(uint32(r.major)), next))
		}
		if r.minor != -1 {
			p.emit(jne32(r5, int32(uint32(r.minor)), next))
		}
		p.emit(
			mov32(r1, r3),
			and32Imm(r1, int32(r.access)),
			jeq32(r1, 0, next),
		)
		if !r.allow {
			p.emit(mov32Imm(r0, 0), exit())
		} else {
			p.emit(
				and32Imm(r3, int32(^r.access&accAll)),
				jne32(r3, 0, next),
				mov32Imm(r0, 1),
				exit(),
			)
		}
	}
	p.label(label(len(rules)))
	p.emit(mov32Imm(r0, 0), exit())
	return p
}

// attachDeviceFilter loads the program for rules and attaches it to the
// cgroup v2 directory dir, then detaches any device programs that were
// there before, so there is no window without a filter.
func attachDeviceFilter(dir string, rules []deviceRule) error {
	code, err := deviceFilter(rules).encode()
	if err != nil {
		return err
	}
	prog, err := loadDeviceProgram(code)
	if err != nil {
		return fmt.Errorf("load device cgroup program: %w", err)
	}
	defer unix.Close(prog)

	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer unix.Close(fd)

	var old []int
	if ids, err := cgroupDevicePrograms(fd); err == nil {
		for _, id := range ids {
			ofd, err := programFdByID(id)
			if err != nil {
				continue
			}
			defer unix.Close(ofd)
			old = append(old, ofd)
		}
	}
	if err := attachCgroupProgram(fd, prog, unix.BPF_F_ALLOW_MULTI); err != nil {
		return fmt.Errorf("attach device cgroup program to %s: %w", dir, err)
	}
	var errs []error
	for _, ofd := range old {
		if err := detachCgroupProgram(fd, ofd); err != nil {
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
