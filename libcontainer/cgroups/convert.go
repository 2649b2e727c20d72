package cgroups

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CPUSharesToWeight converts cgroup v1 cpu.shares [2, 262144] to cgroup v2
// cpu.weight [1, 10000] with runc's linear formula. 0 means unset.
func CPUSharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// BlkioWeightToIOWeight converts blkio.weight [10, 1000] to io.weight
// [1, 10000] as runc does. 0 means unset.
func BlkioWeightToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	if w < 10 {
		w = 10
	}
	return 1 + (uint64(w)-10)*9999/990
}

// SwapToV2 converts the spec's memory.swap (memory+swap, v1 semantics) to
// the value for v2 memory.swap.max (swap alone). -1 means unlimited and 0
// unset, on both sides.
func SwapToV2(swap, memory int64) (int64, error) {
	// Unlimited memory with swap unset: unlimited swap too, like v1.
	if memory == -1 && swap == 0 {
		return -1, nil
	}
	if swap == -1 || swap == 0 {
		return swap, nil
	}
	if memory == 0 || memory == -1 {
		return 0, errors.New("memory.swap needs a memory.limit on cgroup v2")
	}
	if memory < 0 {
		return 0, fmt.Errorf("invalid memory.limit %d", memory)
	}
	if swap < memory {
		return 0, fmt.Errorf("memory.swap %d (memory+swap) is below memory.limit %d", swap, memory)
	}
	return swap - memory, nil
}

// v2Limit renders a limit for a v2 *.max/*.low/*.high file: -1 is "max".
func v2Limit(v int64) string {
	if v == -1 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// hugePageSizeName turns "2MB", "1GB", "64KB" into the form used in file
// names (the spec already uses it; this validates it).
func hugePageSizeName(s string) (string, error) {
	if s == "" {
		return "", errors.New("hugepage limit without pageSize")
	}
	num := strings.TrimRight(s, "KMGB")
	unit := s[len(num):]
	if _, err := strconv.ParseUint(num, 10, 64); err != nil || (unit != "KB" && unit != "MB" && unit != "GB") {
		return "", fmt.Errorf("invalid hugepage size %q (want e.g. 2MB or 1GB)", s)
	}
	return s, nil
}

// hugePageSizes lists the sizes the kernel supports, named like "2MB".
var hugePagesDir = "/sys/kernel/mm/hugepages"

func hugePageSizes() []string {
	ents, err := os.ReadDir(hugePagesDir)
	if err != nil {
		return nil
	}
	var sizes []string
	for _, e := range ents {
		kb, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		kb = strings.TrimSuffix(kb, "kB")
		n, err := strconv.ParseUint(kb, 10, 64)
		if err != nil {
			continue
		}
		sizes = append(sizes, formatPageSize(n*1024))
	}
	return sizes
}

func formatPageSize(bytes uint64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	i := 0
	for bytes >= 1024 && bytes%1024 == 0 && i < len(units)-1 {
		bytes /= 1024
		i++
	}
	return strconv.FormatUint(bytes, 10) + units[i]
}

// parseCPUList parses "0-3,8,10-11" into the numbers it names.
func parseCPUList(s string) ([]uint16, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []uint16
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("bad cpu list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("bad cpu list %q", s)
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, uint16(i))
		}
	}
	return out, nil
}

// parsePSI parses a *.pressure file.
func parsePSI(content string) (*PSIStats, error) {
	var st PSIStats
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var d *PSIData
		switch f[0] {
		case "some":
			d = &st.Some
		case "full":
			d = &st.Full
		default:
			continue
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("bad pressure line %q", line)
			}
			var err error
			switch k {
			case "avg10":
				d.Avg10, err = strconv.ParseFloat(v, 64)
			case "avg60":
				d.Avg60, err = strconv.ParseFloat(v, 64)
			case "avg300":
				d.Avg300, err = strconv.ParseFloat(v, 64)
			case "total":
				d.Total, err = strconv.ParseUint(v, 10, 64)
			}
			if err != nil {
				return nil, fmt.Errorf("bad pressure line %q: %w", line, err)
			}
		}
	}
	return &st, nil
}

// validateUnified checks the keys of linux.resources.unified: each must be
// a plain file name in the cgroup directory.
func validateUnified(m map[string]string) error {
	for k := range m {
		if k == "" || strings.Contains(k, "/") || strings.Contains(k, "..") || !strings.Contains(k, ".") {
			return fmt.Errorf("invalid linux.resources.unified key %q: must be a cgroup file name like \"memory.high\"", k)
		}
		if strings.HasPrefix(k, "cgroup.") && k != "cgroup.max.depth" && k != "cgroup.max.descendants" {
			return fmt.Errorf("invalid linux.resources.unified key %q: cgroup core files other than cgroup.max.* are managed by the runtime", k)
		}
	}
	return nil
}
