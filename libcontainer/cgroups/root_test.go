package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The test binary doubles as the process placed in cgroups.
const helperEnv = "CROSSRUN_CGROUPS_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "work":
		helperWork()
	case "devices":
		helperDevices()
	}
	os.Exit(0)
}

// helperWork waits for a line, allocates and touches memory, burns a
// little CPU, says "ready", then echoes every further line until EOF.
func helperWork() {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		os.Exit(2)
	}
	buf := make([]byte, 8<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	x := 0
	for i := 0; i < 20_000_000; i++ {
		x += i ^ int(buf[i%len(buf)])
	}
	fmt.Printf("ready %d\n", x&1)
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return
		}
		fmt.Print("echo " + line)
	}
}

// helperDevices reports how opening /dev/null and /dev/zero went.
func helperDevices() {
	res := func(p string) string {
		f, err := os.Open(p)
		if err != nil {
			var errno unix.Errno
			if errors.As(err, &errno) {
				return errno.Error()
			}
			return err.Error()
		}
		defer f.Close()
		b := make([]byte, 1)
		if _, err := f.Read(b); err != nil && err != io.EOF {
			return "read: " + err.Error()
		}
		return "ok"
	}
	fmt.Printf("null=%s zero=%s\n", res("/dev/null"), res("/dev/zero"))
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates real cgroups")
	}
}

type helper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startHelper(t *testing.T, mode string, attr *unix.SysProcAttr) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.SysProcAttr = (*syscallSysProcAttr)(attr)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return h
}

func (h *helper) line(t *testing.T) string {
	t.Helper()
	s, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading from helper: %v", err)
	}
	return strings.TrimSpace(s)
}

func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

func TestRealLifecycle(t *testing.T) {
	needRoot(t)
	name := fmt.Sprintf("/crossrun-test-%d", os.Getpid())
	m, err := New(name, "ignored", Options{})
	if err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	t.Cleanup(func() {
		for _, p := range paths {
			_ = removeTree(p)
		}
	})
	t.Logf("mode %v, paths %v", DetectMode(""), paths)

	h := startHelper(t, "work", nil)
	pid := h.cmd.Process.Pid
	if err := m.Apply(pid); err != nil {
		t.Fatal(err)
	}
	if !m.Exists() {
		t.Fatal("Exists = false after Apply")
	}
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Reservation: i64(32 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(32)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(20000), Period: u64(100000)},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},
		},
	}
	if err := m.Set(res); err != nil {
		t.Fatal(err)
	}
	mode := DetectMode("")
	check := func(ctrl, file, want string) {
		t.Helper()
		dir := paths[ctrl]
		if mode == Unified {
			dir = paths[""]
		}
		if got := readTrim(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", filepath.Join(dir, file), got, want)
		}
	}
	if mode == Unified {
		check("", "memory.max", "67108864")
		check("", "pids.max", "32")
		check("", "cpu.max", "20000 100000")
		check("", "cpu.weight", "20")
	} else {
		check("memory", "memory.limit_in_bytes", "67108864")
		check("memory", "memory.soft_limit_in_bytes", "33554432")
		check("pids", "pids.max", "32")
		check("cpu", "cpu.shares", "512")
		check("cpu", "cpu.cfs_quota_us", "20000")
		check("cpu", "cpu.cfs_period_us", "100000")
		check("devices", "devices.list", "c 1:3 rwm\nc 1:5 rwm")
	}
	// Every hierarchy holds the process, including the unified one.
	for ctrl, p := range paths {
		procs, err := readProcs(p)
		if err != nil || len(procs) != 1 || procs[0] != pid {
			t.Errorf("%s cgroup.procs = %v, %v; want [%d]", displayCtrl(ctrl), procs, err, pid)
		}
	}

	// Let the helper allocate and burn CPU inside the cgroup.
	fmt.Fprintln(h.in, "go")
	if l := h.line(t); !strings.HasPrefix(l, "ready") {
		t.Fatalf("helper said %q", l)
	}
	pids, err := m.Pids()
	if err != nil || len(pids) != 1 || pids[0] != pid {
		t.Fatalf("Pids = %v, %v", pids, err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// pids.current counts tasks: the helper's Go threads too.
	if st.Pids.Current < 1 || st.Pids.Limit != 32 {
		t.Errorf("pids stats = %+v", st.Pids)
	}
	if st.Memory.Usage.Usage < 8<<20 || st.Memory.Usage.Limit != 64<<20 {
		t.Errorf("memory stats = %+v", st.Memory.Usage)
	}
	if st.CPU.Usage.Total == 0 || st.CPU.Usage.User+st.CPU.Usage.Kernel == 0 {
		t.Errorf("cpu stats = %+v", st.CPU.Usage)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 0 {
		t.Errorf("OOMKillCount = %d, %v", n, err)
	}

	// Freeze: the kernel reports it and the task sleeps uninterruptibly.
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if s, err := m.FreezerState(); err != nil || s != Frozen {
		t.Fatalf("FreezerState = %q, %v", s, err)
	}
	if s := procState(t, pid); s != "D" {
		t.Errorf("frozen task state = %q, want D", s)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if s, err := m.FreezerState(); err != nil || s != Thawed {
		t.Fatalf("FreezerState = %q, %v", s, err)
	}
	fmt.Fprintln(h.in, "ping")
	if l := h.line(t); l != "echo ping" {
		t.Fatalf("thawed helper said %q", l)
	}

	// Update through a reloaded manager, as `crossrun update` would.
	lm, err := Load(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lm.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(64)}}); err != nil {
		t.Fatal(err)
	}
	if mode == Unified {
		check("", "pids.max", "64")
	} else {
		check("pids", "pids.max", "64")
	}

	if err := lm.KillAll(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Wait(); err == nil {
		t.Fatal("helper exited cleanly after SIGKILL")
	}
	if err := lm.Destroy(); err != nil {
		t.Fatal(err)
	}
	for ctrl, p := range paths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s cgroup %s still there: %v", displayCtrl(ctrl), p, err)
		}
	}
	if lm.Exists() {
		t.Error("Exists after Destroy")
	}
}

func TestRealDeviceFilter(t *testing.T) {
	needRoot(t)
	root := "/sys/fs/cgroup/unified"
	switch DetectMode("") {
	case Unified:
		root = DefaultRoot
	case Legacy:
		t.Skip("needs a cgroup2 mount: none on this host")
	}
	dir := filepath.Join(root, fmt.Sprintf("crossrun-devtest-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeTree(dir) })
	m := &v2Manager{root: root, dir: dir}

	run := func(devs []specs.LinuxDeviceCgroup) string {
		t.Helper()
		if err := m.Set(&specs.LinuxResources{Devices: devs}); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		// Born inside the cgroup (clone3 CLONE_INTO_CGROUP): no window
		// before the filter applies.
		h := startHelper(t, "devices", &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: fd})
		out := h.line(t)
		_ = h.cmd.Wait()
		return out
	}
	allowAll := specs.LinuxDeviceCgroup{Allow: true, Access: "rwm"}
	got := run([]specs.LinuxDeviceCgroup{allowAll, {Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "r"}})
	if want := "null=" + unix.EPERM.Error() + " zero=ok"; got != want {
		t.Errorf("deny null reads: helper says %q, want %q", got, want)
	}
	// Replacing the rules swaps the program; only one stays attached.
	got = run([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
	})
	if want := "null=ok zero=" + unix.EPERM.Error(); got != want {
		t.Errorf("allow only null: helper says %q, want %q", got, want)
	}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := cgroupDevicePrograms(fd)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 {
		t.Errorf("%d device programs attached, want 1", len(ids))
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup still there: %v", err)
	}
}

func TestRealOOMNotify(t *testing.T) {
	needRoot(t)
	m, err := New(fmt.Sprintf("/crossrun-oomtest-%d", os.Getpid()), "x", Options{})
	if err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	t.Cleanup(func() {
		for _, p := range paths {
			_ = removeTree(p)
		}
	})
	h := startHelper(t, "work", nil)
	if err := m.Apply(h.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	// 4 MiB cannot hold the helper's 8 MiB buffer.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(4 << 20), Swap: i64(4 << 20)}}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	ch, err := m.NotifyOOM(stop)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(h.in, "go")
	if _, ok := <-ch; !ok {
		t.Fatal("OOM channel closed without an event")
	}
	if err := h.cmd.Wait(); err == nil {
		t.Fatal("helper survived its OOM")
	}
	if n, err := m.OOMKillCount(); err != nil || n < 1 {
		t.Fatalf("OOMKillCount = %d, %v", n, err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
}
