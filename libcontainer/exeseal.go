package libcontainer

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// The init process is this binary re-executed. A process inside the
// container can reach the executable of a process that entered its
// namespaces through /proc/PID/exe and, if that were the host binary, open
// it for writing and replace it (CVE-2019-5736). crossrun therefore never
// re-executes the host file itself: it executes a sealed memfd copy, which
// nobody can write to and which vanishes with the last process using it.

const sealSet = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

var (
	sealedOnce sync.Once
	sealedFile *os.File
	sealedErr  error
)

// sealedSelf returns a sealed, read-only memfd copy of the running binary.
// It is made once per crossrun process.
func sealedSelf() (*os.File, error) {
	sealedOnce.Do(func() {
		sealedFile, sealedErr = sealExecutable("/proc/self/exe")
	})
	return sealedFile, sealedErr
}

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
