package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func devMode(mode os.FileMode) *os.FileMode { return &mode }

// defaultDevices are created in every container whose /dev is not a bind
// mount, before the spec's own linux.devices.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: devMode(0o666)},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: devMode(0o666)},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: devMode(0o666)},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: devMode(0o666)},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: devMode(0o666)},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: devMode(0o666)},
}

func deviceType(t string) (uint32, error) {
	switch t {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("unknown device type %q (want c, u, b or p)", t)
}

// needsDevSetup is false when /dev comes from a bind mount: the user then
// provides the device nodes.
func (m *mounter) needsDevSetup() bool {
	for _, mnt := range m.spec.Mounts {
		if filepath.Clean(mnt.Destination) != "/dev" {
			continue
		}
		o, err := parseMountOptions(mnt.Options)
		if err == nil && (o.bind || mnt.Type == "bind") {
			return false
		}
	}
	return true
}

func (m *mounter) setupDev() error {
	type entry struct {
		dev   specs.LinuxDevice
		field string
	}
	var devices []entry
	for _, d := range defaultDevices {
		devices = append(devices, entry{d, "default device"})
	}
	if m.spec.Linux != nil {
		for i, d := range m.spec.Linux.Devices {
			e := entry{d, fmt.Sprintf("linux.devices[%d]", i)}
			replaced := false
			for j := range devices {
				if filepath.Clean(devices[j].dev.Path) == filepath.Clean(d.Path) {
					devices[j], replaced = e, true
				}
			}
			if !replaced {
				devices = append(devices, e)
			}
		}
	}
	for _, e := range devices {
		if err := m.createDevice(e.dev); err != nil {
			return fmt.Errorf("%s %s: %w", e.field, e.dev.Path, err)
		}
	}
	dev, err := mkdirAllInRoot(m.root, "/dev", 0o755)
	if err != nil {
		return fmt.Errorf("open /dev in rootfs: %w", err)
	}
	defer dev.Close()
	links := [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s -> %s: %w", l[1], l[0], err)
		}
	}
	// /dev/ptmx must lead to the container's own devpts instance.
	if err := unix.Unlinkat(int(dev.Fd()), "ptmx", 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove /dev/ptmx: %w", err)
	}
	if err := unix.Symlinkat("pts/ptmx", int(dev.Fd()), "ptmx"); err != nil {
		return fmt.Errorf("symlink /dev/ptmx -> pts/ptmx: %w", err)
	}
	return nil
}

func (m *mounter) createDevice(d specs.LinuxDevice) error {
	typ, err := deviceType(d.Type)
	if err != nil {
		return err
	}
	path := filepath.Clean(d.Path)
	parent, err := mkdirAllInRoot(m.root, filepath.Dir(path), 0o755)
	if err != nil {
		return err
	}
	defer parent.Close()
	if m.opts.UserNS {
		return m.bindDevice(parent, path)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	var uid, gid int
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	pfd, base := int(parent.Fd()), filepath.Base(path)
	err = unix.Mknodat(pfd, base, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	switch {
	case errors.Is(err, unix.EEXIST):
		return nil
	case errors.Is(err, unix.EPERM):
		// mknod is not permitted here (e.g. a user namespace we were not told about).
		return m.bindDevice(parent, path)
	case err != nil:
		return fmt.Errorf("mknod: %w", err)
	}
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	// mknod applied the umask; set the mode asked for.
	if err := unix.Fchmodat(pfd, base, perm, 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

// bindDevice bind-mounts the host's device node at the same path onto an
// empty file in the rootfs.
func (m *mounter) bindDevice(parent *os.File, path string) error {
	base := filepath.Base(path)
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_RDONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	unix.Close(fd)
	dfd, err := unix.Openat(int(parent.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dst := os.NewFile(uintptr(dfd), path)
	defer dst.Close()
	tfd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|openTreeCloexec)
	if err != nil {
		return fmt.Errorf("open_tree host %s: %w", path, err)
	}
	defer unix.Close(tfd)
	if err := unix.MoveMount(tfd, "", dfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount %s on %s: %w", path, path, err)
	}
	return nil
}

const (
	ptySlaveMajorFirst = 136 // UNIX98_PTY_SLAVE_MAJOR
	ptySlaveMajorLast  = 143 // UNIX98_PTY_SLAVE_MAJOR + UNIX98_PTY_MAJOR_COUNT - 1
)

// mountConsole binds the pty slave at consolePath onto /dev/console after
// checking it really is a pty slave on a devpts, not a symlink or another
// file planted there.
func (m *mounter) mountConsole(consolePath string) error {
	wrap := func(err error) error { return fmt.Errorf("mount %s on /dev/console: %w", consolePath, err) }
	sfd, err := unix.Open(consolePath, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrap(err)
	}
	src := os.NewFile(uintptr(sfd), consolePath)
	defer src.Close()
	if err := checkPtySlave(sfd); err != nil {
		return wrap(err)
	}
	dev, err := mkdirAllInRoot(m.root, "/dev", 0o755)
	if err != nil {
		return wrap(err)
	}
	defer dev.Close()
	fd, err := unix.Openat(int(dev.Fd()), "console", unix.O_RDONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0o666)
	if err != nil {
		return wrap(fmt.Errorf("create /dev/console: %w", err))
	}
	unix.Close(fd)
	dfd, err := unix.Openat(int(dev.Fd()), "console", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrap(err)
	}
	defer unix.Close(dfd)
	tfd, err := unix.OpenTree(sfd, "", unix.OPEN_TREE_CLONE|openTreeCloexec|unix.AT_EMPTY_PATH)
	if err != nil {
		return wrap(err)
	}
	defer unix.Close(tfd)
	if err := unix.MoveMount(tfd, "", dfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return wrap(err)
	}
	return nil
}

func checkPtySlave(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return errors.New("console path is a symlink")
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return fmt.Errorf("console path is not a character device (mode %#o)", st.Mode)
	}
	if maj := unix.Major(uint64(st.Rdev)); maj < ptySlaveMajorFirst || maj > ptySlaveMajorLast {
		return fmt.Errorf("console path is device %d:%d, not a pty slave", maj, unix.Minor(uint64(st.Rdev)))
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return err
	}
	if sfs.Type != unix.DEVPTS_SUPER_MAGIC {
		return fmt.Errorf("console path is not on a devpts filesystem (magic %#x)", sfs.Type)
	}
	return nil
}
