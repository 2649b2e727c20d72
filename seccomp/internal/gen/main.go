// Command gen turns libseccomp's syscall tables (CSV) into the Go tables in
// zsyscalls.go: the syscall numbers of every architecture the package knows
// and the kernel release that introduced each syscall.
//
// Usage (from the seccomp package directory, see generate.go):
//
//	go run ./internal/gen -data ../../shared/data -out zsyscalls.go
//
// Two inputs are read:
//
//   - syscalls-kver-v6.16.csv: numbers plus a *_kver column per arch.
//   - syscalls-v7.1.csv: numbers only; it is the newer table, so numbers
//     are taken from it, and syscalls missing from the 6.16 table get their
//     release from the sinceOverride list below.
//
// The kver columns of some architectures (aarch64, loongarch64, riscv64) say
// 3.0 for nearly every syscall, which is wrong for syscalls added after 3.0.
// Such columns are detected (more than 95% of their entries are 3.0) and not
// used; a syscall's release is taken from the x86_64 column when it has one
// (since Linux 5.1 new syscalls share one number, 424 and up, and one release
// on all arches), else the earliest release among the trusted columns.
package main

import (
	"bytes"
	"encoding/csv"
	"flag"
	"fmt"
	"go/format"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// arch describes one seccomp architecture (SCMP_ARCH_*) and where its
// numbers come from.
type arch struct {
	oci     string // SCMP_ARCH_ name without the prefix
	ident   string // Go identifier suffix
	column  string // CSV column holding its numbers
	audit   uint32 // AUDIT_ARCH_* value seen in seccomp_data.arch
	auditID string // name of the AUDIT_ARCH constant in <linux/audit.h>
	bits    int    // 32 or 64: width of a syscall argument register
	big     bool   // big-endian seccomp_data layout
	base    uint32 // added to the table's number (MIPS ABIs)
	orBits  uint32 // or-ed into the number (x32's __X32_SYSCALL_BIT)
	goarch  string // GOARCH that runs natively as this arch, if any
}

const (
	audit64  = 0x80000000 // __AUDIT_ARCH_64BIT
	auditLE  = 0x40000000 // __AUDIT_ARCH_LE
	auditN32 = 0x20000000 // __AUDIT_ARCH_CONVENTION_MIPS64_N32
	x32Bit   = 0x40000000 // __X32_SYSCALL_BIT
)

// ELF machine numbers (EM_*).
const (
	em68k       = 4
	em386       = 3
	emMIPS      = 8
	emPARISC    = 15
	emPPC       = 20
	emPPC64     = 21
	emS390      = 22
	emARM       = 40
	emSH        = 42
	emX86_64    = 62
	emAARCH64   = 183
	emRISCV     = 243
	emLOONGARCH = 258
)

var arches = []arch{
	{oci: "X86", ident: "X86", column: "x86", audit: em386 | auditLE, auditID: "AUDIT_ARCH_I386", bits: 32, goarch: "386"},
	{oci: "X86_64", ident: "X86_64", column: "x86_64", audit: emX86_64 | audit64 | auditLE, auditID: "AUDIT_ARCH_X86_64", bits: 64, goarch: "amd64"},
	{oci: "X32", ident: "X32", column: "x32", audit: emX86_64 | audit64 | auditLE, auditID: "AUDIT_ARCH_X86_64", bits: 32, orBits: x32Bit},
	{oci: "ARM", ident: "ARM", column: "arm", audit: emARM | auditLE, auditID: "AUDIT_ARCH_ARM", bits: 32, goarch: "arm"},
	{oci: "AARCH64", ident: "AARCH64", column: "aarch64", audit: emAARCH64 | audit64 | auditLE, auditID: "AUDIT_ARCH_AARCH64", bits: 64, goarch: "arm64"},
	{oci: "MIPS", ident: "MIPS", column: "mips", audit: emMIPS, auditID: "AUDIT_ARCH_MIPS", bits: 32, big: true, base: 4000, goarch: "mips"},
	{oci: "MIPSEL", ident: "MIPSEL", column: "mips", audit: emMIPS | auditLE, auditID: "AUDIT_ARCH_MIPSEL", bits: 32, base: 4000, goarch: "mipsle"},
	{oci: "MIPS64", ident: "MIPS64", column: "mips64", audit: emMIPS | audit64, auditID: "AUDIT_ARCH_MIPS64", bits: 64, big: true, base: 5000, goarch: "mips64"},
	{oci: "MIPSEL64", ident: "MIPSEL64", column: "mips64", audit: emMIPS | audit64 | auditLE, auditID: "AUDIT_ARCH_MIPSEL64", bits: 64, base: 5000, goarch: "mips64le"},
	{oci: "MIPS64N32", ident: "MIPS64N32", column: "mips64n32", audit: emMIPS | audit64 | auditN32, auditID: "AUDIT_ARCH_MIPS64N32", bits: 32, big: true, base: 6000},
	{oci: "MIPSEL64N32", ident: "MIPSEL64N32", column: "mips64n32", audit: emMIPS | audit64 | auditLE | auditN32, auditID: "AUDIT_ARCH_MIPSEL64N32", bits: 32, base: 6000},
	{oci: "PPC", ident: "PPC", column: "ppc", audit: emPPC, auditID: "AUDIT_ARCH_PPC", bits: 32, big: true},
	{oci: "PPC64", ident: "PPC64", column: "ppc64", audit: emPPC64 | audit64, auditID: "AUDIT_ARCH_PPC64", bits: 64, big: true, goarch: "ppc64"},
	{oci: "PPC64LE", ident: "PPC64LE", column: "ppc64", audit: emPPC64 | audit64 | auditLE, auditID: "AUDIT_ARCH_PPC64LE", bits: 64, goarch: "ppc64le"},
	{oci: "S390", ident: "S390", column: "s390", audit: emS390, auditID: "AUDIT_ARCH_S390", bits: 32, big: true},
	{oci: "S390X", ident: "S390X", column: "s390x", audit: emS390 | audit64, auditID: "AUDIT_ARCH_S390X", bits: 64, big: true, goarch: "s390x"},
	{oci: "PARISC", ident: "PARISC", column: "parisc", audit: emPARISC, auditID: "AUDIT_ARCH_PARISC", bits: 32, big: true},
	{oci: "PARISC64", ident: "PARISC64", column: "parisc64", audit: emPARISC | audit64, auditID: "AUDIT_ARCH_PARISC64", bits: 64, big: true},
	{oci: "RISCV64", ident: "RISCV64", column: "riscv64", audit: emRISCV | audit64 | auditLE, auditID: "AUDIT_ARCH_RISCV64", bits: 64, goarch: "riscv64"},
	{oci: "LOONGARCH64", ident: "LOONGARCH64", column: "loongarch64", audit: emLOONGARCH | audit64 | auditLE, auditID: "AUDIT_ARCH_LOONGARCH64", bits: 64, goarch: "loong64"},
	{oci: "M68K", ident: "M68K", column: "m68k", audit: em68k, auditID: "AUDIT_ARCH_M68K", bits: 32, big: true},
	{oci: "SH", ident: "SH", column: "sh", audit: emSH | auditLE, auditID: "AUDIT_ARCH_SHEL", bits: 32},
	{oci: "SHEB", ident: "SHEB", column: "sh", audit: emSH, auditID: "AUDIT_ARCH_SH", bits: 32, big: true},
}

// compat lists the architectures whose binaries a kernel of the key
// architecture also runs (and so may present to a filter).
var compat = map[string][]string{
	"X86_64":   {"X86", "X32"},
	"X32":      {"X86_64", "X86"},
	"AARCH64":  {"ARM"},
	"PPC64":    {"PPC"},
	"S390X":    {"S390"},
	"MIPS64":   {"MIPS", "MIPS64N32"},
	"MIPSEL64": {"MIPSEL", "MIPSEL64N32"},
	"PARISC64": {"PARISC"},
}

// override gives the release of syscalls the tables cannot date: those only
// in the 7.1 table (added after 6.16) and those that exist only on an arch
// whose kver column is unusable.
var override = map[string]struct {
	ver  string
	note string
}{
	"file_getattr":       {"6.17", "added in 6.17, after the 6.16 table"},
	"file_setattr":       {"6.17", "added in 6.17, after the 6.16 table"},
	"uprobe":             {"6.18", "added in 6.18 (x86_64 only), after the 6.16 table"},
	"listns":             {"6.19", "added in 6.19, after the 6.16 table"},
	"rseq_slice_yield":   {"7.0", "added after 6.19; dated 7.0, the table (7.1-rc4) has no kver"},
	"riscv_flush_icache": {"4.15", "riscv64 arrived in 4.15"},
	"riscv_hwprobe":      {"6.4", "added in 6.4 (riscv64 only)"},
}

type table struct {
	header []string
	col    map[string]int
	rows   map[string][]string
}

func readTable(path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	t := &table{col: map[string]int{}, rows: map[string][]string{}}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if t.header == nil {
			if len(rec) == 0 || !strings.HasPrefix(rec[0], "#syscall") {
				return nil, fmt.Errorf("%s: first line is not the #syscall header", path)
			}
			t.header = rec
			for i, h := range rec[1:] {
				t.col[h] = i + 1
			}
			continue
		}
		if len(rec) != len(t.header) {
			return nil, fmt.Errorf("%s: syscall %q has %d fields, header has %d", path, rec[0], len(rec), len(t.header))
		}
		t.rows[rec[0]] = rec
	}
	if t.header == nil {
		return nil, fmt.Errorf("%s: empty", path)
	}
	return t, nil
}

// number returns the raw table number of name in column c.
func (t *table) number(name, c string) (uint32, bool, error) {
	row, ok := t.rows[name]
	if !ok {
		return 0, false, nil
	}
	i, ok := t.col[c]
	if !ok {
		return 0, false, fmt.Errorf("no column %q", c)
	}
	if row[i] == "PNR" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(row[i], 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("syscall %s column %s: %w", name, c, err)
	}
	return uint32(n), true, nil
}

type version struct{ major, minor int }

func (v version) less(o version) bool {
	return v.major < o.major || (v.major == o.major && v.minor < o.minor)
}

func parseVer(s string) (version, bool) {
	maj, min, ok := strings.Cut(s, ".")
	if !ok {
		return version{}, false
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	return version{a, b}, err1 == nil && err2 == nil
}

// kver returns the release recorded for name in column c ("x86_64").
func (t *table) kver(name, c string) (version, bool) {
	row := t.rows[name]
	i, ok := t.col[c+"_kver"]
	if row == nil || !ok {
		return version{}, false
	}
	s := strings.TrimPrefix(row[i], "SCMP_KV_")
	if s == "UNDEF" {
		return version{}, false
	}
	return parseVer(strings.Replace(s, "_", ".", 1))
}

func main() {
	data := flag.String("data", "../../shared/data", "directory holding the syscall CSV files")
	out := flag.String("out", "zsyscalls.go", "output file")
	flag.Parse()
	src, err := generate(*data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func generate(dir string) ([]byte, error) {
	kv, err := readTable(filepath.Join(dir, "syscalls-kver-v6.16.csv"))
	if err != nil {
		return nil, err
	}
	nums, err := readTable(filepath.Join(dir, "syscalls-v7.1.csv"))
	if err != nil {
		return nil, err
	}

	// Columns whose kver data can be trusted.
	var trusted []string
	var untrusted []string
	seen := map[string]bool{}
	for _, a := range arches {
		if seen[a.column] {
			continue
		}
		seen[a.column] = true
		total, old := 0, 0
		for name := range kv.rows {
			if _, ok, _ := kv.number(name, a.column); !ok {
				continue
			}
			v, ok := kv.kver(name, a.column)
			if !ok {
				continue
			}
			total++
			if v == (version{3, 0}) {
				old++
			}
		}
		if total > 0 && old*100 > total*95 {
			untrusted = append(untrusted, a.column)
		} else {
			trusted = append(trusted, a.column)
		}
	}
	sort.Strings(trusted)
	sort.Strings(untrusted)

	var names []string
	for name := range nums.rows {
		names = append(names, name)
	}
	sort.Strings(names)

	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by \"go run ./internal/gen\" from libseccomp's syscall tables; DO NOT EDIT.\n")
	fmt.Fprintf(&b, "// Sources: libseccomp syscalls.csv %s for numbers, %s for kernel releases.\n\n", strings.TrimPrefix(nums.header[0], "#syscall "), strings.TrimPrefix(kv.header[0], "#syscall "))
	fmt.Fprintf(&b, "package seccomp\n\nimport \"sync\"\n\n")
	fmt.Fprintf(&b, "// The tables are built on first use: as map literals initialised at\n// start they would cost every crossrun process, container init included,\n// about half a millisecond.\n\n")

	fmt.Fprintf(&b, "// AUDIT_ARCH_* values (<linux/audit.h>): seccomp_data.arch of each ABI.\nconst (\n")
	done := map[string]bool{}
	for _, a := range arches {
		if done[a.auditID] {
			continue
		}
		done[a.auditID] = true
		fmt.Fprintf(&b, "\t%s = %#08x\n", goConst(a.auditID), a.audit)
	}
	fmt.Fprintf(&b, ")\n\n")
	fmt.Fprintf(&b, "// x32SyscallBit is __X32_SYSCALL_BIT: x32 syscalls reach a filter with\n// the x86_64 audit arch and this bit set in the number.\nconst x32SyscallBit = %#x\n\n", x32Bit)

	fmt.Fprintf(&b, "// archTables lists every architecture, keyed by its SCMP_ARCH_ name.\n")
	fmt.Fprintf(&b, "// Numbers are the values seen in seccomp_data.nr (MIPS ABI base and\n// x32 bit included).\n")
	fmt.Fprintf(&b, "var archTables = map[string]*archTable{\n")
	for _, a := range arches {
		fmt.Fprintf(&b, "\t\"SCMP_ARCH_%s\": {name: \"SCMP_ARCH_%s\", goarch: %q, audit: %s, bits: %d, bigEndian: %v, syscalls: sys%s, maxNr: %d, compat: %s},\n",
			a.oci, a.oci, a.goarch, goConst(a.auditID), a.bits, a.big, ident(a.column, a), maxNr(nums, names, a), compatList(a.oci))
	}
	fmt.Fprintf(&b, "}\n\n")

	// The names once, then per table a string of 4-byte little-endian
	// numbers in name order (absentNr where the arch lacks the call), and
	// the kernel releases as 2 bytes per name (0xff 0xff: none recorded).
	// Static strings cost nothing until a table is first used, and a
	// fraction of what map literals compile to.
	fmt.Fprintf(&b, "// syscallNames lists every syscall name, sorted, one per line.\n")
	fmt.Fprintf(&b, "const syscallNames = %q\n\n", strings.Join(names, "\n"))
	emitted := map[string]bool{}
	for _, a := range arches {
		id := ident(a.column, a)
		if emitted[id] {
			continue
		}
		emitted[id] = true
		var nrs []byte
		for _, name := range names {
			n, ok, err := nums.number(name, a.column)
			if err != nil {
				return nil, err
			}
			v := uint32(0xffffffff)
			if ok {
				v = uint32(a.base + n | a.orBits)
			}
			nrs = append(nrs, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
		}
		fmt.Fprintf(&b, "var sys%s = sync.OnceValue(func() map[string]uint32 { return decodeNumbers(%q) })\n\n", id, string(nrs))
	}

	fmt.Fprintf(&b, "// syscallSince is the kernel release that introduced each syscall (the\n")
	fmt.Fprintf(&b, "// x86_64 one where x86_64 has it, else the earliest among the arches\n")
	fmt.Fprintf(&b, "// with trusted data: %s). Kver columns not used: %s.\n", strings.Join(trusted, ", "), strings.Join(untrusted, ", "))
	fmt.Fprintf(&b, "// Syscalls without a recorded release (never implemented, or removed) are\n// absent.\n")
	var rel []byte
	for _, name := range names {
		if o, ok := override[name]; ok {
			v, ok := parseVer(o.ver)
			if !ok {
				return nil, fmt.Errorf("override %s: bad version %q", name, o.ver)
			}
			rel = append(rel, byte(v.major), byte(v.minor))
			continue
		}
		v, ok := since(kv, name, trusted)
		if !ok {
			if _, inOld := kv.rows[name]; !inOld {
				return nil, fmt.Errorf("syscall %s is newer than the 6.16 table and has no override", name)
			}
			rel = append(rel, 0xff, 0xff)
			continue
		}
		if v.major >= 0xff || v.minor >= 0xff {
			return nil, fmt.Errorf("syscall %s: release %d.%d does not fit the table", name, v.major, v.minor)
		}
		rel = append(rel, byte(v.major), byte(v.minor))
	}
	fmt.Fprintf(&b, "//\n// Releases set by hand, where the tables have none or a wrong one:\n")
	var ov []string
	for name := range override {
		ov = append(ov, name)
	}
	sort.Strings(ov)
	for _, name := range ov {
		fmt.Fprintf(&b, "//   - %s: %s (%s)\n", name, override[name].ver, override[name].note)
	}
	fmt.Fprintf(&b, "var syscallSince = sync.OnceValue(func() map[string]Version { return decodeReleases(%q) })\n", string(rel))

	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("gofmt generated code: %w", err)
	}
	return src, nil
}

func since(kv *table, name string, trusted []string) (version, bool) {
	if _, ok, _ := kv.number(name, "x86_64"); ok {
		if v, ok := kv.kver(name, "x86_64"); ok {
			return v, true
		}
	}
	var best version
	found := false
	for _, c := range trusted {
		if _, ok, _ := kv.number(name, c); !ok {
			continue
		}
		v, ok := kv.kver(name, c)
		if !ok {
			continue
		}
		if !found || v.less(best) {
			best, found = v, true
		}
	}
	return best, found
}

func maxNr(nums *table, names []string, a arch) uint32 {
	var m uint32
	for _, name := range names {
		n, ok, _ := nums.number(name, a.column)
		// ARM's private syscalls (0x0f0000 and up) are not part of the
		// numbering that grows with each release.
		if !ok || (a.column == "arm" && n >= 0x0f0000) {
			continue
		}
		if v := a.base + n | a.orBits; v > m {
			m = v
		}
	}
	return m
}

func compatList(oci string) string {
	c := compat[oci]
	if len(c) == 0 {
		return "nil"
	}
	var q []string
	for _, s := range c {
		q = append(q, strconv.Quote("SCMP_ARCH_"+s))
	}
	return "[]string{" + strings.Join(q, ", ") + "}"
}

// ident names the number map of a column; arches sharing a column share it.
func ident(column string, a arch) string {
	switch column {
	case "x86":
		return "X86"
	case "x86_64":
		return "X86_64"
	case "x32":
		return "X32"
	case "mips":
		return "MIPS"
	case "mips64":
		return "MIPS64"
	case "mips64n32":
		return "MIPS64N32"
	case "ppc64":
		return "PPC64"
	case "sh":
		return "SH"
	}
	return a.ident
}

// goConst turns AUDIT_ARCH_X86_64 into auditArchX86_64.
func goConst(s string) string {
	rest := strings.TrimPrefix(s, "AUDIT_ARCH_")
	return "auditArch" + rest
}
