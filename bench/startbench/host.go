package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

const cgroup2Magic = 0x63677270 // CGROUP2_SUPER_MAGIC

func (b *bench) printMachine() {
	b.printf("kernel:   %s\n", readLine("/proc/sys/kernel/osrelease"))
	b.printf("cpu:      %s\n", cpuModel())
	b.printf("nproc:    %d\n", runtime.NumCPU())
	b.printf("memory:   %s\n", memTotal())
	b.printf("cgroup:   %s\n", cgroupMode())
	b.printf("load avg: %s (other work on the machine makes the figures noisy)\n", loadavg())
}

// readLine returns the first line of a file, or "unknown".
func readLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(line)
}

// field returns the value of the first "key: value" line of a /proc file.
func field(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func cpuModel() string {
	if m := field("/proc/cpuinfo", "model name"); m != "" {
		return m
	}
	return "unknown"
}

func memTotal() string {
	kb, err := strconv.ParseFloat(strings.TrimSuffix(field("/proc/meminfo", "MemTotal"), " kB"), 64)
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", kb/(1<<20))
}

func loadavg() string {
	f := strings.Fields(readLine("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// fsName names the file system that holds path, for the common ones.
func fsName(path string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "unknown"
	}
	switch uint32(st.Type) {
	case 0x01021994:
		return "tmpfs"
	case 0xef53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	case 0x794c7630:
		return "overlay"
	}
	return fmt.Sprintf("file system 0x%x", st.Type)
}

func isCgroup2(path string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(path, &st) == nil && st.Type == cgroup2Magic
}

func cgroupMode() string {
	switch {
	case isCgroup2("/sys/fs/cgroup"):
		return "v2 (unified)"
	case isCgroup2("/sys/fs/cgroup/unified"):
		c := readLine("/sys/fs/cgroup/unified/cgroup.controllers")
		if c == "" {
			c = "none"
		}
		return "hybrid (v1, and v2 at /sys/fs/cgroup/unified with controllers: " + c + ")"
	default:
		return "v1"
	}
}

// version returns the first line of `bin --version`.
func version(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "version unknown: " + err.Error()
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// crunCgroupCheck returns why crun cannot run here, or "". crun refuses to
// run on a hybrid host whose cgroup2 hierarchy holds a controller. When
// that controller is hugetlb and fix is set, it mounts hugetlb as a v1
// hierarchy at /sys/fs/cgroup/hugetlb, which moves it off cgroup2, and
// says so.
func crunCgroupCheck(b *bench, fix bool) string {
	const unified = "/sys/fs/cgroup/unified"
	if isCgroup2("/sys/fs/cgroup") || !isCgroup2(unified) {
		return ""
	}
	ctrls := strings.Fields(readLine(unified + "/cgroup.controllers"))
	if len(ctrls) == 0 {
		return ""
	}
	if !fix || len(ctrls) != 1 || ctrls[0] != "hugetlb" {
		return fmt.Sprintf("it refuses to run while the hybrid host's cgroup2 (%s) holds controllers (%s); -fix-crun-hugetlb moves only hugetlb",
			unified, strings.Join(ctrls, " "))
	}
	const dir = "/sys/fs/cgroup/hugetlb"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "cannot move hugetlb off cgroup2: " + err.Error()
	}
	if err := syscall.Mount("cgroup", dir, "cgroup", 0, "hugetlb"); err != nil {
		return "cannot move hugetlb off cgroup2: mount -t cgroup -o hugetlb cgroup " + dir + ": " + err.Error()
	}
	b.printf("crun: moved the hugetlb controller from cgroup2 to a v1 hierarchy (mount -t cgroup -o hugetlb cgroup %s; left mounted)\n", dir)
	if rest := readLine(unified + "/cgroup.controllers"); rest != "" {
		return "cgroup2 still holds controllers after moving hugetlb: " + rest
	}
	return ""
}

// foreignTarget returns the GOARCH to build the foreign hello for and the
// name of the host's binfmt_misc handler for it.
func foreignTarget() (goarch, handler string) {
	switch runtime.GOARCH {
	case "arm64":
		return "amd64", "qemu-x86_64"
	case "amd64":
		return "arm64", "qemu-aarch64"
	}
	return "", ""
}

// binfmtHandler reads /proc/sys/fs/binfmt_misc/<name>. It returns the
// handler's interpreter and flags, or why it cannot be used. It never
// registers or changes a handler.
func binfmtHandler(name string) (interp, flags, reason string) {
	const dir = "/proc/sys/fs/binfmt_misc/"
	if readLine(dir+"status") != "enabled" {
		return "", "", dir + "status is not \"enabled\" (binfmt_misc not mounted or disabled)"
	}
	if _, err := os.Stat(dir + name); err != nil {
		return "", "", "no " + dir + name + " handler is registered"
	}
	if readLine(dir+name) != "enabled" {
		return "", "", dir + name + " is disabled"
	}
	data, _ := os.ReadFile(dir + name)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "interpreter "); ok {
			interp = v
		}
		if v, ok := strings.CutPrefix(line, "flags: "); ok {
			flags = v
		}
	}
	return interp, flags, ""
}
