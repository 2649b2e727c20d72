package libcontainer

import (
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/internal/timerslack"
)

// The init process is this binary re-executed. A process inside the
// container can reach the executable of a process that entered its
// namespaces through /proc/PID/exe and, if that were the host binary, open
// it for writing and replace it (CVE-2019-5736). crossrun therefore never
// re-executes the host file through a writable path. It executes it
// through a read-only, detached clone of the mount that holds it
// (open_tree + mount_setattr): opening that for writing fails with EROFS,
// nothing can make it writable without privileges over the host's mounts,
// and no mount table sees it. That costs two syscalls; where it is not
// allowed (no CAP_SYS_ADMIN, old kernel) crossrun falls back to a sealed
// memfd copy of the binary, which costs a copy of it on every start.

const sealSet = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

var (
	sealedOnce sync.Once
	sealedFile *os.File
	sealedErr  error
)

// sealedSelf returns a protected view of the running binary: a read-only
// clone of its mount, or a sealed memfd copy. It is made once per crossrun
// process; a crossrun that RunFromProtectedView re-executed already runs
// from one and uses its own executable.
func sealedSelf() (*os.File, error) {
	sealedOnce.Do(func() {
		if runningProtected {
			fd, err := unix.Open("/proc/self/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
			if err == nil {
				sealedFile = os.NewFile(uintptr(fd), "crossrun-protected")
				return
			}
		}
		sealedFile, sealedErr = readOnlyExecutable("/proc/self/exe")
		if sealedErr != nil {
			sealedFile, sealedErr = sealExecutable("/proc/self/exe")
		}
	})
	return sealedFile, sealedErr
}

// readOnlyExecutable returns an O_PATH descriptor of path on a detached,
// read-only clone of its mount.
func readOnlyExecutable(path string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("clone the mount of own executable: %w", err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("make the executable's mount read-only: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil || st.Flags&unix.ST_RDONLY == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("the executable's cloned mount is not read-only")
	}
	return os.NewFile(uintptr(fd), "crossrun-ro"), nil
}

// sealExecutable returns a sealed memfd copy of path.
func sealExecutable(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open own executable: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat own executable: %w", err)
	}
	fd, err := unix.MemfdCreate("crossrun", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL {
		// Kernels before 6.3 do not know MFD_EXEC.
		fd, err = unix.MemfdCreate("crossrun", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "crossrun-sealed")
	if err := unix.Ftruncate(fd, st.Size()); err != nil {
		mem.Close()
		return nil, fmt.Errorf("size sealed copy: %w", err)
	}
	var off int64
	for off < st.Size() {
		n, err := unix.Sendfile(fd, int(src.Fd()), &off, int(st.Size()-off))
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			mem.Close()
			return nil, fmt.Errorf("copy own executable: %w", err)
		}
		if n == 0 {
			break
		}
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, sealSet); err != nil {
		mem.Close()
		return nil, fmt.Errorf("seal executable copy: %w", err)
	}
	return mem, nil
}

// envReexec marks a crossrun that RunFromProtectedView has re-executed.
const envReexec = "_CROSSRUN_REEXEC"

// runningProtected is set when this process was re-executed through the
// protected view of its executable.
var runningProtected bool

// RunFromProtectedView re-executes the running crossrun, with the same
// arguments and descriptors, through the protected view of its executable
// (sealedSelf), unless it already runs from it. create calls it first when
// it forks init into an existing pid namespace (a container's, given by
// path): between fork and execve that child is visible to the processes of
// that namespace and its /proc/PID/exe is the parent's executable. One
// allowed to ptrace (CAP_SYS_PTRACE) could open it there and, once the
// runtime has exited, reopen it for writing: CVE-2019-5736 again. After
// this re-execution that executable is the read-only view. (exec does not
// need it: its process enters the pid namespace by a fork in the nsenter
// constructor, after its execve.)
func RunFromProtectedView() error {
	if os.Getenv(envReexec) != "" {
		os.Unsetenv(envReexec)
		runningProtected = true
		return nil
	}
	exe, err := sealedSelf()
	if err != nil {
		return err
	}
	env := append(os.Environ(), envReexec+"=1")
	path := "/proc/self/fd/" + strconv.Itoa(int(exe.Fd()))
	if err := timerslack.Exec(path, os.Args, env); err != nil {
		return fmt.Errorf("re-execute crossrun through its read-only view: %w", err)
	}
	return nil
}
