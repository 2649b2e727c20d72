package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestV1SetWritesFiles(t *testing.T) {
	tests := []struct {
		name string
		res  specs.LinuxResources
		want map[string]string // "ctrl/file" -> content
	}{
		{
			name: "memory",
			res: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20), Reservation: i64(128 << 20),
				Swappiness: u64(10), DisableOOMKiller: boolp(true), KernelTCP: i64(1 << 20), Kernel: i64(1 << 20)}},
			want: map[string]string{"memory/memory.limit_in_bytes": "268435456", "memory/memory.memsw.limit_in_bytes": "536870912",
				"memory/memory.soft_limit_in_bytes": "134217728", "memory/memory.swappiness": "10", "memory/memory.oom_control": "1",
				"memory/memory.kmem.tcp.limit_in_bytes": "1048576"},
		},
		{
			name: "unlimited memory makes memsw unlimited",
			res:  specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}},
			want: map[string]string{"memory/memory.limit_in_bytes": "-1", "memory/memory.memsw.limit_in_bytes": "-1"},
		},
		{
			name: "cpu",
			res:  specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Burst: u64(10), Idle: i64(0), RealtimeRuntime: i64(950000), RealtimePeriod: u64(1000000), Cpus: "0", Mems: "0"}},
			want: map[string]string{"cpu/cpu.shares": "1024", "cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000", "cpu/cpu.cfs_burst_us": "10",
				"cpu/cpu.idle": "0", "cpu/cpu.rt_runtime_us": "950000", "cpu/cpu.rt_period_us": "1000000", "cpuset/cpuset.cpus": "0", "cpuset/cpuset.mems": "0"},
		},
		{
			name: "pids",
			res:  specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}},
			want: map[string]string{"pids/pids.max": "max"},
		},
		{
			name: "blkio uses bfq files when there is no blkio.weight",
			res: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(300),
				WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: u16(200)}},
				ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1000}},
				ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 2000}},
				ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 30}},
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 40}},
			}},
			want: map[string]string{"blkio/blkio.bfq.weight": "300", "blkio/blkio.bfq.weight_device": "8:0 200",
				"blkio/blkio.throttle.read_bps_device": "8:0 1000", "blkio/blkio.throttle.write_bps_device": "8:0 2000",
				"blkio/blkio.throttle.read_iops_device": "8:0 30", "blkio/blkio.throttle.write_iops_device": "8:0 40"},
		},
		{
			name: "devices: reset then rules in order",
			res: specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
				{Allow: false, Access: "rwm"},
				{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
			}},
			// The fake files keep the last write only.
			want: map[string]string{"devices/devices.deny": "a", "devices/devices.allow": "c 1:3 rwm"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, root := newFakeV1(t)
			if err := m.Set(&tc.res); err != nil {
				t.Fatalf("Set: %v", err)
			}
			for f, want := range tc.want {
				ctrl, file, _ := strings.Cut(f, "/")
				if got := readTrim(t, filepath.Join(root, ctrl, "test", "ctr", file)); got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
		})
	}
}

func TestV1SetErrors(t *testing.T) {
	tests := []struct {
		name    string
		res     specs.LinuxResources
		wantErr string
	}{
		{"unified on v1", specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, "needs cgroup v2"},
		{"net_cls not mounted", specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(0x100001)}}, "net_cls cgroup controller is not mounted"},
		{"net_prio not mounted", specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 1}}}}, "net_prio"},
		{"hugetlb not mounted", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 0}}}, "hugetlb cgroup controller is not mounted"},
		{"swappiness", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(101)}}, "0-100"},
		{"bad device type", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "x"}}}, "invalid type"},
		{"bad device access", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "c", Access: "rx"}}}, "invalid access"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newFakeV1(t)
			err := m.Set(&tc.res)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Set error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestV1NetworkWhenMounted(t *testing.T) {
	noMountinfo(t)
	root := t.TempDir()
	for ctrl, files := range v1Files() {
		writeTree(t, filepath.Join(root, ctrl, "x"), files)
	}
	writeTree(t, filepath.Join(root, "net_cls,net_prio", "x"), map[string]string{"cgroup.procs": "", "net_cls.classid": "0", "net_prio.ifpriomap": ""})
	m, err := New("/x", "x", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	p := m.Paths()
	if p["net_cls"] != filepath.Join(root, "net_cls,net_prio", "x") || p["net_prio"] != p["net_cls"] {
		t.Fatalf("co-mounted paths = %v", p)
	}
	if err := m.Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(0x100001), Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}}}}); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(p["net_cls"], "net_cls.classid")); got != "1048577" {
		t.Errorf("classid = %q", got)
	}
	if got := readTrim(t, filepath.Join(p["net_prio"], "net_prio.ifpriomap")); got != "eth0 5" {
		t.Errorf("ifpriomap = %q", got)
	}
}

func TestV1MissingDevicesIsFatal(t *testing.T) {
	noMountinfo(t)
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "memory"), map[string]string{"cgroup.procs": ""})
	if _, err := New("/x", "x", Options{Root: root}); err == nil || !strings.Contains(err.Error(), "devices") {
		t.Fatalf("New without devices: %v", err)
	}
}

func TestV1CheckBeforeUpdate(t *testing.T) {
	m, root := newFakeV1(t)
	dir := filepath.Join(root, "memory", "test", "ctr")
	writeTree(t, dir, map[string]string{"memory.usage_in_bytes": "5000"})
	err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(4096), CheckBeforeUpdate: boolp(true)}})
	if err == nil || !strings.Contains(err.Error(), "below current usage 5000") {
		t.Fatalf("err = %v", err)
	}
	if got := readTrim(t, filepath.Join(dir, "memory.limit_in_bytes")); got != "9223372036854771712" {
		t.Fatalf("limit written despite refusal: %q", got)
	}
}

func TestV1Stats(t *testing.T) {
	m, root := newFakeV1(t)
	c := func(ctrl string) string { return filepath.Join(root, ctrl, "test", "ctr") }
	writeTree(t, c("cpuacct"), map[string]string{
		"cpuacct.usage": "3000", "cpuacct.usage_percpu": "1000 2000", "cpuacct.usage_percpu_sys": "100 200",
		"cpuacct.usage_percpu_user": "900 1800", "cpuacct.usage_sys": "300", "cpuacct.usage_user": "2700",
	})
	writeTree(t, c("cpu"), map[string]string{"cpu.stat": "nr_periods 5\nnr_throttled 2\nthrottled_time 999\n"})
	writeTree(t, c("memory"), map[string]string{
		"memory.stat": "cache 4096\nrss 8192\ntotal_cache 4096\n", "memory.usage_in_bytes": "12288", "memory.max_usage_in_bytes": "20000",
		"memory.failcnt": "2", "memory.limit_in_bytes": "1048576", "memory.memsw.usage_in_bytes": "12288", "memory.memsw.limit_in_bytes": "2097152",
		"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
	})
	writeTree(t, c("pids"), map[string]string{"pids.current": "4", "pids.max": "max"})
	writeTree(t, c("blkio"), map[string]string{
		"blkio.bfq.io_service_bytes_recursive":      "",
		"blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 0\n8:0 Sync 4096\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 4096\nTotal 4096\n",
		"blkio.throttle.io_serviced_recursive":      "8:0 Read 1\n8:0 Write 0\nTotal 1\n",
	})
	writeTree(t, c("cpuset"), map[string]string{"cpuset.cpus": "0-1", "cpuset.mems": "0", "cpuset.cpu_exclusive": "1"})
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	u := st.CPU.Usage
	if u.Total != 3000 || u.Kernel != 300 || u.User != 2700 || len(u.Percpu) != 2 || u.PercpuKernel[1] != 200 || u.PercpuUser[0] != 900 {
		t.Errorf("cpu usage = %+v", u)
	}
	if st.CPU.Throttling != (Throttling{5, 2, 999}) {
		t.Errorf("throttling = %+v", st.CPU.Throttling)
	}
	if st.Memory.Cache != 4096 || st.Memory.Usage != (MemoryEntry{Limit: 1048576, Usage: 12288, Max: 20000, Failcnt: 2}) || st.Memory.Swap.Limit != 2097152 {
		t.Errorf("memory = %+v", st.Memory)
	}
	if st.Pids != (Pids{Current: 4}) {
		t.Errorf("pids = %+v", st.Pids)
	}
	if len(st.Blkio.IoServiceBytesRecursive) != 6 || st.Blkio.IoServiceBytesRecursive[0] != (BlkioEntry{8, 0, "Read", 4096}) {
		t.Errorf("blkio service bytes = %+v", st.Blkio.IoServiceBytesRecursive)
	}
	if len(st.Blkio.IoServicedRecursive) != 2 {
		t.Errorf("blkio serviced = %+v", st.Blkio.IoServicedRecursive)
	}
	if len(st.CPUSet.CPUs) != 2 || st.CPUSet.CPUExclusive != 1 {
		t.Errorf("cpuset = %+v", st.CPUSet)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 3 {
		t.Errorf("OOMKillCount = %d, %v", n, err)
	}
}

func TestV1CpuacctStatFallback(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"cpuacct.usage": "1", "cpuacct.usage_percpu": "1", "cpuacct.stat": "user 250\nsystem 50\n"})
	st := newStats()
	if err := v1StatCpuacct(dir, st); err != nil {
		t.Fatal(err)
	}
	if st.CPU.Usage.User != 2500000000 || st.CPU.Usage.Kernel != 500000000 {
		t.Fatalf("usage from ticks = %+v", st.CPU.Usage)
	}
}

func TestV1ApplyCopiesCpuset(t *testing.T) {
	noMountinfo(t)
	root := t.TempDir()
	for ctrl := range v1Files() {
		writeTree(t, filepath.Join(root, ctrl), map[string]string{"cgroup.procs": ""})
	}
	writeTree(t, filepath.Join(root, "cpuset"), map[string]string{"cpuset.cpus": "0-1\n", "cpuset.mems": "0\n"})
	// Stand in for the kernel: the new directory has empty cpuset files.
	dir := filepath.Join(root, "cpuset", "ctr")
	writeTree(t, dir, map[string]string{"cpuset.cpus": "", "cpuset.mems": "", "cgroup.procs": ""})
	for ctrl := range v1Files() {
		writeTree(t, filepath.Join(root, ctrl, "ctr"), map[string]string{"cgroup.procs": ""})
	}
	m, err := New("/ctr", "ctr", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(4321); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(dir, "cpuset.cpus")); got != "0-1" {
		t.Errorf("cpuset.cpus = %q", got)
	}
	if got := readTrim(t, filepath.Join(dir, "cpuset.mems")); got != "0" {
		t.Errorf("cpuset.mems = %q", got)
	}
	for ctrl := range v1Files() {
		if got := readTrim(t, filepath.Join(root, ctrl, "ctr", "cgroup.procs")); got != "4321" {
			t.Errorf("%s cgroup.procs = %q", ctrl, got)
		}
	}
}

func TestV1FreezerState(t *testing.T) {
	m, root := newFakeV1(t)
	dir := filepath.Join(root, "freezer", "test", "ctr")
	if st, err := m.FreezerState(); err != nil || st != Thawed {
		t.Fatalf("state = %q, %v", st, err)
	}
	// Our fake freezer.state reads back what was written: freezes at once.
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.FreezerState(); st != Frozen {
		t.Fatalf("after Freeze: %q", st)
	}
	// Frozen only through an ancestor: not paused.
	if err := os.WriteFile(filepath.Join(dir, "freezer.self_freezing"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.FreezerState(); st != Thawed {
		t.Fatalf("ancestor-frozen reported %q", st)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(dir, "freezer.state")); got != Thawed {
		t.Fatalf("freezer.state = %q", got)
	}
}
