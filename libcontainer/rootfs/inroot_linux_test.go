package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/internal/inroot"
)

// newTestRoot makes a rootfs with hostile symlinks next to a host
// directory that must stay out of reach, and returns a handle on the root.
func newTestRoot(t *testing.T) (root *os.File, rootPath, outside string) {
	t.Helper()
	base := t.TempDir()
	rootPath = filepath.Join(base, "rootfs")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{rootPath + "/etc", rootPath + "/dev", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"abs":      outside,            // absolute: must mean <root>/<outside>
		"dotdot":   "../../../outside", // climbs: must stop at the root
		"etclink":  "/etc",             // inside, by absolute path
		"dangling": "/nowhere/at/all",  // target missing
		"file":     "",                 // replaced by a regular file below
	}
	for name, target := range links {
		if name == "file" {
			if err := os.WriteFile(filepath.Join(rootPath, name), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.Symlink(target, filepath.Join(rootPath, name)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(rootPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, rootPath, outside
}

// realPath is where a handle lies on the host.
func realPath(t *testing.T, f *os.File) string {
	t.Helper()
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenInRootStaysInside(t *testing.T) {
	checkOpenInRootStaysInside(t)
}

// TestOpenInRootWithoutOpenat2 runs the same checks as on a kernel without
// openat2 (before 5.6), where openInRoot falls back to pathrs-lite's walk.
func TestOpenInRootWithoutOpenat2(t *testing.T) {
	calls := 0
	openat2InRoot = func(int, string, uint64) (int, error) {
		calls++
		return -1, unix.ENOSYS
	}
	t.Cleanup(func() { openat2InRoot = inroot.Open })
	checkOpenInRootStaysInside(t)
	if calls == 0 {
		t.Fatal("openInRoot never tried openat2")
	}
}

func checkOpenInRootStaysInside(t *testing.T) {
	t.Helper()
	root, rootPath, outside := newTestRoot(t)
	for _, p := range []string{"/etclink", "etclink", "/../../etc", "/etc/../../../etc", "/etclink/../../etc"} {
		f, err := openInRoot(root, p)
		if err != nil {
			t.Fatalf("openInRoot(%q): %v", p, err)
		}
		if got := realPath(t, f); got != rootPath+"/etc" {
			t.Errorf("openInRoot(%q) opened %s, want %s/etc", p, got, rootPath)
		}
		f.Close()
	}
	// Symlinks that point out of the rootfs resolve inside it, where
	// nothing of that name exists.
	for _, p := range []string{"/abs", "/dotdot", "/abs/x", "/dangling"} {
		f, err := openInRoot(root, p)
		if err == nil {
			got := realPath(t, f)
			f.Close()
			t.Fatalf("openInRoot(%q) opened %s (outside is %s); want ENOENT", p, got, outside)
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("openInRoot(%q): %v, want ENOENT", p, err)
		}
	}
}

func TestOpenInRootRefusesMagicLinks(t *testing.T) {
	// A root whose /proc is the host's procfs: /proc/self/fd/N are magic
	// links and must not be followed.
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var st unix.Statfs_t
	if unix.Statfs("/proc", &st) != nil || st.Type != unix.PROC_SUPER_MAGIC {
		t.Skip("needs procfs on /proc")
	}
	f, err := openInRoot(root, "/proc/self/fd/"+strconv.Itoa(int(root.Fd())))
	if err == nil {
		f.Close()
		t.Fatal("openInRoot followed a /proc/self/fd magic link")
	}
	if !errors.Is(err, unix.ELOOP) {
		t.Errorf("magic link: %v, want ELOOP", err)
	}
}

func TestMkdirAllInRoot(t *testing.T) {
	root, rootPath, outside := newTestRoot(t)
	f, err := mkdirAllInRoot(root, "/dev/pts/deep/er", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if got := realPath(t, f); got != rootPath+"/dev/pts/deep/er" {
		t.Errorf("made %s", got)
	}
	f.Close()
	// Existing directory: a handle on it, nothing made.
	f, err = mkdirAllInRoot(root, "/etclink/", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if got := realPath(t, f); got != rootPath+"/etc" {
		t.Errorf("existing: opened %s", got)
	}
	f.Close()
	// Through a symlink that leaves the rootfs, to a directory that exists
	// only inside it: made there.
	if err := os.MkdirAll(filepath.Join(rootPath, outside), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err = mkdirAllInRoot(root, "/abs/made", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if got := realPath(t, f); got != rootPath+outside+"/made" {
		t.Errorf("through a symlink to %s: made %s, want it under %s", outside, got, rootPath)
	}
	f.Close()
	// A regular file, or a dangling symlink, in the way: an error, and
	// nothing followed.
	for _, p := range []string{"/file/sub", "/file", "/dangling/sub", "/dotdot/made"} {
		f, err := mkdirAllInRoot(root, p, 0o755)
		if err == nil {
			got := realPath(t, f)
			f.Close()
			t.Errorf("mkdirAllInRoot(%q) gave %s, want an error", p, got)
		}
	}
	if _, err := os.Stat("/nowhere"); err == nil {
		t.Fatal("the dangling symlink's target was made on the host")
	}
}
