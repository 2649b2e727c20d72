package rootfs

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyTree copies the contents of directory src into directory dst (both
// may be O_PATH handles), keeping modes and ownership. Used by tmpcopyup,
// where src is the directory now hidden under the new tmpfs. Nothing is
// followed: symlinks are copied as symlinks.
func copyTree(src, dst *os.File) error {
	dfd, err := unix.Openat(int(src.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(dfd), src.Name())
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return err
	}
	sfd, tfd := int(src.Fd()), int(dst.Fd())
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		perm := st.Mode &^ unix.S_IFMT
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := unix.Mkdirat(tfd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("mkdir %s: %w", name, err)
			}
			if err := copySubdir(src, dst, name); err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := copyFile(sfd, tfd, name); err != nil {
				return fmt.Errorf("copy %s: %w", name, err)
			}
		case unix.S_IFLNK:
			buf := make([]byte, unix.PathMax)
			n, err := unix.Readlinkat(sfd, name, buf)
			if err != nil {
				return err
			}
			if err := unix.Symlinkat(string(buf[:n]), tfd, name); err != nil {
				return fmt.Errorf("symlink %s: %w", name, err)
			}
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
			if err := unix.Mknodat(tfd, name, st.Mode, int(st.Rdev)); err != nil {
				return fmt.Errorf("mknod %s: %w", name, err)
			}
		default:
			continue // sockets are not copied
		}
		if err := unix.Fchownat(tfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", name, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err := unix.Fchmodat(tfd, name, perm, 0); err != nil {
				return fmt.Errorf("chmod %s: %w", name, err)
			}
		}
	}
	return nil
}

func copySubdir(src, dst *os.File, name string) error {
	open := func(parent *os.File) (*os.File, error) {
		fd, err := unix.Openat(int(parent.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		return os.NewFile(uintptr(fd), parent.Name()+"/"+name), nil
	}
	s, err := open(src)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := open(dst)
	if err != nil {
		return err
	}
	defer d.Close()
	return copyTree(s, d)
}

func copyFile(sfd, tfd int, name string) error {
	in, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	inf := os.NewFile(uintptr(in), name)
	defer inf.Close()
	out, err := unix.Openat(tfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	outf := os.NewFile(uintptr(out), name)
	if _, err := io.Copy(outf, inf); err != nil {
		outf.Close()
		return err
	}
	return outf.Close()
}
