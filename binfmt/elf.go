package binfmt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// This file holds the little of the ELF format that crossrun needs: the
// identification, the file header, and the program header table (to find
// PT_INTERP and PT_NOTE). Section headers are never read: the kernel does
// not look at them when it loads a program, so neither does crossrun.

// Class is the ELF class (EI_CLASS): 32- or 64-bit.
type Class uint8

// Data is the ELF data encoding (EI_DATA): the byte order.
type Data uint8

// OSABI is the ELF OS ABI byte (EI_OSABI).
type OSABI uint8

// Type is the ELF file type (e_type).
type Type uint16

// Machine is the ELF machine number (e_machine).
type Machine uint16

const (
	elfMagic = "\x7fELF"

	// Offsets in e_ident.
	eiClass      = 4
	eiData       = 5
	eiVersion    = 6
	eiOSABI      = 7
	eiABIVersion = 8
	eiNIdent     = 16

	evCurrent = 1 // the only ELF version

	elfClassNone Class = 0
	elfClass32   Class = 1
	elfClass64   Class = 2

	elfDataNone Data = 0
	elfDataLSB  Data = 1 // two's complement, little-endian
	elfDataMSB  Data = 2 // two's complement, big-endian

	etNone Type = 0
	etRel  Type = 1
	etExec Type = 2
	etDyn  Type = 3
	etCore Type = 4

	osabiNone       OSABI = 0
	osabiHPUX       OSABI = 1
	osabiNetBSD     OSABI = 2
	osabiLinux      OSABI = 3
	osabiHurd       OSABI = 4
	osabiSolaris    OSABI = 6
	osabiFreeBSD    OSABI = 9
	osabiOpenBSD    OSABI = 12
	osabiARM        OSABI = 97
	osabiStandalone OSABI = 255

	// Program header types.
	ptInterp = 3
	ptNote   = 4

	// Sizes of the file header and of one program header entry.
	ehdr32Size = 52
	ehdr64Size = 64
	phdr32Size = 32
	phdr64Size = 56
)

// ELF machine numbers (EM_*) of the architectures crossrun knows.
const (
	emNone          Machine = 0
	emSPARC         Machine = 2
	em386           Machine = 3
	em68K           Machine = 4
	emMIPS          Machine = 8
	emPARISC        Machine = 15
	emSPARC32PLUS   Machine = 18
	emPPC           Machine = 20
	emPPC64         Machine = 21
	emS390          Machine = 22
	emARM           Machine = 40
	emAlphaStd      Machine = 41 // Alpha's number in the ELF standard
	emSH            Machine = 42
	emSPARCV9       Machine = 43
	emX86_64        Machine = 62
	emCRIS          Machine = 76
	emOpenRISC      Machine = 92
	emXtensa        Machine = 94
	emAlteraNios2   Machine = 113
	emQDSP6         Machine = 164 // Qualcomm Hexagon
	emAARCH64       Machine = 183
	emMicroBlaze    Machine = 189
	emRISCV         Machine = 243
	emLoongArch     Machine = 258
	emMicroBlazeOld Machine = 0xbaab // MicroBlaze before it had a number
	emAlpha         Machine = 0x9026 // what Linux tools write for Alpha
)

// valueName is a named value of one of the ELF enumerations.
type valueName struct {
	v    uint32
	name string
}

var classNames = []valueName{{0, "ELFCLASSNONE"}, {1, "ELFCLASS32"}, {2, "ELFCLASS64"}}

var dataNames = []valueName{{0, "ELFDATANONE"}, {1, "ELFDATA2LSB"}, {2, "ELFDATA2MSB"}}

// typeNames and osabiNames are the complete lists of the ELF
// specification, in increasing order.
var typeNames = []valueName{
	{0, "ET_NONE"}, {1, "ET_REL"}, {2, "ET_EXEC"}, {3, "ET_DYN"}, {4, "ET_CORE"},
	{0xfe00, "ET_LOOS"}, {0xfeff, "ET_HIOS"}, {0xff00, "ET_LOPROC"}, {0xffff, "ET_HIPROC"},
}

var osabiNames = []valueName{
	{0, "ELFOSABI_NONE"}, {1, "ELFOSABI_HPUX"}, {2, "ELFOSABI_NETBSD"}, {3, "ELFOSABI_LINUX"},
	{4, "ELFOSABI_HURD"}, {5, "ELFOSABI_86OPEN"}, {6, "ELFOSABI_SOLARIS"}, {7, "ELFOSABI_AIX"},
	{8, "ELFOSABI_IRIX"}, {9, "ELFOSABI_FREEBSD"}, {10, "ELFOSABI_TRU64"}, {11, "ELFOSABI_MODESTO"},
	{12, "ELFOSABI_OPENBSD"}, {13, "ELFOSABI_OPENVMS"}, {14, "ELFOSABI_NSK"}, {15, "ELFOSABI_AROS"},
	{16, "ELFOSABI_FENIXOS"}, {17, "ELFOSABI_CLOUDABI"}, {97, "ELFOSABI_ARM"}, {255, "ELFOSABI_STANDALONE"},
}

// machineNames names the machines crossrun knows; others print as numbers.
var machineNames = []valueName{
	{uint32(emNone), "EM_NONE"}, {uint32(emSPARC), "EM_SPARC"}, {uint32(em386), "EM_386"},
	{uint32(em68K), "EM_68K"}, {uint32(emMIPS), "EM_MIPS"}, {uint32(emPARISC), "EM_PARISC"},
	{uint32(emSPARC32PLUS), "EM_SPARC32PLUS"}, {uint32(emPPC), "EM_PPC"}, {uint32(emPPC64), "EM_PPC64"},
	{uint32(emS390), "EM_S390"}, {uint32(emARM), "EM_ARM"}, {uint32(emAlphaStd), "EM_ALPHA_STD"},
	{uint32(emSH), "EM_SH"}, {uint32(emSPARCV9), "EM_SPARCV9"}, {uint32(emX86_64), "EM_X86_64"},
	{uint32(emCRIS), "EM_CRIS"}, {uint32(emOpenRISC), "EM_OPENRISC"}, {uint32(emXtensa), "EM_XTENSA"},
	{uint32(emAlteraNios2), "EM_ALTERA_NIOS2"}, {uint32(emQDSP6), "EM_QDSP6"}, {uint32(emAARCH64), "EM_AARCH64"},
	{uint32(emMicroBlaze), "EM_MICROBLAZE"}, {uint32(emRISCV), "EM_RISCV"}, {uint32(emLoongArch), "EM_LOONGARCH"},
	{uint32(emAlpha), "EM_ALPHA"},
}

// nameOf names v from a sorted list. A value between two names is written
// as the name below it plus the distance ("ET_CORE+1", "ET_LOOS+3"), so
// that processor- and OS-specific ranges stay recognisable.
func nameOf(v uint32, names []valueName) string {
	for i := len(names) - 1; i >= 0; i-- {
		n := names[i]
		if n.v == v {
			return n.name
		}
		if n.v < v {
			return n.name + "+" + strconv.FormatUint(uint64(v-n.v), 10)
		}
	}
	return strconv.FormatUint(uint64(v), 10)
}

func (c Class) String() string { return nameOf(uint32(c), classNames) }
func (d Data) String() string  { return nameOf(uint32(d), dataNames) }
func (t Type) String() string  { return nameOf(uint32(t), typeNames) }
func (o OSABI) String() string { return nameOf(uint32(o), osabiNames) }

func (m Machine) String() string {
	for _, n := range machineNames {
		if n.v == uint32(m) {
			return n.name
		}
	}
	return "Machine(" + strconv.FormatUint(uint64(m), 10) + ")"
}

// elfFile is what crossrun reads of an ELF file.
type elfFile struct {
	Class   Class
	Data    Data
	OSABI   OSABI
	Type    Type
	Machine Machine
	Flags   uint32
	order   binary.ByteOrder
	// progs holds the PT_INTERP and PT_NOTE entries, in file order.
	progs []elfProg
}

// elfProg is one program header entry.
type elfProg struct {
	typ         uint32
	off, filesz uint64
	align       uint64
}

// maxPhdrTable is the largest program header table the kernel's ELF
// loader reads (load_elf_phdrs); it refuses a larger one with ENOEXEC.
// Real tables are a few hundred bytes.
const maxPhdrTable = 64 << 10

// readAtFull reads len(b) bytes at off. Reaching the end of the input
// after a complete read is not an error.
func readAtFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// parseELF reads the ELF identification, the file header and the program
// header table of r. It refuses an unknown class, byte order or ELF
// version, a file shorter than its header, a program header table that
// the kernel would not load (entries of another size than the class's,
// more than 64 KiB in all), that is out of range or does not fit in the
// file, and entries whose offset or size do not fit in an int64.
// Everything else (section headers included) is left alone.
func parseELF(r io.ReaderAt) (*elfFile, error) {
	var hdr [ehdr64Size]byte
	if err := readAtFull(r, hdr[:eiNIdent], 0); err != nil {
		return nil, readErr("ELF identification", err)
	}
	if string(hdr[:4]) != elfMagic {
		return nil, fmt.Errorf("bad magic number %q", hdr[:4])
	}
	f := &elfFile{Class: Class(hdr[eiClass]), Data: Data(hdr[eiData]), OSABI: OSABI(hdr[eiOSABI])}
	var size int
	switch f.Class {
	case elfClass32:
		size = ehdr32Size
	case elfClass64:
		size = ehdr64Size
	default:
		return nil, fmt.Errorf("unknown ELF class %d", hdr[eiClass])
	}
	switch f.Data {
	case elfDataLSB:
		f.order = binary.LittleEndian
	case elfDataMSB:
		f.order = binary.BigEndian
	default:
		return nil, fmt.Errorf("unknown ELF data encoding %d", hdr[eiData])
	}
	if hdr[eiVersion] != evCurrent {
		return nil, fmt.Errorf("unknown ELF version %d", hdr[eiVersion])
	}
	if err := readAtFull(r, hdr[:size], 0); err != nil {
		return nil, readErr("ELF header", err)
	}
	bo := f.order
	f.Type = Type(bo.Uint16(hdr[16:]))
	f.Machine = Machine(bo.Uint16(hdr[18:]))
	// The low byte of e_version must repeat EI_VERSION; the rest is not
	// looked at (the kernel looks at neither).
	if v := bo.Uint32(hdr[20:]); byte(v) != evCurrent {
		return nil, fmt.Errorf("e_version %#x does not match the ELF version 1", v)
	}
	var phoff uint64
	var phentsize, phnum, want int
	if f.Class == elfClass32 {
		phoff = uint64(bo.Uint32(hdr[28:]))
		f.Flags = bo.Uint32(hdr[36:])
		phentsize, phnum = int(bo.Uint16(hdr[42:])), int(bo.Uint16(hdr[44:]))
		want = phdr32Size
	} else {
		phoff = bo.Uint64(hdr[32:])
		f.Flags = bo.Uint32(hdr[48:])
		phentsize, phnum = int(bo.Uint16(hdr[54:])), int(bo.Uint16(hdr[56:]))
		want = phdr64Size
	}
	if phoff > math.MaxInt64 {
		return nil, fmt.Errorf("invalid program header table offset %#x", phoff)
	}
	if phnum == 0 {
		return f, nil
	}
	// The kernel's checks, in its order: entries of exactly the class's
	// size, and a table of at most 64 KiB.
	if phentsize != want {
		return nil, fmt.Errorf("program header entry size %d, not %d: the kernel does not load such a file", phentsize, want)
	}
	total := phnum * phentsize
	if total > maxPhdrTable {
		return nil, fmt.Errorf("program header table of %d bytes is larger than the %d the kernel reads", total, maxPhdrTable)
	}
	if phoff > math.MaxInt64-uint64(total) {
		return nil, fmt.Errorf("program header table at %#x is out of range", phoff)
	}
	b := make([]byte, total)
	if err := readAtFull(r, b, int64(phoff)); err != nil {
		return nil, readErr("program header table", err)
	}
	for i := 0; i < phnum; i++ {
		p := parseProg(f, b[i*phentsize:])
		if p.off > math.MaxInt64 {
			return nil, fmt.Errorf("program header %d: invalid offset %#x", i, p.off)
		}
		if p.filesz > math.MaxInt64 {
			return nil, fmt.Errorf("program header %d: invalid file size %#x", i, p.filesz)
		}
		if p.typ == ptInterp || p.typ == ptNote {
			f.progs = append(f.progs, p)
		}
	}
	return f, nil
}

// parseProg decodes the program header entry at the start of b.
func parseProg(f *elfFile, b []byte) elfProg {
	bo := f.order
	if f.Class == elfClass32 {
		return elfProg{
			typ:    bo.Uint32(b[0:]),
			off:    uint64(bo.Uint32(b[4:])),
			filesz: uint64(bo.Uint32(b[16:])),
			align:  uint64(bo.Uint32(b[28:])),
		}
	}
	return elfProg{
		typ:    bo.Uint32(b[0:]),
		off:    bo.Uint64(b[8:]),
		filesz: bo.Uint64(b[32:]),
		align:  bo.Uint64(b[48:]),
	}
}

func readErr(what string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated %s", what)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

// readProg reads the contents of the segment of p. The caller bounds
// p.filesz, which comes from the file.
func readProg(r io.ReaderAt, p elfProg) ([]byte, error) {
	b := make([]byte, p.filesz)
	if err := readAtFull(r, b, int64(p.off)); err != nil {
		return nil, err
	}
	return b, nil
}
