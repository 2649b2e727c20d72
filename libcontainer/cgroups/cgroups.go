// Package cgroups places a container's processes in control groups and
// applies the resource limits of an OCI runtime spec to them.
//
// Two implementations sit behind Manager: one for cgroup v1 hierarchies
// (legacy and hybrid hosts) and one for the cgroup v2 unified hierarchy.
// New picks one by looking at how the cgroup filesystems are mounted.
package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// DefaultRoot is where the cgroup filesystems are normally mounted.
const DefaultRoot = "/sys/fs/cgroup"

// Freezer states reported by Manager.FreezerState.
const (
	Frozen  = "FROZEN"
	Thawed  = "THAWED"
	Unknown = "" // no freezer available for this cgroup
)

// Manager controls the cgroup(s) of one container.
type Manager interface {
	// Apply creates the cgroup(s) and moves pid into them.
	Apply(pid int) error
	// CloneTarget creates the cgroup v2 directory a process about to be
	// started can be cloned into, and returns it ("" when there is none).
	CloneTarget() (string, error)
	// Prepare creates the cgroup(s) without moving any process, and
	// says how a process cloned into CloneTarget joins the rest (see
	// Placement).
	Prepare() (*Placement, error)
	// Set writes the resource limits. A nil field leaves the matching
	// setting untouched, so Set serves both create and update; a nil
	// r.Devices leaves the device policy as it is.
	Set(r *specs.LinuxResources) error
	// Freeze stops every process in the cgroup and returns once the
	// kernel reports the cgroup frozen.
	Freeze() error
	// Thaw resumes the processes stopped by Freeze.
	Thaw() error
	// FreezerState returns Frozen, Thawed or Unknown.
	FreezerState() (string, error)
	// Pids lists every process in the cgroup and its descendants.
	Pids() ([]int, error)
	// Stats reads usage counters, shaped like `runc events --stats`.
	Stats() (*Stats, error)
	// OOMKillCount is the number of processes the OOM killer has killed
	// in this cgroup.
	OOMKillCount() (uint64, error)
	// NotifyOOM returns a channel that receives a value each time the OOM
	// killer acts in the cgroup; it is closed when the cgroup goes away
	// or stop is closed.
	NotifyOOM(stop <-chan struct{}) (<-chan struct{}, error)
	// KillAll sends sig to every process in the cgroup. SIGKILL on a v2
	// cgroup uses cgroup.kill when the kernel has it.
	KillAll(sig unix.Signal) error
	// Destroy removes the cgroup directories (and any the container made
	// below them). The cgroup must be empty: waiting for the processes to
	// exit is the caller's job.
	Destroy() error
	// Paths maps controller name to directory, for state.json. On a v2
	// host the only key is "" (the unified hierarchy); on a hybrid host ""
	// is the directory in the unified hierarchy next to the v1 ones.
	Paths() map[string]string
	// Exists reports whether the cgroup directory is still there.
	Exists() bool
}

// Placement is how a new process joins prepared cgroups without being
// migrated by another process. A write of a pid into cgroup.procs makes
// the kernel take the global lock that serialises thread-group migrations,
// and taking it waits for an RCU grace period: several milliseconds, the
// largest single cost of starting a container. A process cloned straight
// into a cgroup v2 directory (clone3 with CLONE_INTO_CGROUP) is not
// migrated at all, and a thread that moves only itself into a v1 hierarchy
// (writing 0 into its tasks file) does not take that lock.
type Placement struct {
	// Dir is the cgroup v2 directory to clone the process into; "" when
	// there is none (a cgroup v1 only host).
	Dir string
	// Tasks are the tasks files of the v1 hierarchies. The thread of the
	// new process that will exec the container's program writes 0 into
	// each: after execve that thread is the whole process.
	Tasks []string
	// BestEffort is set for a rootless container with no cgroupsPath:
	// a permission error while joining is then not fatal.
	BestEffort bool
}

// JoinThread moves the calling thread into the v1 hierarchies whose tasks
// files are given. The caller must be locked to its OS thread.
func JoinThread(tasks []string, bestEffort bool) error {
	for _, f := range tasks {
		err := writeControl(f, "0")
		if err == nil || (bestEffort && isPermission(err)) {
			continue
		}
		return fmt.Errorf("join cgroup %s: write 0 to %s: %w", filepath.Dir(f), filepath.Base(f), err)
	}
	return nil
}

// Options tunes New and Load.
type Options struct {
	// Systemd asks for the systemd driver: cgroupsPath is then
	// "slice:prefix:name". crossrun has no D-Bus client; when systemd runs
	// it creates the same directories systemd would, through cgroupfs.
	Systemd bool
	// Rootless tolerates permission errors where runc does: creating the
	// default cgroup (no cgroupsPath) and the devices controller.
	Rootless bool
	// Root is the mount point of the cgroup filesystems, DefaultRoot when
	// empty. Tests point it at a fake tree.
	Root string
}

func (o Options) root() string {
	if o.Root == "" {
		return DefaultRoot
	}
	return filepath.Clean(o.Root)
}

// Mode is the host's cgroup layout.
type Mode int

const (
	// Legacy: only cgroup v1 hierarchies.
	Legacy Mode = iota
	// Hybrid: v1 hierarchies plus a controller-less cgroup2 at <root>/unified.
	Hybrid
	// Unified: cgroup v2 only, mounted at root.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DetectMode tells how cgroups are mounted under root ("" means
// DefaultRoot). A root that is not a cgroup mount (a test tree) is judged by
// its files: cgroup.controllers at the top means unified, under unified/
// means hybrid.
func DetectMode(root string) Mode {
	if root == "" {
		root = DefaultRoot
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err == nil {
		switch st.Type {
		case unix.CGROUP2_SUPER_MAGIC:
			return Unified
		case unix.TMPFS_MAGIC:
			var ust unix.Statfs_t
			if err := unix.Statfs(filepath.Join(root, "unified"), &ust); err == nil && ust.Type == unix.CGROUP2_SUPER_MAGIC {
				return Hybrid
			}
			if isV1Tree(root) {
				return Legacy
			}
		}
	}
	if fileExists(filepath.Join(root, "cgroup.controllers")) {
		return Unified
	}
	if fileExists(filepath.Join(root, "unified", "cgroup.controllers")) {
		return Hybrid
	}
	return Legacy
}

// isV1Tree reports whether some directory under root is a cgroup v1 mount.
func isV1Tree(root string) bool {
	ents, err := os.ReadDir(root)
	if err != nil {
		return false
	}
	for _, e := range ents {
		var st unix.Statfs_t
		if unix.Statfs(filepath.Join(root, e.Name()), &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
			return true
		}
	}
	return false
}

// ErrSystemdNotRunning is returned by New for Options.Systemd on a host
// without a running systemd.
var ErrSystemdNotRunning = errors.New("systemd cgroup driver requested but systemd is not running (no /run/systemd/system); drop --systemd-cgroup to use cgroupfs")

// Files read from the host; tests point them elsewhere.
var (
	procSelfCgroup    = "/proc/self/cgroup"
	procSelfMountinfo = "/proc/self/mountinfo"
	systemdRunDir     = "/run/systemd/system"
)

// New returns the manager for a container's cgroup. cgroupsPath is the
// spec's linux.cgroupsPath: an absolute path is taken from the hierarchy
// root, a relative one is placed under the runtime's own cgroup (on v2, its
// parent, as runc does), and an empty one means the relative path
// "<containerID>". Nothing is created until Apply.
func New(cgroupsPath, containerID string, opts Options) (Manager, error) {
	if opts.Systemd {
		if !fileExists(systemdRunDir) {
			return nil, ErrSystemdNotRunning
		}
		p, err := systemdPath(cgroupsPath, containerID)
		if err != nil {
			return nil, err
		}
		logrus.Debugf("systemd cgroup path %q managed through cgroupfs as %s", cgroupsPath, p)
		cgroupsPath = p
	}
	inner := cleanPath(cgroupsPath)
	explicit := inner != ""
	if inner == "" {
		if containerID == "" {
			return nil, errors.New("cgroup: neither cgroupsPath nor container id given")
		}
		inner = cleanPath(containerID)
		// cleanPath of a relative path yields an absolute one; keep the
		// default relative like runc.
		inner = strings.TrimPrefix(inner, "/")
	} else if !filepath.IsAbs(cgroupsPath) {
		inner = strings.TrimPrefix(inner, "/")
	}
	root := opts.root()
	mode := DetectMode(root)
	own, err := ownCgroups()
	if err != nil && !filepath.IsAbs(inner) {
		return nil, err
	}
	if mode == Unified {
		dir := filepath.Join(root, inner)
		if !filepath.IsAbs(inner) {
			dir = filepath.Join(root, filepath.Dir(own[""]), inner)
		}
		return &v2Manager{root: root, dir: dir, rootless: opts.Rootless, explicit: explicit}, nil
	}
	mounts, err := v1Mounts(root)
	if err != nil {
		return nil, err
	}
	paths := make(map[string]string)
	for ctrl, mnt := range mounts {
		if filepath.IsAbs(inner) {
			paths[ctrl] = filepath.Join(mnt, inner)
		} else {
			paths[ctrl] = filepath.Join(mnt, own[ctrl], inner)
		}
	}
	if _, ok := paths["devices"]; !ok {
		return nil, errors.New("cgroup: devices controller is not mounted; refusing to run without device restrictions")
	}
	if mode == Hybrid {
		if filepath.IsAbs(inner) {
			paths[""] = filepath.Join(root, "unified", inner)
		} else {
			paths[""] = filepath.Join(root, "unified", own[""], inner)
		}
	}
	return &v1Manager{root: root, paths: paths, rootless: opts.Rootless, explicit: explicit}, nil
}

// Load rebuilds a manager from the paths saved by Paths().
func Load(paths map[string]string, opts Options) (Manager, error) {
	if len(paths) == 0 {
		return nil, errors.New("cgroup: no paths to load")
	}
	root := opts.root()
	if DetectMode(root) == Unified {
		dir, ok := paths[""]
		if !ok || len(paths) != 1 {
			return nil, fmt.Errorf("cgroup: saved paths %v are not for a cgroup v2 host", paths)
		}
		return &v2Manager{root: root, dir: dir, rootless: opts.Rootless, explicit: true}, nil
	}
	cp := make(map[string]string, len(paths))
	for k, v := range paths {
		cp[k] = v
	}
	return &v1Manager{root: root, paths: cp, rootless: opts.Rootless, explicit: true}, nil
}

// cleanPath makes path safe to join under a directory: ".." cannot climb
// above the start. A relative path comes back absolute.
func cleanPath(path string) string {
	if path == "" {
		return ""
	}
	return filepath.Clean("/" + path)
}

// systemdPath turns "slice:prefix:name" into the directory systemd gives
// the scope, e.g. "/system.slice/crossrun-abc.scope".
func systemdPath(cgroupsPath, id string) (string, error) {
	slice, prefix, name := "system.slice", "crossrun", id
	if cgroupsPath != "" {
		parts := strings.Split(cgroupsPath, ":")
		if len(parts) != 3 {
			return "", fmt.Errorf("cgroup: systemd cgroupsPath %q is not slice:prefix:name", cgroupsPath)
		}
		if parts[0] != "" {
			slice = parts[0]
		}
		prefix, name = parts[1], parts[2]
	}
	dir, err := expandSlice(slice)
	if err != nil {
		return "", err
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if prefix != "" {
			unit = prefix + "-" + name
		}
		unit += ".scope"
	}
	return filepath.Join(dir, unit), nil
}

// expandSlice turns "a-b-c.slice" into "/a.slice/a-b.slice/a-b-c.slice".
func expandSlice(slice string) (string, error) {
	const suffix = ".slice"
	if !strings.HasSuffix(slice, suffix) || strings.Contains(slice, "/") {
		return "", fmt.Errorf("cgroup: invalid systemd slice name %q", slice)
	}
	if slice == "-.slice" {
		return "/", nil
	}
	base := strings.TrimSuffix(slice, suffix)
	var b strings.Builder
	prefix := ""
	for _, comp := range strings.Split(base, "-") {
		if comp == "" {
			return "", fmt.Errorf("cgroup: invalid systemd slice name %q", slice)
		}
		b.WriteString("/" + prefix + comp + suffix)
		prefix += comp + "-"
	}
	return b.String(), nil
}

// ownCgroups parses /proc/self/cgroup: controller -> path. The v2 line is
// under "", named hierarchies under "name=xxx".
func ownCgroups() (map[string]string, error) {
	data, err := os.ReadFile(procSelfCgroup)
	if err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	return parseProcCgroup(string(data)), nil
}

func parseProcCgroup(data string) map[string]string {
	m := make(map[string]string)
	for _, line := range strings.Split(data, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			m[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m
}

// v1Controllers are the hierarchies a v1 manager joins, in Set order.
var v1Controllers = []string{
	"cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio",
	"hugetlb", "net_cls", "net_prio", "perf_event", "freezer", "rdma",
	"misc", "name=systemd",
}

// v1Mounts maps each mounted v1 controller to its mount point. It reads
// mountinfo for cgroup mounts under root, and falls back to directory
// names (a test tree, or a host whose mountinfo we cannot read).
func v1Mounts(root string) (map[string]string, error) {
	known := make(map[string]bool)
	for _, c := range v1Controllers {
		known[c] = true
	}
	m := make(map[string]string)
	if data, err := os.ReadFile(procSelfMountinfo); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			mnt, fstype, super, ok := parseMountinfoLine(line)
			if !ok || fstype != "cgroup" || filepath.Dir(mnt) != root {
				continue
			}
			for _, opt := range strings.Split(super, ",") {
				if known[opt] {
					if _, dup := m[opt]; !dup {
						m[opt] = mnt
					}
				}
			}
		}
	}
	if len(m) > 0 {
		return m, nil
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("cgroup: read %s: %w", root, err)
	}
	for _, e := range ents {
		if e.Name() == "unified" {
			continue
		}
		p := filepath.Join(root, e.Name())
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			continue
		}
		for _, c := range strings.Split(e.Name(), ",") {
			if c == "systemd" {
				c = "name=systemd"
			}
			if known[c] {
				if _, dup := m[c]; !dup {
					m[c] = p
				}
			}
		}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("cgroup: no cgroup v1 hierarchy found under %s", root)
	}
	return m, nil
}

// parseMountinfoLine returns mount point, fs type and super options.
func parseMountinfoLine(line string) (mnt, fstype, super string, ok bool) {
	fields := strings.Fields(line)
	sep := -1
	for i, f := range fields {
		if f == "-" {
			sep = i
			break
		}
	}
	if sep < 5 || len(fields) < sep+4 {
		return "", "", "", false
	}
	return unescapeOctal(fields[4]), fields[sep+1], fields[sep+3], true
}

func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			okOct := true
			for j := 1; j <= 3; j++ {
				c := s[i+j]
				if c < '0' || c > '7' {
					okOct = false
					break
				}
				v = v*8 + (c - '0')
			}
			if okOct {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// isPermission reports errors a rootless caller may ignore.
func isPermission(err error) bool {
	return errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}
