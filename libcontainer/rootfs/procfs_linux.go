package rootfs

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const procRootIno = 1 // PROC_ROOT_INO

// WriteSysctl writes value to the sysctl key ("net.ipv4.ip_forward" or
// "net/ipv4/ip_forward") through a verified procfs. Sysctls act on the
// calling task's namespaces, so call it from the container's init.
func WriteSysctl(key, value string) error {
	rel, err := sysctlPath(key)
	if err != nil {
		return err
	}
	if err := writeProc("sys/"+rel, []byte(value)); err != nil {
		return fmt.Errorf("linux.sysctl %q: %w", key, err)
	}
	return nil
}

// WriteProcSelf writes data to /proc/thread-self/<name> (e.g. "oom_score_adj",
// "attr/exec", "setgroups") through a verified procfs. Per-thread files are
// written for the calling OS thread.
func WriteProcSelf(name string, data []byte) error {
	if err := checkRelative(name); err != nil {
		return fmt.Errorf("proc file %q: %w", name, err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	path := fmt.Sprintf("%d/task/%d/%s", unix.Getpid(), unix.Gettid(), name)
	if err := writeProc(path, data); err != nil {
		return fmt.Errorf("write /proc/self/%s: %w", name, err)
	}
	return nil
}

func sysctlPath(key string) (string, error) {
	rel := key
	if !strings.Contains(key, "/") {
		rel = strings.ReplaceAll(key, ".", "/")
	}
	if err := checkRelative(rel); err != nil {
		return "", fmt.Errorf("linux.sysctl %q: invalid key: %w", key, err)
	}
	return rel, nil
}

func checkRelative(p string) error {
	if p == "" {
		return errors.New("empty")
	}
	if strings.HasPrefix(p, "/") {
		return errors.New("must be relative")
	}
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "":
			return errors.New("empty path component")
		case ".", "..":
			return fmt.Errorf("path component %q not allowed", c)
		}
	}
	if strings.ContainsRune(p, 0) {
		return errors.New("contains NUL")
	}
	return nil
}

// writeProc opens rel below a verified procfs root without following any
// symlink or crossing any mount, checks the file is on procfs, and writes.
func writeProc(rel string, data []byte) error {
	proc, err := openProcRoot()
	if err != nil {
		return err
	}
	defer proc.Close()
	if pid := strings.SplitN(rel, "/", 2)[0]; pid != "sys" {
		// A procfs of another pid namespace would name another process.
		self, err := readlinkat(proc, "self")
		if err != nil {
			return fmt.Errorf("readlink /proc/self: %w", err)
		}
		if self != strconv.Itoa(unix.Getpid()) {
			return fmt.Errorf("procfs belongs to another pid namespace (self is %s, pid is %d)", self, unix.Getpid())
		}
	}
	fd, err := unix.Openat2(int(proc.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_WRONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return fmt.Errorf("open %s in procfs: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), "/proc/"+rel)
	defer f.Close()
	if err := checkProcfs(fd); err != nil {
		return err
	}
	n, err := f.Write(data)
	if err != nil {
		return err
	}
	if n != len(data) {
		return fmt.Errorf("short write to /proc/%s: %d of %d bytes", rel, n, len(data))
	}
	return nil
}

func readlinkat(dir *os.File, name string) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Readlinkat(int(dir.Fd()), name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// openProcRoot returns the root of a procfs that nothing in the container
// can have mounted over: a fresh private instance when the kernel allows it,
// else a detached clone of /proc (only its top mount, none of the mounts
// on top of its entries), else /proc itself. Each is verified to be the
// root of a real procfs.
func openProcRoot() (*os.File, error) {
	var errs []error
	for _, open := range []func() (int, error){freshProc, clonedProc, plainProc} {
		fd, err := open()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := checkProcRoot(fd); err != nil {
			unix.Close(fd)
			errs = append(errs, err)
			continue
		}
		return os.NewFile(uintptr(fd), "/proc"), nil
	}
	return nil, fmt.Errorf("no usable procfs: %w", errors.Join(errs...))
}

func freshProc() (int, error) {
	fsfd, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen proc: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("create procfs instance: %w", err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsmount proc: %w", err)
	}
	return fd, nil
}

func clonedProc() (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc", unix.OPEN_TREE_CLONE|openTreeCloexec|unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return -1, fmt.Errorf("clone /proc: %w", err)
	}
	return fd, nil
}

func plainProc() (int, error) {
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /proc: %w", err)
	}
	return fd, nil
}

func checkProcfs(fd int) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return err
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("not on procfs (filesystem magic %#x)", st.Type)
	}
	return nil
}

func checkProcRoot(fd int) error {
	if err := checkProcfs(fd); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Ino != procRootIno {
		return fmt.Errorf("not the root of a procfs (inode %d)", st.Ino)
	}
	return nil
}
