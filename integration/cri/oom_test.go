package cri

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crossrun/crossrun/integration/harness"
)

// The CRI asks for oom_score_adj -998 for every pod sandbox. Lowering
// oom_score_adj needs CAP_SYS_RESOURCE; without it crossrun's create fails
// and says which capability is missing. These tests take that capability
// away (from the bounding set, with setpriv) when the host's root has it, so
// that they run the same everywhere.

const capSysResource = 24

// hasCapSysResource reports whether this process has CAP_SYS_RESOURCE in
// its effective set.
func hasCapSysResource(t *testing.T) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("CapEff %q: %v", v, err)
			}
			return caps&(1<<capSysResource) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

// withoutSysResource runs cmd without CAP_SYS_RESOURCE.
func withoutSysResource(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	if !hasCapSysResource(t) {
		return cmd
	}
	setpriv := harness.RequireCommand(t, "setpriv", "util-linux")
	wrapped := exec.Command(setpriv, append([]string{"--bounding-set=-sys_resource", "--"}, cmd.Args...)...)
	wrapped.Path = setpriv
	return wrapped
}

// run runs cmd with its output in a file, not a pipe (a created container
// keeps crossrun's stdio open), and returns the output and exit code.
func run(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out-")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(harness.Timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v: timed out after %v", cmd.Args, harness.Timeout)
	}
	out, _ := os.ReadFile(f.Name())
	return string(out), cmd.ProcessState.ExitCode()
}

// TestOOMScoreAdjNeedsCapSysResource: a bundle asking for oom_score_adj
// -998, created without CAP_SYS_RESOURCE, fails with a one-line error that
// names the capability (on stderr and in the JSON log the shim reads), and
// leaves nothing behind. The same bundle with a value it may set is created.
func TestOOMScoreAdjNeedsCapSysResource(t *testing.T) {
	harness.RequireRoot(t)
	id := "cri-oom-" + randomID()
	cgroupPath := "/crossrun-" + id
	b := harness.NewBundle(t, "sleep", "1000")
	b.Spec.Linux.CgroupsPath = cgroupPath
	low := -998
	b.Spec.Process.OOMScoreAdj = &low
	b.Save(t)
	harness.Cleanup(t, id)
	t.Cleanup(func() { removeCgroupTree(t, cgroupPath) })

	logFile := filepath.Join(t.TempDir(), "log.json")
	out, code := run(t, withoutSysResource(t, harness.Cmd("--log", logFile, "--log-format", "json", "create", "--bundle", b.Dir, id)))
	if code == 0 {
		t.Fatalf("create with oomScoreAdj -998 and no CAP_SYS_RESOURCE succeeded: %s", out)
	}
	if code != 1 {
		t.Errorf("create: exit %d, want 1", code)
	}
	msg := strings.TrimSuffix(out, "\n")
	if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "crossrun: ") {
		t.Errorf("create: want one line starting \"crossrun: \", got %q", out)
	}
	for _, want := range []string{"oomScoreAdj", "-998", "CAP_SYS_RESOURCE"} {
		if !strings.Contains(msg, want) {
			t.Errorf("create error %q does not mention %s", msg, want)
		}
	}
	logData, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(string(logData)), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry["level"] == "error" && strings.Contains(fmt.Sprint(entry["msg"]), "CAP_SYS_RESOURCE") {
			found = true
		}
	}
	if !found {
		t.Errorf("--log json has no error entry naming CAP_SYS_RESOURCE:\n%s", logData)
	}

	// Nothing is left: no state, no cgroup.
	if _, err := os.Stat(filepath.Join(harness.StateRoot, id)); !os.IsNotExist(err) {
		t.Errorf("state directory of %s left behind (%v)", id, err)
	}
	if r := harness.Run(t, "state", id); r.Code == 0 {
		t.Errorf("crossrun state %s after the failed create: exit 0: %s", id, r.Stdout)
	}
	for _, dir := range cgroupDirs(cgroupPath) {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left behind (%v)", dir, err)
		}
	}

	// A value at or above the current one needs no capability.
	high := 500
	b.Spec.Process.OOMScoreAdj = &high
	b.Save(t)
	if out, code := run(t, withoutSysResource(t, harness.Cmd("create", "--bundle", b.Dir, id))); code != 0 {
		t.Fatalf("create with oomScoreAdj 500: exit %d: %s", code, out)
	}
	st := harness.State(t, id)
	pid := int(st["pid"].(float64))
	if got := readInt(t, fmt.Sprintf("/proc/%d/oom_score_adj", pid)); got != 500 {
		t.Errorf("init's oom_score_adj %d, want 500", got)
	}
	harness.MustRun(t, "delete", "--force", id)
}

// TestCRIWithoutRestrictOOMScoreAdj: the docs' containerd snippet without
// restrict_oom_score_adj, containerd without CAP_SYS_RESOURCE: the pod's
// sandbox cannot be created, and the error the kubelet would see is
// crossrun's, naming the capability. Nothing of the pod is left.
func TestCRIWithoutRestrictOOMScoreAdj(t *testing.T) {
	requireContainerd(t)
	harness.RequireCommand(t, "setpriv", "util-linux")
	rc := readRuntimeClass(t)
	snippet := docsSnippet(t)
	const on = "restrict_oom_score_adj = true"
	if strings.Count(snippet, on) != 1 {
		t.Fatalf("kubernetes-containerd.toml: want one %q", on)
	}
	snippet = strings.Replace(snippet, on, "restrict_oom_score_adj = false", 1)

	dir := t.TempDir()
	pauseDir := filepath.Join(dir, "pause-layer")
	os.MkdirAll(pauseDir, 0o755)
	harness.BuildStatic(t, filepath.Join("testdata", "pause"), runtime.GOARCH, "", filepath.Join(pauseDir, "pause"))
	archive := filepath.Join(dir, "pause.tar")
	writeImage(t, harness.OCIImage{Name: pauseRef, Arch: runtime.GOARCH, Rootfs: pauseDir, Entrypoint: []string{"/pause"}}, archive)

	c := startContainerd(t, containerdOptions{snippet: snippet, sandboxImage: pauseRef, dropSysResource: true})
	c.importImage(t, archive, pauseRef)

	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "cri-oom", Namespace: podNamespace, Uid: randomID()},
		LogDirectory: filepath.Join(c.dir, "pods", "cri-oom"),
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    c.cgroupParent(t, "pod-oom"),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: namespaces()},
		},
	}
	ctx, cancel := criContext()
	defer cancel()
	_, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: rc.Handler})
	if err == nil {
		t.Fatal("RunPodSandbox succeeded with oom_score_adj -998, no restrict_oom_score_adj and no CAP_SYS_RESOURCE")
	}
	for _, want := range []string{"oomScoreAdj to -998", "CAP_SYS_RESOURCE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("RunPodSandbox error does not contain %q: %v", want, err)
		}
	}
	t.Logf("RunPodSandbox: %v", err)
	r, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Items) != 0 {
		t.Errorf("ListPodSandbox after the failed RunPodSandbox: %v", r.Items)
	}
	entries, _ := os.ReadDir(filepath.Join(c.crossrunRoot, criNamespace))
	if len(entries) != 0 {
		t.Errorf("crossrun state left after the failed create: %v", entries)
	}
	c.checkRuncUnused(t)
}
