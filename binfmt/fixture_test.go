package binfmt

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// elfSpec describes a minimal ELF file for tests.
type elfSpec struct {
	arch   *Arch
	osabi  OSABI
	typ    Type
	interp string
	abiTag *ABITag
}

func (s elfSpec) order() binary.ByteOrder {
	if s.arch.Data == elfDataMSB {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// makeELF builds an ELF header, program headers (PT_INTERP, PT_NOTE with
// a GNU ABI tag) and their contents. No sections; debug/elf accepts it.
// The layouts come from debug/elf, independent of binfmt's own reader.
func makeELF(s elfSpec) []byte {
	if s.typ == 0 {
		s.typ = etExec
	}
	bo := s.order()
	is64 := s.arch.Class == elfClass64
	ehsize, phsize := 52, 32
	if is64 {
		ehsize, phsize = 64, 56
	}
	type seg struct {
		typ   elf.ProgType
		data  []byte
		align uint64
	}
	var segs []seg
	if s.interp != "" {
		segs = append(segs, seg{elf.PT_INTERP, append([]byte(s.interp), 0), 1})
	}
	if s.abiTag != nil {
		var n bytes.Buffer
		binary.Write(&n, bo, uint32(4))  // namesz
		binary.Write(&n, bo, uint32(16)) // descsz
		binary.Write(&n, bo, uint32(1))  // NT_GNU_ABI_TAG
		n.WriteString("GNU\x00")
		binary.Write(&n, bo, [4]uint32{s.abiTag.OS, s.abiTag.Major, s.abiTag.Minor, s.abiTag.Patch})
		segs = append(segs, seg{elf.PT_NOTE, n.Bytes(), 4})
	}
	off := ehsize + phsize*len(segs)
	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS] = byte(s.arch.Class)
	ident[elf.EI_DATA] = byte(s.arch.Data)
	ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	ident[elf.EI_OSABI] = byte(s.osabi)
	var out bytes.Buffer
	if is64 {
		binary.Write(&out, bo, elf.Header64{Ident: ident, Type: uint16(s.typ), Machine: uint16(s.arch.Machine), Version: 1,
			Entry: 0x400000, Phoff: uint64(ehsize), Flags: s.arch.FlagsValue, Ehsize: uint16(ehsize), Phentsize: uint16(phsize), Phnum: uint16(len(segs))})
		o := off
		for _, sg := range segs {
			binary.Write(&out, bo, elf.Prog64{Type: uint32(sg.typ), Flags: uint32(elf.PF_R), Off: uint64(o), Filesz: uint64(len(sg.data)), Memsz: uint64(len(sg.data)), Align: sg.align})
			o += len(sg.data)
		}
	} else {
		binary.Write(&out, bo, elf.Header32{Ident: ident, Type: uint16(s.typ), Machine: uint16(s.arch.Machine), Version: 1,
			Entry: 0x8048000, Phoff: uint32(ehsize), Flags: s.arch.FlagsValue, Ehsize: uint16(ehsize), Phentsize: uint16(phsize), Phnum: uint16(len(segs))})
		o := off
		for _, sg := range segs {
			binary.Write(&out, bo, elf.Prog32{Type: uint32(sg.typ), Flags: uint32(elf.PF_R), Off: uint32(o), Filesz: uint32(len(sg.data)), Memsz: uint32(len(sg.data)), Align: uint32(sg.align)})
			o += len(sg.data)
		}
	}
	for _, sg := range segs {
		out.Write(sg.data)
	}
	// Pad so that the file is longer than the 256 bytes the kernel reads.
	out.Write(make([]byte, 256))
	return out.Bytes()
}

func mustArch(t testing.TB, name string) *Arch {
	t.Helper()
	a, ok := ArchByName(name)
	if !ok {
		t.Fatalf("ArchByName(%q) failed", name)
	}
	return a
}

// rootfs is a test root filesystem.
type rootfs struct {
	t   testing.TB
	dir string
}

func newRootfs(t testing.TB) *rootfs {
	return &rootfs{t: t, dir: t.TempDir()}
}

func (r *rootfs) write(p string, data []byte, mode os.FileMode) {
	r.t.Helper()
	full := filepath.Join(r.dir, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(full, data, mode); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rootfs) symlink(target, p string) {
	r.t.Helper()
	full := filepath.Join(r.dir, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Symlink(target, full); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rootfs) mkdir(p string) {
	r.t.Helper()
	if err := os.MkdirAll(filepath.Join(r.dir, p), 0o755); err != nil {
		r.t.Fatal(err)
	}
}

var (
	goBuildMu    sync.Mutex
	goBuildCache = map[string]string{}
)

// buildHello cross-compiles a static Go hello world for goarch, once per
// test binary. It skips the test when no Go toolchain is available.
func buildHello(t testing.TB, goarch string) string {
	t.Helper()
	goBuildMu.Lock()
	defer goBuildMu.Unlock()
	if p, ok := goBuildCache[goarch]; ok {
		return p
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go toolchain to cross-compile a test binary")
	}
	dir, err := os.MkdirTemp("", "crossrun-binfmt-hello-")
	if err != nil {
		t.Fatal(err)
	}
	src := "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"runtime\"\n)\n\nfunc main() { fmt.Println(\"hello from\", runtime.GOARCH, os.Args[1:]) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "hello-"+goarch)
	cmd := exec.Command(gobin, "build", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build GOARCH=%s: %v\n%s", goarch, err, b)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	goBuildCache[goarch] = out
	return out
}
