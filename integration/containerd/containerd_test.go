package containerd

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/crossrun/crossrun/integration/harness"
)

// daemon starts a private containerd in namespace ns with the native image
// imported. When the test ends it fails the test if anything ran the "runc"
// stub, i.e. a container was not run by crossrun.
func daemon(t *testing.T, opts harness.ContainerdOptions) *harness.Containerd {
	t.Helper()
	harness.RequireRoot(t)
	d := harness.StartContainerd(t, opts)
	t.Cleanup(func() {
		if calls := d.StubCalls(); calls != "" {
			t.Errorf("runc was called instead of crossrun:\n%s", calls)
		}
	})
	native, _ := images(t)
	d.MustCtr(t, "images", "import", native)
	return d
}

// runtimeFlags make "ctr run" use the runc v2 shim with crossrun as its
// runtime binary (the shim option BinaryName) and private state and fifo
// directories.
func runtimeFlags(d *harness.Containerd) []string {
	return []string{
		"--runtime", "io.containerd.runc.v2", "--runc-binary", harness.Bin,
		"--runc-root", d.RuncRoot, "--fifo-dir", filepath.Join(d.Dir, "fifo"),
	}
}

// ctrRun runs "ctr run <opts> <runtime flags> image id args...".
func ctrRun(t *testing.T, d *harness.Containerd, opts []string, image, id string, args ...string) harness.Result {
	t.Helper()
	all := append([]string{"run"}, opts...)
	all = append(all, runtimeFlags(d)...)
	all = append(all, image, id)
	return d.Ctr(t, append(all, args...)...)
}

// nsRoot is the --root the shim passes crossrun: the runtime root plus the
// namespace.
func nsRoot(d *harness.Containerd) string { return filepath.Join(d.RuncRoot, d.Namespace) }

// taskStatus returns the task's pid and status as "ctr task ls" shows
// them.
func taskStatus(t *testing.T, d *harness.Containerd, id string) (int, string) {
	t.Helper()
	r := d.MustCtr(t, "tasks", "ls")
	for _, line := range strings.Split(r.Stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == id {
			pid, _ := strconv.Atoi(f[1])
			return pid, f[2]
		}
	}
	return 0, ""
}

func waitTaskStatus(t *testing.T, d *harness.Containerd, id, want string) {
	t.Helper()
	waitFor(t, "task "+id+" "+want, func() (bool, string) {
		_, st := taskStatus(t, d, id)
		return st == want, st
	})
}

// crossrunStatus is "crossrun state" of a container the shim created.
func crossrunStatus(t *testing.T, d *harness.Containerd, id string) (int, string) {
	t.Helper()
	out, err := exec.Command(harness.Bin, "--root", nsRoot(d), "state", id).Output()
	if err != nil {
		t.Fatalf("crossrun state %s: %v", id, err)
	}
	var st struct {
		Pid    int    `json:"pid"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("crossrun state %s: %v: %s", id, err, out)
	}
	return st.Pid, st.Status
}

func TestCtrRunRm(t *testing.T) {
	d := daemon(t, harness.ContainerdOptions{Namespace: "ctrd-runrm"})

	r := ctrRun(t, d, []string{"--rm"}, nativeImage, "ctrd-rm", "sh", "-c", "echo hello from $(cat /proc/1/comm); exit 3")
	if r.Code != 3 || strings.TrimSpace(r.Stdout) != "hello from sh" {
		t.Fatalf("ctr run --rm: exit %d, stdout %q, want 3 and %q\nstderr: %s", r.Code, r.Stdout, "hello from sh", r.Stderr)
	}
	if out := d.MustCtr(t, "containers", "ls", "-q").Stdout; strings.TrimSpace(out) != "" {
		t.Fatalf("containers left after run --rm: %s", out)
	}
	if _, err := os.Stat(filepath.Join(nsRoot(d), "ctrd-rm")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("crossrun state of ctrd-rm left after run --rm: %v", err)
	}

	// The kernel-ABI annotation is crossrun's alone: under it pidfd_open
	// (Linux 5.3) fails; without it, it works.
	r = ctrRun(t, d, []string{"--rm"}, nativeImage, "ctrd-pidfd", "/pidfd")
	if r.Code != 0 || !strings.Contains(r.Stdout, "succeed pidfd_open") {
		t.Fatalf("pidfd without annotation: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = ctrRun(t, d, []string{"--rm", "--annotation", "run.crossrun.kernel-abi=5.2"}, nativeImage, "ctrd-pidfd-abi", "/pidfd")
	if r.Code != 1 || !strings.Contains(r.Stdout, "failed pidfd_open: Function not implemented") {
		t.Fatalf("pidfd with run.crossrun.kernel-abi=5.2: exit %d, stdout %q, want 1 and ENOSYS\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}

	// A container that cannot start: crossrun's one-line diagnosis reaches
	// the user through the shim, and nothing is left behind.
	r = ctrRun(t, d, []string{"--rm"}, nativeImage, "ctrd-missing", "/no/such/program")
	if r.Code == 0 || !strings.Contains(r.Stderr, `cannot exec "/no/such/program"`) {
		t.Fatalf("missing program: exit %d, stderr %q, want crossrun's diagnosis", r.Code, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(nsRoot(d), "ctrd-missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("crossrun state of a failed create left behind: %v", err)
	}
}

// TestCtrTaskLifecycle drives one detached container through ctr's task
// commands: ls, exec, ps, metrics, pause, resume, kill, delete.
func TestCtrTaskLifecycle(t *testing.T) {
	d := daemon(t, harness.ContainerdOptions{Namespace: "ctrd-task"})
	const id = "ctrd-task"
	// sh waits on a child in the "wait" builtin, which a trapped SIGTERM
	// interrupts: "task kill" (SIGTERM) makes it exit 7.
	r := ctrRun(t, d, []string{"-d"}, nativeImage, id, "sh", "-c", `trap "kill \$!; exit 7" TERM; sleep 1000 & wait`)
	if r.Code != 0 {
		t.Fatalf("ctr run -d: exit %d: %s", r.Code, r.Stderr)
	}
	pid, status := taskStatus(t, d, id)
	if status != "RUNNING" || pid <= 0 {
		t.Fatalf("task ls: %s pid %d status %q, want RUNNING", id, pid, status)
	}
	// The container is crossrun's: its state is under the root the shim
	// passed, in crossrun's format, and crossrun reports it running.
	st := readCrossrunState(t, nsRoot(d), id)
	if st.InitPid != pid || !strings.HasPrefix(st.Bundle, d.Dir) {
		t.Fatalf("crossrun state: pid %d bundle %s; ctr says pid %d", st.InitPid, st.Bundle, pid)
	}
	if cpid, cst := crossrunStatus(t, d, id); cpid != pid || cst != "running" {
		t.Fatalf("crossrun state: pid %d %s, want %d running", cpid, cst, pid)
	}

	// Once sh has forked its sleep, its trap is set.
	waitProcesses(t, nsRoot(d), id, 2)

	t.Log("task exec")
	execFlags := []string{"--fifo-dir", filepath.Join(d.Dir, "fifo")}
	r = d.Ctr(t, append(append([]string{"tasks", "exec"}, execFlags...), "--exec-id", "ctrd-e1", id, "sh", "-c", "echo exec in $(cat /proc/1/comm); exit 5")...)
	if r.Code != 5 || strings.TrimSpace(r.Stdout) != "exec in sh" {
		t.Fatalf("task exec: exit %d, stdout %q, want 5 and %q; stderr %s", r.Code, r.Stdout, "exec in sh", r.Stderr)
	}
	d.MustCtr(t, append(append([]string{"tasks", "exec"}, execFlags...), "-d", "--exec-id", "ctrd-e2", id, "sleep", "2000")...)

	t.Log("task ps")
	r = d.MustCtr(t, "tasks", "ps", id)
	pids := map[int]string{}
	for _, line := range strings.Split(r.Stdout, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		p, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("task ps line %q", line)
		}
		pids[p] = strings.Join(f[1:], " ")
	}
	// sh, its "sleep 1000" and the exec'd "sleep 2000".
	if len(pids) != 3 {
		t.Fatalf("task ps: %d processes, want 3:\n%s", len(pids), r.Stdout)
	}
	var execPid int
	for p, info := range pids {
		if strings.Contains(info, "ctrd-e2") {
			execPid = p
		}
	}
	if cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(execPid) + "/cmdline"); string(cmd) != "sleep\x002000\x00" {
		t.Fatalf("task ps names pid %d for exec ctrd-e2; it runs %q", execPid, cmd)
	}
	if _, ok := pids[pid]; !ok {
		t.Fatalf("task ps does not list init %d:\n%s", pid, r.Stdout)
	}

	t.Log("task metrics")
	r = d.MustCtr(t, "tasks", "metrics", "--format", "json", id)
	var metrics struct {
		Pids *struct {
			Current uint64 `json:"current"`
		} `json:"pids"`
		Memory json.RawMessage `json:"memory"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &metrics); err != nil {
		t.Fatalf("task metrics: %v: %s", err, r.Stdout)
	}
	if metrics.Pids == nil || metrics.Pids.Current != 3 || len(metrics.Memory) == 0 {
		t.Fatalf("task metrics: want pids.current 3 and memory figures; got %s", r.Stdout)
	}

	t.Log("task pause and resume")
	d.MustCtr(t, "tasks", "pause", id)
	if _, st := taskStatus(t, d, id); st != "PAUSED" {
		t.Fatalf("after pause: task status %q, want PAUSED", st)
	}
	if _, st := crossrunStatus(t, d, id); st != "paused" {
		t.Fatalf("after pause: crossrun status %q, want paused", st)
	}
	d.MustCtr(t, "tasks", "resume", id)
	if _, st := taskStatus(t, d, id); st != "RUNNING" {
		t.Fatalf("after resume: task status %q, want RUNNING", st)
	}
	if _, st := crossrunStatus(t, d, id); st != "running" {
		t.Fatalf("after resume: crossrun status %q, want running", st)
	}

	t.Log("task kill (SIGTERM)")
	d.MustCtr(t, "tasks", "kill", id)
	waitTaskStatus(t, d, id, "STOPPED")
	r = d.MustCtr(t, "tasks", "delete", id)
	if !strings.Contains(r.Stderr, "exit code 7") {
		t.Fatalf("task delete after SIGTERM: want exit code 7 reported; stderr %q", r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(nsRoot(d), id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("crossrun state left after task delete: %v", err)
	}
	d.MustCtr(t, "containers", "delete", id)
}

// TestCtrKillAll: "task kill --all" reaches every process of the container
// (the shim runs "crossrun kill --all").
func TestCtrKillAll(t *testing.T) {
	d := daemon(t, harness.ContainerdOptions{Namespace: "ctrd-killall"})
	const id = "ctrd-killall"
	if r := ctrRun(t, d, []string{"-d"}, nativeImage, id, "sleep", "1000"); r.Code != 0 {
		t.Fatalf("ctr run -d: exit %d: %s", r.Code, r.Stderr)
	}
	d.MustCtr(t, "tasks", "exec", "--fifo-dir", filepath.Join(d.Dir, "fifo"), "-d", "--exec-id", "ctrd-k1", id, "sleep", "2000")
	d.MustCtr(t, "tasks", "kill", "--all", "--signal", "SIGKILL", id)
	waitTaskStatus(t, d, id, "STOPPED")
	r := d.MustCtr(t, "tasks", "delete", id)
	if !strings.Contains(r.Stderr, "exit code 137") {
		t.Fatalf("task delete after SIGKILL: want exit code 137; stderr %q", r.Stderr)
	}
	d.MustCtr(t, "containers", "delete", id)
}

// TestCtrTTY runs "ctr run --tty" and "ctr task exec --tty" on a
// pseudo-terminal: the container's process has a terminal of its own.
func TestCtrTTY(t *testing.T) {
	d := daemon(t, harness.ContainerdOptions{Namespace: "ctrd-tty"})
	all := append([]string{"-a", d.Socket, "-n", d.Namespace, "run", "--rm", "--tty"}, runtimeFlags(d)...)
	all = append(all, nativeImage, "ctrd-tty", "sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty; exit 4")
	out, code := harness.RunWithPty(t, exec.Command("ctr", all...))
	if code != 4 || !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "stdin-is-a-tty") {
		t.Fatalf("ctr run --tty: exit %d, output %q; want 4, a /dev/pts/N terminal", code, out)
	}

	const id = "ctrd-tty-exec"
	if r := ctrRun(t, d, []string{"-d"}, nativeImage, id, "sleep", "1000"); r.Code != 0 {
		t.Fatalf("ctr run -d: exit %d: %s", r.Code, r.Stderr)
	}
	out, code = harness.RunWithPty(t, exec.Command("ctr", "-a", d.Socket, "-n", d.Namespace, "tasks", "exec", "--tty",
		"--fifo-dir", filepath.Join(d.Dir, "fifo"), "--exec-id", "ctrd-t1", id, "sh", "-c", "tty; exit 6"))
	if code != 6 || !strings.Contains(out, "/dev/pts/") {
		t.Fatalf("ctr task exec --tty: exit %d, output %q; want 6 and a /dev/pts/N terminal", code, out)
	}
}

// TestCtrForeignArch runs an image of another architecture with "ctr run
// --platform": its entrypoint, a static binary for that architecture,
// runs through qemu-user.
func TestCtrForeignArch(t *testing.T) {
	goarch, qemu := foreignArch()
	harness.RequireCommand(t, qemu, "qemu-user-static")
	d := daemon(t, harness.ContainerdOptions{Namespace: "ctrd-foreign"})
	_, foreign := images(t)
	platform := "linux/" + goarch
	d.MustCtr(t, "images", "import", "--platform", platform, foreign)

	before := handlerRegistered(goarch)
	r := ctrRun(t, d, []string{"--rm", "--platform", platform}, foreignImage, "ctrd-foreign")
	checkForeignRun(t, goarch, before && handlerRegistered(goarch), r)
}

// checkForeignRun checks the outcome of running a goarch binary: its
// output, or, when the host had no binfmt_misc handler for goarch (other
// tests may switch handlers off and on meanwhile), crossrun's diagnosis
// rather than a bare "exec format error".
func checkForeignRun(t *testing.T, goarch string, handlerThroughout bool, r harness.Result) {
	t.Helper()
	switch {
	case r.Code == 0:
		if strings.TrimSpace(r.Stdout) != goarch {
			t.Fatalf("%s binary: stdout %q, want %q", goarch, r.Stdout, goarch)
		}
	case handlerThroughout:
		t.Fatalf("%s binary with a binfmt_misc handler: exit %d, stdout %q\nstderr: %s", goarch, r.Code, r.Stdout, r.Stderr)
	case !strings.Contains(r.Stderr, "crossrun binfmt install"):
		t.Fatalf("%s binary without a binfmt_misc handler: exit %d, stderr %q; want crossrun's diagnosis", goarch, r.Code, r.Stderr)
	default:
		t.Logf("no binfmt_misc handler for %s on the host: crossrun's diagnosis was reported", goarch)
	}
}

// handlerRegistered reports whether binfmt_misc has an enabled handler for
// goarch's ELF machine.
func handlerRegistered(goarch string) bool {
	name := map[string]string{"arm64": "aarch64", "amd64": "x86_64"}[goarch]
	if status, err := os.ReadFile("/proc/sys/fs/binfmt_misc/status"); err != nil || strings.TrimSpace(string(status)) != "enabled" {
		return false
	}
	entries, _ := filepath.Glob("/proc/sys/fs/binfmt_misc/*")
	for _, e := range entries {
		if !strings.Contains(filepath.Base(e), name) || strings.Contains(filepath.Base(e), name+"_be") {
			continue
		}
		f, err := os.Open(e)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		enabled := sc.Scan() && sc.Text() == "enabled"
		f.Close()
		if enabled {
			return true
		}
	}
	return false
}

// TestContainerdConfigExample loads docs/examples/containerd-config.toml
// into containerd (CRI plugin on) and checks containerd reads its runtime
// "crossrun" as the runc v2 shim with BinaryName set; a container then runs
// with that runtime type and binary.
func TestContainerdConfigExample(t *testing.T) {
	harness.RequireRoot(t)
	conf := filepath.Join(t.TempDir(), "crossrun.toml")
	if err := os.WriteFile(conf, []byte(readExample(t, "containerd-config.toml")), 0o644); err != nil {
		t.Fatal(err)
	}
	d := daemon(t, harness.ContainerdOptions{Namespace: "ctrd-config", Imports: []string{conf}, CRI: true})

	r := d.MustCtr(t, "plugins", "ls")
	criOK := false
	for _, line := range strings.Split(r.Stdout, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == "cri" && f[0] == "io.containerd.grpc.v1" {
			criOK = f[len(f)-1] == "ok"
		}
	}
	if !criOK {
		t.Fatalf("the CRI plugin did not load with the example config:\n%s\n%s", r.Stdout, d.LogTail())
	}

	out, err := exec.Command("containerd", "--config", d.Config, "config", "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("containerd config dump: %v\n%s", err, out)
	}
	if runcType, _ := runtimeEntry(string(out), "runc"); runcType != "io.containerd.runc.v2" {
		t.Fatalf("containerd lost the runc runtime with the example config")
	}
	runtimeType, binaryName := runtimeEntry(string(out), "crossrun")
	if runtimeType != "io.containerd.runc.v2" || binaryName != harness.Bin {
		t.Fatalf("containerd reads runtime \"crossrun\" as runtime_type %q BinaryName %q; want io.containerd.runc.v2 and %s", runtimeType, binaryName, harness.Bin)
	}

	// ctr does not read CRI runtime entries; it takes the same shim option
	// on its command line.
	r = d.Ctr(t, "run", "--rm", "--runtime", runtimeType, "--runc-binary", binaryName,
		"--runc-root", d.RuncRoot, "--fifo-dir", filepath.Join(d.Dir, "fifo"),
		nativeImage, "ctrd-config", "echo", "configured")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "configured" {
		t.Fatalf("ctr run: exit %d, stdout %q; stderr %s\ncontainerd log:\n%s", r.Code, r.Stdout, r.Stderr, d.LogTail())
	}
}

// runtimeEntry finds a CRI runtime's runtime_type and options.BinaryName
// in "containerd config dump" output.
func runtimeEntry(dump, name string) (runtimeType, binaryName string) {
	table := `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.` + name + `]`
	options := `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.` + name + `.options]`
	section := ""
	for _, line := range strings.Split(dump, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		value, _ = strconv.Unquote(strings.TrimSpace(value))
		switch {
		case section == table && key == "runtime_type":
			runtimeType = value
		case section == options && key == "BinaryName":
			binaryName = value
		}
	}
	return runtimeType, binaryName
}
