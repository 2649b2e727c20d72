package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// v1Manager manages one directory per v1 hierarchy, plus on a hybrid host
// a directory in the unified hierarchy (key "") that only holds processes.
type v1Manager struct {
	mu       sync.Mutex
	root     string
	paths    map[string]string
	rootless bool
	explicit bool // cgroupsPath given (or loaded from state)
}

func (m *v1Manager) Paths() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := make(map[string]string, len(m.paths))
	for k, v := range m.paths {
		cp[k] = v
	}
	return cp
}

func (m *v1Manager) path(ctrl string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paths[ctrl]
}

// anyPath is a directory to list processes from: every hierarchy holds
// all of the container's processes.
func (m *v1Manager) anyPath() string {
	for _, c := range []string{"devices", "memory", "pids", "freezer", "cpu", "name=systemd", ""} {
		if p := m.path(c); p != "" {
			return p
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.paths {
		return p
	}
	return ""
}

func (m *v1Manager) Apply(pid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ctrls := make([]string, 0, len(m.paths))
	for c := range m.paths {
		ctrls = append(ctrls, c)
	}
	sort.Strings(ctrls)
	for _, c := range ctrls {
		p := m.paths[c]
		err := m.join(c, p, pid)
		if err == nil {
			continue
		}
		if m.rootless && !m.explicit && isPermission(err) {
			logrus.Debugf("cgroup %s: %v (rootless, continuing without it)", c, err)
			delete(m.paths, c)
			continue
		}
		return fmt.Errorf("join %s cgroup: %w", displayCtrl(c), err)
	}
	return nil
}

func (m *v1Manager) CloneTarget() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, ok := m.paths[""]
	if !ok {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		if m.rootless && !m.explicit && isPermission(err) {
			logrus.Debugf("cgroup %s: %v (rootless, continuing without it)", dir, err)
			delete(m.paths, "")
			return "", nil
		}
		return "", fmt.Errorf("create unified cgroup: %w", err)
	}
	return dir, nil
}

func (m *v1Manager) Prepare() (*Placement, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ctrls := make([]string, 0, len(m.paths))
	for c := range m.paths {
		ctrls = append(ctrls, c)
	}
	sort.Strings(ctrls)
	p := &Placement{BestEffort: m.rootless && !m.explicit}
	for _, c := range ctrls {
		dir := m.paths[c]
		var err error
		if c == "cpuset" {
			err = mkdirCpuset(dir)
		} else {
			err = os.MkdirAll(dir, 0o755)
		}
		if err != nil {
			if p.BestEffort && isPermission(err) {
				logrus.Debugf("cgroup %s: %v (rootless, continuing without it)", c, err)
				delete(m.paths, c)
				continue
			}
			return nil, fmt.Errorf("create %s cgroup: %w", displayCtrl(c), err)
		}
		if c == "" {
			p.Dir = dir
		} else {
			p.Tasks = append(p.Tasks, filepath.Join(dir, "tasks"))
		}
	}
	return p, nil
}

func displayCtrl(c string) string {
	if c == "" {
		return "unified"
	}
	return c
}

func (m *v1Manager) join(ctrl, dir string, pid int) error {
	if ctrl == "cpuset" {
		if err := mkdirCpuset(dir); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return WritePid(dir, pid)
}

// mkdirCpuset creates dir and its missing parents, copying cpuset.cpus and
// cpuset.mems down: a new v1 cpuset starts empty and takes no tasks.
func mkdirCpuset(dir string) error {
	parent := filepath.Dir(dir)
	if _, err := os.Stat(dir); err == nil {
		return fillCpuset(parent, dir)
	}
	if _, err := os.Stat(parent); errors.Is(err, os.ErrNotExist) {
		if err := mkdirCpuset(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return fillCpuset(parent, dir)
}

func fillCpuset(parent, dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readFile(dir, f)
		if err != nil {
			return err
		}
		if strings.TrimSpace(cur) != "" {
			continue
		}
		pv, err := readFile(parent, f)
		if err != nil {
			return err
		}
		if err := writeFile(dir, f, strings.TrimSpace(pv)); err != nil {
			return err
		}
	}
	return nil
}

// need returns the directory of ctrl or an error naming what was asked.
func (m *v1Manager) need(ctrl, what string) (string, error) {
	p := m.paths[ctrl]
	if p == "" {
		return "", fmt.Errorf("cannot set %s: the %s cgroup controller is not mounted or the container could not join it", what, ctrl)
	}
	return p, nil
}

func (m *v1Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Unified) > 0 {
		return errors.New("linux.resources.unified needs cgroup v2, and this host uses cgroup v1 controllers")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	steps := []func(*specs.LinuxResources) error{
		m.setCpuset, m.setDevices, m.setMemory, m.setCPU, m.setPids,
		m.setBlkio, m.setHugetlb, m.setNetwork, m.setRdma,
	}
	for _, s := range steps {
		if err := s(r); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) setCpuset(r *specs.LinuxResources) error {
	if r.CPU == nil || (r.CPU.Cpus == "" && r.CPU.Mems == "") {
		return nil
	}
	dir, err := m.need("cpuset", "linux.resources.cpu.cpus/mems")
	if err != nil {
		return err
	}
	if r.CPU.Cpus != "" {
		if err := writeFile(dir, "cpuset.cpus", r.CPU.Cpus); err != nil {
			return err
		}
	}
	if r.CPU.Mems != "" {
		if err := writeFile(dir, "cpuset.mems", r.CPU.Mems); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) setDevices(r *specs.LinuxResources) error {
	if r.Devices == nil {
		return nil
	}
	rules, err := parseDeviceRules(r.Devices)
	if err != nil {
		return err
	}
	dir := m.paths["devices"]
	if dir == "" {
		if m.rootless {
			return nil
		}
		return errors.New("cannot set linux.resources.devices: the devices cgroup controller is not available")
	}
	logrus.Debugf("devices cgroup %s: %s", dir, deviceRulesString(rules))
	for _, w := range v1DeviceWrites(rules) {
		if err := writeFile(dir, w[0], w[1]); err != nil {
			if m.rootless {
				return nil
			}
			return err
		}
	}
	return nil
}

func (m *v1Manager) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	if mem.Kernel != nil {
		logrus.Warn("linux.resources.memory.kernel is ignored: kernel memory limits are deprecated and unsupported by current kernels")
	}
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	if limit == 0 && swap == 0 && mem.Reservation == nil && mem.KernelTCP == nil && mem.Swappiness == nil &&
		mem.DisableOOMKiller == nil && mem.UseHierarchy == nil {
		return nil
	}
	dir, err := m.need("memory", "linux.resources.memory")
	if err != nil {
		return err
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate {
		if err := checkMemoryUsage(dir, "memory.usage_in_bytes", "memory.memsw.usage_in_bytes", limit, swap, true); err != nil {
			return err
		}
	}
	if limit == -1 && swap == 0 {
		swap = -1
	}
	setLimit := func() error {
		if limit == 0 {
			return nil
		}
		return writeFile(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
	}
	setSwap := func() error {
		if swap == 0 {
			return nil
		}
		err := writeFile(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
		if err != nil && swap == -1 && errors.Is(err, os.ErrNotExist) {
			return nil // no swap accounting: unlimited is what we have
		}
		return err
	}
	// The kernel keeps memsw >= memory at every step, so raise swap first
	// when the new swap is above the current memory limit.
	swapFirst := false
	if limit != 0 && swap != 0 {
		cur, err := readUint(dir, "memory.limit_in_bytes")
		if err != nil {
			return err
		}
		swapFirst = swap == -1 || cur < uint64(swap)
	}
	order := []func() error{setLimit, setSwap}
	if swapFirst {
		order = []func() error{setSwap, setLimit}
	}
	for _, f := range order {
		if err := f(); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(dir, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
			return err
		}
	}
	if mem.KernelTCP != nil && *mem.KernelTCP != 0 {
		if err := writeFile(dir, "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(*mem.KernelTCP, 10)); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil {
		if *mem.Swappiness > 100 {
			return fmt.Errorf("invalid linux.resources.memory.swappiness %d: must be 0-100", *mem.Swappiness)
		}
		if err := writeFile(dir, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		if err := writeFile(dir, "memory.oom_control", "1"); err != nil {
			return err
		}
	}
	if mem.UseHierarchy != nil {
		v := "0"
		if *mem.UseHierarchy {
			v = "1"
		}
		if err := writeFile(dir, "memory.use_hierarchy", v); err != nil {
			if !*mem.UseHierarchy && errors.Is(err, unix.EINVAL) {
				logrus.Warn("linux.resources.memory.useHierarchy=false is ignored: this kernel always accounts memory hierarchically")
			} else {
				return err
			}
		}
	}
	return nil
}

// checkMemoryUsage refuses a limit at or below the current usage
// (memory.checkBeforeUpdate). swapIsTotal: the swap counter already
// includes memory (v1 memsw).
func checkMemoryUsage(dir, usageFile, swapFile string, limit, swap int64, swapIsTotal bool) error {
	if limit <= 0 && swap <= 0 {
		return nil
	}
	usage, err := readUint(dir, usageFile)
	if err != nil {
		return err
	}
	if limit > 0 && usage >= uint64(limit) {
		return fmt.Errorf("rejecting memory limit %d: at or below current usage %d (memory.checkBeforeUpdate)", limit, usage)
	}
	if swap > 0 {
		s, err := readUintOpt(dir, swapFile)
		if err != nil {
			return err
		}
		if !swapIsTotal {
			s += usage
		}
		if s >= uint64(swap) {
			return fmt.Errorf("rejecting memory+swap limit %d: at or below current usage %d (memory.checkBeforeUpdate)", swap, s)
		}
	}
	return nil
}

func (m *v1Manager) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	var quota, rtRuntime int64
	var shares, period, rtPeriod uint64
	if c.Shares != nil {
		shares = *c.Shares
	}
	if c.Quota != nil {
		quota = *c.Quota
	}
	if c.Period != nil {
		period = *c.Period
	}
	if c.RealtimeRuntime != nil {
		rtRuntime = *c.RealtimeRuntime
	}
	if c.RealtimePeriod != nil {
		rtPeriod = *c.RealtimePeriod
	}
	if shares == 0 && quota == 0 && period == 0 && rtRuntime == 0 && rtPeriod == 0 && c.Burst == nil && c.Idle == nil {
		return nil
	}
	dir, err := m.need("cpu", "linux.resources.cpu")
	if err != nil {
		return err
	}
	if rtPeriod != 0 || rtRuntime != 0 {
		if err := writePair(dir, "cpu.rt_period_us", rtPeriod, "cpu.rt_runtime_us", rtRuntime); err != nil {
			return err
		}
	}
	if shares != 0 {
		if err := writeFile(dir, "cpu.shares", strconv.FormatUint(shares, 10)); err != nil {
			return err
		}
		got, err := readUint(dir, "cpu.shares")
		if err != nil {
			return err
		}
		if got != shares {
			return fmt.Errorf("linux.resources.cpu.shares %d is out of the kernel's range (it stored %d)", shares, got)
		}
	}
	if period != 0 || quota != 0 {
		if err := writePair(dir, "cpu.cfs_period_us", period, "cpu.cfs_quota_us", quota); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := writeFile(dir, "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeFile(dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	return nil
}

// writePair writes a period and its runtime/quota. The kernel checks each
// write against the other value, so on EINVAL the other order is tried.
func writePair(dir, periodFile string, period uint64, valFile string, val int64) error {
	wp := func() error {
		if period == 0 {
			return nil
		}
		return writeFile(dir, periodFile, strconv.FormatUint(period, 10))
	}
	wv := func() error {
		if val == 0 {
			return nil
		}
		return writeFile(dir, valFile, strconv.FormatInt(val, 10))
	}
	if err := wp(); err != nil {
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
		if err := wv(); err != nil {
			return err
		}
		return wp()
	}
	return wv()
}

func (m *v1Manager) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	dir, err := m.need("pids", "linux.resources.pids")
	if err != nil {
		return err
	}
	return writeFile(dir, "pids.max", pidsLimit(*r.Pids.Limit))
}

// pidsLimit renders pids.max: zero or negative means no limit.
func pidsLimit(v int64) string {
	if v <= 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

func (m *v1Manager) setBlkio(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	if b.Weight == nil && b.LeafWeight == nil && len(b.WeightDevice) == 0 && len(b.ThrottleReadBpsDevice) == 0 &&
		len(b.ThrottleWriteBpsDevice) == 0 && len(b.ThrottleReadIOPSDevice) == 0 && len(b.ThrottleWriteIOPSDevice) == 0 {
		return nil
	}
	dir, err := m.need("blkio", "linux.resources.blockIO")
	if err != nil {
		return err
	}
	// CFQ is gone from current kernels; BFQ exposes blkio.bfq.weight.
	weightFile, weightDevFile := "blkio.weight", "blkio.weight_device"
	if !fileExists(filepath.Join(dir, weightFile)) && fileExists(filepath.Join(dir, "blkio.bfq.weight")) {
		weightFile, weightDevFile = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeFile(dir, weightFile, strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := writeFile(dir, "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10)); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight != nil {
			if err := writeFile(dir, weightDevFile, fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight)); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil {
			if err := writeFile(dir, "blkio.leaf_weight_device", fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.LeafWeight)); err != nil {
				return err
			}
		}
	}
	throttles := []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	}
	for _, t := range throttles {
		for _, d := range t.devs {
			if err := writeFile(dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1Manager) setHugetlb(r *specs.LinuxResources) error {
	if len(r.HugepageLimits) == 0 {
		return nil
	}
	dir, err := m.need("hugetlb", "linux.resources.hugepageLimits")
	if err != nil {
		return err
	}
	for _, h := range r.HugepageLimits {
		size, err := hugePageSizeName(h.Pagesize)
		if err != nil {
			return err
		}
		v := strconv.FormatUint(h.Limit, 10)
		if err := writeFile(dir, "hugetlb."+size+".limit_in_bytes", v); err != nil {
			return err
		}
		rsvd := "hugetlb." + size + ".rsvd.limit_in_bytes"
		if fileExists(filepath.Join(dir, rsvd)) {
			if err := writeFile(dir, rsvd, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1Manager) setNetwork(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil {
		return nil
	}
	if n.ClassID != nil {
		dir, err := m.need("net_cls", "linux.resources.network.classID")
		if err != nil {
			return err
		}
		if err := writeFile(dir, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
			return err
		}
	}
	if len(n.Priorities) > 0 {
		dir, err := m.need("net_prio", "linux.resources.network.priorities")
		if err != nil {
			return err
		}
		for _, p := range n.Priorities {
			if err := writeFile(dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1Manager) setRdma(r *specs.LinuxResources) error {
	if len(r.Rdma) == 0 {
		return nil
	}
	dir, err := m.need("rdma", "linux.resources.rdma")
	if err != nil {
		return err
	}
	return writeRdma(dir, r.Rdma)
}

// writeRdma writes rdma.max lines ("mlx4_0 hca_handle=2 hca_object=max").
func writeRdma(dir string, rdma map[string]specs.LinuxRdma) error {
	devs := make([]string, 0, len(rdma))
	for d := range rdma {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	for _, d := range devs {
		l := rdma[d]
		if strings.ContainsAny(d, " \n=") || d == "" {
			return fmt.Errorf("invalid rdma device name %q", d)
		}
		line := d
		if l.HcaHandles != nil {
			line += " hca_handle=" + strconv.FormatUint(uint64(*l.HcaHandles), 10)
		}
		if l.HcaObjects != nil {
			line += " hca_object=" + strconv.FormatUint(uint64(*l.HcaObjects), 10)
		}
		if line == d {
			continue
		}
		if err := writeFile(dir, "rdma.max", line); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) Freeze() error {
	dir := m.path("freezer")
	if dir == "" {
		return errors.New("cannot freeze: the freezer cgroup controller is not available")
	}
	deadline := time.Now().Add(freezeTimeout)
	for delay := 10 * time.Microsecond; ; delay = min(delay*2, 10*time.Millisecond) {
		if err := writeFile(dir, "freezer.state", Frozen); err != nil {
			return err
		}
		st, err := readFile(dir, "freezer.state")
		if err != nil {
			return err
		}
		if strings.TrimSpace(st) == Frozen {
			return nil
		}
		if time.Now().After(deadline) {
			_ = writeFile(dir, "freezer.state", Thawed)
			return fmt.Errorf("freeze %s: still %s after %v", dir, strings.TrimSpace(st), freezeTimeout)
		}
		// The kernel is still walking the tasks; give it a moment.
		time.Sleep(delay)
	}
}

// freezeTimeout bounds how long Freeze waits for the kernel.
var freezeTimeout = 5 * time.Second

func (m *v1Manager) Thaw() error {
	dir := m.path("freezer")
	if dir == "" {
		return errors.New("cannot thaw: the freezer cgroup controller is not available")
	}
	return writeFile(dir, "freezer.state", Thawed)
}

func (m *v1Manager) FreezerState() (string, error) {
	dir := m.path("freezer")
	if dir == "" {
		return Unknown, nil
	}
	st, err := readFile(dir, "freezer.state")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Unknown, nil
		}
		return "", err
	}
	switch strings.TrimSpace(st) {
	case Frozen:
		// Frozen because an ancestor is frozen does not make the
		// container paused.
		if self, err := readFile(dir, "freezer.self_freezing"); err == nil && strings.TrimSpace(self) == "0" {
			return Thawed, nil
		}
		return Frozen, nil
	case "FREEZING":
		return Thawed, nil
	}
	return Thawed, nil
}

func (m *v1Manager) Pids() ([]int, error) {
	dir := m.anyPath()
	if dir == "" {
		return nil, errors.New("no cgroup to list processes from")
	}
	return readProcsRecursive(dir)
}

func (m *v1Manager) KillAll(sig unix.Signal) error {
	return signalFrozen(m, sig)
}

// signalFrozen freezes the cgroup (when it can) so no process forks while
// the list is walked, signals every process, then thaws.
func signalFrozen(m Manager, sig unix.Signal) error {
	st, _ := m.FreezerState()
	frozeHere := false
	if st == Thawed {
		if err := m.Freeze(); err == nil {
			frozeHere = true
		}
	}
	pids, err := m.Pids()
	if err == nil {
		for _, pid := range pids {
			if kerr := unix.Kill(pid, sig); kerr != nil && !errors.Is(kerr, unix.ESRCH) && err == nil {
				err = fmt.Errorf("signal %d: %w", pid, kerr)
			}
		}
	}
	if frozeHere {
		if terr := m.Thaw(); terr != nil && err == nil {
			err = terr
		}
	}
	return err
}

func (m *v1Manager) Destroy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, p := range m.paths {
		if err := removeTree(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *v1Manager) Exists() bool {
	p := m.anyPath()
	return p != "" && fileExists(p)
}

func (m *v1Manager) OOMKillCount() (uint64, error) {
	dir := m.path("memory")
	if dir == "" {
		return 0, nil
	}
	kv, err := readKeyValues(dir, "memory.oom_control")
	if err != nil {
		if m.rootless && errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	return kv["oom_kill"], nil
}
