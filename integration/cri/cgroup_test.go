package cri

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/integration/harness"
)

// cgroupMounts maps each v1 controller to its hierarchy's mount point, and
// "" to the cgroup2 mount (the whole tree on a v2 host, the controller-less
// /sys/fs/cgroup/unified on a hybrid one).
func cgroupMounts() map[string]string {
	out := map[string]string{}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			out[""] = harness.UnescapeMountPath(f[4])
		case "cgroup":
			for _, opt := range strings.Split(g[2], ",") {
				switch opt {
				case "rw", "ro", "nosuid", "nodev", "noexec", "relatime", "clone_children", "xattr":
					continue
				}
				if strings.HasPrefix(opt, "release_agent=") {
					continue
				}
				out[strings.TrimPrefix(opt, "name=")] = harness.UnescapeMountPath(f[4])
			}
		}
	}
	return out
}

// cgroupDirs is the directory of the cgroup path in every hierarchy.
func cgroupDirs(path string) []string {
	seen := map[string]bool{}
	var dirs []string
	for _, mnt := range cgroupMounts() {
		d := filepath.Join(mnt, path)
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// procCgroups reads /proc/PID/cgroup: controller -> path ("" for v2).
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" {
			out[""] = f[2]
			continue
		}
		for _, ctrl := range strings.Split(f[1], ",") {
			out[strings.TrimPrefix(ctrl, "name=")] = f[2]
		}
	}
	return out
}

func readCgroupFile(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Errorf("cgroup file: %v", err)
		return ""
	}
	return strings.TrimSpace(string(data))
}

// checkCgroupLimits asserts the container's process is in the cgroup the
// CRI asked for and that its limits are the kubelet's values: v1 files
// where the memory controller is on v1, v2 files otherwise.
func checkCgroupLimits(t *testing.T, pid int, path string, want resources) {
	t.Helper()
	mounts, procs := cgroupMounts(), procCgroups(t, pid)
	if memPath, ok := procs["memory"]; ok {
		for _, ctrl := range []string{"memory", "cpu"} {
			if procs[ctrl] != path {
				t.Errorf("container in %s cgroup %q, want %q", ctrl, procs[ctrl], path)
			}
		}
		mem := filepath.Join(mounts["memory"], memPath)
		cpu := filepath.Join(mounts["cpu"], procs["cpu"])
		for file, v := range map[string]string{
			filepath.Join(mem, "memory.limit_in_bytes"): strconv.FormatInt(want.memoryLimit, 10),
			filepath.Join(cpu, "cpu.cfs_quota_us"):      strconv.FormatInt(want.cpuQuota, 10),
			filepath.Join(cpu, "cpu.cfs_period_us"):     strconv.FormatInt(want.cpuPeriod, 10),
			filepath.Join(cpu, "cpu.shares"):            strconv.FormatInt(want.cpuShares, 10),
		} {
			if got := readCgroupFile(t, filepath.Dir(file), filepath.Base(file)); got != v {
				t.Errorf("%s = %q, want %q", file, got, v)
			}
		}
		return
	}
	if procs[""] != path {
		t.Errorf("container in cgroup %q, want %q", procs[""], path)
	}
	dir := filepath.Join(mounts[""], procs[""])
	weight := 1 + ((want.cpuShares-2)*9999)/262142
	for name, v := range map[string]string{
		"memory.max": strconv.FormatInt(want.memoryLimit, 10),
		"cpu.max":    fmt.Sprintf("%d %d", want.cpuQuota, want.cpuPeriod),
		"cpu.weight": strconv.FormatInt(weight, 10),
	} {
		if got := readCgroupFile(t, dir, name); got != v {
			t.Errorf("%s/%s = %q, want %q", dir, name, got, v)
		}
	}
}

// removeCgroupTree removes path and what is below it in every hierarchy,
// deepest first. Only empty cgroups can go; a cgroup with a process left
// in it is reported.
func removeCgroupTree(t *testing.T, path string) {
	for _, dir := range cgroupDirs(path) {
		var walk func(string)
		walk = func(d string) {
			entries, err := os.ReadDir(d)
			if err != nil {
				return
			}
			for _, e := range entries {
				if e.IsDir() {
					walk(filepath.Join(d, e.Name()))
				}
			}
			if err := unix.Rmdir(d); err != nil && err != unix.ENOENT {
				t.Errorf("cleanup: remove cgroup %s: %v", d, err)
			}
		}
		walk(dir)
	}
}
