package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Options describes how the caller set up the container around the rootfs.
type Options struct {
	Rootfs      string // absolute host path of the rootfs
	Bundle      string // bundle directory, base of relative bind sources
	NoPivot     bool   // use MS_MOVE + chroot instead of pivot_root
	ConsolePath string // host path of the pty slave to bind onto /dev/console
	UserNS      bool   // the container has its own user namespace
	CgroupNS    bool   // the container has its own cgroup namespace
}

const (
	openTreeCloexec = unix.O_CLOEXEC // OPEN_TREE_CLOEXEC
	stNoSymFollow   = 0x2000         // ST_NOSYMFOLLOW
)

// Mount is phase 1: it makes the rootfs a mount point and performs every
// spec mount and the /dev setup under it, with the host filesystem still
// visible. The caller must be in the container's mount namespace.
func Mount(s *specs.Spec, opts Options) error {
	rootfs, err := validate(s, opts)
	if err != nil {
		return err
	}
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if s.Linux != nil && s.Linux.RootfsPropagation != "" {
		prop, _ = parsePropagation("linux.rootfsPropagation", s.Linux.RootfsPropagation)
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set propagation of / for linux.rootfsPropagation: %w", err)
	}
	if err := makeParentPrivate(rootfs); err != nil {
		return err
	}
	root, err := bindRootfs(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()

	m := &mounter{spec: s, opts: opts, rootfs: rootfs, root: root}
	for i := range s.Mounts {
		if err := m.mountEntry(i); err != nil {
			return err
		}
	}
	if m.needsDevSetup() {
		if err := m.setupDev(); err != nil {
			return err
		}
	}
	if opts.ConsolePath != "" {
		if err := m.mountConsole(opts.ConsolePath); err != nil {
			return err
		}
	}
	if m.devReadonly {
		if err := m.remountDevReadonly(); err != nil {
			return err
		}
	}
	return nil
}

// validate checks everything that can be checked without touching the
// system, so a bad config fails before any mount is made.
func validate(s *specs.Spec, opts Options) (string, error) {
	if s == nil {
		return "", errors.New("rootfs: nil spec")
	}
	if opts.Rootfs == "" || !filepath.IsAbs(opts.Rootfs) {
		return "", fmt.Errorf("root.path %q: rootfs must be an absolute path", opts.Rootfs)
	}
	rootfs := filepath.Clean(opts.Rootfs)
	if rootfs == "/" {
		return "", errors.New("root.path: the host / cannot be the container rootfs")
	}
	for i, mnt := range s.Mounts {
		if mnt.Destination == "" {
			return "", fmt.Errorf("mounts[%d].destination: must not be empty", i)
		}
		if !filepath.IsAbs(mnt.Destination) {
			return "", fmt.Errorf("mounts[%d].destination %q: must be an absolute path", i, mnt.Destination)
		}
		o, err := parseMountOptions(mnt.Options)
		if err != nil {
			return "", fmt.Errorf("mounts[%d].options: %w", i, err)
		}
		if o.idmap || len(mnt.UIDMappings) > 0 || len(mnt.GIDMappings) > 0 {
			return "", fmt.Errorf("mounts[%d] (%s): idmapped mounts are not supported", i, mnt.Destination)
		}
		if o.tmpcopyup && mnt.Type != "tmpfs" {
			return "", fmt.Errorf("mounts[%d].options: tmpcopyup is only valid for tmpfs mounts", i)
		}
		if !o.bind && mnt.Type != "bind" && mnt.Type == "" {
			return "", fmt.Errorf("mounts[%d].type: empty type for a mount that is not a bind mount (%s)", i, mnt.Destination)
		}
	}
	if s.Linux != nil {
		if p := s.Linux.RootfsPropagation; p != "" {
			if _, err := parsePropagation("linux.rootfsPropagation", p); err != nil {
				return "", err
			}
		}
		for i, d := range s.Linux.Devices {
			if !filepath.IsAbs(d.Path) || filepath.Clean(d.Path) == "/" {
				return "", fmt.Errorf("linux.devices[%d].path %q: must be an absolute path below /", i, d.Path)
			}
			if _, err := deviceType(d.Type); err != nil {
				return "", fmt.Errorf("linux.devices[%d].type: %w", i, err)
			}
		}
	}
	return rootfs, nil
}

// makeParentPrivate makes the mount holding the rootfs private; pivot_root
// refuses a new root whose parent mount is shared.
func makeParentPrivate(path string) error {
	for {
		err := unix.Mount("", path, "", unix.MS_PRIVATE, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) || path == "/" {
			return fmt.Errorf("make the mount holding %s private: %w", path, err)
		}
		path = filepath.Dir(path)
	}
}

// bindRootfs bind-mounts the rootfs onto itself so it is a mount point, and
// returns a handle on the root of that new mount.
func bindRootfs(rootfs string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, rootfs, unix.OPEN_TREE_CLONE|openTreeCloexec|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("mount %s on %s: %w", rootfs, rootfs, err)
	}
	tree := os.NewFile(uintptr(fd), rootfs)
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		tree.Close()
		return nil, fmt.Errorf("mount %s on %s: %w", rootfs, rootfs, err)
	}
	return tree, nil
}

type mounter struct {
	spec        *specs.Spec
	opts        Options
	rootfs      string
	root        *os.File // handle on the root of the rootfs mount
	devReadonly bool     // /dev asked for "ro": applied after the devices exist
}

func (m *mounter) mountEntry(i int) error {
	mnt := m.spec.Mounts[i]
	o, err := parseMountOptions(mnt.Options)
	if err != nil {
		return fmt.Errorf("mounts[%d].options: %w", i, err)
	}
	dest := filepath.Clean(mnt.Destination)
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("mounts[%d]: mount %s on %s: %w", i, mnt.Source, mnt.Destination, err)
	}
	if o.bind || mnt.Type == "bind" {
		src := mnt.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(m.opts.Bundle, src)
		}
		return wrap(m.bindMount(src, dest, o))
	}
	switch mnt.Type {
	case "cgroup":
		return wrap(m.mountCgroup(mnt, dest, o))
	case "cgroup2":
		return wrap(m.mountCgroup2(mnt, dest, o))
	case "sysfs":
		err := m.fsMount(mnt.Source, dest, mnt.Type, o)
		if errors.Is(err, unix.EPERM) && m.opts.UserNS {
			// Without a network namespace of its own a user namespace may
			// not mount sysfs; show the host's, read-only as asked.
			o.bind, o.recursive = true, true
			err = m.bindMount("/sys", dest, o)
		}
		return wrap(err)
	case "mqueue":
		err := m.fsMount(mnt.Source, dest, mnt.Type, o)
		if errors.Is(err, unix.EPERM) && m.opts.UserNS {
			o.bind, o.recursive = true, true
			err = m.bindMount("/dev/mqueue", dest, o)
		}
		return wrap(err)
	default:
		return wrap(m.fsMount(mnt.Source, dest, mnt.Type, o))
	}
}

// openDest resolves dest inside the rootfs, creating it (a directory, or an
// empty file when dir is false) if missing, and returns an O_PATH handle.
func (m *mounter) openDest(dest string, dir bool) (*os.File, error) {
	f, err := openInRoot(m.root, dest)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// Missing, or a dangling symlink: find what to create the way a chroot
	// would resolve it. The result is only used to create the mount point;
	// the handle returned is looked up again inside the root.
	joined, err := securejoin.SecureJoin(m.rootfs, dest)
	if err != nil {
		return nil, err
	}
	target := "/" + strings.TrimPrefix(strings.TrimPrefix(joined, m.rootfs), "/")
	if dir {
		return mkdirAllInRoot(m.root, target, 0o755)
	}
	parent, err := mkdirAllInRoot(m.root, filepath.Dir(target), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(target), unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create %s in rootfs: %w", target, err)
	}
	return openInRoot(m.root, target)
}

// inRootPath returns where an open handle lies inside the rootfs.
func (m *mounter) inRootPath(f *os.File) (string, error) {
	p, err := os.Readlink(fdPath(f))
	if err != nil {
		return "", err
	}
	if p == m.rootfs {
		return "/", nil
	}
	if !strings.HasPrefix(p, m.rootfs+"/") {
		return "", fmt.Errorf("%s resolved to %s, outside the rootfs", f.Name(), p)
	}
	return p[len(m.rootfs):], nil
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// lxcfs-style files that may be bind-mounted over entries of /proc.
var allowedProcMounts = map[string]bool{
	"/proc/cpuinfo":                true,
	"/proc/diskstats":              true,
	"/proc/meminfo":                true,
	"/proc/stat":                   true,
	"/proc/swaps":                  true,
	"/proc/uptime":                 true,
	"/proc/loadavg":                true,
	"/proc/slabinfo":               true,
	"/proc/pressure/cpu":           true,
	"/proc/pressure/io":            true,
	"/proc/pressure/memory":        true,
	"/proc/sys/kernel/ns_last_pid": true,
	"/proc/sys/fs/binfmt_misc":     true,
}

// checkDest refuses destinations that would weaken the container's /proc or
// that reach proc or sysfs through a symlink.
func (m *mounter) checkDest(dst *os.File, dest, fstype string, src *os.File) error {
	resolved, err := m.inRootPath(dst)
	if err != nil {
		return err
	}
	if (fstype == "proc" || fstype == "sysfs") && resolved != dest {
		return fmt.Errorf("%s must be mounted on an ordinary directory, but %s resolves to %s", fstype, dest, resolved)
	}
	switch {
	case resolved == "/":
		return errors.New("refusing to mount over the container's root directory")
	case resolved == "/proc":
		if src != nil {
			var st unix.Statfs_t
			if err := unix.Fstatfs(int(src.Fd()), &st); err != nil {
				return err
			}
			if st.Type != unix.PROC_SUPER_MAGIC {
				return errors.New("only a procfs may be bind-mounted on /proc")
			}
		}
	case strings.HasPrefix(resolved, "/proc/"):
		if !allowedProcMounts[resolved] {
			return fmt.Errorf("%s cannot be mounted because it is inside /proc", resolved)
		}
	}
	return nil
}

// bindMount clones the source tree, sets its flags while it is still
// detached, and attaches it to the destination handle.
func (m *mounter) bindMount(src, dest string, o *mountOptions) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	flags := unix.OPEN_TREE_CLONE | openTreeCloexec
	if o.recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, uint(flags))
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	tree := os.NewFile(uintptr(fd), src)
	defer tree.Close()

	dst, err := m.openDest(dest, fi.IsDir())
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := m.checkDest(dst, dest, "bind", tree); err != nil {
		return err
	}
	return attachTree(tree, dst, o)
}

// attachTree sets o's flags on the detached tree and attaches it to the
// destination handle dst.
func attachTree(tree, dst *os.File, o *mountOptions) error {
	if o.changesMountFlags() {
		set, clr := o.mountAttrs()
		if err := setMountAttrs(tree, false, set, clr); err != nil {
			return fmt.Errorf("set mount flags: %w", err)
		}
	}
	if o.recSet|o.recClr != 0 {
		if err := setMountAttrs(tree, true, o.recSet, o.recClr); err != nil {
			return fmt.Errorf("set recursive mount flags: %w", err)
		}
	}
	if err := unix.MoveMount(int(tree.Fd()), "", int(dst.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return setPropagation(tree, o.propagation)
}

// fsMount mounts a new filesystem instance with mount(2) onto the
// destination handle (through its /proc/self/fd magic link).
func (m *mounter) fsMount(source, dest, fstype string, o *mountOptions) error {
	dst, err := m.openDest(dest, true)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := m.checkDest(dst, dest, fstype, nil); err != nil {
		return err
	}
	flags := o.flags
	if dest == "/dev" && flags&unix.MS_RDONLY != 0 {
		flags &^= unix.MS_RDONLY
		m.devReadonly = true
	}
	if err := unix.Mount(source, fdPath(dst), fstype, flags, dataString(o.data)); err != nil {
		return err
	}
	if !o.tmpcopyup && o.recSet|o.recClr == 0 && len(o.propagation) == 0 {
		return nil
	}
	top, err := m.openMounted(dest, dst)
	if err != nil {
		return err
	}
	defer top.Close()
	if o.tmpcopyup {
		if err := copyTree(dst, top); err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
	}
	if o.recSet|o.recClr != 0 {
		if err := setMountAttrs(top, true, o.recSet, o.recClr); err != nil {
			return fmt.Errorf("set recursive mount flags: %w", err)
		}
	}
	return setPropagation(top, o.propagation)
}

// openMounted returns a handle on the mount just made at dest, checking it
// is a different mount from the one below (lower).
func (m *mounter) openMounted(dest string, lower *os.File) (*os.File, error) {
	top, err := openInRoot(m.root, dest)
	if err != nil {
		return nil, err
	}
	lowerID, err1 := mountID(lower)
	topID, err2 := mountID(top)
	if err := errors.Join(err1, err2); err != nil {
		top.Close()
		return nil, err
	}
	if lowerID == topID {
		top.Close()
		return nil, fmt.Errorf("%s changed while it was being mounted", dest)
	}
	return top, nil
}

func mountID(f *os.File) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, err
	}
	return stx.Mnt_id, nil
}

func mountSetattr(f *os.File, recursive bool, attr *unix.MountAttr) error {
	flags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	return unix.MountSetattr(int(f.Fd()), "", flags, attr)
}

// setMountAttrs sets and clears MOUNT_ATTR_* flags. When the kernel refuses
// (EPERM: flags locked by a more privileged user namespace), the flags the
// mount already has are kept and the change is retried.
func setMountAttrs(f *os.File, recursive bool, set, clr uint64) error {
	err := mountSetattr(f, recursive, &unix.MountAttr{Attr_set: set, Attr_clr: clr})
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) != nil {
		return err
	}
	clr &^= statfsAttrs(uint64(st.Flags))
	if clr&unix.MOUNT_ATTR__ATIME != 0 {
		clr &^= unix.MOUNT_ATTR__ATIME
		set &^= unix.MOUNT_ATTR__ATIME
	}
	return mountSetattr(f, recursive, &unix.MountAttr{Attr_set: set, Attr_clr: clr})
}

func statfsAttrs(flags uint64) uint64 {
	var a uint64
	for _, p := range []struct{ st, attr uint64 }{
		{unix.ST_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.ST_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.ST_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.ST_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.ST_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
		{stNoSymFollow, unix.MOUNT_ATTR_NOSYMFOLLOW},
	} {
		if flags&p.st != 0 {
			a |= p.attr
		}
	}
	return a
}

func setPropagation(f *os.File, props []uintptr) error {
	for _, p := range props {
		attr := &unix.MountAttr{Propagation: uint64(p &^ unix.MS_REC)}
		if err := mountSetattr(f, p&unix.MS_REC != 0, attr); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

func (m *mounter) remountDevReadonly() error {
	dev, err := openInRoot(m.root, "/dev")
	if err != nil {
		return fmt.Errorf("remount /dev read-only: %w", err)
	}
	defer dev.Close()
	if err := setMountAttrs(dev, false, unix.MOUNT_ATTR_RDONLY, 0); err != nil {
		return fmt.Errorf("remount /dev read-only: %w", err)
	}
	return nil
}
