// Package inroot opens paths inside a container's root filesystem with a
// single openat2 call that the kernel keeps inside that root.
package inroot

import "golang.org/x/sys/unix"

// maxRetries bounds the retries of an openat2 the kernel asked to repeat
// (EAGAIN: a rename or mount raced with the walk).
const maxRetries = 64

// Open opens path under the directory dirfd as if dirfd were "/": every
// component, symlinks and ".." included, is resolved inside it
// (RESOLVE_IN_ROOT), and magic links such as /proc/self/fd/N are refused
// (RESOLVE_NO_MAGICLINKS). The descriptor is always close-on-exec. On a
// kernel without openat2 (before 5.6) the error is unix.ENOSYS, for the
// caller to fall back to a userspace walk.
func Open(dirfd int, path string, flags uint64) (int, error) {
	how := unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(dirfd, path, &how)
		if err == unix.EINTR || err == unix.EAGAIN && tries < maxRetries {
			continue
		}
		return fd, err
	}
}
