package binfmt

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary re-executes itself as a "container init" in new
// namespaces; childEnv selects what the child does.
const childEnv = "CROSSRUN_BINFMT_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
	case "private":
		os.Exit(childPrivate(os.Getenv("ROOTFS")))
	case "bind":
		os.Exit(childBind(os.Getenv("ROOTFS"), os.Getenv("QEMU")))
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode")
		os.Exit(2)
	}
	code := m.Run()
	for _, p := range goBuildCache {
		os.RemoveAll(filepath.Dir(p))
	}
	os.Exit(code)
}

// childPrivate runs as root of a new user namespace (with new mount and
// pid namespaces): mount proc in the rootfs as a container init would,
// route /hello, prepare, and run it.
func childPrivate(rootfs string) int {
	fail := func(format string, a ...any) int {
		fmt.Printf("CHILD FAIL: "+format+"\n", a...)
		return 1
	}
	if err := unix.Mount("proc", filepath.Join(rootfs, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fail("mount proc: %v", err)
	}
	d, err := Route(rootfs, []string{"hello"}, []string{"PATH=/"}, Options{UserNS: true})
	if err != nil {
		return fail("route: %v", err)
	}
	fmt.Println("route:", d.Kind)
	start := time.Now()
	if err := d.Prepare(rootfs); err != nil {
		return fail("prepare: %v", err)
	}
	fmt.Printf("prepare: %d entries in %v\n", len(d.Register), time.Since(start))
	reg, err := ReadRegistry(filepath.Join(rootfs, "proc/sys/fs/binfmt_misc"))
	if err != nil {
		return fail("read private registry: %v", err)
	}
	for _, e := range reg.Entries {
		fmt.Printf("private entry: %s flags=%s enabled=%v interpreter=%s\n", e.Name, e.Flags, e.Enabled, e.Interpreter)
	}
	// A second process entering the same container (crossrun exec) finds
	// the container's instance.
	if d2, err := Route(rootfs, []string{"/hello"}, nil, Options{UserNS: true}); err != nil {
		fmt.Println("second route:", err)
	} else {
		fmt.Println("second route:", d2.Kind, d2.Entry.Name)
	}
	out, err := exec.Command(filepath.Join(rootfs, "hello"), "a", "b").CombinedOutput()
	fmt.Printf("exec: %s", out)
	if err != nil {
		return fail("exec hello: %v", err)
	}
	return 0
}

// childBind runs in a new mount namespace (host root): prepare a
// HostHandlerBind decision and check the bound interpreter.
func childBind(rootfs, qemu string) int {
	fail := func(format string, a ...any) int {
		fmt.Printf("CHILD FAIL: "+format+"\n", a...)
		return 1
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("make / private: %v", err)
	}
	magic, mask := Arches[2].BinfmtMagic() // aarch64
	reg := &Registry{Mounted: true, Enabled: true, Entries: []*Entry{{Name: "qemu-aarch64", Enabled: true, Interpreter: qemu, Flags: "P", Magic: magic, Mask: mask}}}
	d, err := Route(rootfs, []string{"/hello"}, nil, Options{Registry: reg})
	if err != nil {
		return fail("route: %v", err)
	}
	fmt.Println("route:", d.Kind)
	if err := d.Prepare(rootfs); err != nil {
		return fail("prepare: %v", err)
	}
	target := filepath.Join(rootfs, qemu)
	var sfs unix.Statfs_t
	if err := unix.Statfs(target, &sfs); err != nil {
		return fail("statfs: %v", err)
	}
	fmt.Println("readonly:", sfs.Flags&unix.ST_RDONLY != 0)
	a, _ := os.ReadFile(target)
	b, _ := os.ReadFile(d.BindSource)
	fmt.Println("same content:", len(a) > 0 && bytes.Equal(a, b))
	if f, err := os.OpenFile(target, os.O_WRONLY, 0); err == nil {
		f.Close()
		fmt.Println("write: allowed")
	} else {
		fmt.Println("write:", err)
	}
	return 0
}

func needRootAndQEMU(t *testing.T) *QEMU {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, mounts, the host's binfmt_misc)")
	}
	if HostArch().Name == "aarch64" {
		t.Skip("the foreign test arch is aarch64, which is this host's arch")
	}
	q, err := FindQEMU(mustArch(t, "aarch64"), os.Getenv("PATH"), true)
	if err != nil {
		t.Skip("needs qemu-user-static (static qemu-aarch64):", err)
	}
	return q
}

// snapshot is the host's binfmt_misc listing, comparable across time
// (registration lines and enabled state, without inode numbers).
func snapshot(t *testing.T) string {
	t.Helper()
	reg, err := ReadRegistry(DefaultBinfmtMisc)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range reg.Entries {
		lines = append(lines, fmt.Sprintf("%s enabled=%v", e.RegisterString(), e.Enabled))
	}
	sort.Strings(lines)
	return fmt.Sprintf("mounted=%v enabled=%v\n%s", reg.Mounted, reg.Enabled, strings.Join(lines, "\n"))
}

// hostMounted mounts the host's binfmt_misc for the test if needed and
// unmounts it afterwards if it mounted it.
func hostMounted(t *testing.T) {
	var sfs unix.Statfs_t
	if unix.Statfs(DefaultBinfmtMisc, &sfs) == nil && uint32(sfs.Type) == binfmtfsMagic {
		return
	}
	if err := EnsureMounted(DefaultBinfmtMisc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(DefaultBinfmtMisc, 0) })
}

// disableHostEntry disables the host entry name, if it exists and is
// enabled, until the test ends.
func disableHostEntry(t *testing.T, name string) {
	p := filepath.Join(DefaultBinfmtMisc, name)
	b, err := os.ReadFile(p)
	if err != nil || !strings.HasPrefix(string(b), "enabled") {
		return
	}
	if err := writeControl(p, "0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := writeControl(p, "1"); err != nil {
			t.Errorf("re-enable host entry %s: %v", name, err)
		}
	})
}

func TestPrivateBinfmtInUserNS(t *testing.T) {
	needRootAndQEMU(t)
	if ParseKernelVersion(KernelRelease()).Less(sandboxedBinfmt) {
		t.Skip("needs Linux >= 6.7 for a binfmt_misc instance in a user namespace")
	}
	hello := buildHello(t, "arm64")
	hostMounted(t)
	before := snapshot(t)
	t.Cleanup(func() { // runs last: after the entry is re-enabled
		if after := snapshot(t); after != before {
			t.Errorf("host binfmt_misc not restored:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	disableHostEntry(t, "qemu-aarch64")

	rootfs := t.TempDir()
	for _, d := range []string{rootfs, filepath.Dir(rootfs), filepath.Join(rootfs, "proc")} {
		os.MkdirAll(d, 0o755)
		os.Chmod(d, 0o755)
	}
	data, err := os.ReadFile(hello)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "hello"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	// Without a handler the host cannot run it.
	if out, err := exec.Command(filepath.Join(rootfs, "hello")).CombinedOutput(); err == nil {
		t.Fatalf("arm64 hello ran on the host with qemu-aarch64 disabled: %s", out)
	}
	during := snapshot(t)

	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=private", "ROOTFS="+rootfs)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		// Become uid 0 of the new namespace (host uid 100000), as a
		// container init does; the host's root is unmapped there.
		Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
	}
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	for _, want := range []string{"route: private-binfmt", "private entry: qemu-aarch64 flags=" + PrivateFlags + " enabled=true interpreter=/proc/self/fd/", "exec: hello from arm64 [a b]", "second route: host-handler qemu-aarch64"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q", want)
		}
	}
	if after := snapshot(t); after != during {
		t.Errorf("host binfmt_misc changed:\nbefore child:\n%s\nafter child:\n%s", during, after)
	}
}

func TestPrepareBindReadOnly(t *testing.T) {
	q := needRootAndQEMU(t)
	rootfs := t.TempDir()
	if err := os.WriteFile(filepath.Join(rootfs, "hello"), makeELF(elfSpec{arch: mustArch(t, "aarch64")}), 0o755); err != nil {
		t.Fatal(err)
	}
	// The entry names the host's qemu; the rootfs has no such file yet.
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=bind", "ROOTFS="+rootfs, "QEMU="+q.Real)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	for _, want := range []string{"route: host-handler-bind", "readonly: true", "same content: true"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q", want)
		}
	}
	// EROFS, or ETXTBSY when a host entry with flag F holds the file.
	if strings.Contains(string(out), "write: allowed") {
		t.Errorf("the bound interpreter is writable")
	}
	// The mount was in the child's namespace; the placeholder file stays.
	st, err := os.Stat(filepath.Join(rootfs, q.Real))
	if err != nil || st.Size() != 0 {
		t.Errorf("placeholder in rootfs: %v %v", st, err)
	}
}

func TestInstallUninstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (changes the host's binfmt_misc, restored afterwards)")
	}
	var arch *Arch
	for _, name := range []string{"riscv64", "s390x", "ppc64le", "aarch64"} {
		a := mustArch(t, name)
		if runsNatively(a) {
			continue
		}
		if _, err := FindQEMU(a, os.Getenv("PATH"), true); err == nil {
			arch = a
			break
		}
	}
	if arch == nil {
		t.Skip("needs qemu-user-static (no static qemu for riscv64, s390x, ppc64le or aarch64)")
	}
	hostMounted(t)
	before := snapshot(t)
	t.Cleanup(func() { // runs last: after the restore below
		if after := snapshot(t); after != before {
			t.Errorf("host binfmt_misc not restored:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	reg, _ := ReadRegistry(DefaultBinfmtMisc)
	if old := reg.Lookup(arch.QEMUName()); old != nil {
		t.Cleanup(func() {
			if err := registerHost(DefaultBinfmtMisc, old); err != nil {
				t.Errorf("restore %s: %v", old.Name, err)
			}
			if !old.Enabled {
				writeControl(filepath.Join(DefaultBinfmtMisc, old.Name), "0")
			}
		})
	} else {
		t.Cleanup(func() { removeEntry(DefaultBinfmtMisc, arch.QEMUName()) })
	}

	if err := Install([]string{arch.Name}); err != nil {
		t.Fatal(err)
	}
	entries, err := List()
	if err != nil {
		t.Fatal(err)
	}
	var got *Entry
	for _, e := range entries {
		if e.Name == arch.QEMUName() {
			got = e
		}
	}
	if got == nil || !got.Enabled || got.Flags != InstallFlags {
		t.Fatalf("installed entry %+v", got)
	}
	if !got.Matches("/x", makeELF(elfSpec{arch: arch})) || got.Matches("/x", makeELF(elfSpec{arch: HostArch()})) {
		t.Errorf("installed entry matches the wrong files")
	}
	found := false
	for _, p := range Supported() {
		if p.Arch == arch {
			found = p.Route == HostHandler
		}
	}
	if !found {
		t.Errorf("Supported() does not list %s via the host handler", arch.Name)
	}
	if err := Uninstall([]string{arch.Name}); err != nil {
		t.Fatal(err)
	}
	reg, _ = ReadRegistry(DefaultBinfmtMisc)
	if reg.Lookup(arch.QEMUName()) != nil {
		t.Errorf("%s still registered after Uninstall", arch.QEMUName())
	}
	if err := Install([]string{HostArch().GOARCH}); err == nil || !strings.Contains(err.Error(), "runs natively") {
		t.Errorf("Install(host arch) = %v", err)
	}
}
