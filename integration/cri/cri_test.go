// Package cri proves the Kubernetes path to crossrun on one machine: it does
// what the kubelet does, through the CRI, to a private containerd whose CRI
// plugin has a runtime handler "crossrun" (the runc v2 shim running
// crossrun), configured with the snippet from docs/examples.
package cri

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crossrun/crossrun/integration/harness"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m))
}

const (
	podNamespace = "cri-test"
	pauseRef     = "localhost/crossrun-test/pause:1"
	windowsRef   = "localhost/crossrun-test/windows:1"
	podSubnet    = "10.123.45.0/24"
)

// The kubelet's default masked and read-only paths for a non-privileged
// container; it sends them in every CreateContainer.
var (
	kubeletMaskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	kubeletReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// images are the archives TestCRI imports.
type images struct {
	pause, busybox, arm64, windows string
}

// buildImages builds the offline images: the pause image (a static Go
// program for the host), busybox from busybox-static, a linux/arm64 image
// whose entrypoint is a static arm64 Go program, and one whose entrypoint
// is a Windows executable.
func buildImages(t *testing.T, dir, busyboxRef, arm64Ref string) images {
	t.Helper()
	pauseDir := filepath.Join(dir, "pause-layer")
	os.MkdirAll(pauseDir, 0o755)
	harness.BuildStatic(t, filepath.Join("testdata", "pause"), runtime.GOARCH, "", filepath.Join(pauseDir, "pause"))
	armDir := filepath.Join(dir, "arm64-layer")
	os.MkdirAll(armDir, 0o755)
	harness.BuildStatic(t, filepath.Join("testdata", "archhello"), "arm64", "", filepath.Join(armDir, "hello"))

	// A Windows executable (an MZ header is enough to be one) that no
	// Linux route can run.
	winDir := filepath.Join(dir, "windows-layer")
	os.MkdirAll(winDir, 0o755)
	if err := os.WriteFile(filepath.Join(winDir, "app.exe"), append([]byte("MZ"), make([]byte, 126)...), 0o755); err != nil {
		t.Fatal(err)
	}

	imgs := images{
		pause:   filepath.Join(dir, "pause.tar"),
		busybox: filepath.Join(dir, "busybox.tar"),
		arm64:   filepath.Join(dir, "arm64.tar"),
		windows: filepath.Join(dir, "windows.tar"),
	}
	writeImage(t, harness.OCIImage{Name: pauseRef, Arch: runtime.GOARCH, Rootfs: pauseDir, Entrypoint: []string{"/pause"}}, imgs.pause)
	writeImage(t, harness.OCIImage{Name: busyboxRef, Arch: runtime.GOARCH, Rootfs: harness.Rootfs, Cmd: []string{"sh"}}, imgs.busybox)
	writeImage(t, harness.OCIImage{Name: arm64Ref, Arch: "arm64", Rootfs: armDir, Entrypoint: []string{"/hello"}}, imgs.arm64)
	writeImage(t, harness.OCIImage{Name: windowsRef, Arch: runtime.GOARCH, Rootfs: winDir, Entrypoint: []string{"/app.exe"}}, imgs.windows)
	return imgs
}

// randomID is a pod uid.
func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// pod is a running pod sandbox and the configuration it was made from.
type pod struct {
	id       string
	config   *runtimeapi.PodSandboxConfig
	logDir   string
	ip       string
	pausePid int
}

// namespaces is the kubelet's default: the pod's network and IPC, a pid
// namespace per container.
func namespaces() *runtimeapi.NamespaceOption {
	return &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
}

// runPod does what the kubelet does for a new pod: a log directory, a pod
// cgroup parent, RunPodSandbox with the RuntimeClass's handler.
func (c *containerd) runPod(t *testing.T, name, handler string) *pod {
	t.Helper()
	uid := randomID()
	logDir := filepath.Join(c.dir, "pods", podNamespace+"_"+name+"_"+uid)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cgroupParent := c.cgroupParent(t, "pod"+uid)
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: podNamespace, Uid: uid},
		Hostname:     name,
		LogDirectory: logDir,
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.123.45.53"}, Searches: []string{podNamespace + ".svc.cluster.local"}, Options: []string{"ndots:5"}},
		Labels: map[string]string{
			"io.kubernetes.pod.name":      name,
			"io.kubernetes.pod.namespace": podNamespace,
			"io.kubernetes.pod.uid":       uid,
		},
		Annotations: map[string]string{"kubernetes.io/config.source": "api"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: cgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: namespaces(),
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
		},
	}
	ctx, cancel := criContext()
	defer cancel()
	r, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		t.Fatalf("RunPodSandbox %s (handler %q): %v\n%s", name, handler, err, c.logTail())
	}
	p := &pod{id: r.PodSandboxId, config: cfg, logDir: logDir}

	st, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id, Verbose: true})
	if err != nil {
		t.Fatalf("PodSandboxStatus: %v", err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("pod %s: state %v, want SANDBOX_READY", name, st.Status.State)
	}
	p.ip = st.Status.GetNetwork().GetIp()
	_, subnet, _ := net.ParseCIDR(podSubnet)
	if ip := net.ParseIP(p.ip); ip == nil || !subnet.Contains(ip) {
		t.Errorf("pod %s: IP %q, want one in the CNI range %s", name, p.ip, podSubnet)
	}
	var info struct {
		Pid            int    `json:"pid"`
		RuntimeHandler string `json:"runtimeHandler"`
		RuntimeType    string `json:"runtimeType"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil {
		t.Fatalf("PodSandboxStatus verbose info: %v: %q", err, st.Info["info"])
	}
	if info.RuntimeHandler != handler || info.RuntimeType != "io.containerd.runc.v2" {
		t.Errorf("pod %s: runtime handler %q type %q, want %q io.containerd.runc.v2", name, info.RuntimeHandler, info.RuntimeType, handler)
	}
	if !strings.Contains(st.Info["info"], harness.Bin) {
		t.Errorf("pod %s: the sandbox's runtime options do not name %s:\n%s", name, harness.Bin, st.Info["info"])
	}
	p.pausePid = info.Pid
	// The pause container is crossrun's.
	c.checkCrossrunState(t, p.id, "running", p.pausePid)
	return p
}

// cgroupParent returns a cgroup parent for a pod (as the kubelet's
// /kubepods/burstable/pod<uid>) below a per-test root, removed at cleanup.
func (c *containerd) cgroupParent(t *testing.T, leaf string) string {
	t.Helper()
	if c.cgroupRoot == "" {
		c.cgroupRoot = "/crossrun-cri-" + filepath.Base(c.dir)
	}
	return c.cgroupRoot + "/" + leaf
}

// checkCrossrunState asserts crossrun keeps the container's state in the
// --root the shim passed, in crossrun's format, with the given status.
func (c *containerd) checkCrossrunState(t *testing.T, id, status string, pid int) {
	t.Helper()
	st := c.crossrunState(t, id)
	if st["status"] != status {
		t.Errorf("crossrun state %s: status %v, want %s", id, st["status"], status)
	}
	if pid > 0 && int(st["pid"].(float64)) != pid {
		t.Errorf("crossrun state %s: pid %v, CRI says %d", id, st["pid"], pid)
	}
	// state.json is crossrun's own: runc's has no "ready" and keeps its
	// own configuration type, not the OCI spec.
	data, err := os.ReadFile(filepath.Join(c.crossrunRoot, criNamespace, id, "state.json"))
	if err != nil {
		t.Fatalf("crossrun state.json of %s: %v", id, err)
	}
	var raw struct {
		Ready  *bool `json:"ready"`
		Config struct {
			OCIVersion string `json:"ociVersion"`
		} `json:"config"`
	}
	if err := json.Unmarshal(data, &raw); err != nil || raw.Ready == nil || !*raw.Ready || raw.Config.OCIVersion == "" {
		t.Errorf("%s/%s/state.json is not crossrun's state (ready, config.ociVersion): %v %s", criNamespace, id, err, data)
	}
}

// containerConfig is what the kubelet sends for a container of a pod
// manifest.
func containerConfig(name, image string, command, args []string, res *runtimeapi.LinuxContainerResources) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  command,
		Args:     args,
		Envs:     []*runtimeapi.KeyValue{{Key: "KUBERNETES_SERVICE_HOST", Value: "10.123.45.1"}},
		Labels:   map[string]string{"io.kubernetes.container.name": name},
		LogPath:  name + "/0.log",
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: res,
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: namespaces(),
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
				MaskedPaths:      kubeletMaskedPaths,
				ReadonlyPaths:    kubeletReadonlyPaths,
			},
		},
	}
}

// createContainer creates a container in p. The CRI plugin only records
// it: the runtime's create and start both come with StartContainer.
func (c *containerd) createContainer(t *testing.T, p *pod, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	ctx, cancel := criContext()
	defer cancel()
	r, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.config})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v\n%s", cfg.Metadata.Name, err, c.logTail())
	}
	st, _ := c.status(t, r.ContainerId)
	if st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("container %s after CreateContainer: state %v, want CONTAINER_CREATED", cfg.Metadata.Name, st.State)
	}
	return r.ContainerId
}

func (c *containerd) startContainer(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := criContext()
	defer cancel()
	if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v\n%s", err, c.logTail())
	}
}

// status returns the container's status and, from the verbose info, its
// pid.
func (c *containerd) status(t *testing.T, id string) (*runtimeapi.ContainerStatus, int) {
	t.Helper()
	ctx, cancel := criContext()
	defer cancel()
	r, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatalf("ContainerStatus: %v", err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	json.Unmarshal([]byte(r.Info["info"]), &info)
	return r.Status, info.Pid
}

// waitExited waits until the container's state is EXITED.
func (c *containerd) waitExited(t *testing.T, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st, _ := c.status(t, id)
		if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: state %v, want CONTAINER_EXITED", id, st.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// execSync runs a command in the container through ExecSync.
func (c *containerd) execSync(t *testing.T, id string, cmd ...string) (stdout, stderr string, code int32) {
	t.Helper()
	ctx, cancel := criContext()
	defer cancel()
	r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 30})
	if err != nil {
		t.Fatalf("ExecSync %q: %v", cmd, err)
	}
	return string(r.Stdout), string(r.Stderr), r.ExitCode
}

// waitLog waits until the container's CRI log file has a line with want
// and returns the file's content.
func waitLog(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			// "<RFC 3339 time> stdout F <text>"
			f := strings.SplitN(sc.Text(), " ", 4)
			if len(f) == 4 && f[1] == "stdout" && f[3] == want {
				return string(data)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s has no stdout line %q:\n%s", path, want, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopAndRemovePod is the end of a pod's life: StopPodSandbox,
// RemovePodSandbox; afterwards neither crossrun nor the cgroup tree holds
// anything of it.
func (c *containerd) stopAndRemovePod(t *testing.T, p *pod, containers ...string) {
	t.Helper()
	ctx, cancel := criContext()
	defer cancel()
	if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	st, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id})
	if err != nil {
		t.Fatalf("PodSandboxStatus: %v", err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("pod after StopPodSandbox: state %v, want SANDBOX_NOTREADY", st.Status.State)
	}
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	if _, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id}); err == nil {
		t.Errorf("PodSandboxStatus after RemovePodSandbox: no error")
	}
	for _, id := range append([]string{p.id}, containers...) {
		if _, err := os.Stat(filepath.Join(c.crossrunRoot, criNamespace, id)); !os.IsNotExist(err) {
			t.Errorf("crossrun state of %s is still there after the pod was removed (%v)", id, err)
		}
		for _, dir := range cgroupDirs(c.cgroupParent(t, "pod"+p.config.Metadata.Uid) + "/" + id) {
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("cgroup %s is still there after the pod was removed (%v)", dir, err)
			}
		}
	}
	if p.pausePid > 0 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.pausePid)); err == nil {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.pausePid)); strings.TrimSpace(string(comm)) == "pause" {
				t.Errorf("the pause process %d is still running after the pod was removed", p.pausePid)
			}
		}
	}
}

// TestCRI runs the docs' pods through the CRI as the kubelet would, on
// crossrun: a native busybox pod through its whole life, then the arm64 pod,
// whose container runs through qemu-user.
func TestCRI(t *testing.T) {
	requireContainerd(t)
	rc := readRuntimeClass(t)
	nativePod := readPod(t, "kubernetes-pod.yaml")
	armPod := readPod(t, "kubernetes-pod-arm64.yaml")
	work := t.TempDir()
	imgs := buildImages(t, work, nativePod.Spec.Containers[0].Image, armPod.Spec.Containers[0].Image)

	c := startContainerd(t, containerdOptions{snippet: docsSnippet(t), sandboxImage: pauseRef})
	ctx, cancel := criContext()
	v, err := c.rt.Version(ctx, &runtimeapi.VersionRequest{})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "containerd" || v.RuntimeApiVersion != "v1" {
		t.Errorf("Version: runtime %q API %q, want containerd v1", v.RuntimeName, v.RuntimeApiVersion)
	}
	t.Logf("CRI: %s %s, API %s", v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion)
	c.importImage(t, imgs.pause, pauseRef)
	c.importImage(t, imgs.busybox, nativePod.Spec.Containers[0].Image)
	c.importImage(t, imgs.arm64, armPod.Spec.Containers[0].Image)
	c.importImage(t, imgs.windows, windowsRef)

	t.Run("pod", func(t *testing.T) { testNativePod(t, c, rc, nativePod) })
	t.Run("arm64 pod", func(t *testing.T) { testArm64Pod(t, c, rc, armPod) })
	c.checkRuncUnused(t)
}

func testNativePod(t *testing.T, c *containerd, rc runtimeClass, m podManifest) {
	handler := handlerFor(t, m, rc)
	spec := m.Spec.Containers[0]
	want, err := kubeletResources(spec.Resources.Requests, spec.Resources.Limits)
	if err != nil {
		t.Fatal(err)
	}
	// The kubelet's oom_score_adj for a burstable container.
	oomScoreAdj := burstableOOMScoreAdj(t, want.memoryRequest)

	p := c.runPod(t, "cri-"+m.Metadata.Name, handler)

	// The sandbox asks for oom_score_adj -998; with restrict_oom_score_adj
	// containerd raises it to its own (usually 0 here) if that is higher.
	containerdScore := readInt(t, fmt.Sprintf("/proc/%d/oom_score_adj", c.cmd.Process.Pid))
	if got, want := readInt(t, fmt.Sprintf("/proc/%d/oom_score_adj", p.pausePid)), max(containerdScore, -998); got != want {
		t.Errorf("pause oom_score_adj %d, want %d (-998, but not below containerd's own %d: restrict_oom_score_adj)", got, want, containerdScore)
	}

	res := &runtimeapi.LinuxContainerResources{
		CpuPeriod:          want.cpuPeriod,
		CpuQuota:           want.cpuQuota,
		CpuShares:          want.cpuShares,
		MemoryLimitInBytes: want.memoryLimit,
		OomScoreAdj:        oomScoreAdj,
	}
	name := "cri-" + spec.Name
	id := c.createContainer(t, p, containerConfig(name, spec.Image, spec.Command, spec.Args, res))
	c.startContainer(t, id)
	st, pid := c.status(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || pid <= 0 {
		t.Fatalf("ContainerStatus: state %v pid %d, want CONTAINER_RUNNING", st.State, pid)
	}
	c.checkCrossrunState(t, id, "running", pid)
	logPath := filepath.Join(p.logDir, name, "0.log")
	if st.LogPath != logPath {
		t.Errorf("ContainerStatus: log path %q, want %q", st.LogPath, logPath)
	}
	waitLog(t, logPath, "hello from crossrun")

	t.Run("ExecSync", func(t *testing.T) {
		out, errOut, code := c.execSync(t, id, "sh", "-c", "echo out; echo err >&2; exit 3")
		if out != "out\n" || errOut != "err\n" || code != 3 {
			t.Errorf("ExecSync: stdout %q stderr %q exit %d, want \"out\\n\" \"err\\n\" 3", out, errOut, code)
		}
		// The container joined the pod's namespaces by path.
		if out, _, _ := c.execSync(t, id, "hostname"); strings.TrimSpace(out) != p.config.Hostname {
			t.Errorf("hostname %q, want the pod's %q", out, p.config.Hostname)
		}
		if out, _, code := c.execSync(t, id, "ip", "-4", "-o", "addr", "show", "eth0"); code != 0 || !strings.Contains(out, " "+p.ip+"/") {
			t.Errorf("ip addr show eth0: exit %d %q, want the pod's IP %s", code, out, p.ip)
		}
		if out, _, _ := c.execSync(t, id, "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 10.123.45.53") {
			t.Errorf("/etc/resolv.conf %q: not the pod's DNS config", out)
		}
		// The CRI's RuntimeDefault profile, compiled by crossrun.
		if out, _, _ := c.execSync(t, id, "grep", "^Seccomp:", "/proc/1/status"); strings.Join(strings.Fields(out), " ") != "Seccomp: 2" {
			t.Errorf("container's /proc/1/status %q, want Seccomp: 2 (filter)", out)
		}
		if out, _, code := c.execSync(t, id, "cat", "/proc/kcore"); code == 0 || out != "" {
			t.Errorf("masked /proc/kcore: exit %d, %d bytes", code, len(out))
		}
		if _, errOut, code := c.execSync(t, id, "sh", "-c", "echo 1 > /proc/sys/kernel/panic"); code == 0 {
			t.Errorf("write to read-only /proc/sys: exit 0 %q", errOut)
		}
		if out, _, _ := c.execSync(t, id, "cat", "/proc/1/oom_score_adj"); strings.TrimSpace(out) != strconv.FormatInt(oomScoreAdj, 10) {
			t.Errorf("container's oom_score_adj %q, want %d", out, oomScoreAdj)
		}
	})

	t.Run("resources reach the cgroup", func(t *testing.T) {
		checkCgroupLimits(t, pid, c.cgroupParent(t, "pod"+p.config.Metadata.Uid)+"/"+id, want)
		// UpdateContainerResources ("crossrun update" through the shim),
		// as the kubelet does for an in-place resize.
		upd := want
		upd.cpuQuota, upd.memoryLimit = want.cpuQuota*2, want.memoryLimit*3/2
		ctx, cancel := criContext()
		defer cancel()
		_, err := c.rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: &runtimeapi.LinuxContainerResources{
			CpuPeriod: upd.cpuPeriod, CpuQuota: upd.cpuQuota, CpuShares: upd.cpuShares, MemoryLimitInBytes: upd.memoryLimit, OomScoreAdj: oomScoreAdj,
		}})
		if err != nil {
			t.Fatalf("UpdateContainerResources: %v", err)
		}
		checkCgroupLimits(t, pid, c.cgroupParent(t, "pod"+p.config.Metadata.Uid)+"/"+id, upd)
	})

	t.Run("ContainerStats", func(t *testing.T) {
		ctx, cancel := criContext()
		defer cancel()
		r, err := c.rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id})
		if err != nil {
			t.Fatalf("ContainerStats: %v", err)
		}
		cpu := r.GetStats().GetCpu().GetUsageCoreNanoSeconds().GetValue()
		mem := r.GetStats().GetMemory().GetWorkingSetBytes().GetValue()
		t.Logf("stats: cpu %d ns, memory working set %d bytes", cpu, mem)
		if cpu == 0 && mem == 0 {
			t.Errorf("ContainerStats: no CPU or memory usage: %v", r.GetStats())
		}
	})

	t.Run("Exec", func(t *testing.T) {
		ctx, cancel := criContext()
		defer cancel()
		r, err := c.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true,
			Cmd: []string{"sh", "-c", `read line; echo "exec:$line"; echo to-stderr >&2; exit 5`}})
		if err != nil {
			t.Fatalf("Exec: %v", err)
		}
		s, err := openStream(c.netns, r.Url)
		if err != nil {
			t.Fatalf("Exec stream %s: %v", r.Url, err)
		}
		defer s.Close()
		if err := s.send(chanStdin, []byte("hi\n")); err != nil {
			t.Fatal(err)
		}
		var sess session
		if err := s.readUntil(&sess, nil); err != nil || sess.status == nil {
			t.Fatalf("Exec stream: %v (stdout %q stderr %q)", err, sess.stdout.String(), sess.stderr.String())
		}
		code, err := sess.status.exitCode()
		if sess.stdout.String() != "exec:hi\n" || sess.stderr.String() != "to-stderr\n" || code != 5 || err != nil {
			t.Errorf("Exec: stdout %q stderr %q exit %d (%v), want \"exec:hi\\n\" \"to-stderr\\n\" 5", sess.stdout.String(), sess.stderr.String(), code, err)
		}
	})

	// A second container with stdin open, for Attach.
	attachName := "cri-attach"
	attachCfg := containerConfig(attachName, spec.Image, []string{"sh", "-c", `echo attach-ready; while read l; do echo "attach:$l"; done`}, nil, nil)
	attachCfg.Stdin = true
	attachID := c.createContainer(t, p, attachCfg)
	c.startContainer(t, attachID)
	attachLog := filepath.Join(p.logDir, attachName, "0.log")
	waitLog(t, attachLog, "attach-ready")

	t.Run("Attach", func(t *testing.T) {
		ctx, cancel := criContext()
		defer cancel()
		r, err := c.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: attachID, Stdin: true, Stdout: true, Stderr: true})
		if err != nil {
			t.Fatalf("Attach: %v", err)
		}
		s, err := openStream(c.netns, r.Url)
		if err != nil {
			t.Fatalf("Attach stream %s: %v", r.Url, err)
		}
		defer s.Close()
		if err := s.send(chanStdin, []byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		var sess session
		err = s.readUntil(&sess, func(s *session) bool { return strings.Contains(s.stdout.String(), "attach:ping\n") })
		if err != nil || !strings.Contains(sess.stdout.String(), "attach:ping\n") {
			t.Errorf("Attach: stdout %q (%v), want attach:ping", sess.stdout.String(), err)
		}
		waitLog(t, attachLog, "attach:ping")
	})

	// An entrypoint nothing can run fails StartContainer with crossrun's
	// diagnosis, which the kubelet reports as the container's error.
	badID := c.createContainer(t, p, containerConfig("cri-windows", windowsRef, nil, nil, nil))
	t.Run("StartContainer error", func(t *testing.T) {
		ctx, cancel := criContext()
		defer cancel()
		_, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: badID})
		const diagnosis = `cannot exec "/app.exe": exec format error: this is a Windows PE executable`
		if err == nil || !strings.Contains(err.Error(), diagnosis) {
			t.Errorf("StartContainer of a Windows executable: %v, want an error with %q", err, diagnosis)
		}
		t.Logf("StartContainer: %v", err)
		st, _ := c.status(t, badID)
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.Reason != "StartError" || !strings.Contains(st.Message, diagnosis) {
			t.Errorf("container that failed to start: state %v reason %q message %q, want CONTAINER_EXITED StartError and the diagnosis", st.State, st.Reason, st.Message)
		}
		if _, err := os.Stat(filepath.Join(c.crossrunRoot, criNamespace, badID)); !os.IsNotExist(err) {
			t.Errorf("crossrun state of the failed container %s left behind (%v)", badID, err)
		}
	})

	t.Run("StopContainer", func(t *testing.T) {
		ctx, cancel := criContext()
		defer cancel()
		// Timeout 0: SIGKILL at once.
		if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: attachID, Timeout: 0}); err != nil {
			t.Fatalf("StopContainer: %v", err)
		}
		st, _ := c.status(t, attachID)
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 || st.Reason != "Error" {
			t.Errorf("killed container: state %v exit %d reason %q, want CONTAINER_EXITED 137 Error", st.State, st.ExitCode, st.Reason)
		}
		// The manifest's command traps SIGTERM and exits 0.
		if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 30}); err != nil {
			t.Fatalf("StopContainer: %v", err)
		}
		st, _ = c.status(t, id)
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 || st.Reason != "Completed" {
			t.Errorf("stopped container: state %v exit %d reason %q, want CONTAINER_EXITED 0 Completed", st.State, st.ExitCode, st.Reason)
		}
		if st.FinishedAt < st.StartedAt || st.StartedAt == 0 {
			t.Errorf("stopped container: started %d finished %d", st.StartedAt, st.FinishedAt)
		}
		// The shim deleted the container through crossrun.
		for _, cid := range []string{id, attachID} {
			if _, err := os.Stat(filepath.Join(c.crossrunRoot, criNamespace, cid)); !os.IsNotExist(err) {
				t.Errorf("crossrun state of stopped container %s still there (%v)", cid, err)
			}
		}
	})

	ctx, cancel := criContext()
	defer cancel()
	for _, cid := range []string{id, attachID, badID} {
		if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cid}); err != nil {
			t.Errorf("RemoveContainer: %v", err)
		}
	}
	if r, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: p.id}}); err != nil || len(r.Containers) != 0 {
		t.Errorf("ListContainers after RemoveContainer: %v %v", r.GetContainers(), err)
	}
	c.stopAndRemovePod(t, p, id, attachID, badID)
}

func testArm64Pod(t *testing.T, c *containerd, rc runtimeClass, m podManifest) {
	requireQemuHandler(t, "qemu-aarch64")
	handler := handlerFor(t, m, rc)
	spec := m.Spec.Containers[0]
	ctx, cancel := criContext()
	defer cancel()
	is, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: spec.Image}, Verbose: true})
	if err != nil || is.Image == nil {
		t.Fatalf("ImageStatus %s: %v", spec.Image, err)
	}
	var info struct {
		ImageSpec struct {
			Architecture string `json:"architecture"`
		} `json:"imageSpec"`
	}
	if err := json.Unmarshal([]byte(is.Info["info"]), &info); err != nil || info.ImageSpec.Architecture != "arm64" {
		t.Errorf("ImageStatus %s: architecture %q (%v), want arm64", spec.Image, info.ImageSpec.Architecture, err)
	}

	p := c.runPod(t, "cri-"+m.Metadata.Name, handler)
	name := "cri-" + spec.Name
	id := c.createContainer(t, p, containerConfig(name, spec.Image, spec.Command, spec.Args, nil))
	c.startContainer(t, id)
	st := c.waitExited(t, id)
	if st.ExitCode != 0 || st.Reason != "Completed" {
		t.Errorf("arm64 container: exit %d reason %q message %q, want 0 Completed", st.ExitCode, st.Reason, st.Message)
	}
	// The program reports the architecture it was built for and what
	// uname says: under qemu-user, the emulated machine.
	waitLog(t, filepath.Join(p.logDir, name, "0.log"), "hello from linux/arm64, uname machine aarch64")
	if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Errorf("RemoveContainer: %v", err)
	}

	c.stopAndRemovePod(t, p, id)
}

// requireQemuHandler skips unless the host's binfmt_misc has the handler
// enabled: pods have no user namespace, so crossrun needs the host's.
func requireQemuHandler(t *testing.T, name string) {
	t.Helper()
	data, err := os.ReadFile("/proc/sys/fs/binfmt_misc/" + name)
	if err != nil || !strings.HasPrefix(string(data), "enabled") {
		t.Skipf("skipped: needs an enabled %s binfmt_misc handler (apt-get install -y qemu-user-static)", name)
	}
	if status, err := os.ReadFile("/proc/sys/fs/binfmt_misc/status"); err != nil || strings.TrimSpace(string(status)) != "enabled" {
		t.Skipf("skipped: binfmt_misc is disabled or not mounted")
	}
}

// burstableOOMScoreAdj is the kubelet's oom_score_adj for a burstable
// container: 1000 - 1000*memoryRequest/memoryCapacity, within [2, 999].
func burstableOOMScoreAdj(t *testing.T, request int64) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	var totalKB int64
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			totalKB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	if totalKB == 0 {
		t.Fatal("no MemTotal in /proc/meminfo")
	}
	return min(max(1000-1000*request/(totalKB*1024), 2), 999)
}

func readInt(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}
