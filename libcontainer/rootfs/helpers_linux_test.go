package rootfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	childEnv = "CROSSRUN_ROOTFS_TEST_CHILD"
	dirEnv   = "CROSSRUN_ROOTFS_TEST_DIR"
)

// inChild runs body in a re-executed copy of the test binary that lives in
// new namespaces (always a new mount namespace, with / made rprivate first),
// so nothing it mounts outlives it. setup runs in the parent and prepares dir.
func inChild(t *testing.T, cloneflags uintptr, setup func(t *testing.T, dir string), body func(t *testing.T, dir string)) {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			t.Fatalf("make / rprivate: %v", err)
		}
		body(t, os.Getenv(dirEnv))
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("test needs root: it mounts inside a private mount namespace (CI runs as root)")
	}
	dir := t.TempDir()
	if setup != nil {
		setup(t, dir)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name(), dirEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cloneflags | unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child test failed: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("child did not run %s:\n%s", t.Name(), out)
	}
}

func mkdirs(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// defaultSpec mirrors the mounts, masked and read-only paths of the spec
// that "runc spec" writes.
func defaultSpec() *specs.Spec {
	return &specs.Spec{
		Root: &specs.Root{Path: "rootfs"},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
				"/proc/scsi", "/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// mountsByPoint indexes this process's mountinfo by mount point; for
// stacked mounts the topmost wins.
func mountsByPoint(t *testing.T) map[string]mountInfo {
	t.Helper()
	infos, err := readMountInfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]mountInfo{}
	for _, mi := range infos {
		m[mi.Mountpoint] = mi
	}
	return m
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

func expectMount(t *testing.T, mounts map[string]mountInfo, point, fstype string, opts ...string) mountInfo {
	t.Helper()
	mi, ok := mounts[point]
	if !ok {
		t.Errorf("no mount on %s", point)
		return mi
	}
	if fstype != "" && mi.FSType != fstype {
		t.Errorf("%s: type %s, want %s", point, mi.FSType, fstype)
	}
	for _, o := range opts {
		if !hasOpt(mi.Options, o) && !hasOpt(mi.SuperOpts, o) {
			t.Errorf("%s: option %s missing (mount %q, super %q)", point, o, mi.Options, mi.SuperOpts)
		}
	}
	return mi
}
