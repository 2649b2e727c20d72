package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crossrun/crossrun/integration/harness"
)

// crossrunRoot is crossrun's default --root, which podman uses: podman
// passes no --root to the runtime.
const crossrunRoot = "/run/crossrun"

// cgroupParent keeps the cgroups of the test's containers and their conmons
// in one tree that the test removes.
const cgroupParent = "/ctrd-podman"

// podmanEnv is a podman with storage, run state, network configuration and
// events of its own under a temporary directory, and a containers.conf of
// the test's choosing (CONTAINERS_CONF makes podman read only that file).
type podmanEnv struct {
	dir    string
	conf   string
	rootfs string
}

func newPodman(t *testing.T, containersConf string) *podmanEnv {
	t.Helper()
	harness.RequireRoot(t)
	harness.RequireCommand(t, "podman", "podman")
	harness.RequireCommand(t, "conmon", "conmon")
	dir, err := os.MkdirTemp("", "ctrd-podman-")
	if err != nil {
		t.Fatal(err)
	}
	p := &podmanEnv{dir: dir, conf: filepath.Join(dir, "containers.conf"), rootfs: filepath.Join(dir, "rootfs")}
	_, netRunDirErr := os.Stat("/run/containers")
	t.Cleanup(func() { p.cleanup(t, errors.Is(netRunDirErr, os.ErrNotExist)) })
	if err := os.WriteFile(p.conf, []byte(containersConf), 0o644); err != nil {
		t.Fatal(err)
	}
	storage := fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = %q\ngraphroot = %q\n", filepath.Join(dir, "runroot"), filepath.Join(dir, "root"))
	if err := os.WriteFile(filepath.Join(dir, "storage.conf"), []byte(storage), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", harness.Rootfs, p.rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	harness.BuildStatic(t, filepath.Join(harness.ModuleRoot(), "integration", "testdata", "pidfd"), runtime.GOARCH, "", filepath.Join(p.rootfs, "pidfd"))
	return p
}

// cmd returns "podman <isolating flags> args...".
func (p *podmanEnv) cmd(args ...string) *exec.Cmd {
	global := []string{
		"--root", filepath.Join(p.dir, "root"), "--runroot", filepath.Join(p.dir, "runroot"),
		"--tmpdir", filepath.Join(p.dir, "tmp"), "--network-config-dir", filepath.Join(p.dir, "net"),
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
	}
	cmd := exec.Command("podman", append(global, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf, "CONTAINERS_STORAGE_CONF="+filepath.Join(p.dir, "storage.conf"))
	return cmd
}

func (p *podmanEnv) run(t *testing.T, args ...string) harness.Result {
	t.Helper()
	return harness.RunCmd(t, p.cmd(args...))
}

func (p *podmanEnv) mustRun(t *testing.T, args ...string) harness.Result {
	t.Helper()
	r := p.run(t, args...)
	if r.Code != 0 {
		t.Fatalf("podman %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// runArgs are "podman run" flags, then the rootfs and the command: root
// without CAP_SYS_RESOURCE cannot raise hard rlimits to podman's defaults,
// and the tests need no network. --rootfs makes the first argument a
// directory instead of an image.
func (p *podmanEnv) runArgs(flags []string, command ...string) []string {
	args := append([]string{"run"}, flags...)
	args = append(args, "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
		"--network", "none", "--cgroup-parent", cgroupParent, "--rootfs", p.rootfs)
	return append(args, command...)
}

// quiet runs a cleanup command, killing it after a minute.
func quiet(cmd *exec.Cmd) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bounded := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	bounded.Env = cmd.Env
	bounded.WaitDelay = 5 * time.Second
	out, _ := bounded.Output()
	return out
}

func (p *podmanEnv) cleanup(t *testing.T, removeNetRunDir bool) {
	ids := strings.Fields(string(quiet(p.cmd("ps", "-aq", "--no-trunc"))))
	quiet(p.cmd("rm", "--all", "--force", "--time", "0"))
	for _, id := range ids {
		quiet(exec.Command(harness.Bin, "delete", "--force", id))
	}
	harness.UnmountUnder(p.dir)
	var dirs []string
	matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", strings.TrimPrefix(cgroupParent, "/")))
	matches2, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(cgroupParent, "/")))
	for _, m := range append(matches, matches2...) {
		filepath.Walk(m, func(path string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		os.Remove(d)
	}
	if removeNetRunDir {
		// podman's network backend makes this on first use.
		os.Remove("/run/containers/networks")
		os.Remove("/run/containers")
	}
	if err := os.RemoveAll(p.dir); err != nil {
		t.Logf("remove %s: %v", p.dir, err)
	}
}

// TestPodmanRuntimeFlag runs containers with "podman --runtime <crossrun>"
// and a containers.conf that names no runtime.
func TestPodmanRuntimeFlag(t *testing.T) {
	p := newPodman(t, "")
	run := func(extra []string, args ...string) harness.Result {
		return p.run(t, append([]string{"--runtime", harness.Bin}, p.runArgs(append([]string{"--rm"}, extra...), args...)...)...)
	}
	r := run(nil, "/bin/sh", "-c", "echo hello from podman; exit 3")
	if r.Code != 3 || strings.TrimSpace(r.Stdout) != "hello from podman" {
		t.Fatalf("podman run --rm: exit %d, stdout %q; want 3 and %q\nstderr: %s", r.Code, r.Stdout, "hello from podman", r.Stderr)
	}
	// crossrun's kernel-ABI annotation: under it pidfd_open (5.3) fails,
	// which only crossrun makes happen.
	r = run([]string{"--annotation", "run.crossrun.kernel-abi=5.2"}, "/pidfd")
	if r.Code != 1 || !strings.Contains(r.Stdout, "failed pidfd_open: Function not implemented") {
		t.Fatalf("pidfd under run.crossrun.kernel-abi=5.2: exit %d, stdout %q, want 1 and ENOSYS\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	if out := p.mustRun(t, "ps", "-aq").Stdout; strings.TrimSpace(out) != "" {
		t.Fatalf("containers left after run --rm: %s", out)
	}
}

// TestPodmanContainersConf uses docs/examples/containers.conf: podman picks
// crossrun as its default runtime and drives a detached container through
// exec, pause, stop and rm.
func TestPodmanContainersConf(t *testing.T) {
	p := newPodman(t, readExample(t, "containers.conf"))
	if got := strings.TrimSpace(p.mustRun(t, "info", "--format", "{{.Host.OCIRuntime.Path}}").Stdout); got != harness.Bin {
		t.Fatalf("podman info: OCI runtime %q, want %s", got, harness.Bin)
	}

	// An unrunnable program: podman shows crossrun's diagnosis once, from
	// the JSON log (runtime_supports_json), and the shell's 127.
	r := p.run(t, p.runArgs([]string{"--rm"}, "/no/such/program")...)
	if r.Code != 127 || !strings.Contains(r.Stderr, `cannot exec "/no/such/program"`) || strings.Contains(r.Stderr, "crossrun: crossrun:") {
		t.Fatalf("podman run of a missing program: exit %d, stderr %q; want 127 and crossrun's one-line diagnosis", r.Code, r.Stderr)
	}

	// "podman init" leaves a created container; "podman rm" deletes it
	// (crossrun delete --force) without starting it.
	r = p.mustRun(t, append([]string{"create", "--name", "ctrd-created"}, p.runArgs(nil, "/bin/true")[1:]...)...)
	createdID := strings.TrimSpace(r.Stdout)
	p.mustRun(t, "init", "ctrd-created")
	if cst := readCrossrunState(t, crossrunRoot, createdID); cst.InitPid == 0 {
		t.Fatalf("podman init: crossrun state has no init pid")
	}
	p.mustRun(t, "rm", "ctrd-created")
	if _, err := os.Stat(filepath.Join(crossrunRoot, createdID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("crossrun state of a created container left after podman rm: %v", err)
	}

	const name = "ctrd-pod"
	// sh waits in the "wait" builtin, which a trapped SIGTERM interrupts:
	// "podman stop" ends it with status 0 without falling back to SIGKILL.
	r = p.mustRun(t, p.runArgs([]string{"-d", "--name", name}, "/bin/sh", "-c", `trap "kill \$!; exit 0" TERM; sleep 1000 & wait`)...)
	id := strings.TrimSpace(r.Stdout)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("podman run -d printed %q, want a container id", r.Stdout)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(p.mustRun(t, "inspect", "--format", "{{.State.Pid}}", name).Stdout))
	st := readCrossrunState(t, crossrunRoot, id)
	if st.InitPid != pid || pid == 0 {
		t.Fatalf("crossrun state of %s: pid %d; podman says %d", id, st.InitPid, pid)
	}

	// Once sh has forked its sleep, its trap is set.
	waitProcesses(t, crossrunRoot, id, 2)

	r = p.run(t, "exec", name, "sh", "-c", "echo exec in $(cat /proc/1/comm); exit 5")
	if r.Code != 5 || strings.TrimSpace(r.Stdout) != "exec in sh" {
		t.Fatalf("podman exec: exit %d, stdout %q; want 5 and %q\nstderr: %s", r.Code, r.Stdout, "exec in sh", r.Stderr)
	}
	r = p.run(t, "exec", "--tty", name, "tty")
	if r.Code != 0 || !strings.Contains(r.Stdout, "/dev/pts/") {
		t.Fatalf("podman exec --tty: exit %d, stdout %q; want a /dev/pts/N terminal\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}

	p.mustRun(t, "pause", name)
	if got := strings.TrimSpace(p.mustRun(t, "inspect", "--format", "{{.State.Status}}", name).Stdout); got != "paused" {
		t.Fatalf("after podman pause: status %q", got)
	}
	p.mustRun(t, "unpause", name)

	p.mustRun(t, "stop", "--time", "60", name)
	if got := strings.TrimSpace(p.mustRun(t, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name).Stdout); got != "exited 0" {
		t.Fatalf("after podman stop: %q, want \"exited 0\" (SIGTERM handled)", got)
	}
	p.mustRun(t, "rm", name)
	if _, err := os.Stat(filepath.Join(crossrunRoot, id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("crossrun state of %s left after podman rm: %v", id, err)
	}
}

// TestPodmanForeignArch runs a root filesystem whose only program is a
// static binary for another architecture.
func TestPodmanForeignArch(t *testing.T) {
	goarch, qemu := foreignArch()
	harness.RequireCommand(t, qemu, "qemu-user-static")
	p := newPodman(t, readExample(t, "containers.conf"))
	foreignRootfs := filepath.Join(p.dir, "foreign-rootfs")
	if err := os.MkdirAll(foreignRootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	harness.BuildStatic(t, filepath.Join(harness.ModuleRoot(), "integration", "testdata", "hello"), goarch, "", filepath.Join(foreignRootfs, "hello"))
	p.rootfs = foreignRootfs
	before := handlerRegistered(goarch)
	r := p.run(t, p.runArgs([]string{"--rm"}, "/hello")...)
	checkForeignRun(t, goarch, before && handlerRegistered(goarch), r)
}
