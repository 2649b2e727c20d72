package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of cpuacct.stat; 100 on every Linux ABI.
const clockTicks = 100

func (m *v1Manager) Stats() (*Stats, error) {
	st := newStats()
	steps := []struct {
		ctrl string
		fn   func(string, *Stats) error
	}{
		{"cpu", v1StatCPU},
		{"cpuacct", v1StatCpuacct},
		{"cpuset", v1StatCpuset},
		{"memory", v1StatMemory},
		{"pids", v1StatPids},
		{"blkio", v1StatBlkio},
		{"hugetlb", v1StatHugetlb},
	}
	for _, s := range steps {
		dir := m.path(s.ctrl)
		if dir == "" {
			continue
		}
		if err := s.fn(dir, st); err != nil {
			if m.rootless && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
	}
	return st, nil
}

func v1StatCPU(dir string, st *Stats) error {
	kv, err := readKeyValues(dir, "cpu.stat")
	if err != nil {
		return err
	}
	st.CPU.Throttling = Throttling{
		Periods:          kv["nr_periods"],
		ThrottledPeriods: kv["nr_throttled"],
		ThrottledTime:    kv["throttled_time"],
	}
	return nil
}

func readUintList(dir, name string) ([]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, f := range strings.Fields(s) {
		v, err := parseUint(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func v1StatCpuacct(dir string, st *Stats) error {
	u := &st.CPU.Usage
	var err error
	if u.Total, err = readUint(dir, "cpuacct.usage"); err != nil {
		return err
	}
	if u.Percpu, err = readUintList(dir, "cpuacct.usage_percpu"); err != nil {
		return err
	}
	// Per-CPU split and nanosecond totals exist on 4.7+; fall back to the
	// tick counts of cpuacct.stat.
	if l, err := readUintList(dir, "cpuacct.usage_percpu_sys"); err == nil {
		u.PercpuKernel = l
	}
	if l, err := readUintList(dir, "cpuacct.usage_percpu_user"); err == nil {
		u.PercpuUser = l
	}
	sys, errS := readUint(dir, "cpuacct.usage_sys")
	usr, errU := readUint(dir, "cpuacct.usage_user")
	if errS == nil && errU == nil {
		u.Kernel, u.User = sys, usr
		return nil
	}
	kv, err := readKeyValues(dir, "cpuacct.stat")
	if err != nil {
		return err
	}
	u.User = kv["user"] * 1e9 / clockTicks
	u.Kernel = kv["system"] * 1e9 / clockTicks
	return nil
}

func v1StatCpuset(dir string, st *Stats) error {
	s, err := readFile(dir, "cpuset.cpus")
	if err != nil {
		return err
	}
	if st.CPUSet.CPUs, err = parseCPUList(s); err != nil {
		return err
	}
	if s, err = readFile(dir, "cpuset.mems"); err != nil {
		return err
	}
	if st.CPUSet.Mems, err = parseCPUList(s); err != nil {
		return err
	}
	flags := map[string]*uint64{
		"cpuset.cpu_exclusive":      &st.CPUSet.CPUExclusive,
		"cpuset.mem_hardwall":       &st.CPUSet.MemHardwall,
		"cpuset.mem_exclusive":      &st.CPUSet.MemExclusive,
		"cpuset.memory_migrate":     &st.CPUSet.MemoryMigrate,
		"cpuset.memory_spread_page": &st.CPUSet.MemorySpreadPage,
		"cpuset.memory_spread_slab": &st.CPUSet.MemorySpreadSlab,
		"cpuset.memory_pressure":    &st.CPUSet.MemoryPressure,
		"cpuset.sched_load_balance": &st.CPUSet.SchedLoadBalance,
	}
	for f, p := range flags {
		if *p, err = readUintOpt(dir, f); err != nil {
			return err
		}
	}
	if s, err := readFile(dir, "cpuset.sched_relax_domain_level"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			st.CPUSet.SchedRelaxDomainLevel = v
		}
	}
	return nil
}

// v1MemoryEntry reads <prefix>usage_in_bytes and friends; a counter the
// kernel does not have (no swap accounting, no kmem) reads as zeros.
func v1MemoryEntry(dir, prefix string) (MemoryEntry, error) {
	var e MemoryEntry
	usage, err := readUint(dir, prefix+"usage_in_bytes")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && prefix != "memory." {
			return e, nil
		}
		return e, err
	}
	e.Usage = usage
	if e.Max, err = readUintOpt(dir, prefix+"max_usage_in_bytes"); err != nil {
		return e, err
	}
	if e.Failcnt, err = readUintOpt(dir, prefix+"failcnt"); err != nil {
		return e, err
	}
	if e.Limit, err = readUintOpt(dir, prefix+"limit_in_bytes"); err != nil {
		return e, err
	}
	return e, nil
}

func v1StatMemory(dir string, st *Stats) error {
	raw, err := readKeyValues(dir, "memory.stat")
	if err != nil {
		return err
	}
	st.Memory.Raw = raw
	st.Memory.Cache = raw["cache"]
	if st.Memory.Usage, err = v1MemoryEntry(dir, "memory."); err != nil {
		return err
	}
	if st.Memory.Swap, err = v1MemoryEntry(dir, "memory.memsw."); err != nil {
		return err
	}
	if st.Memory.Kernel, err = v1MemoryEntry(dir, "memory.kmem."); err != nil {
		return err
	}
	if st.Memory.KernelTCP, err = v1MemoryEntry(dir, "memory.kmem.tcp."); err != nil {
		return err
	}
	return nil
}

func v1StatPids(dir string, st *Stats) error {
	cur, err := readUint(dir, "pids.current")
	if err != nil {
		return err
	}
	st.Pids.Current = cur
	st.Pids.Limit, err = readPidsMax(dir)
	return err
}

// readPidsMax reads pids.max with "max" as 0 (no limit).
func readPidsMax(dir string) (uint64, error) {
	s, err := readFile(dir, "pids.max")
	if err != nil {
		return 0, err
	}
	if strings.TrimSpace(s) == "max" {
		return 0, nil
	}
	return parseUint(s)
}

// parseBlkioV1 parses "8:0 Read 4096" lines (and "Total 123", skipped).
func parseBlkioV1(content string) []BlkioEntry {
	var out []BlkioEntry
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		e := BlkioEntry{}
		var err error
		if e.Major, err = strconv.ParseUint(maj, 10, 64); err != nil {
			continue
		}
		if e.Minor, err = strconv.ParseUint(min, 10, 64); err != nil {
			continue
		}
		valStr := f[1]
		if len(f) == 3 {
			e.Op, valStr = f[1], f[2]
		}
		if e.Value, err = strconv.ParseUint(valStr, 10, 64); err != nil {
			continue
		}
		out = append(out, e)
	}
	return out
}

func v1StatBlkio(dir string, st *Stats) error {
	// Prefer the BFQ (or legacy CFQ) counters when the scheduler exposes
	// them; otherwise the throttle layer's counters.
	type src struct{ serviceBytes, serviced string }
	candidates := []src{
		{"blkio.io_service_bytes_recursive", "blkio.io_serviced_recursive"},
		{"blkio.bfq.io_service_bytes_recursive", "blkio.bfq.io_serviced_recursive"},
		{"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"},
	}
	for _, c := range candidates {
		sb, err := readFile(dir, c.serviceBytes)
		if err != nil {
			continue
		}
		entries := parseBlkioV1(sb)
		if len(entries) == 0 && c.serviceBytes != candidates[len(candidates)-1].serviceBytes {
			// An I/O scheduler file with no data: the throttle layer
			// may still have some.
			if _, err := os.Stat(filepath.Join(dir, candidates[len(candidates)-1].serviceBytes)); err == nil {
				continue
			}
		}
		st.Blkio.IoServiceBytesRecursive = entries
		if s, err := readFile(dir, c.serviced); err == nil {
			st.Blkio.IoServicedRecursive = parseBlkioV1(s)
		}
		break
	}
	extra := []struct {
		file string
		dst  *[]BlkioEntry
	}{
		{"blkio.io_queued_recursive", &st.Blkio.IoQueuedRecursive},
		{"blkio.io_service_time_recursive", &st.Blkio.IoServiceTimeRecursive},
		{"blkio.io_wait_time_recursive", &st.Blkio.IoWaitTimeRecursive},
		{"blkio.io_merged_recursive", &st.Blkio.IoMergedRecursive},
		{"blkio.time_recursive", &st.Blkio.IoTimeRecursive},
		{"blkio.sectors_recursive", &st.Blkio.SectorsRecursive},
	}
	for _, e := range extra {
		if s, err := readFile(dir, e.file); err == nil {
			*e.dst = parseBlkioV1(s)
		}
	}
	return nil
}

func v1StatHugetlb(dir string, st *Stats) error {
	for _, size := range hugePageSizes() {
		pfx := "hugetlb." + size + "."
		usage, err := readUint(dir, pfx+"usage_in_bytes")
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		h := Hugetlb{Usage: usage}
		if h.Max, err = readUintOpt(dir, pfx+"max_usage_in_bytes"); err != nil {
			return err
		}
		if h.Failcnt, err = readUintOpt(dir, pfx+"failcnt"); err != nil {
			return err
		}
		st.Hugetlb[size] = h
	}
	return nil
}
