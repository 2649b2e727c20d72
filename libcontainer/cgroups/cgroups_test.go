package cgroups

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDetectModeFakeTrees(t *testing.T) {
	unified := t.TempDir()
	writeTree(t, unified, map[string]string{"cgroup.controllers": "cpu"})
	hybrid := t.TempDir()
	writeTree(t, hybrid, map[string]string{"unified/cgroup.controllers": "", "memory/cgroup.procs": ""})
	legacy := t.TempDir()
	writeTree(t, legacy, map[string]string{"memory/cgroup.procs": ""})
	for dir, want := range map[string]Mode{unified: Unified, hybrid: Hybrid, legacy: Legacy} {
		if got := DetectMode(dir); got != want {
			t.Errorf("DetectMode(%s) = %v, want %v", dir, got, want)
		}
	}
}

func TestNewPathsV2(t *testing.T) {
	setProcSelfCgroup(t, "0::/user.slice/session-1.scope\n")
	root := t.TempDir()
	writeTree(t, root, map[string]string{"cgroup.controllers": ""})
	tests := []struct{ path, id, want string }{
		{"/kubepods/pod1/abc", "abc", "/kubepods/pod1/abc"},
		{"", "abc", "/user.slice/abc"},            // relative to the parent of our cgroup
		{"foo/bar", "abc", "/user.slice/foo/bar"}, // relative
		{"/../../etc", "abc", "/etc"},             // cannot climb out
		{"../../../x", "abc", "/user.slice/x"},    // relative cannot climb out either
	}
	for _, tc := range tests {
		m, err := New(tc.path, tc.id, Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Paths()[""]; got != filepath.Join(root, tc.want) {
			t.Errorf("New(%q, %q) dir = %s, want %s", tc.path, tc.id, got, filepath.Join(root, tc.want))
		}
	}
}

func TestNewPathsHybrid(t *testing.T) {
	noMountinfo(t)
	setProcSelfCgroup(t, "9:name=systemd:/\n4:memory:/svc\n5:devices:/\n0::/init.scope\n")
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"unified/cgroup.controllers": "", "memory/cgroup.procs": "", "devices/cgroup.procs": "", "systemd/cgroup.procs": "",
		"cpu,cpuacct/cgroup.procs": "",
	})
	m, err := New("", "ctr1", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory":       root + "/memory/svc/ctr1",
		"devices":      root + "/devices/ctr1",
		"name=systemd": root + "/systemd/ctr1",
		"cpu":          root + "/cpu,cpuacct/ctr1",
		"cpuacct":      root + "/cpu,cpuacct/ctr1",
		"":             root + "/unified/init.scope/ctr1",
	}
	got := m.Paths()
	if len(got) != len(want) {
		t.Errorf("Paths = %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Paths[%q] = %q, want %q", k, got[k], v)
		}
	}
	abs, err := New("/a/b", "ctr1", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if p := abs.Paths(); p["memory"] != root+"/memory/a/b" || p[""] != root+"/unified/a/b" {
		t.Errorf("absolute Paths = %v", p)
	}
	// Load from saved paths gives back the same.
	l, err := Load(got, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if lp := l.Paths(); lp["memory"] != want["memory"] || lp[""] != want[""] {
		t.Errorf("Load Paths = %v", lp)
	}
}

func TestLoadV2RejectsV1Paths(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"cgroup.controllers": ""})
	if _, err := Load(map[string]string{"memory": "/x"}, Options{Root: root}); err == nil {
		t.Fatal("Load accepted v1 paths on a v2 host")
	}
	m, err := Load(map[string]string{"": root + "/x"}, Options{Root: root})
	if err != nil || m.Paths()[""] != root+"/x" {
		t.Fatalf("Load = %v, %v", m, err)
	}
}

func TestSystemd(t *testing.T) {
	old := systemdRunDir
	t.Cleanup(func() { systemdRunDir = old })
	systemdRunDir = filepath.Join(t.TempDir(), "missing")
	_, err := New("system.slice:crossrun:abc", "abc", Options{Systemd: true, Root: t.TempDir()})
	if !errors.Is(err, ErrSystemdNotRunning) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "--systemd-cgroup") {
		t.Fatalf("err = %v", err)
	}

	systemdRunDir = t.TempDir()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"cgroup.controllers": ""})
	tests := []struct{ path, want string }{
		{"kubepods-besteffort-pod12.slice:cri-containerd:abc", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope"},
		{"", "/system.slice/crossrun-abc.scope"},
		{":pfx:abc", "/system.slice/pfx-abc.scope"},
		{"machine.slice::sub.slice", "/machine.slice/sub.slice"},
	}
	for _, tc := range tests {
		m, err := New(tc.path, "abc", Options{Systemd: true, Root: root})
		if err != nil {
			t.Fatalf("%q: %v", tc.path, err)
		}
		if got := m.Paths()[""]; got != root+tc.want {
			t.Errorf("%q -> %s, want %s", tc.path, got, root+tc.want)
		}
	}
	for _, bad := range []string{"a:b", "noslice:p:n", "a--b.slice:p:n"} {
		if _, err := New(bad, "abc", Options{Systemd: true, Root: root}); err == nil {
			t.Errorf("New(%q) accepted a bad systemd path", bad)
		}
	}
}

func TestConversions(t *testing.T) {
	for shares, want := range map[uint64]uint64{0: 0, 2: 1, 1024: 39, 262144: 10000, 1: 1, 500000: 10000} {
		if got := CPUSharesToWeight(shares); got != want {
			t.Errorf("CPUSharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	for w, want := range map[uint16]uint64{0: 0, 10: 1, 100: 910, 500: 4950, 1000: 10000} {
		if got := BlkioWeightToIOWeight(w); got != want {
			t.Errorf("BlkioWeightToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
	swaps := []struct {
		swap, mem, want int64
		err             bool
	}{
		{0, 0, 0, false}, {-1, 100, -1, false}, {0, -1, -1, false}, {300, 100, 200, false}, {100, 100, 0, false},
		{50, 100, 0, true}, {100, 0, 0, true}, {100, -1, 0, true},
	}
	for _, s := range swaps {
		got, err := SwapToV2(s.swap, s.mem)
		if (err != nil) != s.err || got != s.want {
			t.Errorf("SwapToV2(%d, %d) = %d, %v; want %d, err=%v", s.swap, s.mem, got, err, s.want, s.err)
		}
	}
}

func TestParseHelpers(t *testing.T) {
	l, err := parseCPUList("0-2,5,7-8")
	if err != nil || len(l) != 6 || l[3] != 5 || l[5] != 8 {
		t.Errorf("parseCPUList = %v, %v", l, err)
	}
	if _, err := parseCPUList("3-1"); err == nil {
		t.Error("parseCPUList accepted a reversed range")
	}
	if got := formatPageSize(2 << 20); got != "2MB" {
		t.Errorf("formatPageSize(2MiB) = %s", got)
	}
	if got := formatPageSize(1 << 30); got != "1GB" {
		t.Errorf("formatPageSize(1GiB) = %s", got)
	}
	if got := formatPageSize(64 << 10); got != "64KB" {
		t.Errorf("formatPageSize(64KiB) = %s", got)
	}
	m := parseProcCgroup("12:cpu,cpuacct:/a\n1:name=systemd:/b\n0::/c\n")
	if m["cpu"] != "/a" || m["cpuacct"] != "/a" || m["name=systemd"] != "/b" || m[""] != "/c" {
		t.Errorf("parseProcCgroup = %v", m)
	}
	mnt, fstype, super, ok := parseMountinfoLine(`35 24 0:30 / /sys/fs/cgroup/cpu\040x rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct`)
	if !ok || mnt != "/sys/fs/cgroup/cpu x" || fstype != "cgroup" || super != "rw,cpu,cpuacct" {
		t.Errorf("parseMountinfoLine = %q %q %q %v", mnt, fstype, super, ok)
	}
}

func TestStatsJSONShape(t *testing.T) {
	st := newStats()
	st.CPU.Usage = CPUUsage{Total: 1, Percpu: []uint64{1}, PercpuKernel: []uint64{1}, PercpuUser: []uint64{1}, Kernel: 1, User: 1}
	st.CPU.Throttling = Throttling{1, 1, 1}
	st.Memory = Memory{Cache: 1, Usage: MemoryEntry{1, 1, 1, 1}, Swap: MemoryEntry{1, 1, 1, 1}, Kernel: MemoryEntry{1, 1, 1, 1},
		KernelTCP: MemoryEntry{1, 1, 1, 1}, Raw: map[string]uint64{"x": 1}}
	st.Pids = Pids{1, 1}
	st.Blkio.IoServiceBytesRecursive = []BlkioEntry{{1, 1, "Read", 1}}
	st.Blkio.IoQueuedRecursive = []BlkioEntry{{1, 1, "Read", 1}}
	st.Hugetlb["2MB"] = Hugetlb{1, 1, 1}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, key := range []string{
		`"cpu":{"usage":{"total":1,"percpu":[1],"percpu_kernel":[1],"percpu_user":[1],"kernel":1,"user":1},"throttling":{"periods":1,"throttledPeriods":1,"throttledTime":1}}`,
		`"memory":{"cache":1,"usage":{"limit":1,"usage":1,"max":1,"failcnt":1},"swap":`, `"kernelTCP":`, `"raw":{"x":1}`,
		`"pids":{"current":1,"limit":1}`, `"ioServiceBytesRecursive":[{"major":1,"minor":1,"op":"Read","value":1}]`, `"ioQueueRecursive":`,
		`"hugetlb":{"2MB":{"usage":1,"max":1,"failcnt":1}}`, `"cpuset":{"cpu_exclusive":0`, `"intel_rdt":{}`, `"network_interfaces":null`,
	} {
		if !strings.Contains(s, key) {
			t.Errorf("JSON lacks %s\n%s", key, s)
		}
	}
}

func dev(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
	if major != -1 {
		d.Major = &major
	}
	if minor != -1 {
		d.Minor = &minor
	}
	return d
}

func TestDeviceRuleSemantics(t *testing.T) {
	base := []specs.LinuxDeviceCgroup{
		dev(false, "a", -1, -1, "rwm"),
		dev(true, "c", 1, 3, "rwm"),   // /dev/null
		dev(true, "c", 1, 5, "r"),     // /dev/zero read only
		dev(true, "c", 136, -1, "rw"), // pts
		dev(false, "c", 136, 2, "w"),  // but not writing pts/2
		dev(true, "b", -1, -1, "m"),   // mknod any block device
	}
	tests := []struct {
		typ          int
		major, minor int64
		access       int
		want         bool
	}{
		{devChar, 1, 3, accRead | accWrite, true},
		{devChar, 1, 3, accMknod, true},
		{devChar, 1, 5, accRead, true},
		{devChar, 1, 5, accRead | accWrite, false},
		{devChar, 136, 7, accRead | accWrite, true},
		{devChar, 136, 2, accRead, true},
		{devChar, 136, 2, accWrite, false},
		{devChar, 136, 2, accRead | accWrite, false},
		{devBlock, 8, 0, accMknod, true},
		{devBlock, 8, 0, accRead, false},
		{devChar, 10, 200, accRead, false},
	}
	rules, err := parseDeviceRules(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 6 || !rules[0].wildcard() || rules[0].allow {
		t.Fatalf("the leading deny-all should stay first as the reset: %+v", rules)
	}
	for _, tc := range tests {
		if got := allowed(rules, tc.typ, tc.major, tc.minor, tc.access); got != tc.want {
			t.Errorf("allowed(%d %d:%d acc=%d) = %v, want %v", tc.typ, tc.major, tc.minor, tc.access, got, tc.want)
		}
	}
	// A later wildcard allow overrides everything before it.
	all, _ := parseDeviceRules(append(base, dev(true, "a", -1, -1, "rwm")))
	if !allowed(all, devChar, 10, 200, accRead) || len(all) != 1 {
		t.Errorf("allow-all did not win: %+v", all)
	}
	// A partial "a" rule applies to both types.
	part, _ := parseDeviceRules([]specs.LinuxDeviceCgroup{dev(true, "a", -1, -1, "m")})
	if len(part) != 2 || !allowed(part, devBlock, 1, 1, accMknod) || !allowed(part, devChar, 1, 1, accMknod) || allowed(part, devChar, 1, 1, accRead) {
		t.Errorf("partial a rule = %+v", part)
	}
	// Empty access means rwm; empty type means all.
	emp, _ := parseDeviceRules([]specs.LinuxDeviceCgroup{{Allow: true}})
	if len(emp) != 1 || !emp[0].wildcard() {
		t.Errorf("empty rule = %+v", emp)
	}

	writes := v1DeviceWrites(rules)
	want := [][2]string{{"devices.deny", "a"}, {"devices.allow", "c 1:3 rwm"}, {"devices.allow", "c 1:5 r"},
		{"devices.allow", "c 136:* rw"}, {"devices.deny", "c 136:2 w"}, {"devices.allow", "b *:* m"}}
	if len(writes) != len(want) {
		t.Fatalf("v1 writes = %v", writes)
	}
	for i := range want {
		if writes[i] != want[i] {
			t.Errorf("v1 write %d = %v, want %v", i, writes[i], want[i])
		}
	}
}

func TestDeviceFilterAssembles(t *testing.T) {
	rules, err := parseDeviceRules([]specs.LinuxDeviceCgroup{
		dev(true, "c", 1, 3, "rwm"), dev(false, "c", 1, 3, "r"), dev(true, "b", 8, -1, "rw"),
	})
	if err != nil {
		t.Fatal(err)
	}
	code, err := deviceFilter(rules).encode()
	if err != nil {
		t.Fatalf("program does not encode: %v", err)
	}
	if len(code)%bpfInsnSize != 0 || len(code) == 0 {
		t.Fatalf("program is %d bytes", len(code))
	}
	if last := code[len(code)-bpfInsnSize]; last != opExit {
		t.Errorf("program does not end in exit: opcode %#x", last)
	}
	bad := &program{}
	bad.emit(jne32(r2, 1, "nowhere"), exit())
	if _, err := bad.encode(); err == nil {
		t.Error("a jump to an undefined label encoded")
	}
}

// runDeviceFilter executes an encoded device program the way the kernel
// would, for the instructions deviceFilter emits.
func runDeviceFilter(t *testing.T, code []byte, typ int, major, minor int64, access int) bool {
	t.Helper()
	var reg [11]uint64
	ctx := make([]byte, 12)
	hostEndian.PutUint32(ctx[0:], uint32(access<<16|typ))
	hostEndian.PutUint32(ctx[4:], uint32(major))
	hostEndian.PutUint32(ctx[8:], uint32(minor))
	n := len(code) / bpfInsnSize
	for pc, steps := 0, 0; pc < n; pc, steps = pc+1, steps+1 {
		if steps > 4096 {
			t.Fatal("program loops")
		}
		b := code[pc*bpfInsnSize:]
		op := b[0]
		dst, src := b[1]&0xf, b[1]>>4
		off := int16(hostEndian.Uint16(b[2:]))
		imm := int32(hostEndian.Uint32(b[4:]))
		switch op {
		case opLdxMemW:
			if src != r1 || off < 0 || int(off)+4 > len(ctx) {
				t.Fatalf("pc %d: load outside the context", pc)
			}
			reg[dst] = uint64(hostEndian.Uint32(ctx[off:]))
		case opMov32Reg:
			reg[dst] = uint64(uint32(reg[src]))
		case opMov32Imm:
			reg[dst] = uint64(uint32(imm))
		case opAnd32Imm:
			reg[dst] = uint64(uint32(reg[dst]) & uint32(imm))
		case opRsh32Imm:
			reg[dst] = uint64(uint32(reg[dst]) >> uint(imm))
		case opJeq32Imm:
			if uint32(reg[dst]) == uint32(imm) {
				pc += int(off)
			}
		case opJne32Imm:
			if uint32(reg[dst]) != uint32(imm) {
				pc += int(off)
			}
		case opExit:
			return reg[r0] != 0
		default:
			t.Fatalf("pc %d: unexpected opcode %#x", pc, op)
		}
	}
	t.Fatal("program ran off its end")
	return false
}

// The program decides every request as the reference evaluation does.
func TestDeviceFilterMatchesRules(t *testing.T) {
	sets := [][]specs.LinuxDeviceCgroup{
		{dev(true, "c", 1, 3, "rwm"), dev(false, "c", 1, 3, "r"), dev(true, "b", 8, -1, "rw")},
		{dev(true, "a", -1, -1, "rwm"), dev(false, "c", 5, 1, "w"), dev(false, "b", -1, -1, "m")},
		{dev(false, "a", -1, -1, "rwm"), dev(true, "c", 1, -1, "r"), dev(true, "c", -1, 9, "w"), dev(false, "c", 1, 9, "w")},
		{dev(true, "c", 0xfffffff0, 0x80000001, "rw")},
		{},
	}
	majors := []int64{0, 1, 5, 8, 0xfffffff0}
	minors := []int64{0, 1, 3, 9, 0x80000001}
	for si, devs := range sets {
		rules, err := parseDeviceRules(devs)
		if err != nil {
			t.Fatal(err)
		}
		code, err := deviceFilter(rules).encode()
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range []int{devBlock, devChar} {
			for _, ma := range majors {
				for _, mi := range minors {
					for acc := 1; acc <= accAll; acc++ {
						want := allowed(rules, typ, ma, mi, acc)
						if got := runDeviceFilter(t, code, typ, ma, mi, acc); got != want {
							t.Errorf("set %d: type %d %d:%d access %d: program says %v, rules say %v", si, typ, ma, mi, acc, got, want)
						}
					}
				}
			}
		}
	}
}
