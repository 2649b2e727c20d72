package binfmt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// As the kernel prints a Debian-registered entry.
const debianAarch64 = `enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
`

func TestParseEntry(t *testing.T) {
	e, err := ParseEntry("qemu-aarch64", []byte(debianAarch64))
	if err != nil {
		t.Fatal(err)
	}
	if !e.Enabled || e.Interpreter != "/usr/libexec/qemu-binfmt/aarch64-binfmt-P" || e.Flags != "POF" || e.Offset != 0 || len(e.Magic) != 20 || len(e.Mask) != 20 || e.Magic[18] != 0xb7 {
		t.Errorf("parsed %+v", e)
	}
	if !e.HasFlag('F') || e.HasFlag('C') {
		t.Errorf("flags %q", e.Flags)
	}
	got := e.RegisterString()
	want := `:qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:POF`
	if got != want {
		t.Errorf("RegisterString:\n got %s\nwant %s", got, want)
	}

	ext, err := ParseEntry("python3.11", []byte("disabled\ninterpreter /usr/bin/python3.11\nflags: \nextension .pyc\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ext.Enabled || ext.Extension != "pyc" || ext.Flags != "" || ext.Magic != nil {
		t.Errorf("extension entry %+v", ext)
	}
	if s := ext.RegisterString(); s != ":python3.11:E::pyc::/usr/bin/python3.11:" {
		t.Errorf("extension RegisterString %q", s)
	}

	for _, bad := range []string{"", "maybe\n", "enabled\nflags: F\n", "enabled\ninterpreter /x\nmagic zz\n", "enabled\ninterpreter /x\nmagic 7f45\nmask ff\n"} {
		if _, err := ParseEntry("bad", []byte(bad)); err == nil {
			t.Errorf("ParseEntry(%q) succeeded", bad)
		}
	}
}

func TestEntryMatches(t *testing.T) {
	e, _ := ParseEntry("qemu-aarch64", []byte(debianAarch64))
	arm64 := makeELF(elfSpec{arch: mustArch(t, "aarch64")})
	pie := makeELF(elfSpec{arch: mustArch(t, "aarch64"), typ: 3})
	amd64 := makeELF(elfSpec{arch: mustArch(t, "x86_64")})
	if !e.Matches("/bin/busybox", arm64) || !e.Matches("/bin/busybox", pie) {
		t.Error("aarch64 entry does not match aarch64 EXEC/DYN")
	}
	if e.Matches("/bin/busybox", amd64) {
		t.Error("aarch64 entry matches x86_64")
	}
	if e.Matches("/x", arm64[:10]) {
		t.Error("matched a truncated header")
	}
	off := &Entry{Enabled: true, Offset: 2, Magic: []byte("AB")}
	if !off.Matches("/x", []byte("..AB")) || off.Matches("/x", []byte(".AB.")) {
		t.Error("offset matching wrong")
	}
	e.Enabled = false
	if e.Matches("/bin/busybox", arm64) {
		t.Error("disabled entry matched")
	}
	ext := &Entry{Enabled: true, Extension: "pyc"}
	if !ext.Matches("/app/x.pyc", nil) || ext.Matches("/app/x.py", nil) || ext.Matches("/app/pyc", nil) {
		t.Error("extension matching wrong")
	}
	reg := &Registry{Enabled: true, Entries: []*Entry{ext, {Name: "new", Enabled: true, Magic: []byte("\x7fELF")}, {Name: "old", Enabled: true, Magic: []byte("\x7fELF")}}}
	if m := reg.Match("/x", arm64); m == nil || m.Name != "new" {
		t.Errorf("Match picked %v, want the first (newest) entry", m)
	}
	reg.Enabled = false
	if m := reg.Match("/x", arm64); m != nil {
		t.Error("globally disabled registry matched")
	}
}

func TestReadRegistryNotMounted(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "status"), []byte("enabled\n"), 0o644)
	reg, err := ReadRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	if reg.Mounted || reg.Enabled || len(reg.Entries) != 0 {
		t.Errorf("plain directory read as %+v", reg)
	}
	reg, err = ReadRegistry(filepath.Join(dir, "missing"))
	if err != nil || reg.Mounted {
		t.Errorf("missing dir: %+v, %v", reg, err)
	}
}

// Reads the real host registry when it is mounted.
func TestReadRegistryHost(t *testing.T) {
	reg, err := ReadRegistry(DefaultBinfmtMisc)
	if err != nil {
		t.Fatal(err)
	}
	if !reg.Mounted {
		t.Skip("binfmt_misc is not mounted on the host (mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc, as root)")
	}
	names, _ := os.ReadDir(DefaultBinfmtMisc)
	if len(reg.Entries) != len(names)-2 {
		t.Errorf("%d entries read, directory has %d files besides status and register", len(reg.Entries), len(names)-2)
	}
	for i, e := range reg.Entries {
		if e.Interpreter == "" || (len(e.Magic) == 0 && e.Extension == "") {
			t.Errorf("entry %s incomplete: %+v", e.Name, e)
		}
		if i > 0 && reg.Entries[i-1].Ino < e.Ino {
			t.Errorf("entries not newest first")
		}
		if strings.ContainsAny(e.Flags, "abcdefghijklmnopqrstuvwxyz ") {
			t.Errorf("entry %s flags %q", e.Name, e.Flags)
		}
	}
}
