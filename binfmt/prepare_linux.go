package binfmt

import (
	"errors"
	"fmt"
	"os"
	"path"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Prepare performs the side effects of the decision inside rootfs (the same
// rootfs given to Route, before pivot_root). Native and HostHandler need
// nothing. HostHandlerBind creates BindTarget inside rootfs if needed and
// binds BindSource onto it read-only. PrivateBinfmt mounts a new
// binfmt_misc instance on <rootfs>/proc/sys/fs/binfmt_misc (the caller must
// be in the container's user and mount namespaces, with /proc mounted in
// rootfs) and registers Register in it. The host's binfmt_misc is not
// touched.
func (d *Decision) Prepare(rootfs string) error {
	switch d.Kind {
	case Native, HostHandler:
		return nil
	case HostHandlerBind:
		return bindInterpreter(rootfs, d.BindSource, d.BindTarget)
	case PrivateBinfmt:
		return mountPrivate(rootfs, d.Register)
	}
	return fmt.Errorf("binfmt: unknown decision kind %d", d.Kind)
}

// bindInterpreter binds the host file src read-only onto target (a path
// inside rootfs), creating an empty regular file there first if needed.
// The mount goes onto an fd opened inside the rootfs, never a re-resolved
// path.
func bindInterpreter(rootfs, src, target string) error {
	rootFile, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer rootFile.Close()
	dir, err := pathrs.MkdirAllHandle(rootFile, path.Dir(target), 0o755)
	if err != nil {
		return fmt.Errorf("create %s in rootfs for the binfmt interpreter: %w", path.Dir(target), err)
	}
	defer dir.Close()
	base := path.Base(target)
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o755)
	if err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create %s in rootfs as a mount point for %s: %w", target, src, err)
	}
	dst, err := unix.Openat(int(dir.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s in rootfs: %w", target, err)
	}
	defer unix.Close(dst)
	var st unix.Stat_t
	if err := unix.Fstat(dst, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("bind %s onto %s in rootfs: the target is not a regular file (mode %#o)", src, target, st.Mode)
	}
	tree, err := cloneReadOnly(src)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	if err := unix.MoveMount(tree, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind %s onto %s in rootfs: %w", src, target, err)
	}
	return nil
}

// cloneReadOnly returns a detached, read-only bind mount of the host file p.
func cloneReadOnly(p string) (int, error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, p, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("clone mount of %s: %w", p, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(tree)
		return -1, fmt.Errorf("make the clone of %s read-only: %w", p, err)
	}
	return tree, nil
}

// mountPrivate creates the container user namespace's binfmt_misc
// instance, registers entries, and attaches it at /proc/sys/fs/binfmt_misc
// inside rootfs. The instance lives as long as that mount: unmounting it
// drops the registrations (and leaves the user namespace with an empty
// instance that hides the host's entries).
func mountPrivate(rootfs string, entries []*Entry) error {
	r, err := openRoot(rootfs)
	if err != nil {
		return err
	}
	defer r.close()
	dst, err := r.openat2("/proc/sys/fs/binfmt_misc", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open /proc/sys/fs/binfmt_misc in rootfs: %w", err)
	}
	defer unix.Close(dst)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(dst, &sfs); err != nil {
		return err
	}
	if uint32(sfs.Type) != procSuperMagic {
		return fmt.Errorf("/proc/sys/fs/binfmt_misc in rootfs is not on procfs (fs type %#x)", sfs.Type)
	}

	fsfd, err := unix.Fsopen("binfmt_misc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen binfmt_misc: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("create binfmt_misc instance in the container's user namespace: %w", err)
	}
	mnt, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("fsmount binfmt_misc: %w", err)
	}
	defer unix.Close(mnt)
	reg, err := unix.Openat(mnt, "register", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open register of the private binfmt_misc: %w", err)
	}
	defer unix.Close(reg)
	for _, e := range entries {
		if err := registerPrivate(reg, e); err != nil {
			return err
		}
	}
	if err := unix.MoveMount(mnt, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount the private binfmt_misc on /proc/sys/fs/binfmt_misc in rootfs: %w", err)
	}
	return nil
}

// registerPrivate writes one entry. With flag F the kernel opens the
// interpreter now; it is opened through a read-only clone of its mount so
// that nothing in the container can write the host's file through
// /proc/PID/exe.
func registerPrivate(reg int, e *Entry) error {
	line := e.RegisterString()
	if e.HasFlag('F') {
		if tree, err := cloneReadOnly(e.Interpreter); err == nil {
			ro := *e
			ro.Interpreter = fmt.Sprintf("/proc/self/fd/%d", tree)
			line = ro.RegisterString()
			_, err = unix.Write(reg, []byte(line))
			unix.Close(tree)
			if err == nil || errors.Is(err, unix.EEXIST) {
				return nil
			}
			line = e.RegisterString()
		}
	}
	if _, err := unix.Write(reg, []byte(line)); err != nil {
		if errors.Is(err, unix.EEXIST) {
			// The user namespace already has an instance (shared with
			// another container) holding an entry of that name.
			return nil
		}
		return fmt.Errorf("register %s (%s) in the private binfmt_misc: %w", e.Name, e.Interpreter, err)
	}
	return nil
}
