package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/internal/inroot"
)

// openInRoot opens path inside the rootfs, whose handle is root, as an
// O_PATH handle. Every component, symlinks and ".." included, is resolved
// as if root were "/" (openat2 RESOLVE_IN_ROOT: the kernel keeps the walk
// inside root even while a rename or a mount races with it, and asks for a
// retry when one did), and magic links such as /proc/self/fd/N are refused.
//
// This is one system call. pathrs.OpenatInRoot makes the same openat2 call
// and then reads the result's path back through a verified procfs, only
// to name the *os.File; a container start makes a few dozen of these
// lookups, and that naming was most of the system calls of the mount
// phase. Here the handle is named after the path asked for.
func openInRoot(root *os.File, path string) (*os.File, error) {
	fd, err := openat2InRoot(int(root.Fd()), path, unix.O_PATH)
	switch {
	case err == nil:
		return os.NewFile(uintptr(fd), path), nil
	case err == unix.ENOSYS:
		// No openat2 (before Linux 5.6): the library's userspace walk.
		return pathrs.OpenatInRoot(root, path)
	}
	return nil, &os.PathError{Op: "openat2 in rootfs", Path: path, Err: err}
}

// openat2InRoot is inroot.Open; tests replace it to take the path of a
// kernel without openat2.
var openat2InRoot = inroot.Open

// mkdirAllInRoot makes directory path inside the rootfs, with any missing
// parents (mode before umask), and returns an O_PATH handle on it. The
// longest part of path that exists is found with openInRoot; each missing
// component is then made with mkdirat in the handle of its parent and
// opened again by name with O_NOFOLLOW, so a component that is, or is
// swapped for, a symlink or a file is an error and is never followed.
func mkdirAllInRoot(root *os.File, path string, mode uint32) (*os.File, error) {
	clean := filepath.Clean("/" + path)
	existing := clean
	var dir *os.File
	for {
		f, err := openInRoot(root, existing)
		if err == nil {
			dir = f
			break
		}
		if !errors.Is(err, unix.ENOENT) || existing == "/" {
			return nil, err
		}
		existing = filepath.Dir(existing)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(dir.Fd()), &st); err != nil {
		dir.Close()
		return nil, &os.PathError{Op: "stat in rootfs", Path: existing, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		dir.Close()
		return nil, &os.PathError{Op: "mkdir in rootfs", Path: existing, Err: unix.ENOTDIR}
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(clean, existing), "/")
	if rest == "" {
		return dir, nil
	}
	at := existing
	for _, name := range strings.Split(rest, "/") {
		at = filepath.Join(at, name)
		if err := unix.Mkdirat(int(dir.Fd()), name, mode); err != nil && !errors.Is(err, unix.EEXIST) {
			dir.Close()
			return nil, &os.PathError{Op: "mkdir in rootfs", Path: at, Err: err}
		}
		fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		dir.Close()
		if err != nil {
			return nil, &os.PathError{Op: "open in rootfs", Path: at, Err: err}
		}
		dir = os.NewFile(uintptr(fd), at)
	}
	return dir, nil
}
