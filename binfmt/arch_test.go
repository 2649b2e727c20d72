package binfmt

import (
	"bytes"
	"debug/elf"
	"testing"
)

func TestArchByName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"amd64", "x86_64"}, {"x86_64", "x86_64"}, {"386", "i386"}, {"i686", "i386"},
		{"arm64", "aarch64"}, {"linux/arm64", "aarch64"}, {"linux/arm64/v8", "aarch64"},
		{"arm", "arm"}, {"linux/arm/v7", "arm"}, {"armhf", "arm"}, {"riscv64", "riscv64"},
		{"ppc64le", "ppc64le"}, {"ppc64el", "ppc64le"}, {"ppc64", "ppc64"}, {"s390x", "s390x"},
		{"mips64le", "mips64el"}, {"mips64el", "mips64el"}, {"mipsle", "mipsel"}, {"mips", "mips"},
		{"loong64", "loongarch64"}, {"loongarch64", "loongarch64"}, {"LINUX/AMD64", "x86_64"},
	}
	for _, c := range cases {
		a, ok := ArchByName(c.in)
		if !ok || a.Name != c.want {
			t.Errorf("ArchByName(%q) = %v, %v; want %s", c.in, a, ok, c.want)
		}
	}
	for _, bad := range []string{"", "z80", "linux/arm/v9"} {
		if a, ok := ArchByName(bad); ok {
			t.Errorf("ArchByName(%q) = %s, want not found", bad, a.Name)
		}
	}
}

func TestPlatform(t *testing.T) {
	for name, want := range map[string]string{"aarch64": "linux/arm64", "arm": "linux/arm/v7", "x86_64": "linux/amd64", "loongarch64": "linux/loong64", "mips64el": "linux/mips64le"} {
		if got := mustArch(t, name).Platform(); got != want {
			t.Errorf("%s.Platform() = %q, want %q", name, got, want)
		}
	}
}

// Every architecture's magic/mask selects exactly its own ELF headers (EXEC
// and DYN, any OS ABI byte), and ArchOf maps the header back to it.
func TestBinfmtMagicSelectsOnlyItsArch(t *testing.T) {
	for i := range Arches {
		a := &Arches[i]
		magic, mask := a.BinfmtMagic()
		e := &Entry{Name: a.QEMUName(), Enabled: true, Magic: magic, Mask: mask}
		for j := range Arches {
			b := &Arches[j]
			for _, typ := range []Type{etExec, etDyn} {
				for _, abi := range []OSABI{osabiNone, osabiLinux} {
					file := makeELF(elfSpec{arch: b, typ: typ, osabi: abi})
					if got, want := e.Matches("/x", file), a == b; got != want {
						t.Errorf("%s magic on %s %v/%v header: match=%v, want %v", a.Name, b.Name, typ, abi, got, want)
					}
				}
			}
		}
		rel := makeELF(elfSpec{arch: a, typ: etRel})
		if e.Matches("/x", rel) {
			t.Errorf("%s magic matches a relocatable object", a.Name)
		}
		f, err := elf.NewFile(bytes.NewReader(makeELF(elfSpec{arch: a})))
		if err != nil {
			t.Fatalf("%s fixture: %v", a.Name, err)
		}
		got, ok := ArchOf(Class(f.Class), Data(f.Data), Machine(f.Machine), a.FlagsValue)
		if !ok || got != a {
			t.Errorf("ArchOf(%s header) = %v, %v", a.Name, got, ok)
		}
	}
}

// The aarch64 entry has the bytes qemu's and distributions' tables use,
// except that it also ignores the ABI version byte.
func TestBinfmtMagicAarch64(t *testing.T) {
	magic, mask := mustArch(t, "aarch64").BinfmtMagic()
	wantMagic := []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00")
	wantMask := []byte("\xff\xff\xff\xff\xff\xff\xff\x00\x00\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff")
	if !bytes.Equal(magic, wantMagic) || !bytes.Equal(mask, wantMask) {
		t.Errorf("aarch64 magic %x mask %x", magic, mask)
	}
	// MIPS o32 and n32 differ only in e_flags.
	m, k := mustArch(t, "mipsn32").BinfmtMagic()
	if len(m) != 40 || m[39] != 0x20 || k[39] != 0x20 {
		t.Errorf("mipsn32 magic %x mask %x", m, k)
	}
}

func TestDetectCompat(t *testing.T) {
	if got := detectCompat("riscv64"); len(got) != 0 {
		t.Errorf("riscv64 compat = %v, want none", got)
	}
	for _, a := range CompatArches() {
		if a == HostArch() {
			t.Errorf("compat list contains the host arch")
		}
	}
}
