package binfmt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/internal/inroot"
)

// testOpts pretends to be an x86_64 host with kernel 6.1 and an empty,
// mounted binfmt_misc, whatever the machine running the tests.
func testOpts(t testing.TB) Options {
	return Options{
		Host:          mustArch(t, "x86_64"),
		Compat:        []*Arch{},
		KernelRelease: "6.1.0",
		Registry:      &Registry{Mounted: true, Enabled: true},
		HostPATH:      "/nonexistent",
	}
}

func busyboxRootfs(t testing.TB, arch string) *rootfs {
	r := newRootfs(t)
	r.write("bin/busybox", makeELF(elfSpec{arch: mustArch(t, arch)}), 0o755)
	r.symlink("busybox", "bin/sh")
	r.symlink("/bin/busybox", "bin/ls")
	r.symlink("../../../../../../bin/busybox", "usr/bin/escape")
	return r
}

func wantDiag(t *testing.T, err error, errno error, want ...string) *Diagnosis {
	t.Helper()
	var d *Diagnosis
	if !errors.As(err, &d) {
		t.Fatalf("error %v (%T) is not a *Diagnosis", err, err)
	}
	msg := d.Error()
	t.Log(msg)
	if strings.Contains(msg, "\n") {
		t.Errorf("diagnosis is not one line: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("diagnosis %q\n does not contain %q", msg, w)
		}
	}
	if errno != nil && !errors.Is(err, errno) {
		t.Errorf("diagnosis %q is not %v", msg, errno)
	}
	return d
}

func TestRouteForeignNoHandler(t *testing.T) {
	r := busyboxRootfs(t, "aarch64")
	_, err := Route(r.dir, []string{"/bin/sh", "-c", "true"}, nil, testOpts(t))
	d := wantDiag(t, err, unix.ENOEXEC)
	want := `cannot exec "/bin/sh" (-> /bin/busybox): exec format error: ELF 64-bit aarch64 binary, host is x86_64, no qemu-aarch64 handler in binfmt_misc; install qemu-user-static or run "crossrun binfmt install aarch64"`
	if d.Error() != want {
		t.Errorf("got  %s\nwant %s", d.Error(), want)
	}
	if d.What != `cannot exec "/bin/sh" (-> /bin/busybox)` || d.Fix == "" {
		t.Errorf("fields %+v", d)
	}

	// Disabled entry, old kernel with a user namespace, not mounted.
	o := testOpts(t)
	o.Registry.Entries = []*Entry{{Name: "qemu-aarch64", Enabled: false, Interpreter: "/usr/bin/qemu-aarch64-static", Flags: "F", Magic: []byte("\x7fELF")}}
	o.UserNS = true
	_, err = Route(r.dir, []string{"sh"}, []string{"PATH=/usr/bin:/bin"}, o)
	wantDiag(t, err, unix.ENOEXEC, `cannot exec "sh" (-> /bin/sh -> /bin/busybox)`, "(the entry qemu-aarch64 is disabled)", "kernel 6.1.0 is too old for a private binfmt_misc", "needs 6.7")
	o = testOpts(t)
	o.Registry = &Registry{}
	_, err = Route(r.dir, []string{"/bin/sh"}, nil, o)
	wantDiag(t, err, unix.ENOEXEC, "binfmt_misc is not mounted on the host")
	o = testOpts(t)
	o.NoPrivate = true
	o.UserNS = true
	o.KernelRelease = "6.18.0"
	_, err = Route(r.dir, []string{"/bin/sh"}, nil, o)
	wantDiag(t, err, unix.ENOEXEC, "no qemu-aarch64 handler")
}

func TestRouteResolvesInsideRootfs(t *testing.T) {
	checkRouteResolvesInsideRootfs(t)
}

// TestRouteResolvesInsideRootfsWithoutOpenat2 runs the same lookups as on a
// kernel without openat2 (before 5.6): resolved by openLegacy's userspace
// walk, then opened without following a last symlink.
func TestRouteResolvesInsideRootfsWithoutOpenat2(t *testing.T) {
	calls := 0
	openat2InRoot = func(int, string, uint64) (int, error) {
		calls++
		return -1, unix.ENOSYS
	}
	t.Cleanup(func() { openat2InRoot = inroot.Open })
	checkRouteResolvesInsideRootfs(t)
	if calls == 0 {
		t.Fatal("Route never tried openat2")
	}
}

func checkRouteResolvesInsideRootfs(t *testing.T) {
	t.Helper()
	r := busyboxRootfs(t, "x86_64")
	cases := []struct {
		name     string
		env      []string
		path     string
		resolved string
	}{
		{"/bin/sh", nil, "/bin/sh", "/bin/busybox"},
		{"sh", nil, "/bin/sh", "/bin/busybox"}, // default PATH
		{"ls", []string{"HOME=/", "PATH=/bin"}, "/bin/ls", "/bin/busybox"},
		{"/usr/bin/escape", nil, "/usr/bin/escape", "/bin/busybox"},
		{"../../../bin/busybox", nil, "/bin/busybox", "/bin/busybox"},
	}
	for _, c := range cases {
		d, err := Route(r.dir, []string{c.name}, c.env, testOpts(t))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if d.Kind != Native || d.Exe.Path != c.path || d.Exe.Resolved != c.resolved || d.Arch.Name != "x86_64" {
			t.Errorf("%s: kind %v path %q resolved %q arch %v", c.name, d.Kind, d.Exe.Path, d.Exe.Resolved, d.Arch)
		}
	}
	_, err := Route(r.dir, []string{"nosuch"}, []string{"PATH=/usr/bin:/bin"}, testOpts(t))
	wantDiag(t, err, unix.ENOENT, `cannot exec "nosuch": executable file not found in $PATH (/usr/bin:/bin) inside the container`)
	_, err = Route(r.dir, []string{"/bin/nosuch"}, nil, testOpts(t))
	wantDiag(t, err, unix.ENOENT, `cannot exec "/bin/nosuch": no such file or directory in the container's rootfs`)
}

func TestRouteNativeAndCompat(t *testing.T) {
	r := newRootfs(t)
	r.write("app", makeELF(elfSpec{arch: mustArch(t, "x86_64"), typ: 3, osabi: 3, interp: "/lib64/ld-linux-x86-64.so.2", abiTag: &ABITag{Major: 3, Minor: 2}}), 0o755)
	r.write("lib64/ld-linux-x86-64.so.2", makeELF(elfSpec{arch: mustArch(t, "x86_64"), typ: 3}), 0o755)
	r.write("app32", makeELF(elfSpec{arch: mustArch(t, "i386")}), 0o755)
	d, err := Route(r.dir, []string{"/app"}, nil, testOpts(t))
	if err != nil || d.Kind != Native || d.Exe.ELF.Interp != "/lib64/ld-linux-x86-64.so.2" || d.Exe.ELF.ABITag == nil || d.Exe.ELF.ABITag.Version() != "3.2.0" {
		t.Fatalf("native: %+v %v", d, err)
	}
	o := testOpts(t)
	o.Compat = []*Arch{mustArch(t, "i386")}
	d, err = Route(r.dir, []string{"/app32"}, nil, o)
	if err != nil || d.Kind != Native || !strings.Contains(d.Reason, "runs natively on x86_64") {
		t.Fatalf("compat: %+v %v", d, err)
	}
	_, err = Route(r.dir, []string{"/app32"}, nil, testOpts(t))
	wantDiag(t, err, unix.ENOEXEC, "ELF 32-bit i386 binary, host is x86_64, no qemu-i386 handler")
}

func TestRouteDiagnoses(t *testing.T) {
	x86 := mustArch(t, "x86_64")
	r := newRootfs(t)
	r.write("dyn", makeELF(elfSpec{arch: x86, interp: "/lib/ld-musl-x86_64.so.1"}), 0o755)
	r.write("arm-dyn", makeELF(elfSpec{arch: mustArch(t, "aarch64"), interp: "/lib/ld-linux-aarch64.so.1"}), 0o755)
	r.write("py.sh", []byte("#!/usr/bin/python3 -u\nprint(1)\n"), 0o755)
	r.write("dos.sh", []byte("#!/bin/sh\r\necho hi\r\n"), 0o755)
	r.write("bin/sh", makeELF(elfSpec{arch: x86}), 0o755)
	r.write("app.exe", append([]byte("MZ\x90\x00\x03\x00\x00\x00"), make([]byte, 100)...), 0o755)
	r.write("macho", append([]byte("\xcf\xfa\xed\xfe\x07\x00\x00\x01"), make([]byte, 100)...), 0o755)
	r.write("bsd", makeELF(elfSpec{arch: x86, osabi: 9}), 0o755)
	r.write("obj.o", makeELF(elfSpec{arch: x86, typ: 1}), 0o755)
	r.write("noexec", makeELF(elfSpec{arch: x86}), 0o644)
	r.write("future", makeELF(elfSpec{arch: x86, abiTag: &ABITag{Major: 99, Minor: 1}}), 0o755)
	r.write("hurd", makeELF(elfSpec{arch: x86, abiTag: &ABITag{OS: 1, Major: 0, Minor: 0}}), 0o755)
	r.write("text", []byte("just text\n"), 0o755)
	r.write("empty", nil, 0o755)
	r.write("loop1", []byte("#!/loop2\n"), 0o755)
	r.write("loop2", []byte("#!/loop1\n"), 0o755)
	r.write("nointerp", []byte("#!\n"), 0o755)
	r.write("z80", makeELF(elfSpec{arch: &Arch{Class: 2, Data: 1, Machine: 999}}), 0o755)
	r.mkdir("adir")
	r.write("sbin/tool", []byte("x"), 0o644) // on PATH but not executable

	cases := []struct {
		args  string
		errno error
		want  []string
	}{
		{"/dyn", unix.ENOENT, []string{`cannot exec "/dyn": no such file or directory: the file exists, but its ELF interpreter /lib/ld-musl-x86_64.so.1 (PT_INTERP of this ELF 64-bit x86_64 binary) is missing in the container`, "build the program statically"}},
		{"/arm-dyn", unix.ENOENT, []string{"ELF interpreter /lib/ld-linux-aarch64.so.1", "install the aarch64 C library"}},
		{"/py.sh", unix.ENOENT, []string{`cannot exec "/py.sh" (-> /usr/bin/python3): no such file or directory: the #! interpreter /usr/bin/python3 of /py.sh is missing in the container; install /usr/bin/python3 in the image or change the #! line`}},
		{"/dos.sh", unix.ENOENT, []string{"ends in a carriage return (DOS line endings)", "dos2unix"}},
		{"/app.exe", unix.ENOEXEC, []string{`cannot exec "/app.exe": exec format error: this is a Windows PE executable`}},
		{"/macho", unix.ENOEXEC, []string{"macOS Mach-O executable"}},
		{"/bsd", unix.ENOEXEC, []string{"ELF 64-bit x86_64 binary is built for FreeBSD (OS ABI 9), not Linux"}},
		{"/hurd", unix.ENOEXEC, []string{"GNU ABI note for OS 1, not Linux"}},
		{"/obj.o", unix.ENOEXEC, []string{"is not an executable (rel)"}},
		{"/noexec", unix.EACCES, []string{"permission denied: /noexec is not executable (mode 0644)", "chmod +x /noexec"}},
		{"/z80", unix.ENOEXEC, []string{`cannot exec "/z80": exec format error: ELF 64-bit binary for machine 999, a machine crossrun does not know, host is x86_64`}},
		{"/adir", unix.EACCES, []string{`cannot exec "/adir": permission denied: it is a directory`}},
		{"tool", unix.EACCES, []string{`cannot exec "tool" (-> /sbin/tool): permission denied`}},
		{"/future", unix.ENOEXEC, []string{"ELF 64-bit x86_64 binary whose C library needs Linux >= 99.1.0 (GNU ABI note), host kernel is 6.1.0", "kernel too old"}},
		{"/text", unix.ENOEXEC, []string{`neither ELF nor a #! script (starts with "just tex")`}},
		{"/empty", unix.ENOEXEC, []string{"the file is empty"}},
		{"/loop1", unix.ELOOP, []string{"too many levels of #! interpreters"}},
		{"/nointerp", unix.ENOEXEC, []string{`cannot exec "/nointerp": script /nointerp has an empty #! line`}},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.args, "/"), func(t *testing.T) {
			_, err := Route(r.dir, []string{c.args}, []string{"PATH=/sbin"}, testOpts(t))
			wantDiag(t, err, c.errno, c.want...)
		})
	}
	if _, err := Route(r.dir, nil, nil, testOpts(t)); err == nil {
		t.Error("empty args accepted")
	}
}

func TestRouteScriptChain(t *testing.T) {
	r := busyboxRootfs(t, "aarch64")
	r.write("entry.sh", []byte("#!/usr/bin/env sh\nexec app\n"), 0o755)
	r.write("usr/bin/env", []byte("#! /bin/sh -e\n"), 0o755)
	o := testOpts(t)
	o.Registry.Entries = []*Entry{{Name: "qemu-aarch64", Enabled: true, Interpreter: "/usr/bin/qemu-aarch64-static", Flags: "POF"}}
	o.Registry.Entries[0].Magic, o.Registry.Entries[0].Mask = mustArch(t, "aarch64").BinfmtMagic()
	d, err := Route(r.dir, []string{"/entry.sh"}, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != HostHandler || d.Entry.Name != "qemu-aarch64" || len(d.Exe.Scripts) != 2 {
		t.Fatalf("decision %+v", d)
	}
	s := d.Exe.Scripts
	if s[0].Path != "/entry.sh" || s[0].Interpreter != "/usr/bin/env" || s[0].Arg != "sh" || s[1].Interpreter != "/bin/sh" || s[1].Arg != "-e" || d.Exe.Resolved != "/bin/busybox" {
		t.Errorf("chain %+v resolved %s", s, d.Exe.Resolved)
	}
	if got := d.Exe.Describe(); got != `"/entry.sh" (-> /usr/bin/env -> /bin/sh -> /bin/busybox)` {
		t.Errorf("Describe %s", got)
	}

	// An extension entry matches the script itself, before #! is read.
	o.Registry.Entries = append(o.Registry.Entries, &Entry{Name: "sh-ext", Enabled: true, Interpreter: "/usr/bin/shrunner", Flags: "F", Extension: "sh"})
	d, err = Route(r.dir, []string{"/entry.sh"}, nil, o)
	if err != nil || d.Entry.Name != "sh-ext" {
		t.Errorf("extension entry not chosen: %+v %v", d, err)
	}
}

// hostStatic writes a static ELF for the machine running the tests, to
// stand for a host qemu, and returns its path.
func hostStatic(t *testing.T, interp string) string {
	p := filepath.Join(t.TempDir(), "qemu-aarch64-static")
	if err := os.WriteFile(p, makeELF(elfSpec{arch: HostArch(), interp: interp}), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRouteHostHandlerWithoutF(t *testing.T) {
	r := busyboxRootfs(t, "aarch64")
	o := testOpts(t)
	q := hostStatic(t, "")
	magic, mask := mustArch(t, "aarch64").BinfmtMagic()
	ent := &Entry{Name: "qemu-aarch64", Enabled: true, Interpreter: q, Flags: "P", Magic: magic, Mask: mask}
	o.Registry.Entries = []*Entry{ent}
	d, err := Route(r.dir, []string{"/bin/sh"}, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != HostHandlerBind || d.BindSource != q || d.BindTarget != q {
		t.Fatalf("decision %+v", d)
	}
	// The interpreter already in the rootfs: nothing to do.
	r.write(q, []byte("qemu"), 0o755)
	d, err = Route(r.dir, []string{"/bin/sh"}, nil, o)
	if err != nil || d.Kind != HostHandler || !strings.Contains(d.Reason, "exists in the container") {
		t.Fatalf("decision %+v %v", d, err)
	}
	// A dynamically linked host interpreter cannot be bound.
	ent.Interpreter = hostStatic(t, "/lib64/ld-linux-x86-64.so.2")
	_, err = Route(r.dir, []string{"/bin/sh"}, nil, o)
	wantDiag(t, err, unix.ENOENT, "needs "+ent.Interpreter+" inside the container, and the host's copy is dynamically linked", "install qemu-user-static")
	ent.Interpreter = "/nonexistent/qemu"
	_, err = Route(r.dir, []string{"/bin/sh"}, nil, o)
	wantDiag(t, err, unix.ENOENT, "the host's copy is unusable")
}

func TestRoutePrivateNeedsProc(t *testing.T) {
	if _, err := FindQEMU(mustArch(t, "aarch64"), os.Getenv("PATH"), true); err != nil {
		t.Skip("needs qemu-user-static (a static qemu-aarch64) on the host:", err)
	}
	r := busyboxRootfs(t, "aarch64")
	o := testOpts(t)
	o.KernelRelease = "6.7.0"
	o.UserNS = true
	o.Host = HostArch()
	if o.Host.Name == "aarch64" {
		t.Skip("the test binary is aarch64 on this host")
	}
	_, err := Route(r.dir, []string{"/bin/sh"}, nil, o)
	wantDiag(t, err, unix.ENOEXEC, "a private binfmt_misc needs the container's /proc", "mount proc at /proc")
	o.UserNS = false
	_, err = Route(r.dir, []string{"/bin/sh"}, nil, o)
	wantDiag(t, err, unix.ENOEXEC, "give the container a user namespace")
}

func TestPrivateEntries(t *testing.T) {
	host := &Registry{Mounted: true, Enabled: true, Entries: []*Entry{
		{Name: "newer", Enabled: true, Interpreter: "/a", Extension: "x", Ino: 9},
		{Name: "qemu-aarch64", Enabled: true, Interpreter: "/b", Extension: "y", Ino: 8},
		{Name: "off", Enabled: false, Interpreter: "/c", Extension: "z", Ino: 7},
		{Name: "older", Enabled: true, Interpreter: "/d", Extension: "w", Ino: 6},
	}}
	got := privateEntries(host, mustArch(t, "aarch64"), "/usr/bin/qemu-aarch64-static")
	var names []string
	for _, e := range got {
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != "older,newer,qemu-aarch64" || got[2].Interpreter != "/usr/bin/qemu-aarch64-static" || got[2].Flags != PrivateFlags {
		t.Errorf("entries %v %+v", names, got[2])
	}
}

func TestParseKernelVersion(t *testing.T) {
	for in, want := range map[string]KernelVersion{"6.18.44-fc-v595": {6, 18, 44}, "6.7": {6, 7, 0}, "5.15.0-91-generic": {5, 15, 0}, "4.19.0+": {4, 19, 0}, "": {}} {
		if got := ParseKernelVersion(in); got != want {
			t.Errorf("ParseKernelVersion(%q) = %v", in, got)
		}
	}
	if !ParseKernelVersion("6.6.9").Less(sandboxedBinfmt) || ParseKernelVersion("6.7.0").Less(sandboxedBinfmt) {
		t.Error("Less wrong around 6.7")
	}
}

func TestDiagnosisError(t *testing.T) {
	d := &Diagnosis{What: "cannot exec \"/x\"", Why: "exec format error: y", Fix: "do z", Err: unix.ENOEXEC}
	if d.Error() != `cannot exec "/x": exec format error: y; do z` || !errors.Is(d, unix.ENOEXEC) {
		t.Errorf("%q", d.Error())
	}
	if (&Diagnosis{What: "a", Why: "b"}).Error() != "a: b" {
		t.Error("no-fix form")
	}
}

func BenchmarkRouteNative(b *testing.B) {
	r := busyboxRootfs(b, HostArch().Name)
	o := Options{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Route(r.dir, []string{"sh"}, []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, o); err != nil {
			b.Fatal(err)
		}
	}
}

// Foreign binary: reads the host's real binfmt_misc each time.
func BenchmarkRouteForeign(b *testing.B) {
	arch := "aarch64"
	if HostArch().Name == arch {
		arch = "x86_64"
	}
	r := busyboxRootfs(b, arch)
	o := Options{UserNS: true}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Route(r.dir, []string{"/bin/sh"}, nil, o)
	}
}

// Foreign binary, no host entry, user namespace: the private route's
// decision work (qemu discovery and verification included).
func BenchmarkRoutePrivateDecision(b *testing.B) {
	arch := "aarch64"
	if HostArch().Name == arch {
		arch = "x86_64"
	}
	if _, err := FindQEMU(mustArch(b, arch), os.Getenv("PATH"), true); err != nil {
		b.Skip("needs qemu-user-static")
	}
	r := busyboxRootfs(b, arch)
	o := Options{UserNS: true, Registry: &Registry{Mounted: true, Enabled: true}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Route(r.dir, []string{"/bin/sh"}, nil, o)
	}
}
