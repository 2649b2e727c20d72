package rootfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const cgroupRoot = "/sys/fs/cgroup"

// mountCgroup handles a "cgroup" mount: cgroup2 on a unified host, a tmpfs
// with one mount per v1 hierarchy otherwise.
func (m *mounter) mountCgroup(mnt specs.Mount, dest string, o *mountOptions) error {
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", cgroupRoot, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return m.mountCgroup2(mnt, dest, o)
	}
	return m.mountCgroupV1(dest, o)
}

// mountCgroup2 mounts cgroup2; where the kernel refuses (a user namespace
// without a cgroup namespace of its own) it binds the host's hierarchy, or
// the container's own cgroup when it has a cgroup namespace.
func (m *mounter) mountCgroup2(mnt specs.Mount, dest string, o *mountOptions) error {
	source := mnt.Source
	if source == "" {
		source = "cgroup2"
	}
	err := m.fsMount(source, dest, "cgroup2", o)
	if err == nil || !(errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
		return err
	}
	src, err2 := unifiedMountpoint()
	if err2 != nil {
		return errors.Join(err, err2)
	}
	if m.opts.CgroupNS {
		own, err2 := readSelfCgroup()
		if err2 != nil {
			return errors.Join(err, err2)
		}
		if p, ok := own[""]; ok {
			src = filepath.Join(src, p)
		}
	}
	bo := *o
	bo.bind, bo.recursive = true, true
	return m.bindMount(src, dest, &bo)
}

func unifiedMountpoint() (string, error) {
	for _, p := range []string{cgroupRoot, cgroupRoot + "/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p, nil
		}
	}
	return "", errors.New("no cgroup2 hierarchy mounted on the host")
}

// cgroupHierarchy is one cgroup v1 hierarchy mounted on the host.
type cgroupHierarchy struct {
	mountpoint string   // e.g. /sys/fs/cgroup/cpu,cpuacct
	root       string   // root of the mount within the hierarchy
	subsystems []string // e.g. cpu, cpuacct, name=systemd
	extra      []string // options that must match when mounting it again
}

// cgroup v1 options that the kernel compares when a hierarchy is mounted
// a second time.
var cgroupMatchOptions = map[string]bool{"xattr": true, "noprefix": true, "cpuset_v2_mode": true}

func cgroupV1Hierarchies(own map[string]string) ([]cgroupHierarchy, error) {
	infos, err := readMountInfo("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var hs []cgroupHierarchy
	seen := map[string]bool{}
	for _, mi := range infos {
		if mi.FSType != "cgroup" || filepath.Dir(mi.Mountpoint) != cgroupRoot {
			continue
		}
		h := cgroupHierarchy{mountpoint: mi.Mountpoint, root: mi.Root}
		for _, opt := range strings.Split(mi.SuperOpts, ",") {
			if _, ok := own[opt]; ok && opt != "" {
				h.subsystems = append(h.subsystems, opt)
			} else if cgroupMatchOptions[opt] {
				h.extra = append(h.extra, opt)
			}
		}
		base := filepath.Base(mi.Mountpoint)
		if len(h.subsystems) == 0 || seen[base] {
			continue
		}
		seen[base] = true
		hs = append(hs, h)
	}
	return hs, nil
}

func (m *mounter) mountCgroupV1(dest string, o *mountOptions) error {
	own, err := readSelfCgroup()
	if err != nil {
		return err
	}
	hs, err := cgroupV1Hierarchies(own)
	if err != nil {
		return err
	}
	tmpfs := &mountOptions{
		flags:       unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
		data:        []string{"mode=755"},
		propagation: o.propagation,
	}
	if err := m.fsMount("tmpfs", dest, "tmpfs", tmpfs); err != nil {
		return fmt.Errorf("tmpfs for cgroup v1 hierarchies: %w", err)
	}
	top, err := openInRoot(m.root, dest)
	if err != nil {
		return err
	}
	defer top.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(top.Fd()), &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		return fmt.Errorf("%s is not the tmpfs just mounted for the cgroup v1 hierarchies", dest)
	}
	// The mount points are made in that fresh tmpfs, which nothing else
	// can see yet, by name relative to it: no path resolution to guard.
	for _, h := range hs {
		base := filepath.Base(h.mountpoint)
		sub, err := mkdirIn(top, base)
		if err != nil {
			return err
		}
		if m.opts.CgroupNS {
			flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | (o.flags & unix.MS_RDONLY))
			data := strings.Join(append(append([]string(nil), h.subsystems...), h.extra...), ",")
			err = unix.Mount("cgroup", fdPath(sub), "cgroup", flags, data)
			if err == nil && len(o.propagation) > 0 {
				// A fresh handle: sub is the directory under the mount.
				var mnt *os.File
				if mnt, err = mkdirIn(top, base); err == nil {
					err = setPropagation(mnt, o.propagation)
					mnt.Close()
				}
			}
			if err != nil {
				sub.Close()
				return fmt.Errorf("cgroup %s on %s: %w", strings.Join(h.subsystems, ","), filepath.Join(dest, base), err)
			}
		} else {
			rel, err := filepath.Rel(h.root, own[h.subsystems[0]])
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				sub.Close()
				return fmt.Errorf("cgroup %s of this process is outside the host mount %s", own[h.subsystems[0]], h.mountpoint)
			}
			if err := bindOnto(filepath.Join(h.mountpoint, rel), sub, o); err != nil {
				sub.Close()
				return fmt.Errorf("bind cgroup %s on %s: %w", base, filepath.Join(dest, base), err)
			}
		}
		sub.Close()
	}
	// Co-mounted hierarchies (cpu,cpuacct) are also reachable by each name.
	for _, h := range hs {
		base := filepath.Base(h.mountpoint)
		if !strings.Contains(base, ",") {
			continue
		}
		for _, ss := range strings.Split(base, ",") {
			if err := unix.Symlinkat(base, int(top.Fd()), ss); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("symlink %s -> %s: %w", filepath.Join(dest, ss), base, err)
			}
		}
	}
	if o.flags&unix.MS_RDONLY != 0 {
		if err := setMountAttrs(top, false, unix.MOUNT_ATTR_RDONLY, 0); err != nil {
			return fmt.Errorf("make %s read-only: %w", dest, err)
		}
	}
	return nil
}

// mkdirIn makes directory name in dir and returns an O_PATH handle on it,
// refusing anything but a directory made right there.
func mkdirIn(dir *os.File, name string) (*os.File, error) {
	if err := unix.Mkdirat(int(dir.Fd()), name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("mkdir %s: %w", name, err)
	}
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// bindOnto binds src (recursively, with o's flags) onto the handle dst.
func bindOnto(src string, dst *os.File, o *mountOptions) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, uint(unix.OPEN_TREE_CLONE|openTreeCloexec|unix.AT_RECURSIVE))
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	tree := os.NewFile(uintptr(fd), src)
	defer tree.Close()
	return attachTree(tree, dst, o)
}

// readSelfCgroup maps each controller (and "name=..." hierarchy, and "" for
// cgroup2) of /proc/thread-self/cgroup to this thread's cgroup path. The
// thread, not the process: init's thread joins the container's v1 cgroups
// by itself (cgroups.JoinThread) while the Go runtime's other threads stay
// where they were until execve ends them.
func readSelfCgroup() (map[string]string, error) {
	f, err := os.Open("/proc/thread-self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	own := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			own[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	return own, sc.Err()
}
