package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree creates files (name -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// setProcSelfCgroup points the package at a fake /proc/self/cgroup.
func setProcSelfCgroup(t *testing.T, content string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cgroup")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	old := procSelfCgroup
	procSelfCgroup = p
	t.Cleanup(func() { procSelfCgroup = old })
}

// noMountinfo makes v1Mounts fall back to directory names.
func noMountinfo(t *testing.T) {
	t.Helper()
	old := procSelfMountinfo
	procSelfMountinfo = filepath.Join(t.TempDir(), "missing")
	t.Cleanup(func() { procSelfMountinfo = old })
}

// v2Files is what a fresh v2 cgroup with the usual controllers holds.
func v2Files() map[string]string {
	return map[string]string{
		"cgroup.procs": "", "cgroup.freeze": "0", "cgroup.events": "populated 1\nfrozen 0\n", "cgroup.kill": "",
		"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0",
		"cpuset.cpus": "", "cpuset.mems": "",
		"memory.max": "max", "memory.low": "0", "memory.swap.max": "max", "memory.current": "0", "memory.swap.current": "0",
		"pids.max": "max", "pids.current": "0",
		"io.weight": "default 100", "io.max": "",
		"hugetlb.2MB.max": "max", "hugetlb.1GB.max": "max",
		"memory.high": "max",
	}
}

// newFakeV2 builds a unified tree and returns a manager for /test/ctr.
func newFakeV2(t *testing.T, extra map[string]string) (*v2Manager, string) {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"cgroup.controllers":     "cpuset cpu io memory hugetlb pids rdma misc",
		"cgroup.subtree_control": "",
		"cgroup.procs":           "",
	})
	dir := filepath.Join(root, "test", "ctr")
	files := v2Files()
	for k, v := range extra {
		files[k] = v
	}
	writeTree(t, dir, files)
	m, err := New("/test/ctr", "ctr", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	v2, ok := m.(*v2Manager)
	if !ok {
		t.Fatalf("New on a unified tree returned %T", m)
	}
	return v2, dir
}

// v1 controller directories and the files a fresh cgroup has in them.
func v1Files() map[string]map[string]string {
	return map[string]map[string]string{
		"cpu":     {"cgroup.procs": "", "cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.cfs_burst_us": "0", "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "0", "cpu.idle": "0", "cpu.stat": ""},
		"cpuacct": {"cgroup.procs": "", "cpuacct.usage": "0", "cpuacct.usage_percpu": "0 0"},
		"cpuset":  {"cgroup.procs": "", "cpuset.cpus": "", "cpuset.mems": ""},
		"memory": {"cgroup.procs": "", "memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
			"memory.soft_limit_in_bytes": "9223372036854771712", "memory.swappiness": "60", "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
			"memory.use_hierarchy": "1", "memory.usage_in_bytes": "0", "memory.memsw.usage_in_bytes": "0", "memory.kmem.tcp.limit_in_bytes": "9223372036854771712", "memory.stat": ""},
		"devices": {"cgroup.procs": "", "devices.allow": "", "devices.deny": ""},
		"freezer": {"cgroup.procs": "", "freezer.state": "THAWED"},
		"blkio": {"cgroup.procs": "", "blkio.bfq.weight": "100", "blkio.bfq.weight_device": "", "blkio.throttle.read_bps_device": "",
			"blkio.throttle.write_bps_device": "", "blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": ""},
		"pids":    {"cgroup.procs": "", "pids.max": "max", "pids.current": "0"},
		"systemd": {"cgroup.procs": ""},
	}
}

// newFakeV1 builds a legacy tree (each controller its own directory) and
// returns a manager for the absolute path /test/ctr.
func newFakeV1(t *testing.T, skip ...string) (*v1Manager, string) {
	t.Helper()
	noMountinfo(t)
	root := t.TempDir()
	skipped := make(map[string]bool)
	for _, s := range skip {
		skipped[s] = true
	}
	for ctrl, files := range v1Files() {
		if skipped[ctrl] {
			continue
		}
		writeTree(t, filepath.Join(root, ctrl), map[string]string{"cgroup.procs": ""})
		writeTree(t, filepath.Join(root, ctrl, "test", "ctr"), files)
	}
	m, err := New("/test/ctr", "ctr", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	v1, ok := m.(*v1Manager)
	if !ok {
		t.Fatalf("New on a legacy tree returned %T", m)
	}
	return v1, root
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }
func boolp(v bool) *bool   { return &v }
