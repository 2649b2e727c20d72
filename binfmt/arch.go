// Package binfmt decides how crossrun execs a container's entrypoint: it
// inspects the file the kernel would load (inside the container's rootfs),
// reads the host's binfmt_misc registry, finds qemu-user interpreters, and
// either picks a route (native, host handler, private binfmt_misc instance)
// or explains with a Diagnosis why the file cannot run.
package binfmt

import (
	"debug/elf"
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

	Class   elf.Class
	Data    elf.Data
	Machine elf.Machine
	// FlagsMask/FlagsValue select on e_flags, for ABIs sharing a machine
	// number (MIPS n32 versus o32). Zero mask means e_flags is ignored.
	FlagsMask, FlagsValue uint32
}

// emHexagon is EM_QDSP6 (Qualcomm Hexagon); debug/elf has no constant.
const emHexagon elf.Machine = 164

// efMIPSABI2 is the e_flags bit marking the MIPS n32 ABI.
const efMIPSABI2 = 0x20

// Arches lists every architecture crossrun knows, one per qemu-user target.
var Arches = []Arch{
	{Name: "x86_64", GOARCH: "amd64", Aliases: []string{"x86-64", "x64"}, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Machine: elf.EM_X86_64},
	{Name: "i386", GOARCH: "386", Aliases: []string{"i486", "i586", "i686", "x86"}, Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: elf.EM_386},
	{Name: "aarch64", GOARCH: "arm64", Variant: "v8", Aliases: []string{"arm64v8"}, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Machine: elf.EM_AARCH64},
	{Name: "aarch64_be", GOARCH: "arm64be", Class: elf.ELFCLASS64, Data: elf.ELFDATA2MSB, Machine: elf.EM_AARCH64},
	{Name: "arm", GOARCH: "arm", Variant: "v7", Aliases: []string{"armhf", "armel", "armv7", "armv7l", "armv6", "armv6l", "arm32v7", "arm32v6", "arm32v5"}, Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: elf.EM_ARM},
	{Name: "armeb", GOARCH: "armbe", Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_ARM},
	{Name: "riscv64", GOARCH: "riscv64", Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Machine: elf.EM_RISCV},
	{Name: "riscv32", GOARCH: "riscv", Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: elf.EM_RISCV},
	{Name: "ppc64le", GOARCH: "ppc64le", Aliases: []string{"ppc64el", "powerpc64le"}, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Machine: elf.EM_PPC64},
	{Name: "ppc64", GOARCH: "ppc64", Aliases: []string{"powerpc64"}, Class: elf.ELFCLASS64, Data: elf.ELFDATA2MSB, Machine: elf.EM_PPC64},
	{Name: "ppc", GOARCH: "ppc", Aliases: []string{"powerpc"}, Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_PPC},
	{Name: "s390x", GOARCH: "s390x", Class: elf.ELFCLASS64, Data: elf.ELFDATA2MSB, Machine: elf.EM_S390},
	{Name: "mips64el", GOARCH: "mips64le", Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Machine: elf.EM_MIPS},
	{Name: "mips64", GOARCH: "mips64", Class: elf.ELFCLASS64, Data: elf.ELFDATA2MSB, Machine: elf.EM_MIPS},
	{Name: "mipsel", GOARCH: "mipsle", Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: elf.EM_MIPS, FlagsMask: efMIPSABI2},
	{Name: "mips", GOARCH: "mips", Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_MIPS, FlagsMask: efMIPSABI2},
	{Name: "mipsn32el", GOARCH: "mipsn32le", Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: elf.EM_MIPS, FlagsMask: efMIPSABI2, FlagsValue: efMIPSABI2},
	{Name: "mipsn32", GOARCH: "mipsn32", Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_MIPS, FlagsMask: efMIPSABI2, FlagsValue: efMIPSABI2},
	{Name: "loongarch64", GOARCH: "loong64", Aliases: []string{"loongarch"}, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Machine: elf.EM_LOONGARCH},
	{Name: "alpha", GOARCH: "alpha", Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB, Machine: elf.EM_ALPHA},
	{Name: "hppa", GOARCH: "hppa", Aliases: []string{"parisc"}, Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_PARISC},
	{Name: "m68k", GOARCH: "m68k", Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_68K},
	{Name: "sh4", GOARCH: "sh4", Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: elf.EM_SH},
	{Name: "sh4eb", GOARCH: "sh4eb", Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_SH},
	{Name: "sparc", GOARCH: "sparc", Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_SPARC},
	{Name: "sparc32plus", GOARCH: "sparc32plus", Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_SPARC32PLUS},
	{Name: "sparc64", GOARCH: "sparc64", Class: elf.ELFCLASS64, Data: elf.ELFDATA2MSB, Machine: elf.EM_SPARCV9},
	{Name: "xtensa", GOARCH: "xtensa", Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: elf.EM_XTENSA},
	{Name: "xtensaeb", GOARCH: "xtensaeb", Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_XTENSA},
	{Name: "microblazeel", GOARCH: "microblazeel", Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: elf.EM_MICROBLAZE},
	{Name: "microblaze", GOARCH: "microblaze", Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_MICROBLAZE},
	{Name: "or1k", GOARCH: "or1k", Aliases: []string{"openrisc"}, Class: elf.ELFCLASS32, Data: elf.ELFDATA2MSB, Machine: elf.EM_OPENRISC},
	{Name: "nios2", GOARCH: "nios2", Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: elf.EM_ALTERA_NIOS2},
	{Name: "cris", GOARCH: "cris", Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: elf.EM_CRIS},
	{Name: "hexagon", GOARCH: "hexagon", Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB, Machine: emHexagon},
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
	if a.Class == elf.ELFCLASS64 {
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
func ArchOf(class elf.Class, data elf.Data, machine elf.Machine, flags uint32) (*Arch, bool) {
	if machine == 0xbaab { // pre-standard MicroBlaze number
		machine = elf.EM_MICROBLAZE
	}
	if machine == elf.EM_ALPHA_STD {
		machine = elf.EM_ALPHA
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
	if a.Class == elf.ELFCLASS64 {
		flagsOff = 48
	}
	if a.FlagsMask != 0 {
		n = flagsOff + 4
	}
	magic = make([]byte, n)
	mask = make([]byte, n)
	copy(magic, elf.ELFMAG)
	magic[elf.EI_CLASS] = byte(a.Class)
	magic[elf.EI_DATA] = byte(a.Data)
	magic[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	for i := 0; i < 16; i++ {
		mask[i] = 0xff
	}
	mask[elf.EI_OSABI] = 0x00
	mask[elf.EI_ABIVERSION] = 0x00
	put16 := func(off int, v, m uint16) {
		if a.Data == elf.ELFDATA2MSB {
			magic[off], magic[off+1] = byte(v>>8), byte(v)
			mask[off], mask[off+1] = byte(m>>8), byte(m)
		} else {
			magic[off], magic[off+1] = byte(v), byte(v>>8)
			mask[off], mask[off+1] = byte(m), byte(m>>8)
		}
	}
	put16(16, uint16(elf.ET_EXEC), 0xfffe) // ET_EXEC (2) and ET_DYN (3)
	put16(18, uint16(a.Machine), 0xffff)
	if a.FlagsMask != 0 {
		for i := 0; i < 4; i++ {
			shift := uint(8 * i)
			if a.Data == elf.ELFDATA2MSB {
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
