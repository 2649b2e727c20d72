package cgroups

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// v2Manager manages one directory in the cgroup v2 unified hierarchy.
type v2Manager struct {
	mu       sync.Mutex
	root     string // mount point of the unified hierarchy
	dir      string
	rootless bool
	explicit bool
	prepared *Placement // what Prepare made, so it runs once
}

func (m *v2Manager) Paths() map[string]string { return map[string]string{"": m.dir} }

func (m *v2Manager) Exists() bool { return fileExists(m.dir) }

func (m *v2Manager) Apply(pid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.create()
	if err == nil {
		err = WritePid(m.dir, pid)
	}
	if err != nil {
		if m.rootless && !m.explicit && isPermission(err) {
			logrus.Debugf("cgroup %s: %v (rootless, continuing without it)", m.dir, err)
			return nil
		}
		return fmt.Errorf("join cgroup %s: %w", m.dir, err)
	}
	return nil
}

func (m *v2Manager) CloneTarget() (string, error) {
	p, err := m.Prepare()
	if err != nil {
		return "", err
	}
	return p.Dir, nil
}

func (m *v2Manager) Prepare() (*Placement, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.prepared != nil {
		return m.prepared, nil
	}
	if err := m.create(); err != nil {
		if m.rootless && !m.explicit && isPermission(err) {
			logrus.Debugf("cgroup %s: %v (rootless, continuing without it)", m.dir, err)
			m.prepared = &Placement{BestEffort: true}
			return m.prepared, nil
		}
		return nil, fmt.Errorf("create cgroup %s: %w", m.dir, err)
	}
	m.prepared = &Placement{Dir: m.dir}
	return m.prepared, nil
}

// create makes m.dir, enabling every available controller in the
// subtree_control of each ancestor below the root so the new cgroup gets
// the files for them.
func (m *v2Manager) create() error {
	rel, err := filepath.Rel(m.root, m.dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is not below %s", m.dir, m.root)
	}
	cur := m.root
	for _, e := range strings.Split(rel, string(filepath.Separator)) {
		enableControllers(cur)
		cur = filepath.Join(cur, e)
		if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return nil
}

// enableControllers writes "+c" for each controller of dir into its
// cgroup.subtree_control. Failures are left for Set to report precisely
// (a cgroup with processes in it, or a rootless caller, cannot delegate).
func enableControllers(dir string) {
	s, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return
	}
	ctrls := strings.Fields(s)
	if len(ctrls) == 0 {
		return
	}
	enabled, _ := readFile(dir, "cgroup.subtree_control")
	have := make(map[string]bool)
	for _, c := range strings.Fields(enabled) {
		have[c] = true
	}
	var want []string
	for _, c := range ctrls {
		if !have[c] {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return
	}
	if writeFile(dir, "cgroup.subtree_control", strings.Join(want, " ")) == nil {
		return
	}
	for _, c := range want {
		_ = writeFile(dir, "cgroup.subtree_control", c)
	}
}

func (m *v2Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := validateUnified(r.Unified); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	steps := []func(*specs.LinuxResources) error{
		m.setPids, m.setMemory, m.setIO, m.setCPU, m.setCpuset,
		m.setHugetlb, m.setRdma, m.setNetwork, m.setDevices, m.setUnified,
	}
	for _, s := range steps {
		if err := s(r); err != nil {
			return err
		}
	}
	return nil
}

// write writes a control file, turning a missing file into an error that
// names the controller to enable.
func (m *v2Manager) write(name, value, what string) error {
	err := writeFile(m.dir, name, value)
	if err != nil && errors.Is(err, os.ErrNotExist) {
		ctrl, _, _ := strings.Cut(name, ".")
		return fmt.Errorf("cannot set %s: %s has no %s (is the %s controller enabled in the parent's cgroup.subtree_control?)", what, m.dir, name, ctrl)
	}
	return err
}

func (m *v2Manager) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	return m.write("pids.max", pidsLimit(*r.Pids.Limit), "linux.resources.pids")
}

func (m *v2Manager) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	if mem.Kernel != nil {
		logrus.Warn("linux.resources.memory.kernel is ignored: cgroup v2 has no kernel memory limit")
	}
	if mem.KernelTCP != nil {
		logrus.Warn("linux.resources.memory.kernelTCP is ignored: cgroup v2 has no kernel TCP memory limit")
	}
	if mem.Swappiness != nil {
		logrus.Warn("linux.resources.memory.swappiness is ignored: cgroup v2 has no per-cgroup swappiness")
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		logrus.Warn("linux.resources.memory.disableOOMKiller is ignored: cgroup v2 cannot disable the OOM killer")
	}
	var limit, swap, reservation int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	if mem.Reservation != nil {
		reservation = *mem.Reservation
	}
	if limit == 0 && swap == 0 && reservation == 0 {
		return nil
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate {
		if err := checkMemoryUsage(m.dir, "memory.current", "memory.swap.current", limit, swap, false); err != nil {
			return err
		}
	}
	v2swap, err := SwapToV2(swap, limit)
	if err != nil {
		return fmt.Errorf("linux.resources.memory: %w", err)
	}
	swapStr := ""
	switch {
	case v2swap != 0:
		swapStr = v2Limit(v2swap)
	case swap > 0:
		swapStr = "0" // swap == memory: no swap at all
	}
	if swapStr != "" {
		if err := writeFile(m.dir, "memory.swap.max", swapStr); err != nil {
			// Without swap accounting there is nothing to limit; only
			// "unlimited" and "none" are harmless to drop.
			if !(errors.Is(err, os.ErrNotExist) && (swapStr == "max" || swapStr == "0")) {
				return err
			}
		}
	}
	if limit != 0 {
		if err := m.write("memory.max", v2Limit(limit), "linux.resources.memory.limit"); err != nil {
			return err
		}
	}
	if reservation != 0 {
		if err := m.write("memory.low", v2Limit(reservation), "linux.resources.memory.reservation"); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2Manager) setIO(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	bfq := fileExists(filepath.Join(m.dir, "io.bfq.weight"))
	if b.Weight != nil && *b.Weight != 0 {
		if bfq {
			// BFQ takes the v1 range [1, 1000] as is.
			if err := m.write("io.bfq.weight", strconv.FormatUint(uint64(*b.Weight), 10), "linux.resources.blockIO.weight"); err != nil {
				return err
			}
		} else if err := m.write("io.weight", strconv.FormatUint(BlkioWeightToIOWeight(*b.Weight), 10), "linux.resources.blockIO.weight"); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		logrus.Warn("linux.resources.blockIO.leafWeight is ignored: cgroup v2 has no leaf weight")
	}
	for _, wd := range b.WeightDevice {
		if wd.LeafWeight != nil {
			logrus.Warn("linux.resources.blockIO.weightDevice[].leafWeight is ignored: cgroup v2 has no leaf weight")
		}
		if wd.Weight == nil {
			continue
		}
		if !bfq {
			return fmt.Errorf("cannot set linux.resources.blockIO.weightDevice: per-device weights need the BFQ I/O scheduler (%s has no io.bfq.weight)", m.dir)
		}
		if err := m.write("io.bfq.weight", fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight), "linux.resources.blockIO.weightDevice"); err != nil {
			return err
		}
	}
	throttles := []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice},
		{"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice},
		{"wiops", b.ThrottleWriteIOPSDevice},
	}
	for _, t := range throttles {
		for _, d := range t.devs {
			if err := m.write("io.max", ioMaxLine(d, t.key), "linux.resources.blockIO throttling"); err != nil {
				return err
			}
		}
	}
	return nil
}

// ioMaxLine renders one io.max limit; rate 0 lifts the limit, as it does
// in v1.
func ioMaxLine(d specs.LinuxThrottleDevice, key string) string {
	rate := "max"
	if d.Rate != 0 {
		rate = strconv.FormatUint(d.Rate, 10)
	}
	return fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, key, rate)
}

func (m *v2Manager) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	if (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) || (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) {
		return errors.New("cannot set linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime CPU limits")
	}
	if c.Shares != nil && *c.Shares != 0 {
		w := CPUSharesToWeight(*c.Shares)
		if err := m.write("cpu.weight", strconv.FormatUint(w, 10), "linux.resources.cpu.shares"); err != nil {
			return err
		}
	}
	var quota int64
	var period uint64
	if c.Quota != nil {
		quota = *c.Quota
	}
	if c.Period != nil {
		period = *c.Period
	}
	if quota != 0 || period != 0 {
		v := "max"
		if quota > 0 {
			v = strconv.FormatInt(quota, 10)
		}
		if period != 0 {
			v += " " + strconv.FormatUint(period, 10)
		}
		if err := m.write("cpu.max", v, "linux.resources.cpu.quota/period"); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := m.write("cpu.max.burst", strconv.FormatUint(*c.Burst, 10), "linux.resources.cpu.burst"); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := m.write("cpu.idle", strconv.FormatInt(*c.Idle, 10), "linux.resources.cpu.idle"); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2Manager) setCpuset(r *specs.LinuxResources) error {
	if r.CPU == nil {
		return nil
	}
	if r.CPU.Cpus != "" {
		if err := m.write("cpuset.cpus", r.CPU.Cpus, "linux.resources.cpu.cpus"); err != nil {
			return err
		}
	}
	if r.CPU.Mems != "" {
		if err := m.write("cpuset.mems", r.CPU.Mems, "linux.resources.cpu.mems"); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2Manager) setHugetlb(r *specs.LinuxResources) error {
	for _, h := range r.HugepageLimits {
		size, err := hugePageSizeName(h.Pagesize)
		if err != nil {
			return err
		}
		v := strconv.FormatUint(h.Limit, 10)
		if err := m.write("hugetlb."+size+".max", v, "linux.resources.hugepageLimits"); err != nil {
			return err
		}
		rsvd := "hugetlb." + size + ".rsvd.max"
		if fileExists(filepath.Join(m.dir, rsvd)) {
			if err := writeFile(m.dir, rsvd, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v2Manager) setRdma(r *specs.LinuxResources) error {
	if len(r.Rdma) == 0 {
		return nil
	}
	if !fileExists(filepath.Join(m.dir, "rdma.max")) {
		return fmt.Errorf("cannot set linux.resources.rdma: %s has no rdma.max (rdma controller not enabled)", m.dir)
	}
	return writeRdma(m.dir, r.Rdma)
}

func (m *v2Manager) setNetwork(r *specs.LinuxResources) error {
	if r.Network != nil && (r.Network.ClassID != nil || len(r.Network.Priorities) > 0) {
		logrus.Warn("linux.resources.network is ignored: cgroup v2 has no net_cls/net_prio controllers")
	}
	return nil
}

func (m *v2Manager) setDevices(r *specs.LinuxResources) error {
	if r.Devices == nil {
		return nil
	}
	rules, err := parseDeviceRules(r.Devices)
	if err != nil {
		return err
	}
	logrus.Debugf("device filter for %s: %s", m.dir, deviceRulesString(rules))
	if err := attachDeviceFilter(m.dir, rules); err != nil {
		if m.rootless {
			logrus.Debugf("rootless: %v", err)
			return nil
		}
		return err
	}
	return nil
}

func (m *v2Manager) setUnified(r *specs.LinuxResources) error {
	for k, v := range r.Unified {
		if err := writeFile(m.dir, k, v); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("cannot set linux.resources.unified %q: no such file in %s (controller not enabled or not supported by this kernel)", k, m.dir)
			}
			return fmt.Errorf("linux.resources.unified %q: %w", k, err)
		}
	}
	return nil
}

func (m *v2Manager) Freeze() error { return m.setFrozen(true) }
func (m *v2Manager) Thaw() error   { return m.setFrozen(false) }

func (m *v2Manager) setFrozen(frozen bool) error {
	v, want := "0", "frozen 0"
	if frozen {
		v, want = "1", "frozen 1"
	}
	if err := writeFile(m.dir, "cgroup.freeze", v); err != nil {
		return err
	}
	if err := waitForEvent(m.dir, "cgroup.events", want, freezeTimeout); err != nil {
		if frozen {
			_ = writeFile(m.dir, "cgroup.freeze", "0")
		}
		return err
	}
	return nil
}

// waitForEvent waits until file (a cgroup.events-style "key value" file)
// contains the line want, watching it with inotify.
func waitForEvent(dir, file, want string, timeout time.Duration) error {
	p := filepath.Join(dir, file)
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	defer unix.Close(ifd)
	if _, err := unix.InotifyAddWatch(ifd, p, unix.IN_MODIFY); err != nil {
		return fmt.Errorf("watch %s: %w", p, err)
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for {
		s, err := readFile(dir, file)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(s, "\n") {
			if strings.TrimSpace(line) == want {
				return nil
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%s: no %q after %v", p, want, timeout)
		}
		fds := []unix.PollFd{{Fd: int32(ifd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll inotify: %w", err)
		}
		for {
			if _, err := unix.Read(ifd, buf); err != nil {
				break // drained (EAGAIN)
			}
		}
	}
}

func (m *v2Manager) FreezerState() (string, error) {
	s, err := readFile(m.dir, "cgroup.freeze")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Unknown, nil
		}
		return "", err
	}
	if strings.TrimSpace(s) != "1" {
		return Thawed, nil
	}
	// Asked to freeze; frozen once the kernel says so.
	kv, err := readKeyValues(m.dir, "cgroup.events")
	if err != nil {
		return "", err
	}
	if kv["frozen"] == 1 {
		return Frozen, nil
	}
	return Thawed, nil
}

func (m *v2Manager) Pids() ([]int, error) { return readProcsRecursive(m.dir) }

func (m *v2Manager) KillAll(sig unix.Signal) error {
	if sig == unix.SIGKILL && fileExists(filepath.Join(m.dir, "cgroup.kill")) {
		return writeFile(m.dir, "cgroup.kill", "1")
	}
	return signalFrozen(m, sig)
}

func (m *v2Manager) Destroy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return removeTree(m.dir)
}

func (m *v2Manager) OOMKillCount() (uint64, error) {
	kv, err := readKeyValues(m.dir, "memory.events")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil // no memory controller here
		}
		return 0, err
	}
	return kv["oom_kill"], nil
}

func (m *v2Manager) Stats() (*Stats, error) {
	st := newStats()
	if err := v2StatCPU(m.dir, st); err != nil {
		return nil, err
	}
	steps := []func(string, *Stats) error{v2StatMemory, v2StatPids, v2StatIO, v2StatCpuset, v2StatHugetlb}
	for _, f := range steps {
		// A controller that is not enabled has no files: no numbers.
		if err := f(m.dir, st); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return st, nil
}

func readPSI(dir, name string) *PSIStats {
	s, err := readFile(dir, name)
	if err != nil {
		return nil
	}
	p, err := parsePSI(s)
	if err != nil {
		return nil
	}
	return p
}

func v2StatCPU(dir string, st *Stats) error {
	kv, err := readKeyValues(dir, "cpu.stat")
	if err != nil {
		return err
	}
	st.CPU.Usage.Total = kv["usage_usec"] * 1000
	st.CPU.Usage.User = kv["user_usec"] * 1000
	st.CPU.Usage.Kernel = kv["system_usec"] * 1000
	st.CPU.Throttling = Throttling{
		Periods:          kv["nr_periods"],
		ThrottledPeriods: kv["nr_throttled"],
		ThrottledTime:    kv["throttled_usec"] * 1000,
	}
	st.CPU.PSI = readPSI(dir, "cpu.pressure")
	return nil
}

// v2MemoryEntry reads memory[.name].{current,max,peak}.
func v2MemoryEntry(dir, name string) (MemoryEntry, error) {
	pfx := "memory."
	if name != "" {
		pfx += name + "."
	}
	var e MemoryEntry
	var err error
	if e.Usage, err = readUint(dir, pfx+"current"); err != nil {
		return e, err
	}
	if e.Limit, err = readUint(dir, pfx+"max"); err != nil {
		return e, err
	}
	if e.Max, err = readUintOpt(dir, pfx+"peak"); err != nil {
		return e, err
	}
	return e, nil
}

func v2StatMemory(dir string, st *Stats) error {
	raw, err := readKeyValues(dir, "memory.stat")
	if err != nil {
		return err
	}
	st.Memory.Raw = raw
	st.Memory.Cache = raw["file"]
	if st.Memory.Usage, err = v2MemoryEntry(dir, ""); err != nil {
		return err
	}
	if ev, err := readKeyValues(dir, "memory.events"); err == nil {
		st.Memory.Usage.Failcnt = ev["max"]
	}
	swap, err := v2MemoryEntry(dir, "swap")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err == nil {
		// Report memory+swap like v1 does.
		swap.Usage += st.Memory.Usage.Usage
		if swap.Limit != math.MaxUint64 {
			swap.Limit += st.Memory.Usage.Limit
		}
		swap.Max = 0
		st.Memory.Swap = swap
	}
	st.Memory.PSI = readPSI(dir, "memory.pressure")
	return nil
}

func v2StatPids(dir string, st *Stats) error {
	cur, err := readUint(dir, "pids.current")
	if err != nil {
		return err
	}
	st.Pids.Current = cur
	st.Pids.Limit, err = readPidsMax(dir)
	return err
}

// parseIOStat maps io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...")
// onto the v1-shaped service bytes / serviced lists.
func parseIOStat(content string, b *Blkio) {
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		ma, err1 := strconv.ParseUint(maj, 10, 64)
		mi, err2 := strconv.ParseUint(min, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			val, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			e := BlkioEntry{Major: ma, Minor: mi, Value: val}
			switch k {
			case "rbytes":
				e.Op = "Read"
				b.IoServiceBytesRecursive = append(b.IoServiceBytesRecursive, e)
			case "wbytes":
				e.Op = "Write"
				b.IoServiceBytesRecursive = append(b.IoServiceBytesRecursive, e)
			case "rios":
				e.Op = "Read"
				b.IoServicedRecursive = append(b.IoServicedRecursive, e)
			case "wios":
				e.Op = "Write"
				b.IoServicedRecursive = append(b.IoServicedRecursive, e)
			}
		}
	}
}

func v2StatIO(dir string, st *Stats) error {
	s, err := readFile(dir, "io.stat")
	if err != nil {
		return err
	}
	parseIOStat(s, &st.Blkio)
	st.Blkio.PSI = readPSI(dir, "io.pressure")
	return nil
}

func v2StatCpuset(dir string, st *Stats) error {
	s, err := readFile(dir, "cpuset.cpus.effective")
	if err != nil {
		return err
	}
	if st.CPUSet.CPUs, err = parseCPUList(s); err != nil {
		return err
	}
	if s, err = readFile(dir, "cpuset.mems.effective"); err != nil {
		return err
	}
	st.CPUSet.Mems, err = parseCPUList(s)
	return err
}

func v2StatHugetlb(dir string, st *Stats) error {
	for _, size := range hugePageSizes() {
		pfx := "hugetlb." + size + "."
		usage, err := readUint(dir, pfx+"current")
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		h := Hugetlb{Usage: usage}
		if ev, err := readKeyValues(dir, pfx+"events"); err == nil {
			h.Failcnt = ev["max"]
		}
		st.Hugetlb[size] = h
	}
	return nil
}
