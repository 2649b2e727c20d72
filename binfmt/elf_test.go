package binfmt

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The names binfmt prints for ELF values are those of debug/elf, which
// users see in messages ("is not an executable (rel)", "built for
// em_aarch64", "built for hpux").
func TestELFNames(t *testing.T) {
	for v := 0; v < 256; v++ {
		if got, want := Class(v).String(), elf.Class(v).String(); got != want {
			t.Errorf("Class(%d) = %q, want %q", v, got, want)
		}
		if got, want := Data(v).String(), elf.Data(v).String(); got != want {
			t.Errorf("Data(%d) = %q, want %q", v, got, want)
		}
		if got, want := OSABI(v).String(), elf.OSABI(v).String(); got != want {
			t.Errorf("OSABI(%d) = %q, want %q", v, got, want)
		}
	}
	for v := 0; v < 1<<16; v++ {
		if got, want := Type(v).String(), elf.Type(v).String(); got != want {
			t.Errorf("Type(%d) = %q, want %q", v, got, want)
		}
	}
	for _, n := range machineNames {
		if got, want := Machine(n.v).String(), elf.Machine(n.v).String(); got != want {
			t.Errorf("Machine(%d) = %q, want %q", n.v, got, want)
		}
	}
	for i := range Arches {
		if m := Arches[i].Machine; m.String() != elf.Machine(m).String() {
			t.Errorf("%s: machine %d is %q, debug/elf says %q", Arches[i].Name, m, m, elf.Machine(m))
		}
	}
	if got := Machine(999).String(); got != "Machine(999)" {
		t.Errorf("Machine(999) = %q", got)
	}
	if etCore.String() != "ET_CORE" || Type(5).String() != "ET_CORE+1" || osabiARM.String() != "ELFOSABI_ARM" {
		t.Errorf("names: %v %v %v", etCore, Type(5), osabiARM)
	}
}

// parseELF reads real executables as debug/elf does: the header fields and
// the PT_INTERP and PT_NOTE program headers.
func TestParseELFRealFiles(t *testing.T) {
	files := []string{"/proc/self/exe", "/bin/sh", "/bin/ls", "/usr/bin/env"}
	qemus, _ := filepath.Glob("/usr/bin/qemu-*-static")
	files = append(files, qemus...)
	seen := 0
	for _, p := range files {
		ef, err := elf.Open(p)
		if err != nil {
			continue
		}
		seen++
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parseELF(fh)
		fh.Close()
		if err != nil {
			t.Errorf("%s: %v", p, err)
			ef.Close()
			continue
		}
		if f.Class != Class(ef.Class) || f.Data != Data(ef.Data) || f.Machine != Machine(ef.Machine) ||
			f.Type != Type(ef.Type) || f.OSABI != OSABI(ef.OSABI) {
			t.Errorf("%s: %v %v %v %v %v, debug/elf %v %v %v %v %v", p, f.Class, f.Data, f.Machine, f.Type, f.OSABI,
				ef.Class, ef.Data, ef.Machine, ef.Type, ef.OSABI)
		}
		var want []elfProg
		for _, pr := range ef.Progs {
			if pr.Type == elf.PT_INTERP || pr.Type == elf.PT_NOTE {
				want = append(want, elfProg{typ: uint32(pr.Type), off: pr.Off, filesz: pr.Filesz, align: pr.Align})
			}
		}
		if len(want) != len(f.progs) {
			t.Errorf("%s: program headers %+v, want %+v", p, f.progs, want)
		} else {
			for i := range want {
				if want[i] != f.progs[i] {
					t.Errorf("%s: program header %+v, want %+v", p, f.progs[i], want[i])
				}
			}
		}
		ef.Close()
	}
	if seen == 0 {
		t.Skip("no ELF files to compare")
	}
}

// A program header table larger than one read, and one that ends past the
// end of the file.
// TestParseELFPhdrTableLimits: the program header table is read as the
// kernel's ELF loader reads it: entries of exactly the class's size, 64 KiB
// at most. The largest table it loads is read; anything else is refused,
// where debug/elf would read on.
func TestParseELFPhdrTableLimits(t *testing.T) {
	a := mustArch(t, "x86_64")
	file := makeELF(elfSpec{arch: a, interp: "/lib/ld.so"})
	f, err := parseELF(bytes.NewReader(file))
	if err != nil || len(f.progs) != 1 {
		t.Fatalf("fixture: %v %+v", err, f)
	}
	// table returns the fixture's header with n entries of size entsize at
	// offset 64: the fixture's PT_INTERP first, PT_NULL entries after it.
	table := func(n, entsize int) []byte {
		b := bytes.Clone(file[:64])
		b[54], b[55] = byte(entsize), byte(entsize>>8)
		b[56], b[57] = byte(n), byte(n>>8)
		tab := make([]byte, n*entsize)
		copy(tab, file[64:64+56])
		return append(b, tab...)
	}
	largest := table(maxPhdrTable/56, 56) // 1170 entries, 65520 bytes
	f, err = parseELF(bytes.NewReader(largest))
	if err != nil || len(f.progs) != 1 || f.progs[0].typ != ptInterp {
		t.Fatalf("largest table the kernel loads: %v %+v", err, f)
	}
	if _, err := parseELF(bytes.NewReader(largest[:len(largest)-1])); err == nil {
		t.Fatal("a table that ends past the end of the file was accepted")
	}
	for _, c := range []struct {
		name     string
		file     []byte
		contains string
	}{
		{"one entry more", table(maxPhdrTable/56+1, 56), "larger than the 65536 the kernel reads"},
		{"entries of 64 bytes", table(3000, 64), "entry size 64, not 56"},
		{"entries of 48 bytes", table(2, 48), "entry size 48, not 56"},
	} {
		_, err := parseELF(bytes.NewReader(c.file))
		if err == nil || !strings.Contains(err.Error(), c.contains) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.contains)
		}
		if _, err := elf.NewFile(bytes.NewReader(c.file)); err != nil && c.name != "entries of 48 bytes" {
			t.Errorf("%s: debug/elf refused it too (%v); the case shows nothing", c.name, err)
		}
	}
}

// Section headers are not read: a file whose section header table is
// missing or damaged runs (the kernel does not look at it either).
func TestParseELFIgnoresSectionHeaders(t *testing.T) {
	for _, name := range []string{"x86_64", "arm"} {
		a := mustArch(t, name)
		file := makeELF(elfSpec{arch: a, interp: "/lib/ld.so"})
		shoff, shnum := 40, 60 // e_shoff (8 bytes) and e_shnum in a 64-bit header
		if a.Class == elfClass32 {
			shoff, shnum = 32, 48
		}
		file[shoff], file[shoff+1] = 0xff, 0x7f // far past the end of the file
		file[shnum] = 9
		if _, err := elf.NewFile(bytes.NewReader(file)); err == nil {
			t.Fatalf("%s: debug/elf accepts the damaged section header table", name)
		}
		x := &Executable{Name: "/x", Head: file[:headSize]}
		if err := readELF(bytes.NewReader(file), x); err != nil || x.ELF.Interp != "/lib/ld.so" || x.ELF.Arch != a {
			t.Fatalf("%s: readELF: %v %+v", name, err, x.ELF)
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.ReaderAt
	n int64
}

func (c *countingReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(b, off)
	c.n += int64(n)
	return n, err
}

// A file listing a thousand large notes, none of them an ABI tag, is not
// read a thousand times over: readELF reads at most maxNoteBytes of notes.
func TestReadELFBoundsNotes(t *testing.T) {
	a := mustArch(t, "x86_64")
	file := makeELF(elfSpec{arch: a})
	const phnum, filesz = 1000, 0xfff0
	hdr := bytes.Clone(file[:64])
	binary.LittleEndian.PutUint64(hdr[32:], 64)    // e_phoff
	binary.LittleEndian.PutUint16(hdr[54:], 56)    // e_phentsize
	binary.LittleEndian.PutUint16(hdr[56:], phnum) // e_phnum
	table := make([]byte, phnum*56)
	for i := 0; i < phnum; i++ {
		e := table[i*56:]
		binary.LittleEndian.PutUint32(e[0:], uint32(elf.PT_NOTE))
		binary.LittleEndian.PutUint64(e[8:], 0)       // p_offset
		binary.LittleEndian.PutUint64(e[32:], filesz) // p_filesz
		binary.LittleEndian.PutUint64(e[48:], 4)      // p_align
	}
	big := append(hdr, table...)
	big = append(big, make([]byte, filesz)...)
	cr := &countingReader{r: bytes.NewReader(big)}
	x := &Executable{Name: "/x", Head: big[:headSize]}
	if err := readELF(cr, x); err != nil {
		t.Fatalf("readELF: %v", err)
	}
	if x.ELF.ABITag != nil {
		t.Fatalf("found an ABI tag in notes that hold none: %+v", x.ELF.ABITag)
	}
	if limit := int64(64 + len(table) + maxNoteBytes); cr.n > limit {
		t.Fatalf("read %d bytes of a %d-byte file, want at most %d", cr.n, len(big), limit)
	}
}
