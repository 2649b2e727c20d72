// Package binfmt decides how crossrun execs a container's entrypoint: it
// inspects the file the kernel would load (inside the container's rootfs),
// reads the host's binfmt_misc registry, finds qemu-user interpreters, and
// either picks a route (native, host handler, private binfmt_misc instance)
// or explains with a Diagnosis why the file cannot run.
package binfmt

import (
	"fmt"
	"runtime"
	"strings"
)

// Arch describes one CPU architecture as three worlds name it: the ELF
// header (class, byte order, machine, and for a few ABIs some e_flags bits),
// qemu-user (qemu-<Name>), and OCI/Go platforms (linux/<GOARCH>[/<Variant>]).
type Arch struct {
	// Name is qemu's name, as in qemu-aarch64-static; also the name used
	// by "crossrun binfmt install".
	Name string
	// GOARCH is the OCI/Go architecture (runtime.GOARCH spelling) or, for
	// architectures Go does not support, a conventional lower-case name.
	GOARCH string
	// Variant is the OCI platform variant, if one is implied ("v7" for arm).
	Variant string
	// Aliases are other spellings accepted by ArchByName.
	Aliases []string

	Class   Class
	Data    Data
	Machine Machine
	// FlagsMask/FlagsValue select on e_flags, for ABIs sharing a machine
	// number (MIPS n32 versus o32). Zero mask means e_flags is ignored.
	FlagsMask, FlagsValue uint32
}

// efMIPSABI2 is the e_flags bit marking the MIPS n32 ABI.
const efMIPSABI2 = 0x20

// Arches lists every architecture crossrun knows, one per qemu-user target.
var Arches = []Arch{
	{Name: "x86_64", GOARCH: "amd64", Aliases: []string{"x86-64", "x64"}, Class: elfClass64, Data: elfDataLSB, Machine: emX86_64},
	{Name: "i386", GOARCH: "386", Aliases: []string{"i486", "i586", "i686", "x86"}, Class: elfClass32, Data: elfDataLSB, Machine: em386},
	{Name: "aarch64", GOARCH: "arm64", Variant: "v8", Aliases: []string{"arm64v8"}, Class: elfClass64, Data: elfDataLSB, Machine: emAARCH64},
	{Name: "aarch64_be", GOARCH: "arm64be", Class: elfClass64, Data: elfDataMSB, Machine: emAARCH64},
	{Name: "arm", GOARCH: "arm", Variant: "v7", Aliases: []string{"armhf", "armel", "armv7", "armv7l", "armv6", "armv6l", "arm32v7", "arm32v6", "arm32v5"}, Class: elfClass32, Data: elfDataLSB, Machine: emARM},
	{Name: "armeb", GOARCH: "armbe", Class: elfClass32, Data: elfDataMSB, Machine: emARM},
	{Name: "riscv64", GOARCH: "riscv64", Class: elfClass64, Data: elfDataLSB, Machine: emRISCV},
	{Name: "riscv32", GOARCH: "riscv", Class: elfClass32, Data: elfDataLSB, Machine: emRISCV},
	{Name: "ppc64le", GOARCH: "ppc64le", Aliases: []string{"ppc64el", "powerpc64le"}, Class: elfClass64, Data: elfDataLSB, Machine: emPPC64},
	{Name: "ppc64", GOARCH: "ppc64", Aliases: []string{"powerpc64"}, Class: elfClass64, Data: elfDataMSB, Machine: emPPC64},
	{Name: "ppc", GOARCH: "ppc", Aliases: []string{"powerpc"}, Class: elfClass32, Data: elfDataMSB, Machine: emPPC},
	{Name: "s390x", GOARCH: "s390x", Class: elfClass64, Data: elfDataMSB, Machine: emS390},
	{Name: "mips64el", GOARCH: "mips64le", Class: elfClass64, Data: elfDataLSB, Machine: emMIPS},
	{Name: "mips64", GOARCH: "mips64", Class: elfClass64, Data: elfDataMSB, Machine: emMIPS},
	{Name: "mipsel", GOARCH: "mipsle", Class: elfClass32, Data: elfDataLSB, Machine: emMIPS, FlagsMask: efMIPSABI2},
	{Name: "mips", GOARCH: "mips", Class: elfClass32, Data: elfDataMSB, Machine: emMIPS, FlagsMask: efMIPSABI2},
	{Name: "mipsn32el", GOARCH: "mipsn32le", Class: elfClass32, Data: elfDataLSB, Machine: emMIPS, FlagsMask: efMIPSABI2, FlagsValue: efMIPSABI2},
	{Name: "mipsn32", GOARCH: "mipsn32", Class: elfClass32, Data: elfDataMSB, Machine: emMIPS, FlagsMask: efMIPSABI2, FlagsValue: efMIPSABI2},
	{Name: "loongarch64", GOARCH: "loong64", Aliases: []string{"loongarch"}, Class: elfClass64, Data: elfDataLSB, Machine: emLoongArch},
	{Name: "alpha", GOARCH: "alpha", Class: elfClass64, Data: elfDataLSB, Machine: emAlpha},
	{Name: "hppa", GOARCH: "hppa", Aliases: []string{"parisc"}, Class: elfClass32, Data: elfDataMSB, Machine: emPARISC},
	{Name: "m68k", GOARCH: "m68k", Class: elfClass32, Data: elfDataMSB, Machine: em68K},
	{Name: "sh4", GOARCH: "sh4", Class: elfClass32, Data: elfDataLSB, Machine: emSH},
	{Name: "sh4eb", GOARCH: "sh4eb", Class: elfClass32, Data: elfDataMSB, Machine: emSH},
	{Name: "sparc", GOARCH: "sparc", Class: elfClass32, Data: elfDataMSB, Machine: emSPARC},
	{Name: "sparc32plus", GOARCH: "sparc32plus", Class: elfClass32, Data: elfDataMSB, Machine: emSPARC32PLUS},
	{Name: "sparc64", GOARCH: "sparc64", Class: elfClass64, Data: elfDataMSB, Machine: emSPARCV9},
	{Name: "xtensa", GOARCH: "xtensa", Class: elfClass32, Data: elfDataLSB, Machine: emXtensa},
	{Name: "xtensaeb", GOARCH: "xtensaeb", Class: elfClass32, Data: elfDataMSB, Machine: emXtensa},
	{Name: "microblazeel", GOARCH: "microblazeel", Class: elfClass32, Data: elfDataLSB, Machine: emMicroBlaze},
	{Name: "microblaze", GOARCH: "microblaze", Class: elfClass32, Data: elfDataMSB, Machine: emMicroBlaze},
	{Name: "or1k", GOARCH: "or1k", Aliases: []string{"openrisc"}, Class: elfClass32, Data: elfDataMSB, Machine: emOpenRISC},
	{Name: "nios2", GOARCH: "nios2", Class: elfClass32, Data: elfDataLSB, Machine: emAlteraNios2},
	{Name: "cris", GOARCH: "cris", Class: elfClass32, Data: elfDataLSB, Machine: emCRIS},
	{Name: "hexagon", GOARCH: "hexagon", Class: elfClass32, Data: elfDataLSB, Machine: emQDSP6},
}

// Platform returns the OCI platform string, e.g. "linux/arm/v7".
func (a *Arch) Platform() string {
	if a.Variant != "" && a.Variant != "v8" {
		return "linux/" + a.GOARCH + "/" + a.Variant
	}
	return "linux/" + a.GOARCH
}

// QEMUName is the qemu-user binary name without suffix, e.g. "qemu-aarch64".
func (a *Arch) QEMUName() string { return "qemu-" + a.Name }

// Bits is 32 or 64.
func (a *Arch) Bits() int {
	if a.Class == elfClass64 {
		return 64
	}
	return 32
}

func (a *Arch) String() string { return a.Name }

// ArchByName finds an architecture by qemu name, GOARCH, alias or OCI
// platform ("linux/arm64", "arm/v7"). Matching is case-insensitive.
func ArchByName(name string) (*Arch, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "linux/")
	variant := ""
	if i := strings.IndexByte(n, '/'); i >= 0 {
		n, variant = n[:i], n[i+1:]
	}
	for i := range Arches {
		a := &Arches[i]
		if a.Name == n || a.GOARCH == n {
			if a.Name == "arm" && variant != "" && variant != "v5" && variant != "v6" && variant != "v7" {
				continue
			}
			return a, true
		}
		for _, al := range a.Aliases {
			if al == n {
				return a, true
			}
		}
	}
	return nil, false
}

// ArchOf returns the architecture that an ELF header (class, byte order,
// machine, e_flags) belongs to.
func ArchOf(class Class, data Data, machine Machine, flags uint32) (*Arch, bool) {
	if machine == emMicroBlazeOld {
		machine = emMicroBlaze
	}
	if machine == emAlphaStd {
		machine = emAlpha
	}
	for i := range Arches {
		a := &Arches[i]
		if a.Class == class && a.Data == data && a.Machine == machine && flags&a.FlagsMask == a.FlagsValue {
			return a, true
		}
	}
	return nil, false
}

// BinfmtMagic returns the magic and mask that select this architecture's
// executables in binfmt_misc, matched at offset 0 of the file: the ELF
// identification (class, byte order, version; OS ABI and ABI version are
// ignored), e_type EXEC or DYN (the mask clears the low bit), e_machine, and
// for ABIs told apart by e_flags the relevant e_flags bits.
func (a *Arch) BinfmtMagic() (magic, mask []byte) {
	n := 20
	flagsOff := 36 // e_flags in a 32-bit header
	if a.Class == elfClass64 {
		flagsOff = 48
	}
	if a.FlagsMask != 0 {
		n = flagsOff + 4
	}
	magic = make([]byte, n)
	mask = make([]byte, n)
	copy(magic, elfMagic)
	magic[eiClass] = byte(a.Class)
	magic[eiData] = byte(a.Data)
	magic[eiVersion] = evCurrent
	for i := 0; i < 16; i++ {
		mask[i] = 0xff
	}
	mask[eiOSABI] = 0x00
	mask[eiABIVersion] = 0x00
	put16 := func(off int, v, m uint16) {
		if a.Data == elfDataMSB {
			magic[off], magic[off+1] = byte(v>>8), byte(v)
			mask[off], mask[off+1] = byte(m>>8), byte(m)
		} else {
			magic[off], magic[off+1] = byte(v), byte(v>>8)
			mask[off], mask[off+1] = byte(m), byte(m>>8)
		}
	}
	put16(16, uint16(etExec), 0xfffe) // ET_EXEC (2) and ET_DYN (3)
	put16(18, uint16(a.Machine), 0xffff)
	if a.FlagsMask != 0 {
		for i := 0; i < 4; i++ {
			shift := uint(8 * i)
			if a.Data == elfDataMSB {
				shift = uint(8 * (3 - i))
			}
			magic[flagsOff+i] = byte(a.FlagsValue >> shift)
			mask[flagsOff+i] = byte(a.FlagsMask >> shift)
		}
	}
	return magic, mask
}

// HostArch returns the architecture of the running crossrun binary.
func HostArch() *Arch {
	a, ok := ArchByName(runtime.GOARCH)
	if !ok {
		panic(fmt.Sprintf("binfmt: unknown host GOARCH %q", runtime.GOARCH))
	}
	return a
}
