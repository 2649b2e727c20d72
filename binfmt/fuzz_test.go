package binfmt

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzELF feeds arbitrary file heads to the ELF inspection: classify,
// parseShebang for #! files, and readELF. readELF reads what the kernel
// reads (identification, file header, program headers) and ignores
// section headers, so it must succeed exactly when debug/elf parses the
// file with its section header fields (e_shoff, e_shnum, e_shstrndx)
// cleared, agree with debug/elf on the header fields, the PT_INTERP and
// the GNU ABI note of that file, and not depend on those fields. It
// fails with a one-line ENOEXEC Diagnosis and reports the class, byte
// order, OS ABI, type, machine and e_flags that the header bytes hold.
// The binfmt_misc magic crossrun installs for each architecture must
// match exactly the headers of that architecture (as ArchOf names it).
func FuzzELF(f *testing.F) {
	for i := range Arches {
		a := &Arches[i]
		f.Add(makeELF(elfSpec{arch: a}))
		f.Add(makeELF(elfSpec{arch: a, typ: etDyn, interp: "/lib/ld-linux.so.2", abiTag: &ABITag{Major: 3, Minor: 2}}))
	}
	f.Add([]byte("#!/bin/sh -e\necho hi\n"))
	f.Add([]byte("#! /usr/bin/env  python3 \r\n"))
	f.Add([]byte("MZ\x90\x00"))
	f.Add([]byte("\xcf\xfa\xed\xfe\x07\x00\x00\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		head := data
		if len(head) > headSize {
			head = head[:headSize]
		}
		kind := classify(head)
		if (kind == KindELF) != bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
			t.Fatalf("classify = %v for a file starting %q", kind, head[:min(4, len(head))])
		}
		if kind == KindScript {
			checkShebang(t, head)
		}
		checkMagicPerArch(t, head)
		if kind != KindELF {
			return
		}
		x := &Executable{Name: "/fuzz", Head: head}
		err := readELF(bytes.NewReader(data), x)
		cleared := clearSectionFields(data)
		checkAgainstDebugELF(t, cleared)
		if !phdrsOverlapSectionFields(data) {
			xc := &Executable{Name: "/fuzz", Head: cleared[:len(head)]}
			cerr := readELF(bytes.NewReader(cleared), xc)
			if (err == nil) != (cerr == nil) {
				t.Fatalf("readELF error %v, with the section header fields cleared %v", err, cerr)
			}
			if err == nil {
				a, b := *x.ELF, *xc.ELF
				a.Interp, a.ABITag, b.Interp, b.ABITag = "", nil, "", nil
				if a != b {
					t.Fatalf("readELF %+v, with the section header fields cleared %+v", a, b)
				}
			}
		}
		if err != nil {
			var d *Diagnosis
			if !errors.As(err, &d) || !errors.Is(err, unix.ENOEXEC) {
				t.Fatalf("readELF error %v is not an ENOEXEC Diagnosis", err)
			}
			fzOneLine(t, "readELF", err.Error())
			return
		}
		e := x.ELF
		h := rawHeader(head)
		if e.Class != Class(h.class) || e.Data != Data(h.data) || e.OSABI != OSABI(h.osabi) ||
			e.Type != Type(h.typ) || e.Machine != Machine(h.machine) {
			t.Fatalf("readELF: class %v data %v osabi %v type %v machine %v; header bytes say %d %d %d %d %d",
				e.Class, e.Data, e.OSABI, e.Type, e.Machine, h.class, h.data, h.osabi, h.typ, h.machine)
		}
		if h.flagsPresent && e.Flags != h.flags || !h.flagsPresent && e.Flags != 0 {
			t.Fatalf("readELF: e_flags %#x, header bytes say %#x (present %v)", e.Flags, h.flags, h.flagsPresent)
		}
		if a, _ := ArchOf(e.Class, e.Data, e.Machine, e.Flags); a != e.Arch {
			t.Fatalf("readELF: arch %v, ArchOf says %v", e.Arch, a)
		}
		if strings.IndexByte(e.Interp, 0) >= 0 {
			t.Fatalf("readELF: interpreter %q contains NUL; the kernel reads PT_INTERP as a C string", e.Interp)
		}
		fzOneLine(t, "Describe", e.Describe())
	})
}

// sectionFields are the byte ranges of e_shoff and of e_shnum with
// e_shstrndx in a 32-bit and a 64-bit ELF header.
var sectionFields = map[byte][2][2]int{
	byte(elf.ELFCLASS32): {{32, 36}, {48, 52}},
	byte(elf.ELFCLASS64): {{40, 48}, {60, 64}},
}

// clearSectionFields returns a copy of data with e_shoff, e_shnum and
// e_shstrndx zeroed: a file without section headers for debug/elf.
func clearSectionFields(data []byte) []byte {
	out := bytes.Clone(data)
	if len(out) <= int(elf.EI_CLASS) {
		return out
	}
	for _, r := range sectionFields[out[elf.EI_CLASS]] {
		for i := r[0]; i < r[1] && i < len(out); i++ {
			out[i] = 0
		}
	}
	return out
}

// phdrFields decodes e_phoff, e_phentsize and e_phnum from the raw header
// of data; ok is false when data is too short or its class or byte order
// is unknown.
func phdrFields(data []byte) (phoff, entsize, num uint64, ok bool) {
	if len(data) < 64 || (data[elf.EI_DATA] != byte(elf.ELFDATA2LSB) && data[elf.EI_DATA] != byte(elf.ELFDATA2MSB)) {
		return 0, 0, 0, false
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if data[elf.EI_DATA] == byte(elf.ELFDATA2MSB) {
		bo = binary.BigEndian
	}
	switch data[elf.EI_CLASS] {
	case byte(elf.ELFCLASS32):
		return uint64(bo.Uint32(data[28:])), uint64(bo.Uint16(data[42:])), uint64(bo.Uint16(data[44:])), true
	case byte(elf.ELFCLASS64):
		return bo.Uint64(data[32:]), uint64(bo.Uint16(data[54:])), uint64(bo.Uint16(data[56:])), true
	}
	return 0, 0, 0, false
}

// phdrsOverlapSectionFields reports whether the program header table the
// header of data describes covers a byte clearSectionFields changes.
func phdrsOverlapSectionFields(data []byte) bool {
	phoff, phentsize, phnum, ok := phdrFields(data)
	if !ok || phnum == 0 || phoff >= 64 {
		return false
	}
	end := phoff + phnum*phentsize
	for _, r := range sectionFields[data[elf.EI_CLASS]] {
		if phoff < uint64(r[1]) && end > uint64(r[0]) {
			return true
		}
	}
	return false
}

// beyondKernelPhdrLimits reports whether the header of data describes a
// non-empty program header table the kernel's ELF loader refuses: entries
// of another size than the class's, or more than 64 KiB in all.
func beyondKernelPhdrLimits(data []byte) bool {
	_, entsize, num, ok := phdrFields(data)
	if !ok || num == 0 {
		return false
	}
	want := uint64(56)
	if data[elf.EI_CLASS] == byte(elf.ELFCLASS32) {
		want = 32
	}
	return entsize != want || num*entsize > 64<<10
}

// checkAgainstDebugELF compares readELF with debug/elf on a file without
// section header fields: readELF refuses a program header table the kernel
// would not load; otherwise both accept the file or both refuse it, and readELF
// reports the header fields debug/elf reads, the last PT_INTERP of 2 to
// PATH_MAX bytes it can read (up to its first NUL), and the first GNU ABI
// note of the PT_NOTE segments below 64 KiB it can read.
func checkAgainstDebugELF(t *testing.T, data []byte) {
	t.Helper()
	x := &Executable{Name: "/fuzz", Head: data[:min(len(data), headSize)]}
	err := readELF(bytes.NewReader(data), x)
	if beyondKernelPhdrLimits(data) {
		// debug/elf reads such a table; the kernel, and readELF, do not.
		if err == nil {
			t.Fatal("readELF accepted a program header table the kernel refuses")
		}
		return
	}
	ef, eerr := elf.NewFile(bytes.NewReader(data))
	if (err == nil) != (eerr == nil) {
		t.Fatalf("readELF error %v, debug/elf error %v", err, eerr)
	}
	if err != nil {
		return
	}
	e := x.ELF
	if e.Class != Class(ef.Class) || e.Data != Data(ef.Data) || e.OSABI != OSABI(ef.OSABI) ||
		e.Type != Type(ef.Type) || e.Machine != Machine(ef.Machine) {
		t.Fatalf("readELF: class %v data %v osabi %v type %v machine %v; debug/elf: %v %v %v %v %v",
			e.Class, e.Data, e.OSABI, e.Type, e.Machine, ef.Class, ef.Data, ef.OSABI, ef.Type, ef.Machine)
	}
	var interp string
	var tag *ABITag
	for _, p := range ef.Progs {
		switch {
		case p.Type == elf.PT_INTERP && p.Filesz >= 2 && p.Filesz <= unix.PathMax:
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err == nil {
				if i := bytes.IndexByte(b, 0); i >= 0 {
					b = b[:i]
				}
				interp = string(b)
			}
		case p.Type == elf.PT_NOTE && tag == nil && p.Filesz < 1<<16:
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err == nil || p.Filesz == 0 {
				tag = findABITag(b, ef.ByteOrder, p.Align)
			}
		}
	}
	if e.Interp != interp {
		t.Fatalf("readELF: interpreter %q, debug/elf program headers give %q", e.Interp, interp)
	}
	if (e.ABITag == nil) != (tag == nil) || tag != nil && *e.ABITag != *tag {
		t.Fatalf("readELF: ABI tag %+v, debug/elf program headers give %+v", e.ABITag, tag)
	}
}

// checkShebang checks what parseShebang makes of a #! line: the
// interpreter ends at the first blank, and neither it nor the argument
// holds a line break or NUL (the kernel reads both as C strings from one
// line), nor does the argument start or end with a blank.
func checkShebang(t *testing.T, head []byte) {
	interp, arg := parseShebang(head)
	if strings.ContainsAny(interp, " \t\n\x00") {
		t.Fatalf("parseShebang(%q): interpreter %q", head, interp)
	}
	if strings.ContainsAny(arg, "\n\x00") || strings.TrimLeft(arg, " \t") != arg || strings.TrimRight(arg, " \t") != arg {
		t.Fatalf("parseShebang(%q): argument %q", head, arg)
	}
	if interp == "" && arg != "" {
		t.Fatalf("parseShebang(%q): argument %q without interpreter", head, arg)
	}
}

// fzHeader is an ELF header decoded from the raw bytes of a zero-padded
// 256-byte buffer, as the kernel's binfmt_misc sees it.
type fzHeader struct {
	buf                       []byte
	class, data, osabi        byte
	typ, machine              uint16
	flags                     uint32
	flagsPresent, identPadded bool
}

func rawHeader(head []byte) fzHeader {
	buf := make([]byte, headSize)
	copy(buf, head)
	h := fzHeader{buf: buf, class: buf[4], data: buf[5], osabi: buf[7]}
	var bo binary.ByteOrder = binary.LittleEndian
	if h.data == byte(elfDataMSB) {
		bo = binary.BigEndian
	}
	h.typ, h.machine = bo.Uint16(buf[16:]), bo.Uint16(buf[18:])
	off := 36
	if h.class == byte(elfClass64) {
		off = 48
	}
	h.flags, h.flagsPresent = bo.Uint32(buf[off:]), len(head) >= off+4
	h.identPadded = bytes.Equal(buf[9:16], make([]byte, 7))
	return h
}

// checkMagicPerArch: the entry "crossrun binfmt install" registers for an
// architecture matches a file head exactly when the head is an ELF
// identification of version 1 with zero padding, type EXEC or DYN, and
// the architecture's class, byte order, machine and e_flags bits; and
// ArchOf then names that architecture.
func checkMagicPerArch(t *testing.T, head []byte) {
	h := rawHeader(head)
	for i := range Arches {
		a := &Arches[i]
		magic, mask := a.BinfmtMagic()
		e := &Entry{Name: a.QEMUName(), Enabled: true, Magic: magic, Mask: mask}
		want := bytes.HasPrefix(h.buf, []byte(elf.ELFMAG)) && h.buf[6] == byte(elf.EV_CURRENT) && h.identPadded &&
			h.class == byte(a.Class) && h.data == byte(a.Data) &&
			(h.typ == uint16(elf.ET_EXEC) || h.typ == uint16(elf.ET_DYN)) &&
			h.machine == uint16(a.Machine) && h.flags&a.FlagsMask == a.FlagsValue
		if got := e.Matches("/x", head); got != want {
			t.Fatalf("%s magic on %x: match %v, want %v", a.Name, h.buf[:52], got, want)
		}
		if want {
			if b, _ := ArchOf(Class(h.class), Data(h.data), Machine(h.machine), h.flags); b != a {
				t.Fatalf("%s magic matches a header ArchOf calls %v", a.Name, b)
			}
		}
	}
}

func fzOneLine(t *testing.T, what, msg string) {
	t.Helper()
	if msg == "" || strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("%s is not one line: %q", what, msg)
	}
}

// kNode is a binfmt_misc entry as the kernel holds it.
type kNode struct {
	name        string
	isMagic     bool
	offset      int
	magic, mask []byte // mask nil: exact match
	ext         string
	interpreter string
	flags       byte // kflag bits
}

const (
	kflagP = 1 << iota
	kflagO
	kflagC
	kflagF
)

// kernelRegister models what the kernel (fs/binfmt_misc.c create_entry)
// makes of a line written to <binfmt_misc>/register: the first byte is the
// delimiter; name, type (M or E), offset, magic, mask, interpreter, flags.
// The model covers lines without NUL bytes; it reports false for those and
// for lines the kernel refuses.
func kernelRegister(line string) (*kNode, bool) {
	count := len(line)
	if count < 11 || count > 1920 || strings.IndexByte(line, 0) >= 0 {
		return nil, false
	}
	del := line[0]
	// The kernel pads the buffer with 8 delimiters.
	buf := []byte(line + strings.Repeat(string(del), 8))
	at := func(i int) (byte, bool) {
		if i < 0 || i >= len(buf) {
			return 0, false
		}
		return buf[i], true
	}
	field := func(p int) (string, int, bool) { // up to the next delimiter
		i := bytes.IndexByte(buf[p:], del)
		if i < 0 {
			return "", 0, false
		}
		return string(buf[p : p+i]), p + i + 1, true
	}
	n := &kNode{}
	var ok bool
	p := 1
	if n.name, p, ok = field(p); !ok || n.name == "" || n.name == "." || n.name == ".." || strings.Contains(n.name, "/") || len(n.name) > 255 {
		return nil, false
	}
	typ, _ := at(p)
	if d, ok := at(p + 1); !ok || d != del || (typ != 'M' && typ != 'E') {
		return nil, false
	}
	p += 2
	if typ == 'M' {
		n.isMagic = true
		var off string
		if off, p, ok = field(p); !ok {
			return nil, false
		}
		if off != "" {
			if n.offset, ok = kstrtoint(off); !ok || n.offset < 0 {
				return nil, false
			}
		}
		scan := func(p int) (string, int, bool) { // scanarg: \xHH may hold the delimiter
			start := p
			for {
				c, ok := at(p)
				if !ok {
					return "", 0, false
				}
				p++
				if c == del {
					return string(buf[start : p-1]), p, true
				}
				if x, _ := at(p); c == '\\' && x == 'x' {
					h1, _ := at(p + 1)
					h2, _ := at(p + 2)
					if !isHex(h1) || !isHex(h2) {
						return "", 0, false
					}
					p += 3
				}
			}
		}
		var rawMagic, rawMask string
		if rawMagic, p, ok = scan(p); !ok || rawMagic == "" {
			return nil, false
		}
		if rawMask, p, ok = scan(p); !ok {
			return nil, false
		}
		n.magic = unescapeHex(rawMagic)
		if rawMask != "" {
			n.mask = unescapeHex(rawMask)
			if len(n.mask) != len(n.magic) {
				return nil, false
			}
		}
		if len(n.magic) > headSize || headSize-len(n.magic) < n.offset {
			return nil, false
		}
	} else {
		if _, p, ok = field(p); !ok { // offset: ignored
			return nil, false
		}
		if n.ext, p, ok = field(p); !ok || n.ext == "" || strings.Contains(n.ext, "/") {
			return nil, false
		}
		if _, p, ok = field(p); !ok { // mask: ignored
			return nil, false
		}
	}
	if n.interpreter, p, ok = field(p); !ok || n.interpreter == "" {
		return nil, false
	}
	for {
		c, _ := at(p)
		switch c {
		case 'P':
			n.flags |= kflagP
		case 'O':
			n.flags |= kflagO
		case 'C':
			n.flags |= kflagC | kflagO
		case 'F':
			n.flags |= kflagF
		default:
			if c == '\n' {
				p++
			}
			if p != count {
				return nil, false
			}
			return n, true
		}
		p++
	}
}

// kstrtoint is the kernel's kstrtoint(s, 10): an optional sign, decimal
// digits, an optional trailing newline, and a value that fits an int32.
func kstrtoint(s string) (int, bool) {
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	} else if strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return 0, false
	}
	v := int64(0)
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
		if v > 1<<31 {
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	if v > 1<<31-1 || v < -1<<31 {
		return 0, false
	}
	return int(v), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// unescapeHex is string_unescape(UNESCAPE_HEX): \x with one or two hex
// digits is a byte; any other backslash stays as it is.
func unescapeHex(s string) []byte {
	var out []byte
	for i := 0; i < len(s); {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			if s[i] == 'x' && i+1 < len(s) && isHex(s[i+1]) {
				v := hexVal(s[i+1])
				i += 2
				if i < len(s) && isHex(s[i]) {
					v = v<<4 | hexVal(s[i])
					i++
				}
				out = append(out, v)
				continue
			}
			out = append(out, '\\')
		}
		out = append(out, s[i])
		i++
	}
	return out
}

// text is the content of <binfmt_misc>/<name> for the node (entry_status).
func (n *kNode) text() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "enabled\ninterpreter %s\nflags: ", n.interpreter)
	for i, c := range "POCF" {
		if n.flags&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	b.WriteByte('\n')
	if !n.isMagic {
		fmt.Fprintf(&b, "extension .%s\n", n.ext)
		return b.Bytes()
	}
	fmt.Fprintf(&b, "offset %d\nmagic %x", n.offset, n.magic)
	if n.mask != nil {
		fmt.Fprintf(&b, "\nmask %x", n.mask)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// matches is the kernel's check_file for one enabled node.
func (n *kNode) matches(name string, head []byte) bool {
	if !n.isMagic {
		i := strings.LastIndexByte(name, '.')
		return i >= 0 && name[i+1:] == n.ext
	}
	buf := make([]byte, headSize)
	copy(buf, head)
	s := buf[n.offset:]
	for j := range n.magic {
		d := s[j] ^ n.magic[j]
		if n.mask != nil {
			d &= n.mask[j]
		}
		if d != 0 {
			return false
		}
	}
	return true
}

// nodeOf is the kernel node an Entry stands for, or nil when no kernel
// could hold it (then the entry did not come from a kernel).
func nodeOf(e *Entry) *kNode {
	n := &kNode{name: e.Name, interpreter: e.Interpreter}
	if n.name == "" || n.name == "." || n.name == ".." || len(n.name) > 255 || strings.ContainsAny(n.name, "/\x00") ||
		n.interpreter == "" || strings.ContainsAny(n.interpreter, "\x00\n") {
		return nil
	}
	for _, c := range []byte(e.Flags) {
		switch c {
		case 'P':
			n.flags |= kflagP
		case 'O':
			n.flags |= kflagO
		case 'C':
			n.flags |= kflagC | kflagO
		case 'F':
			n.flags |= kflagF
		default:
			return nil
		}
	}
	if e.Extension != "" {
		if strings.ContainsAny(e.Extension, "/\x00\n") {
			return nil
		}
		n.ext = e.Extension
		return n
	}
	if len(e.Magic) == 0 || len(e.Magic) > headSize || e.Offset < 0 || e.Offset > headSize-len(e.Magic) ||
		e.Mask != nil && len(e.Mask) != len(e.Magic) {
		return nil
	}
	n.isMagic, n.offset, n.magic, n.mask = true, e.Offset, e.Magic, e.Mask
	return n
}

func (n *kNode) String() string {
	return fmt.Sprintf("%+v", *n)
}

func sameNode(a, b *kNode) bool {
	return a.name == b.name && a.isMagic == b.isMagic && a.offset == b.offset && bytes.Equal(a.magic, b.magic) &&
		(a.mask == nil) == (b.mask == nil) && bytes.Equal(a.mask, b.mask) && a.ext == b.ext &&
		a.interpreter == b.interpreter && a.flags == b.flags
}

// checkEntry checks an Entry that stands for kernel node n: RegisterString
// gives a line the kernel turns back into n (when the line fits the
// kernel's limit), and Matches agrees with the kernel's matching.
func checkEntry(t *testing.T, e *Entry, n *kNode, heads [][]byte) {
	line := e.RegisterString()
	if len(line) <= 1920 && registerDelimiterFor(e) != 0 {
		got, ok := kernelRegister(line)
		if !ok {
			t.Fatalf("the kernel refuses RegisterString %q of %s", line, n)
		}
		if !sameNode(got, n) {
			t.Fatalf("RegisterString %q registers %s, want %s", line, got, n)
		}
	}
	if !e.Enabled {
		return
	}
	for _, h := range heads {
		name := "/dir.d/file." + string(h[:min(len(h), 4)])
		if strings.IndexByte(name, 0) >= 0 {
			name = "/file"
		}
		if got, want := e.Matches(name, h), n.matches(name, h); got != want {
			t.Fatalf("Matches(%q, %x) = %v, kernel %v, for %s", name, h, got, want, n)
		}
	}
}

// FuzzParseEntry parses binfmt_misc entry files: no panics, the result is
// complete (interpreter, magic or extension, mask as long as magic), and
// an entry a kernel could hold survives RegisterString and matches files
// as the kernel does.
func FuzzParseEntry(f *testing.F) {
	f.Add("qemu-aarch64", []byte(debianAarch64))
	f.Add("python3.11", []byte("disabled\ninterpreter /usr/bin/python3.11\nflags: \nextension .pyc\n"))
	f.Add("qemu-mipsn32", []byte("enabled\ninterpreter /usr/bin/qemu-mipsn32-static\nflags: OCF\noffset 0\nmagic 7f454c4601020100000000000000000000020008000000000000000000000000000000000000000020\nmask ffffffffffffff00fffffffffffffffffffeffff000000000000000000000000000000000000000020\n"))
	f.Add("off", []byte("enabled\ninterpreter /x\nflags: \noffset 2\nmagic 4142\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		e, err := ParseEntry(name, data)
		if err != nil {
			return
		}
		if e.Interpreter == "" || e.Extension == "" && len(e.Magic) == 0 || e.Mask != nil && len(e.Mask) != len(e.Magic) {
			t.Fatalf("ParseEntry returned an incomplete entry %+v", e)
		}
		heads := [][]byte{nil, data, data[len(data)/2:]}
		for _, h := range heads {
			e.Matches(name, h) // must not panic
		}
		if n := nodeOf(e); n != nil {
			checkEntry(t, e, n, heads)
		}
	})
}

// FuzzRegisterString starts from registration lines: for every line the
// kernel accepts, the entry file it shows parses (ParseEntry) into the
// same entry, whose RegisterString registers the same entry again, and
// whose Matches agrees with the kernel's matching.
func FuzzRegisterString(f *testing.F) {
	for i := range Arches {
		f.Add(InstallEntry(&Arches[i], "/usr/bin/qemu-"+Arches[i].Name+"-static").RegisterString())
	}
	for _, s := range []string{
		`:qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:POCF`,
		"|DOSWin|M||MZ||/usr/bin/wine|\n",
		":python3.11:M::\\xa7\\x0d\\x0d\\x0a::/usr/bin/python3.11:",
		":jar:E::jar::/usr/bin/jexec:",
		":off:M:2:AB:\\xff\\xff:/bin/x:F",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		n, ok := kernelRegister(line)
		if !ok {
			return
		}
		if strings.ContainsAny(n.interpreter, "\n") || strings.ContainsAny(n.ext, "\n") {
			return // the entry file could not show it unambiguously
		}
		text := n.text()
		e, err := ParseEntry(n.name, text)
		if err != nil {
			t.Fatalf("ParseEntry of the kernel's entry file %q: %v", text, err)
		}
		back := nodeOf(e)
		if back == nil || !sameNode(back, n) {
			t.Fatalf("ParseEntry(%q) = %+v, the kernel holds %s", text, e, n)
		}
		checkEntry(t, e, n, [][]byte{nil, []byte(line), n.magic, append(make([]byte, n.offset), n.magic...)})
	})
}
