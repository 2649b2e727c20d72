package integration

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crossrun/crossrun/binfmt"
)

// The foreign-arch tests change the host's binfmt_misc (they register,
// enable or disable qemu handlers for the duration of a subtest) and put it
// back exactly in t.Cleanup. None of them is parallel.

const hostBinfmtDir = "/proc/sys/fs/binfmt_misc"

// foreignMatrix is the GOARCH list the tests cross-compile testdata/hello
// for; goarm is GOARM for 32-bit arm.
var foreignMatrix = []struct{ goarch, goarm string }{
	{"arm64", ""},
	{"arm", "7"},
	{"riscv64", ""},
	{"ppc64le", ""},
	{"s390x", ""},
	{"386", ""},
	{"mips64le", ""},
	{"loong64", ""},
}

// requireBinfmt skips when the host's binfmt_misc is not mounted.
func requireBinfmt(t *testing.T) {
	t.Helper()
	requireRoot(t)
	reg, err := binfmt.ReadRegistry(hostBinfmtDir)
	if err != nil {
		t.Fatal(err)
	}
	if !reg.Mounted {
		t.Skipf("skipped: binfmt_misc is not mounted on %s (mount -t binfmt_misc binfmt_misc %s)", hostBinfmtDir, hostBinfmtDir)
	}
}

// fileHead is the first 256 bytes of a file, what binfmt_misc matches.
func fileHead(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 256)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(err)
	}
	return head[:n]
}

// hostRunsNatively reports whether the host kernel runs a itself.
func hostRunsNatively(a *binfmt.Arch) bool {
	if a == binfmt.HostArch() {
		return true
	}
	for _, c := range binfmt.CompatArches() {
		if c == a {
			return true
		}
	}
	return false
}

// binfmtListing is the host's binfmt_misc directory: every name (but the
// write-only "register") and its contents.
func binfmtListing(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(hostBinfmtDir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		if e.Name() == "register" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(hostBinfmtDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(data)
	}
	return m
}

func diffListing(before, after map[string]string) string {
	var d []string
	for n, c := range before {
		if a, ok := after[n]; !ok {
			d = append(d, "removed "+n)
		} else if a != c {
			d = append(d, fmt.Sprintf("changed %s: %q -> %q", n, c, a))
		}
	}
	for n := range after {
		if _, ok := before[n]; !ok {
			d = append(d, "added "+n)
		}
	}
	sort.Strings(d)
	return strings.Join(d, "; ")
}

// restoreListingCheck makes t fail if the host listing, after every later
// cleanup has run, differs from now.
func restoreListingCheck(t *testing.T) {
	before := binfmtListing(t)
	t.Cleanup(func() {
		if d := diffListing(before, binfmtListing(t)); d != "" {
			t.Errorf("host binfmt_misc not restored: %s", d)
		}
	})
}

func writeBinfmt(t *testing.T, name, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(hostBinfmtDir, name), []byte(v), 0); err != nil {
		t.Fatalf("write %q to %s/%s: %v", v, hostBinfmtDir, name, err)
	}
}

func hostRegistry(t *testing.T) *binfmt.Registry {
	t.Helper()
	reg, err := binfmt.ReadRegistry(hostBinfmtDir)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// ensureHostHandler makes an enabled host entry serve files starting with
// head (an a binary), for the rest of the test: it enables binfmt_misc or
// the disabled qemu-ARCH entry, or registers one with "crossrun binfmt
// install", and undoes exactly that in cleanup.
func ensureHostHandler(t *testing.T, a *binfmt.Arch, head []byte) {
	t.Helper()
	restoreListingCheck(t)
	reg := hostRegistry(t)
	if !reg.Enabled {
		writeBinfmt(t, "status", "1")
		t.Cleanup(func() { writeBinfmt(t, "status", "0") })
		reg = hostRegistry(t)
	}
	if reg.Match("/hello", head) != nil {
		return
	}
	if e := reg.Lookup(a.QEMUName()); e != nil && !e.Enabled {
		writeBinfmt(t, e.Name, "1")
		t.Cleanup(func() { writeBinfmt(t, e.Name, "0") })
	} else {
		mustRun(t, "binfmt", "install", a.Name)
		t.Cleanup(func() { mustRun(t, "binfmt", "uninstall", a.Name) })
	}
	if hostRegistry(t).Match("/hello", head) == nil {
		t.Fatalf("no host binfmt_misc entry serves %s after installing %s", a.Name, a.QEMUName())
	}
}

// disableHostHandlers disables every enabled host entry that would serve
// files starting with head, for the rest of the test.
func disableHostHandlers(t *testing.T, head []byte) {
	t.Helper()
	restoreListingCheck(t)
	for {
		e := hostRegistry(t).Match("/hello", head)
		if e == nil {
			return
		}
		writeBinfmt(t, e.Name, "0")
		t.Cleanup(func() { writeBinfmt(t, e.Name, "1") })
	}
}

// withUserNS gives b's container a user namespace (0 -> 100000, 65536
// ids) and hands the rootfs to its root, as TestUserNamespace does.
func withUserNS(t *testing.T, b *bundle) {
	t.Helper()
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	b.Spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	chownTree(t, filepath.Join(b.Dir, "rootfs"), 100000)
	os.Chmod(b.Dir, 0o755)
	os.Chmod(filepath.Dir(b.Dir), 0o755)
	b.Save(t)
}

// runRoute runs b's container with --debug and returns its stdout and the
// exec route init chose (the Kind string from its debug log).
func runRoute(t *testing.T, b *bundle, id string) (string, string) {
	t.Helper()
	cleanupContainer(t, id)
	start := time.Now()
	r := crossrun(t, "--debug", "run", "--bundle", b.Dir, id)
	if r.Code != 0 {
		t.Fatalf("run %s: exit %d; stderr: %s; stdout: %s", id, r.Code, r.Stderr, r.Stdout)
	}
	t.Logf("crossrun run: %v", time.Since(start).Round(time.Millisecond))
	return r.Stdout, execRoute(r.Stderr)
}

// execRoute finds the route in the debug log ("exec route for ...: KIND: reason").
func execRoute(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		i := strings.Index(line, "exec route for ")
		if i < 0 {
			continue
		}
		rest := line[i:]
		j := strings.Index(rest, `": `)
		if j < 0 {
			continue
		}
		rest = rest[j+3:]
		if k := strings.Index(rest, ":"); k >= 0 {
			return rest[:k]
		}
	}
	return ""
}

// diagnosisLine returns the single stderr line carrying init's diagnosis.
func diagnosisLine(t *testing.T, stderr string) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "cannot exec") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("want one diagnosis line, got %d; stderr: %q", len(lines), stderr)
	}
	return lines[0]
}

func assertContainsAll(t *testing.T, line string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("diagnosis lacks %q:\n%s", w, line)
		}
	}
}

// assertFailsAtCreate runs b's container, expects a non-zero exit and no
// state left behind, and returns the diagnosis line.
func assertFailsAtCreate(t *testing.T, b *bundle, id string) string {
	t.Helper()
	cleanupContainer(t, id)
	start := time.Now()
	r := crossrun(t, "run", "--bundle", b.Dir, id)
	took := time.Since(start).Round(time.Millisecond)
	if r.Code == 0 {
		t.Fatalf("run %s succeeded, want a failure; stdout: %q", id, r.Stdout)
	}
	if r.Stdout != "" {
		t.Errorf("the process ran: stdout %q", r.Stdout)
	}
	line := diagnosisLine(t, r.Stderr)
	t.Logf("exit %d after %v: %s", r.Code, took, line)
	if _, err := os.Stat(filepath.Join(stateRoot, id)); !os.IsNotExist(err) {
		t.Errorf("state of %s left after a failed create", id)
	}
	return line
}

// foreignCase builds hello for one GOARCH into a fresh bundle and returns
// the bundle, the architecture and the binary's first bytes.
func foreignCase(t *testing.T, goarch, goarm string) (*bundle, *binfmt.Arch, []byte) {
	t.Helper()
	a, ok := binfmt.ArchByName(goarch)
	if !ok {
		t.Fatalf("binfmt does not know GOARCH %s", goarch)
	}
	b := newBundle(t, "/hello")
	hello := filepath.Join(b.Dir, "rootfs/hello")
	buildHello(t, goarch, goarm, hello)
	return b, a, fileHead(t, hello)
}

// (a) Host handlers on: every architecture runs through the host's entry.
func TestForeignArchHostHandler(t *testing.T) {
	requireBinfmt(t)
	for _, m := range foreignMatrix {
		t.Run(m.goarch, func(t *testing.T) {
			b, a, head := foreignCase(t, m.goarch, m.goarm)
			want := "host-handler"
			if hostRunsNatively(a) {
				want = "native"
			} else {
				ensureHostHandler(t, a, head)
			}
			out, route := runRoute(t, b, "fa-host-"+m.goarch)
			if out != m.goarch+"\n" {
				t.Errorf("stdout %q, want %q", out, m.goarch+"\n")
			}
			if route != want {
				t.Errorf("route %q, want %q", route, want)
			}
		})
	}
}

// (b) Host handlers off, container with a user namespace: crossrun
// registers the host's static qemu in the container's own binfmt_misc, and
// the host's listing does not change.
func TestForeignArchPrivateBinfmt(t *testing.T) {
	requireBinfmt(t)
	if kv := binfmt.ParseKernelVersion(binfmt.KernelRelease()); kv.Less(binfmt.KernelVersion{Major: 6, Minor: 7}) {
		t.Skipf("skipped: kernel %s has no binfmt_misc in user namespaces (needs 6.7)", kv)
	}
	for _, m := range foreignMatrix {
		t.Run(m.goarch, func(t *testing.T) {
			b, a, head := foreignCase(t, m.goarch, m.goarm)
			want := "private-binfmt"
			if hostRunsNatively(a) {
				want = "native"
			} else {
				disableHostHandlers(t, head)
			}
			withUserNS(t, b)
			before := binfmtListing(t)
			out, route := runRoute(t, b, "fa-priv-"+m.goarch)
			if d := diffListing(before, binfmtListing(t)); d != "" {
				t.Errorf("the container changed the host's binfmt_misc: %s", d)
			}
			if out != m.goarch+"\n" {
				t.Errorf("stdout %q, want %q", out, m.goarch+"\n")
			}
			if route != want {
				t.Errorf("route %q, want %q", route, want)
			}
		})
	}
}

// (c) Host handlers off, no user namespace: create fails with the one-line
// diagnosis naming both architectures; compat arches still run.
func TestForeignArchNoHandler(t *testing.T) {
	requireBinfmt(t)
	host := binfmt.HostArch()
	for _, m := range foreignMatrix {
		t.Run(m.goarch, func(t *testing.T) {
			b, a, head := foreignCase(t, m.goarch, m.goarm)
			id := "fa-none-" + m.goarch
			if hostRunsNatively(a) {
				out, route := runRoute(t, b, id)
				if out != m.goarch+"\n" || route != "native" {
					t.Errorf("stdout %q route %q, want %q and native", out, route, m.goarch+"\n")
				}
				return
			}
			disableHostHandlers(t, head)
			line := assertFailsAtCreate(t, b, id)
			assertContainsAll(t, line,
				`cannot exec "/hello"`,
				"exec format error",
				" "+a.Name+" binary",
				"host is "+host.Name,
				"no "+a.QEMUName()+" handler in binfmt_misc",
				`crossrun binfmt install `+a.Name)
		})
	}
}

// debianBusyboxArm64 returns Debian's busybox-static for arm64, extracted
// once into /var/cache/crossrun-test (apt-get download; the architecture
// is added to dpkg for the download and removed again if it was not there).
func debianBusyboxArm64(t *testing.T) string {
	t.Helper()
	cache := "/var/cache/crossrun-test/busybox-static-arm64"
	for _, p := range []string{"usr/bin/busybox", "bin/busybox"} {
		if bb := filepath.Join(cache, p); regularFile(bb) {
			return bb
		}
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("skipped: no apt-get to download busybox-static:arm64")
	}
	start := time.Now()
	out, _ := exec.Command("dpkg", "--print-foreign-architectures").Output()
	if !strings.Contains(" "+strings.Join(strings.Fields(string(out)), " ")+" ", " arm64 ") {
		if o, err := exec.Command("dpkg", "--add-architecture", "arm64").CombinedOutput(); err != nil {
			t.Skipf("skipped: dpkg --add-architecture arm64: %v: %s", err, o)
		}
		defer exec.Command("dpkg", "--remove-architecture", "arm64").Run()
		if o, err := exec.Command("apt-get", "update", "-qq").CombinedOutput(); err != nil {
			t.Skipf("skipped: apt-get update with arm64: %v: %s", err, o)
		}
	}
	dl := t.TempDir()
	cmd := exec.Command("apt-get", "download", "-qq", "busybox-static:arm64")
	cmd.Dir = dl
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("skipped: apt cannot provide busybox-static:arm64: %v: %s", err, o)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "busybox-static_*_arm64.deb"))
	if len(debs) != 1 {
		t.Skipf("skipped: apt-get download busybox-static:arm64 left %v", debs)
	}
	tmp := cache + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if o, err := exec.Command("dpkg-deb", "-x", debs[0], tmp).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v: %s", err, o)
	}
	if err := os.Rename(tmp, cache); err != nil {
		t.Fatal(err)
	}
	t.Logf("downloaded %s in %v", filepath.Base(debs[0]), time.Since(start).Round(time.Millisecond))
	return debianBusyboxArm64(t)
}

func regularFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// arm64Userland makes b's rootfs a whole arm64 userland: Debian's arm64
// busybox with a symlink per applet (listed by running it under the host's
// static qemu directly) and an arm64 /hello.
func arm64Userland(t *testing.T, b *bundle, bb string) {
	t.Helper()
	a, _ := binfmt.ArchByName("arm64")
	f, err := elf.Open(bb)
	if err != nil {
		t.Fatal(err)
	}
	machine := f.Machine
	f.Close()
	if machine != elf.EM_AARCH64 {
		t.Fatalf("%s is %v, not aarch64", bb, machine)
	}
	q, err := binfmt.FindQEMU(a, os.Getenv("PATH"), true)
	if err != nil {
		t.Skipf("skipped: %v (needs qemu-user-static)", err)
	}
	list, err := exec.Command(q.Path, bb, "--list-full").Output()
	if err != nil {
		t.Fatalf("%s %s --list-full: %v", q.Path, bb, err)
	}
	root := filepath.Join(b.Dir, "rootfs")
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "bin/busybox" {
			continue
		}
		link := filepath.Join(root, applet)
		os.MkdirAll(filepath.Dir(link), 0o755)
		if err := os.Symlink("/bin/busybox", link); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	buildHello(t, "arm64", "", filepath.Join(root, "hello"))
}

// A whole foreign userland: the shell, its applets and a child binary are
// all arm64, through the host handler and through a private binfmt_misc.
func TestForeignArchDebianUserland(t *testing.T) {
	requireBinfmt(t)
	if binfmt.HostArch().Name == "aarch64" {
		t.Skip("skipped: arm64 is native here")
	}
	bb := debianBusyboxArm64(t)
	a, _ := binfmt.ArchByName("arm64")
	head := fileHead(t, bb)
	args := []string{"sh", "-c", "uname -m; ls /; /hello; busybox uname -m"}
	check := func(t *testing.T, out string) {
		t.Helper()
		t.Logf("output: %q", out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 4 || lines[0] != "aarch64" || lines[len(lines)-2] != "arm64" || lines[len(lines)-1] != "aarch64" {
			t.Errorf("output %q, want aarch64, the root listing, arm64, aarch64", out)
		}
		for _, d := range []string{"bin", "hello", "proc", "usr"} {
			if !strings.Contains(out, "\n"+d+"\n") {
				t.Errorf("ls / lacks %s: %q", d, out)
			}
		}
	}
	t.Run("host-handler", func(t *testing.T) {
		ensureHostHandler(t, a, head)
		b := newBundle(t, args...)
		arm64Userland(t, b, bb)
		out, route := runRoute(t, b, "fa-deb-host")
		check(t, out)
		if route != "host-handler" {
			t.Errorf("route %q, want host-handler", route)
		}
	})
	t.Run("private-binfmt", func(t *testing.T) {
		disableHostHandlers(t, head)
		b := newBundle(t, args...)
		arm64Userland(t, b, bb)
		withUserNS(t, b)
		before := binfmtListing(t)
		out, route := runRoute(t, b, "fa-deb-priv")
		check(t, out)
		if route != "private-binfmt" {
			t.Errorf("route %q, want private-binfmt", route)
		}
		if d := diffListing(before, binfmtListing(t)); d != "" {
			t.Errorf("the container changed the host's binfmt_misc: %s", d)
		}
	})
}

// Diagnoses of files no interpreter helps with, through the real binary.
func TestForeignArchDiagnosis(t *testing.T) {
	requireRoot(t)
	t.Run("missing ELF loader", func(t *testing.T) {
		src := "/usr/bin/true"
		f, err := elf.Open(src)
		if err != nil {
			t.Skipf("skipped: %v", err)
		}
		var interp string
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				data, _ := io.ReadAll(p.Open())
				interp = strings.TrimRight(string(data), "\x00")
			}
		}
		f.Close()
		if interp == "" {
			t.Skipf("skipped: %s is statically linked", src)
		}
		b := newBundle(t, "/true")
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(b.Dir, "rootfs/true"), data, 0o755)
		line := assertFailsAtCreate(t, b, "fa-diag-loader")
		assertContainsAll(t, line, `cannot exec "/true"`, "no such file or directory: the file exists",
			"its ELF interpreter "+interp+" (PT_INTERP of this ELF 64-bit "+binfmt.HostArch().Name+" binary) is missing in the container",
			"build the program statically")
	})
	t.Run("missing #! interpreter", func(t *testing.T) {
		b := newBundle(t, "/script.sh")
		os.WriteFile(filepath.Join(b.Dir, "rootfs/script.sh"), []byte("#!/usr/bin/python3\nprint('hi')\n"), 0o755)
		line := assertFailsAtCreate(t, b, "fa-diag-script")
		assertContainsAll(t, line, `cannot exec "/script.sh" (-> /usr/bin/python3)`,
			"no such file or directory: the #! interpreter /usr/bin/python3 of /script.sh is missing in the container",
			"change the #! line")
	})
	t.Run("directory", func(t *testing.T) {
		b := newBundle(t, "/tmp")
		line := assertFailsAtCreate(t, b, "fa-diag-dir")
		assertContainsAll(t, line, `cannot exec "/tmp"`, "permission denied: it is a directory", "point process.args[0] at a file")
	})
}
