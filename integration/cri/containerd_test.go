package cri

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crossrun/crossrun/integration/harness"
)

// The containerd snippet in docs/examples names crossrun and its state
// directory with the paths a node would use; a test instance swaps them for
// its own.
const (
	docBinaryName = `BinaryName = "/usr/local/sbin/crossrun"`
	docRoot       = `Root = "/run/containerd/crossrun"`
	criHeader     = `[plugins."io.containerd.grpc.v1.cri"]`
	// criNamespace is the containerd namespace of the CRI plugin; the shim
	// appends it to the runtime's Root.
	criNamespace = "k8s.io"
)

// containerdOptions say how a private containerd differs between tests.
type containerdOptions struct {
	// snippet is docs/examples/kubernetes-containerd.toml, possibly edited.
	snippet string
	// sandboxImage is the CRI plugin's sandbox_image.
	sandboxImage string
	// dropSysResource runs containerd (and so its shims and crossrun)
	// without CAP_SYS_RESOURCE in its bounding set.
	dropSysResource bool
}

// containerd is a private containerd with the CRI plugin: its root, state,
// sockets, CNI configuration and crossrun state all live in dir, and it runs
// in a network namespace of its own, so that the CNI bridge, the veth pairs
// and the CRI streaming server never touch the host's network.
type containerd struct {
	dir          string
	socket       string
	state        string
	crossrunRoot string // the runtime's Root; crossrun's --root is crossrunRoot/k8s.io
	logPath      string
	runcStubLog  string // what a "runc" on containerd's PATH was asked to do
	snapshotter  string
	cmd          *exec.Cmd
	exited       chan struct{}
	netns        *os.File // containerd's network namespace
	cgroupRoot   string   // parent of the pods' cgroups, removed at cleanup
	// cniCacheExisted: libcni's cache directory was there before.
	cniCacheExisted bool
	conn            *grpc.ClientConn
	rt              runtimeapi.RuntimeServiceClient
	img             runtimeapi.ImageServiceClient
}

// requireContainerd skips unless containerd, its runc v2 shim, ctr and the
// CNI plugins the test uses are installed.
func requireContainerd(t *testing.T) {
	t.Helper()
	harness.RequireRoot(t)
	harness.RequireCommand(t, "containerd", "containerd")
	harness.RequireCommand(t, "ctr", "containerd")
	harness.RequireCommand(t, "containerd-shim-runc-v2", "containerd")
	for _, p := range []string{"bridge", "host-local", "loopback"} { // the CRI plugin uses loopback
		if _, err := os.Stat(filepath.Join(cniBinDir, p)); err != nil {
			t.Skipf("skipped: needs the CNI plugin %s/%s (apt-get install -y containernetworking-plugins)", cniBinDir, p)
		}
	}
}

const (
	cniBinDir  = "/usr/lib/cni"
	cniNetwork = "crossrun-cri-test"
	// cniCacheDir is where libcni, inside containerd, caches results; the
	// CRI plugin has no setting for it.
	cniCacheDir = "/var/lib/cni"
)

// cniConfig is a bridge network on a private range. The bridge lives in
// containerd's own network namespace; host-local keeps its leases in the
// test's directory. (The CRI plugin sets up each pod's loopback itself.)
const cniConfig = `{
  "cniVersion": "0.4.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cri0",
      "isGateway": false,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q}]]
      }
    }
  ]
}
`

// docsSnippet reads docs/examples/kubernetes-containerd.toml.
func docsSnippet(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.ModuleRoot(), "docs", "examples", "kubernetes-containerd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// containerdConfig builds config.toml: the test's top-level keys, then the
// docs' snippet with the test's paths (and the CRI keys a node already has
// in its own config, pointing at the test's directory), then the test's
// tables.
func (c *containerd) config(t *testing.T, o containerdOptions) string {
	t.Helper()
	s := o.snippet
	for _, must := range []string{docBinaryName, docRoot, criHeader, "version = 2"} {
		if strings.Count(s, must) != 1 {
			t.Fatalf("docs/examples/kubernetes-containerd.toml: want exactly one %q", must)
		}
	}
	s = strings.Replace(s, docBinaryName, fmt.Sprintf("BinaryName = %q", harness.Bin), 1)
	s = strings.Replace(s, docRoot, fmt.Sprintf("Root = %q", c.crossrunRoot), 1)
	criKeys := fmt.Sprintf(`
  sandbox_image = %q
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
`, o.sandboxImage)
	s = strings.Replace(s, criHeader, criHeader+criKeys, 1)

	var b strings.Builder
	fmt.Fprintf(&b, "root = %q\nstate = %q\n\n", filepath.Join(c.dir, "root"), c.state)
	b.WriteString(s)
	fmt.Fprintf(&b, `
[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = %q

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = %q
  conf_dir = %q
`, c.socket, c.socket+".ttrpc", filepath.Join(c.dir, "opt"), c.snapshotter, cniBinDir, filepath.Join(c.dir, "cni"))
	return b.String()
}

// startContainerd starts a private containerd and connects a CRI client to
// it. Everything it creates is removed when the test ends, whatever state
// the test leaves it in.
func startContainerd(t *testing.T, o containerdOptions) *containerd {
	t.Helper()
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "cri-")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{
		dir:          dir,
		socket:       filepath.Join(dir, "containerd.sock"),
		state:        filepath.Join(dir, "state"),
		crossrunRoot: filepath.Join(dir, "crossrun"),
		logPath:      filepath.Join(dir, "containerd.log"),
		snapshotter:  "overlayfs",
		exited:       make(chan struct{}),
	}
	if _, err := os.Stat(cniCacheDir); err == nil {
		c.cniCacheExisted = true
	}
	t.Cleanup(func() { c.cleanup(t) })
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.OVERLAYFS_SUPER_MAGIC {
		// overlayfs cannot be the upper directory of overlayfs.
		c.snapshotter = "native"
	}
	cniDir := filepath.Join(dir, "cni")
	if err := os.MkdirAll(cniDir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(cniConfig, cniNetwork, filepath.Join(dir, "cni-ipam"), podSubnet)
	if err := os.WriteFile(filepath.Join(cniDir, "10-crossrun-test.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(c.config(t, o)), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

	args := []string{"containerd", "--config", cfg, "--log-level", "debug"}
	if o.dropSysResource {
		setpriv := harness.RequireCommand(t, "setpriv", "util-linux")
		args = append([]string{setpriv, "--bounding-set=-sys_resource", "--"}, args...)
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		t.Fatal(err)
	}
	// "runc" first in containerd's PATH is a stub that records any call:
	// every container must be run by the BinaryName, crossrun.
	stubDir := filepath.Join(dir, "bin")
	c.runcStubLog = filepath.Join(dir, "runc-calls.log")
	stub := fmt.Sprintf("#!/bin/sh\necho \"runc $*\" >>%s\necho 'runc stub: crossrun was not used' >&2\nexit 1\n", c.runcStubLog)
	if err := os.MkdirAll(stubDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stubDir, "runc"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(path, args[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") {
			c.cmd.Env = append(c.cmd.Env, kv)
		}
	}
	c.cmd.Env = append(c.cmd.Env, "PATH="+stubDir+":"+os.Getenv("PATH"))
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.startInNewNetns(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()

	c.conn, err = grpc.NewClient("unix://"+c.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c.rt = runtimeapi.NewRuntimeServiceClient(c.conn)
	c.img = runtimeapi.NewImageServiceClient(c.conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.rt.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			break
		}
		if status.Code(err) == codes.Unimplemented {
			t.Fatalf("containerd runs without its CRI plugin: %v\n%s", err, c.logTail())
		}
		select {
		case <-c.exited:
			t.Fatalf("containerd exited: %v\n%s", c.cmd.ProcessState, c.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd's CRI service did not answer: %v\n%s", err, c.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// startInNewNetns starts containerd in a new network namespace with its
// loopback up (the CRI streaming server listens on 127.0.0.1). The
// namespace is made on a locked thread that is thrown away afterwards, so
// the test's other goroutines stay in the host's namespace.
func (c *containerd) startInNewNetns() error {
	errc := make(chan error, 1)
	go func() {
		// No UnlockOSThread: the thread ends with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		ns, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		c.netns = ns
		if err := loopbackUp(); err != nil {
			errc <- err
			return
		}
		errc <- c.cmd.Start()
	}()
	return <-errc
}

// loopbackUp sets IFF_UP on lo in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// checkRuncUnused fails the test if anything ran "runc".
func (c *containerd) checkRuncUnused(t *testing.T) {
	t.Helper()
	if data, err := os.ReadFile(c.runcStubLog); err == nil {
		t.Errorf("runc was called instead of crossrun:\n%s", data)
	}
}

// logTail is the end of containerd's log, for failure messages.
func (c *containerd) logTail() string {
	data, _ := os.ReadFile(c.logPath)
	const max = 6000
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}

// logProblems logs containerd's last warnings and errors (the shim's and
// crossrun's among them).
func (c *containerd) logProblems(t *testing.T) {
	data, _ := os.ReadFile(c.logPath)
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "level=error") || strings.Contains(l, "level=warning") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("containerd's warnings and errors:\n%s", strings.Join(lines, "\n"))
}

// ctr runs ctr against this containerd in the CRI namespace.
func (c *containerd) ctr(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{"--address", c.socket, "--namespace", criNamespace}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// importImage imports an OCI archive and waits until the CRI plugin lists
// it under ref (it learns of new images from containerd's events).
func (c *containerd) importImage(t *testing.T, archive, ref string) {
	t.Helper()
	c.ctr(t, "images", "import", "--snapshotter", c.snapshotter, archive)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		cancel()
		if err == nil && r.Image != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s not visible through CRI after import (err %v); ctr lists:\n%s", ref, err, c.ctr(t, "images", "ls"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// criContext bounds one CRI call.
func criContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// cleanup tears everything down, also after a failed test: the CRI's pods,
// containerd, any shim and container left, mounts, cgroups and the
// directory.
func (c *containerd) cleanup(t *testing.T) {
	if t.Failed() {
		c.logProblems(t)
	}
	if c.rt != nil && c.cmd != nil && c.cmd.Process != nil {
		select {
		case <-c.exited:
		default:
			c.removeAllPods(t)
		}
	}
	if c.conn != nil {
		c.conn.Close()
	}
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(20 * time.Second):
			c.cmd.Process.Kill()
			<-c.exited
		}
	}
	c.killShims(t)
	c.deleteContainers(t)
	if c.cgroupRoot != "" {
		removeCgroupTree(t, c.cgroupRoot)
	}
	unmountUnder(c.dir)
	if c.netns != nil {
		c.netns.Close()
	}
	if err := os.RemoveAll(c.dir); err != nil {
		t.Errorf("remove %s: %v", c.dir, err)
	}
}

// removeAllPods stops and removes every pod sandbox, as the kubelet does
// when pods go away.
func (c *containerd) removeAllPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Logf("cleanup: list pod sandboxes: %v", err)
		return
	}
	for _, p := range r.Items {
		if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			t.Logf("cleanup: stop pod %s: %v", p.Id, err)
		}
		if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			t.Logf("cleanup: remove pod %s: %v", p.Id, err)
		}
	}
}

// killShims kills the runc v2 shims this containerd started (they outlive
// it): the processes whose command line is a shim's with this instance's
// -address. Then it removes their sockets and the CNI result cache entries
// of their pods, which a pod torn down through the CRI leaves none of.
func (c *containerd) killShims(t *testing.T) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-address" && args[i+1] == c.socket {
				t.Logf("cleanup: killing shim %d (%s)", pid, strings.Join(args, " "))
				unix.Kill(pid, unix.SIGKILL)
				break
			}
		}
	}
	tasks, _ := filepath.Glob(filepath.Join(c.state, "io.containerd.runtime.v2.task", "*", "*"))
	for _, task := range tasks {
		if data, err := os.ReadFile(filepath.Join(task, "address")); err == nil {
			addr := strings.TrimPrefix(strings.TrimSpace(string(data)), "unix://")
			if strings.HasPrefix(addr, "/run/containerd/s/") {
				os.Remove(addr)
			}
		}
		id := filepath.Base(task)
		for _, pattern := range []string{cniNetwork + "-" + id + "-*", "cni-loopback-" + id + "-*"} {
			stale, _ := filepath.Glob(filepath.Join(cniCacheDir, "results", pattern))
			for _, f := range stale {
				os.Remove(f)
			}
		}
	}
	if !c.cniCacheExisted {
		// Made by this test's containerd (libcni's fixed cache directory).
		os.Remove(filepath.Join(cniCacheDir, "results"))
		os.Remove(cniCacheDir)
	}
}

// deleteContainers force-deletes the containers crossrun still has state
// for (none, after a clean run).
func (c *containerd) deleteContainers(t *testing.T) {
	root := filepath.Join(c.crossrunRoot, criNamespace)
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		t.Logf("cleanup: crossrun delete --force %s", e.Name())
		out, err := exec.Command(harness.Bin, "--root", root, "delete", "--force", e.Name()).CombinedOutput()
		if err != nil {
			t.Logf("cleanup: crossrun delete %s: %v: %s", e.Name(), err, out)
		}
	}
}

// unmountUnder detaches every mount below dir, deepest first: the
// containers' rootfs mounts, the pods' /dev/shm and network namespaces.
func unmountUnder(dir string) { harness.UnmountUnder(dir) }

// crossrunState reads the state crossrun keeps for a container the shim
// created, through "crossrun state" on the shim's --root.
func (c *containerd) crossrunState(t *testing.T, id string) map[string]any {
	t.Helper()
	root := filepath.Join(c.crossrunRoot, criNamespace)
	var stderr bytes.Buffer
	cmd := exec.Command(harness.Bin, "--root", root, "state", id)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		entries, _ := os.ReadDir(root)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("crossrun --root %s state %s: %v: %s (the root holds %v)", root, id, err, stderr.Bytes(), names)
	}
	var st map[string]any
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("crossrun state %s: %v: %s", id, err, out)
	}
	return st
}
