package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestV2SetWritesFiles(t *testing.T) {
	tests := []struct {
		name  string
		extra map[string]string
		res   specs.LinuxResources
		want  map[string]string
	}{
		{
			name: "memory limit, swap as swap-only, reservation",
			res:  specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20), Reservation: i64(128 << 20)}},
			want: map[string]string{"memory.max": "268435456", "memory.swap.max": "268435456", "memory.low": "134217728"},
		},
		{
			name: "swap equal to memory disables swap",
			res:  specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100 << 20), Swap: i64(100 << 20)}},
			want: map[string]string{"memory.max": "104857600", "memory.swap.max": "0"},
		},
		{
			name: "unlimited memory makes swap unlimited",
			res:  specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}},
			want: map[string]string{"memory.max": "max", "memory.swap.max": "max"},
		},
		{
			name: "cpu shares to weight, quota and period, burst, idle",
			res:  specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Burst: u64(1000), Idle: i64(1)}},
			want: map[string]string{"cpu.weight": "39", "cpu.max": "50000 100000", "cpu.max.burst": "1000", "cpu.idle": "1"},
		},
		{
			name: "unlimited quota keeps period",
			res:  specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1), Period: u64(250000)}},
			want: map[string]string{"cpu.max": "max 250000"},
		},
		{
			name: "cpuset",
			res:  specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-1", Mems: "0"}},
			want: map[string]string{"cpuset.cpus": "0-1", "cpuset.mems": "0"},
		},
		{
			name: "pids limit and unlimited",
			res:  specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(42)}},
			want: map[string]string{"pids.max": "42"},
		},
		{
			name: "pids zero is unlimited",
			res:  specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}},
			want: map[string]string{"pids.max": "max"},
		},
		{
			name: "io weight without bfq is converted",
			res:  specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(500)}},
			want: map[string]string{"io.weight": "4950"},
		},
		{
			name:  "io weight with bfq is written as is",
			extra: map[string]string{"io.bfq.weight": "default 100"},
			res: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(500),
				WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: u16(300)}}}},
			want: map[string]string{"io.bfq.weight": "8:0 300"}, // the last write wins in a plain file
		},
		{
			name: "io throttle",
			res: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 0}},
			}},
			want: map[string]string{"io.max": "8:16 wiops=max"},
		},
		{
			name: "hugetlb",
			res:  specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}},
			want: map[string]string{"hugetlb.2MB.max": "4194304"},
		},
		{
			name:  "hugetlb reservation limit follows",
			extra: map[string]string{"hugetlb.1GB.rsvd.max": "max"},
			res:   specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "1GB", Limit: 1 << 30}}},
			want:  map[string]string{"hugetlb.1GB.max": "1073741824", "hugetlb.1GB.rsvd.max": "1073741824"},
		},
		{
			name:  "rdma",
			extra: map[string]string{"rdma.max": ""},
			res:   specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: u32(3), HcaObjects: u32(100)}}},
			want:  map[string]string{"rdma.max": "mlx5_0 hca_handle=3 hca_object=100"},
		},
		{
			name: "unified overrides",
			res:  specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}, Unified: map[string]string{"memory.high": "536870912", "memory.max": "2147483648"}},
			want: map[string]string{"memory.high": "536870912", "memory.max": "2147483648"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, dir := newFakeV2(t, tc.extra)
			if err := m.Set(&tc.res); err != nil {
				t.Fatalf("Set: %v", err)
			}
			for f, want := range tc.want {
				if got := readTrim(t, filepath.Join(dir, f)); got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
		})
	}
}

func TestV2SetErrors(t *testing.T) {
	tests := []struct {
		name    string
		res     specs.LinuxResources
		wantErr string
	}{
		{"swap without memory", specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: i64(1 << 20)}}, "needs a memory.limit"},
		{"swap below memory", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(2 << 20), Swap: i64(1 << 20)}}, "below memory.limit"},
		{"realtime", specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1000)}}, "realtime"},
		{"unified slash", specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, "invalid linux.resources.unified key"},
		{"unified dotdot", specs.LinuxResources{Unified: map[string]string{"memory..max": "1"}}, "invalid linux.resources.unified key"},
		{"unified no dot", specs.LinuxResources{Unified: map[string]string{"memory": "1"}}, "invalid linux.resources.unified key"},
		{"unified cgroup.procs", specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, "managed by the runtime"},
		{"unified missing file", specs.LinuxResources{Unified: map[string]string{"misc.max": "x 1"}}, "controller not enabled"},
		{"controller missing", specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx": {HcaHandles: u32(1)}}}, "rdma controller not enabled"},
		{"weight device without bfq", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{{Weight: u16(10)}}}}, "BFQ"},
		{"bad hugepage size", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2M", Limit: 1}}}, "invalid hugepage size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newFakeV2(t, nil)
			err := m.Set(&tc.res)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Set error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestV2CheckBeforeUpdate(t *testing.T) {
	m, dir := newFakeV2(t, map[string]string{"memory.current": "50000000", "memory.swap.current": "10000000"})
	lower := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(40000000), CheckBeforeUpdate: boolp(true)}}
	if err := m.Set(lower); err == nil || !strings.Contains(err.Error(), "below current usage") {
		t.Fatalf("lowering under usage: err = %v", err)
	}
	if got := readTrim(t, filepath.Join(dir, "memory.max")); got != "max" {
		t.Fatalf("memory.max changed to %q after a refused update", got)
	}
	swap := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(55000000), Swap: i64(60000000), CheckBeforeUpdate: boolp(true)}}
	if err := m.Set(swap); err == nil || !strings.Contains(err.Error(), "memory+swap") {
		t.Fatalf("memory+swap under usage: err = %v", err)
	}
	ok := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(60000000), CheckBeforeUpdate: boolp(true)}}
	if err := m.Set(ok); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(dir, "memory.max")); got != "60000000" {
		t.Fatalf("memory.max = %q", got)
	}
	// Without the flag the kernel decides; we write.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(40000000)}}); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(dir, "memory.max")); got != "40000000" {
		t.Fatalf("memory.max = %q", got)
	}
}

func TestV2ApplyEnablesControllers(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": "memory", "cgroup.procs": ""})
	m, err := New("/a/b", "x", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	// The fake cgroupfs does not make files in new directories; give the
	// intermediate and leaf the files the kernel would.
	writeTree(t, filepath.Join(root, "a"), map[string]string{"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": ""})
	writeTree(t, filepath.Join(root, "a", "b"), map[string]string{"cgroup.procs": ""})
	if err := m.Apply(1234); err != nil {
		t.Fatal(err)
	}
	// A real subtree_control accumulates; the fake file keeps the last write.
	if got := readTrim(t, filepath.Join(root, "cgroup.subtree_control")); got != "+cpu +pids" {
		t.Errorf("root subtree_control = %q, want the missing controllers", got)
	}
	if got := readTrim(t, filepath.Join(root, "a", "cgroup.subtree_control")); got != "+cpu +memory +pids" {
		t.Errorf("a/subtree_control = %q", got)
	}
	if got := readTrim(t, filepath.Join(root, "a", "b", "cgroup.procs")); got != "1234" {
		t.Errorf("cgroup.procs = %q", got)
	}
	if p := m.Paths(); len(p) != 1 || p[""] != filepath.Join(root, "a", "b") {
		t.Errorf("Paths = %v", p)
	}
}

func TestV2Stats(t *testing.T) {
	m, _ := newFakeV2(t, map[string]string{
		"cpu.stat":              "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 10\nnr_throttled 3\nthrottled_usec 700\nnr_bursts 0\nburst_usec 0\n",
		"cpu.pressure":          "some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
		"memory.stat":           "anon 4096\nfile 8192\nkernel 1024\nsock 0\nshmem 0\npgfault 77\n",
		"memory.current":        "16384",
		"memory.max":            "1048576",
		"memory.peak":           "20000",
		"memory.events":         "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
		"memory.swap.current":   "100",
		"memory.swap.max":       "max",
		"pids.current":          "3",
		"pids.max":              "100",
		"io.stat":               "8:0 rbytes=1024 wbytes=2048 rios=4 wios=8 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
		"cpuset.cpus.effective": "0-1\n",
		"cpuset.mems.effective": "0\n",
	})
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU.Usage.Total != 2000000 || st.CPU.Usage.User != 1500000 || st.CPU.Usage.Kernel != 500000 {
		t.Errorf("cpu usage = %+v", st.CPU.Usage)
	}
	if st.CPU.Throttling != (Throttling{Periods: 10, ThrottledPeriods: 3, ThrottledTime: 700000}) {
		t.Errorf("throttling = %+v", st.CPU.Throttling)
	}
	if st.CPU.PSI == nil || st.CPU.PSI.Some.Avg10 != 1.5 || st.CPU.PSI.Some.Total != 12345 {
		t.Errorf("cpu psi = %+v", st.CPU.PSI)
	}
	if st.Memory.Cache != 8192 || st.Memory.Raw["pgfault"] != 77 {
		t.Errorf("memory cache/raw = %d %v", st.Memory.Cache, st.Memory.Raw)
	}
	if st.Memory.Usage != (MemoryEntry{Usage: 16384, Limit: 1048576, Max: 20000, Failcnt: 4}) {
		t.Errorf("memory usage = %+v", st.Memory.Usage)
	}
	// swap is memory+swap with an unlimited limit left as is.
	if st.Memory.Swap.Usage != 16484 || st.Memory.Swap.Limit != ^uint64(0) {
		t.Errorf("memory swap = %+v", st.Memory.Swap)
	}
	if st.Pids != (Pids{Current: 3, Limit: 100}) {
		t.Errorf("pids = %+v", st.Pids)
	}
	wantIO := []BlkioEntry{{8, 0, "Read", 1024}, {8, 0, "Write", 2048}, {253, 1, "Read", 1}, {253, 1, "Write", 0}}
	if len(st.Blkio.IoServiceBytesRecursive) != len(wantIO) {
		t.Fatalf("io service bytes = %+v", st.Blkio.IoServiceBytesRecursive)
	}
	for i, e := range wantIO {
		if st.Blkio.IoServiceBytesRecursive[i] != e {
			t.Errorf("io service bytes[%d] = %+v, want %+v", i, st.Blkio.IoServiceBytesRecursive[i], e)
		}
	}
	if len(st.Blkio.IoServicedRecursive) != 4 || st.Blkio.IoServicedRecursive[1] != (BlkioEntry{8, 0, "Write", 8}) {
		t.Errorf("io serviced = %+v", st.Blkio.IoServicedRecursive)
	}
	if len(st.CPUSet.CPUs) != 2 || st.CPUSet.CPUs[1] != 1 || len(st.CPUSet.Mems) != 1 {
		t.Errorf("cpuset = %+v", st.CPUSet)
	}
	n, err := m.OOMKillCount()
	if err != nil || n != 1 {
		t.Errorf("OOMKillCount = %d, %v", n, err)
	}
}

func TestV2FreezeThaw(t *testing.T) {
	m, dir := newFakeV2(t, nil)
	// The fake kernel: report "frozen 1" in cgroup.events. Freeze must
	// not return before it sees it, whenever it lands.
	done := make(chan error, 1)
	go func() {
		done <- os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated 1\nfrozen 1\n"), 0o644)
	}()
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(dir, "cgroup.freeze")); got != "1" {
		t.Fatalf("cgroup.freeze = %q", got)
	}
	if st, err := m.FreezerState(); err != nil || st != Frozen {
		t.Fatalf("FreezerState = %q, %v", st, err)
	}
	go func() {
		done <- os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated 1\nfrozen 0\n"), 0o644)
	}()
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	<-done
	if st, err := m.FreezerState(); err != nil || st != Thawed {
		t.Fatalf("FreezerState = %q, %v", st, err)
	}
}

func TestV2KillAllUsesCgroupKill(t *testing.T) {
	m, dir := newFakeV2(t, nil)
	if err := m.KillAll(9); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(dir, "cgroup.kill")); got != "1" {
		t.Fatalf("cgroup.kill = %q", got)
	}
}

func TestV2PidsRecursive(t *testing.T) {
	m, dir := newFakeV2(t, map[string]string{"cgroup.procs": "10\n11\n", "sub/cgroup.procs": "12\n", "sub/deeper/cgroup.procs": "13\n"})
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, p := range pids {
		got[p] = true
	}
	for _, want := range []int{10, 11, 12, 13} {
		if !got[want] {
			t.Errorf("pid %d missing from %v (tree %s)", want, pids, dir)
		}
	}
	if len(pids) != 4 {
		t.Errorf("Pids = %v", pids)
	}
}

func TestV2NotifyOOM(t *testing.T) {
	m, dir := newFakeV2(t, map[string]string{"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"})
	stop := make(chan struct{})
	defer close(stop)
	ch, err := m.NotifyOOM(stop)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, ok := <-ch; !ok {
			t.Fatalf("channel closed before OOM event %d", i+1)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated 0\nfrozen 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("got an OOM event for an emptied cgroup; want the channel closed")
	}
}
