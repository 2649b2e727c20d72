package rootfs

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Pivot is phase 2: it makes the rootfs the process's root (pivot_root, or
// MS_MOVE + chroot with NoPivot), changes directory to it, then applies
// linux.rootfsPropagation, linux.readonlyPaths, linux.maskedPaths and
// root.readonly. Mount must have run first in the same mount namespace.
func Pivot(s *specs.Spec, opts Options) error {
	rootfs, err := validate(s, opts)
	if err != nil {
		return err
	}
	if opts.NoPivot {
		err = moveRoot(rootfs)
	} else {
		err = pivotRoot(rootfs)
	}
	if err != nil {
		return err
	}
	if s.Linux != nil && s.Linux.RootfsPropagation != "" {
		prop, _ := parsePropagation("linux.rootfsPropagation", s.Linux.RootfsPropagation)
		if err := unix.Mount("", "/", "", prop, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation: set propagation of / to %s: %w", s.Linux.RootfsPropagation, err)
		}
	}
	if s.Linux != nil {
		if err := readonlyPaths(s.Linux.ReadonlyPaths); err != nil {
			return err
		}
		if err := maskPaths(s.Linux.MaskedPaths); err != nil {
			return err
		}
	}
	if s.Root != nil && s.Root.Readonly {
		if err := readonlyRoot(); err != nil {
			return fmt.Errorf("root.readonly: %w", err)
		}
	}
	return nil
}

// pivotRoot uses pivot_root(".", "."): the old root ends up stacked on top
// of the new one, is made a slave so nothing propagates back to the host,
// and is lazily detached.
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("chdir to rootfs %s: %w", rootfs, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir to old root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// moveRoot is the --no-pivot path. The host's procfs and sysfs mounts stay
// reachable in the mount namespace with chroot, so they are detached (or
// covered when that is not allowed) before the rootfs is moved onto /.
func moveRoot(rootfs string) error {
	infos, err := readMountInfo("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, mi := range infos {
		if mi.Root != "/" || (mi.FSType != "proc" && mi.FSType != "sysfs") ||
			mi.Mountpoint == rootfs || strings.HasPrefix(mi.Mountpoint, rootfs+"/") {
			continue
		}
		p := mi.Mountpoint
		if err := unix.Mount("", p, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
				continue // already gone with a detached parent
			}
			return fmt.Errorf("make host %s %s rslave: %w", mi.FSType, p, err)
		}
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
				return fmt.Errorf("detach host %s %s: %w", mi.FSType, p, err)
			}
			if err := unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				return fmt.Errorf("cover host %s %s: %w", mi.FSType, p, err)
			}
		}
	}
	fd, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Fchdir(fd); err != nil {
		return fmt.Errorf("chdir to rootfs %s: %w", rootfs, err)
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", rootfs, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", rootfs, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

func openatNoSymlinks(path string, resolve uint64) (*os.File, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: resolve,
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// attachClone clones the mount at (or the file of) src and attaches the
// clone on dst.
func attachClone(src, dst *os.File, recursive bool, set uint64) error {
	flags := uint(unix.OPEN_TREE_CLONE | openTreeCloexec | unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	tfd, err := unix.OpenTree(int(src.Fd()), "", flags)
	if err != nil {
		return fmt.Errorf("open_tree: %w", err)
	}
	tree := os.NewFile(uintptr(tfd), src.Name())
	defer tree.Close()
	if set != 0 {
		if err := setMountAttrs(tree, recursive, set, 0); err != nil {
			return fmt.Errorf("set mount flags: %w", err)
		}
	}
	if err := unix.MoveMount(tfd, "", int(dst.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

func isMissing(err error) bool { return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) }

// readonlyPaths binds each path onto itself and makes the bind (and every
// mount below it) read-only, nosuid, nodev and noexec. Flags locked on the
// original mounts stay set: they are only ever added, never cleared.
func readonlyPaths(paths []string) error {
	for _, p := range paths {
		f, err := openatFollow(p)
		if isMissing(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("linux.readonlyPaths: %s: %w", p, err)
		}
		err = attachClone(f, f, true, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
		f.Close()
		if err != nil {
			return fmt.Errorf("linux.readonlyPaths: mount %s on %s: %w", p, p, err)
		}
	}
	return nil
}

func openatFollow(path string) (*os.File, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_IN_ROOT,
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// maskPaths hides files behind the container's /dev/null, after checking it
// is the real null device, and directories behind an empty read-only tmpfs.
// Paths that are, or go through, a symlink are refused rather than followed.
func maskPaths(paths []string) error {
	var null *os.File
	defer func() {
		if null != nil {
			null.Close()
		}
	}()
	for _, p := range paths {
		f, err := openatNoSymlinks(p, unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
		if isMissing(err) {
			continue
		}
		if errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("linux.maskedPaths: %s: refusing to mask a path that is or goes through a symlink", p)
		}
		if err != nil {
			return fmt.Errorf("linux.maskedPaths: %s: %w", p, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			f.Close()
			return fmt.Errorf("linux.maskedPaths: %s: %w", p, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			f.Close()
			return fmt.Errorf("linux.maskedPaths: %s: refusing to mask a path that is or goes through a symlink", p)
		case unix.S_IFDIR:
			err = maskDir(f)
		default:
			if null == nil {
				if null, err = openDevNull(); err != nil {
					f.Close()
					return fmt.Errorf("linux.maskedPaths: %w", err)
				}
			}
			err = attachClone(null, f, false, 0)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("linux.maskedPaths: mask %s: %w", p, err)
		}
	}
	return nil
}

// openDevNull opens the container's /dev/null and verifies it is the
// character device 1:3.
func openDevNull() (*os.File, error) {
	f, err := openatNoSymlinks("/dev/null", unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
	if err != nil {
		return nil, fmt.Errorf("open /dev/null: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat /dev/null: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(uint64(st.Rdev)) != 1 || unix.Minor(uint64(st.Rdev)) != 3 {
		f.Close()
		return nil, fmt.Errorf("/dev/null is not the null device (mode %#o, device %d:%d)", st.Mode, unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	}
	return f, nil
}

func maskDir(dst *os.File) error {
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "source", "tmpfs"); err != nil {
		return fmt.Errorf("fsconfig: %w", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", int(dst.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// readonlyRoot makes the root mount read-only; the other flags it has,
// including ones locked by a user namespace, are left as they are.
func readonlyRoot() error {
	f, err := openatNoSymlinks("/", unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return err
	}
	defer f.Close()
	return setMountAttrs(f, false, unix.MOUNT_ATTR_RDONLY, 0)
}
