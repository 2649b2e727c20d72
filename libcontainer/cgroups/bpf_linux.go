package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A small eBPF assembler and the bpf(2) calls the cgroup v2 device filter
// needs: load a BPF_PROG_TYPE_CGROUP_DEVICE program, attach it to a cgroup,
// list and detach the ones attached before. A general eBPF library would
// bring a large dependency for these few instructions and five commands.

// insn is one eBPF instruction (struct bpf_insn).
type insn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
	// target names the label a conditional jump goes to when taken.
	target string
}

// Registers.
const (
	r0 = 0
	r1 = 1
	r2 = 2
	r3 = 3
	r4 = 4
	r5 = 5
)

// Opcodes used by the device filter (<linux/bpf.h>, <linux/bpf_common.h>).
const (
	opLdxMemW   = 0x61 // BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
	opMov32Reg  = 0xbc // BPF_ALU | BPF_MOV | BPF_X
	opMov32Imm  = 0xb4 // BPF_ALU | BPF_MOV | BPF_K
	opAnd32Imm  = 0x54 // BPF_ALU | BPF_AND | BPF_K
	opRsh32Imm  = 0x74 // BPF_ALU | BPF_RSH | BPF_K
	opJeq32Imm  = 0x16 // BPF_JMP32 | BPF_JEQ | BPF_K: 32-bit compare
	opJne32Imm  = 0x56 // BPF_JMP32 | BPF_JNE | BPF_K
	opExit      = 0x95 // BPF_JMP | BPF_EXIT
	bpfInsnSize = 8
)

func ldxW(dst, src uint8, off int16) insn { return insn{op: opLdxMemW, dst: dst, src: src, off: off} }
func mov32(dst, src uint8) insn           { return insn{op: opMov32Reg, dst: dst, src: src} }
func mov32Imm(dst uint8, imm int32) insn  { return insn{op: opMov32Imm, dst: dst, imm: imm} }
func and32Imm(dst uint8, imm int32) insn  { return insn{op: opAnd32Imm, dst: dst, imm: imm} }
func rsh32Imm(dst uint8, imm int32) insn  { return insn{op: opRsh32Imm, dst: dst, imm: imm} }
func exit() insn                          { return insn{op: opExit} }
func jeq32(dst uint8, imm int32, to string) insn {
	return insn{op: opJeq32Imm, dst: dst, imm: imm, target: to}
}
func jne32(dst uint8, imm int32, to string) insn {
	return insn{op: opJne32Imm, dst: dst, imm: imm, target: to}
}

// program is a list of instructions with labels on some of them.
type program struct {
	insns  []insn
	labels map[string]int // label -> index of the instruction it marks
}

func (p *program) emit(in ...insn) { p.insns = append(p.insns, in...) }

// label marks the next instruction emitted.
func (p *program) label(name string) {
	if p.labels == nil {
		p.labels = map[string]int{}
	}
	p.labels[name] = len(p.insns)
}

// encode resolves the jumps and returns the program in the host's byte
// order, as the kernel reads it.
func (p *program) encode() ([]byte, error) {
	out := make([]byte, 0, len(p.insns)*bpfInsnSize)
	for i, in := range p.insns {
		if in.target != "" {
			to, ok := p.labels[in.target]
			if !ok {
				return nil, fmt.Errorf("bpf: jump to undefined label %q", in.target)
			}
			off := to - (i + 1)
			if off < 0 || off > 0x7fff || to >= len(p.insns) {
				return nil, fmt.Errorf("bpf: jump from %d to %q (%d) out of range", i, in.target, to)
			}
			in.off = int16(off)
		}
		var b [bpfInsnSize]byte
		b[0] = in.op
		// dst_reg is the low nibble of the second byte on little-endian
		// hosts and the high one on big-endian hosts (bitfield order).
		if hostEndian == binary.ByteOrder(binary.BigEndian) {
			b[1] = in.dst<<4 | in.src&0xf
		} else {
			b[1] = in.src<<4 | in.dst&0xf
		}
		hostEndian.PutUint16(b[2:], uint16(in.off))
		hostEndian.PutUint32(b[4:], uint32(in.imm))
		out = append(out, b[:]...)
	}
	return out, nil
}

var hostEndian = func() binary.ByteOrder {
	x := uint16(1)
	if *(*byte)(unsafe.Pointer(&x)) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}()

// bpf calls bpf(2) with attr, a command-specific struct.
func bpf(cmd uintptr, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// loadDeviceProgram loads code as a cgroup device program and returns its
// descriptor. On a verifier rejection the error carries the verifier log.
func loadDeviceProgram(code []byte) (int, error) {
	license := []byte("Apache-2.0\x00")
	type progLoadAttr struct {
		progType    uint32
		insnCnt     uint32
		insns       uint64
		license     uint64
		logLevel    uint32
		logSize     uint32
		logBuf      uint64
		kernVersion uint32
		progFlags   uint32
		progName    [16]byte
	}
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(code) / bpfInsnSize),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.progName[:], "crossrun_dev")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	if err == nil {
		return int(fd), nil
	}
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EINVAL) {
		return -1, err
	}
	// Again with the verifier's log, to say why.
	log := make([]byte, 64<<10)
	attr.logLevel, attr.logSize = 1, uint32(len(log))
	attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
	fd, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	if err2 == nil {
		return int(fd), nil
	}
	n := 0
	for n < len(log) && log[n] != 0 {
		n++
	}
	if n > 0 {
		return -1, fmt.Errorf("%w (verifier: %s)", err, oneLineLog(log[:n]))
	}
	return -1, err
}

func oneLineLog(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == '\n' {
			c = ' '
		}
		out = append(out, c)
	}
	if len(out) > 400 {
		out = append(out[:400], "..."...)
	}
	return string(out)
}

// progAttachAttr is the attr of BPF_PROG_ATTACH and BPF_PROG_DETACH.
type progAttachAttr struct {
	targetFd    uint32
	attachBpfFd uint32
	attachType  uint32
	attachFlags uint32
}

func attachCgroupProgram(cgroupFd, progFd int, flags uint32) error {
	attr := progAttachAttr{targetFd: uint32(cgroupFd), attachBpfFd: uint32(progFd), attachType: unix.BPF_CGROUP_DEVICE, attachFlags: flags}
	_, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

func detachCgroupProgram(cgroupFd, progFd int) error {
	attr := progAttachAttr{targetFd: uint32(cgroupFd), attachBpfFd: uint32(progFd), attachType: unix.BPF_CGROUP_DEVICE}
	_, err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// cgroupDevicePrograms returns the ids of the device programs attached to
// the cgroup directly.
func cgroupDevicePrograms(cgroupFd int) ([]uint32, error) {
	ids := make([]uint32, 64)
	type progQueryAttr struct {
		targetFd    uint32
		attachType  uint32
		queryFlags  uint32
		attachFlags uint32
		progIds     uint64
		progCnt     uint32
		_           uint32
	}
	attr := progQueryAttr{targetFd: uint32(cgroupFd), attachType: unix.BPF_CGROUP_DEVICE,
		progIds: uint64(uintptr(unsafe.Pointer(&ids[0]))), progCnt: uint32(len(ids))}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil, err
	}
	return ids[:attr.progCnt], nil
}

// programFdByID opens the program with that id.
func programFdByID(id uint32) (int, error) {
	attr := struct {
		progID    uint32
		nextID    uint32
		openFlags uint32
	}{progID: id}
	fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}
