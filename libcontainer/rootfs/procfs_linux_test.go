package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// coverProc hides the real /proc behind a tmpfs holding look-alike files,
// as a hostile container could.
func coverProc(t *testing.T) {
	t.Helper()
	if err := unix.Mount("tmpfs", "/proc", "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	writeFile(t, "/proc/sys/kernel/domainname", "fake")
	writeFile(t, "/proc/self/oom_score_adj", "fake")
}

func TestWriteSysctl(t *testing.T) {
	inChild(t, unix.CLONE_NEWUTS|unix.CLONE_NEWIPC|unix.CLONE_NEWNET, nil, func(t *testing.T, dir string) {
		coverProc(t)
		if err := WriteSysctl("kernel.domainname", "crossrun.test"); err != nil {
			t.Fatalf("WriteSysctl: %v", err)
		}
		var uts unix.Utsname
		if err := unix.Uname(&uts); err != nil {
			t.Fatal(err)
		}
		if got := unix.ByteSliceToString(uts.Domainname[:]); got != "crossrun.test" {
			t.Errorf("domainname = %q", got)
		}
		if b, _ := os.ReadFile("/proc/sys/kernel/domainname"); string(b) != "fake" {
			t.Errorf("the look-alike file was written: %q", b)
		}
		if err := WriteSysctl("net/ipv4/ip_forward", "1"); err != nil {
			t.Fatalf("WriteSysctl net: %v", err)
		}
		if err := WriteSysctl("kernel.no_such_sysctl", "1"); err == nil || !strings.Contains(err.Error(), `linux.sysctl "kernel.no_such_sysctl"`) {
			t.Errorf("missing sysctl: err = %v", err)
		}

		// Read back through a procfs of our own.
		check := filepath.Join(dir, "proc")
		if err := os.Mkdir(check, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("proc", check, "proc", 0, ""); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(check + "/sys/net/ipv4/ip_forward"); err != nil || strings.TrimSpace(string(b)) != "1" {
			t.Errorf("ip_forward = %q, %v", b, err)
		}

		// The plain /proc fallback refuses what is not procfs.
		fd, err := plainProc()
		if err != nil {
			t.Fatal(err)
		}
		err = checkProcRoot(fd)
		unix.Close(fd)
		if err == nil || !strings.Contains(err.Error(), "not on procfs") {
			t.Errorf("tmpfs on /proc accepted: %v", err)
		}
		// A procfs subdirectory bind-mounted on /proc is not a procfs root.
		if err := unix.Mount(check+"/sys", "/proc", "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		fd, err = plainProc()
		if err != nil {
			t.Fatal(err)
		}
		err = checkProcRoot(fd)
		unix.Close(fd)
		if err == nil || !strings.Contains(err.Error(), "not the root of a procfs") {
			t.Errorf("procfs subdirectory accepted as root: %v", err)
		}
	})
}

func TestWriteProcSelf(t *testing.T) {
	inChild(t, 0, nil, func(t *testing.T, dir string) {
		coverProc(t)
		if err := WriteProcSelf("oom_score_adj", []byte("321")); err != nil {
			t.Fatalf("WriteProcSelf: %v", err)
		}
		check := filepath.Join(dir, "proc")
		if err := os.Mkdir(check, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("proc", check, "proc", 0, ""); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(check + "/self/oom_score_adj"); err != nil || strings.TrimSpace(string(b)) != "321" {
			t.Errorf("oom_score_adj = %q, %v", b, err)
		}
		if err := WriteProcSelf("no_such_file", []byte("1")); err == nil {
			t.Error("write to a missing proc file succeeded")
		}
	})
}
