package harness

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// OCIImage describes a one-layer image that WriteOCIImage builds offline.
type OCIImage struct {
	// Name is the full reference, e.g. "docker.io/library/ctrd-busybox:latest".
	Name string
	// Arch is the image's architecture as OCI names it (amd64, arm64, ...).
	Arch string
	// Rootfs is the directory that becomes the layer (it may be empty).
	Rootfs string
	// Files are added to the layer: path in the image -> host file.
	Files      map[string]string
	Entrypoint []string
	Cmd        []string
	Env        []string
	// NoPlatform leaves the platform off the manifest's entry in the
	// index: the image is then the manifest itself, as a pulled
	// single-platform image is, and the CRI plugin uses it on any host
	// (a foreign-arch image included) without a platform match.
	NoPlatform bool
}

// WriteOCIImage writes img to dst as an OCI image layout tarball (oci-layout,
// index.json, blobs/sha256/...), the format "ctr images import" and
// "podman load" read.
func WriteOCIImage(img OCIImage, dst string) error {
	layer, err := layerTar(img.Rootfs, img.Files)
	if err != nil {
		return fmt.Errorf("layer of %s: %w", img.Name, err)
	}
	layerDigest := digestOf(layer)
	env := img.Env
	if env == nil {
		env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": img.Arch,
		"os":           "linux",
		"config": map[string]any{
			"Entrypoint": img.Entrypoint,
			"Cmd":        img.Cmd,
			"Env":        env,
			"WorkingDir": "/",
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor("application/vnd.oci.image.config.v1+json", config),
		"layers":        []any{descriptor("application/vnd.oci.image.layer.v1.tar", layer)},
	})
	_, tag, _ := strings.Cut(img.Name[strings.LastIndex(img.Name, "/")+1:], ":")
	if tag == "" {
		tag = "latest"
	}
	md := descriptor("application/vnd.oci.image.manifest.v1+json", manifest)
	if !img.NoPlatform {
		md["platform"] = map[string]string{"architecture": img.Arch, "os": "linux"}
	}
	md["annotations"] = map[string]string{
		"io.containerd.image.name":          img.Name,
		"org.opencontainers.image.ref.name": tag,
	}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{md}})

	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			f.Close()
			return err
		}
	}
	for _, blob := range [][]byte{layer, config, manifest} {
		if err := add("blobs/sha256/"+strings.TrimPrefix(digestOf(blob), "sha256:"), blob); err != nil {
			f.Close()
			return err
		}
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		f.Close()
		return err
	}
	if err := add("index.json", index); err != nil {
		f.Close()
		return err
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func descriptor(mediaType string, data []byte) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": digestOf(data), "size": len(data)}
}

// layerTar tars dir (owned by root in the tar) plus the extra files.
func layerTar(dir string, files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	if dir != "" {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dir, path)
			if err != nil || rel == "." {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			link := ""
			if info.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(path); err != nil {
					return err
				}
			}
			hdr, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			hdr.Name = filepath.ToSlash(rel)
			if d.IsDir() {
				hdr.Name += "/"
			}
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
			seen[filepath.ToSlash(rel)] = true
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if info.Mode().IsRegular() {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				_, err = tw.Write(data)
				return err
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		data, err := os.ReadFile(files[name])
		if err != nil {
			return nil, err
		}
		rel := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(name)), "/")
		for parent := filepath.Dir(rel); parent != "." && !seen[parent]; parent = filepath.Dir(parent) {
			if err := tw.WriteHeader(&tar.Header{Name: parent + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
				return nil, err
			}
			seen[parent] = true
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Containerd is a private containerd daemon: its own config, root, state,
// socket and namespace under a temporary directory, and a PATH whose "runc"
// is a stub that records any call, so that a container not run by the
// binary under test fails and is seen.
type Containerd struct {
	// Dir holds everything the daemon writes.
	Dir string
	// Socket is the daemon's gRPC address.
	Socket string
	// Namespace is the containerd namespace the tests use.
	Namespace string
	// RuncRoot is a private state root for the runtime (ctr --runc-root).
	RuncRoot string
	// Log is the daemon's output.
	Log string
	// StubLog is where the "runc" stub records its calls.
	StubLog string
	// Config is the daemon's config.toml.
	Config string

	cmd  *exec.Cmd
	done chan error
}

// containerdBaseConfig is a private daemon's config.toml; StartContainerd
// fills in the paths.
const containerdBaseConfig = `version = 2
root = "%[1]s/root"
state = "%[1]s/state"
imports = [%[4]s]
disabled_plugins = [%[2]s]

[grpc]
  address = "%[3]s"

[ttrpc]
  address = "%[3]s.ttrpc"

[debug]
  level = "debug"
`

// ContainerdOptions configure a private containerd.
type ContainerdOptions struct {
	// Namespace is the containerd namespace the test uses.
	Namespace string
	// Imports are TOML files the daemon's config imports (containerd
	// merges them into its config).
	Imports []string
	// CRI keeps the CRI plugin, which is otherwise disabled.
	CRI bool
}

// StartContainerd starts a private containerd. The daemon, its shims, their
// containers, mounts, cgroups and directories are removed when the test
// ends.
func StartContainerd(t testing.TB, opts ContainerdOptions) *Containerd {
	t.Helper()
	RequireRoot(t)
	RequireCommand(t, "containerd", "containerd")
	RequireCommand(t, "ctr", "containerd")
	RequireCommand(t, "containerd-shim-runc-v2", "containerd")
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{
		Dir:       dir,
		Socket:    filepath.Join(dir, "containerd.sock"),
		Namespace: opts.Namespace,
		RuncRoot:  filepath.Join(dir, "runc"),
		Log:       filepath.Join(dir, "containerd.log"),
		StubLog:   filepath.Join(dir, "runc-stub.log"),
	}
	t.Cleanup(func() { c.stop(t) })

	disabled := []string{
		"io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
		"io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp",
	}
	if !opts.CRI {
		disabled = append(disabled, "io.containerd.grpc.v1.cri")
	}
	quoted := make([]string, len(disabled))
	for i, p := range disabled {
		quoted[i] = strconv.Quote(p)
	}
	imports := make([]string, len(opts.Imports))
	for i, p := range opts.Imports {
		imports[i] = strconv.Quote(p)
	}
	config := fmt.Sprintf(containerdBaseConfig, dir, strings.Join(quoted, ", "), c.Socket, strings.Join(imports, ", "))
	c.Config = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(c.Config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}

	stubDir := filepath.Join(dir, "bin")
	if err := os.MkdirAll(stubDir, 0o755); err != nil {
		t.Fatal(err)
	}
	stub := fmt.Sprintf("#!/bin/sh\necho \"runc $*\" >>%s\necho 'runc stub: the runtime under test was not used' >&2\nexit 1\n", c.StubLog)
	if err := os.WriteFile(filepath.Join(stubDir, "runc"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}

	logF, err := os.Create(c.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	c.cmd = exec.Command("containerd", "--config", c.Config)
	c.cmd.Env = append(envWithout(os.Environ(), "PATH"), "PATH="+stubDir+":"+os.Getenv("PATH"))
	c.cmd.Stdout, c.cmd.Stderr = logF, logF
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	c.done = make(chan error, 1)
	go func() { c.done <- c.cmd.Wait() }()

	// Wait until the daemon answers (or exits, or a minute passes).
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("containerd exited: %v\n%s", err, c.LogTail())
		default:
		}
		out, err := exec.Command("ctr", "-a", c.Socket, "--timeout", "5s", "version").CombinedOutput()
		if err == nil && bytes.Contains(out, []byte("Server:")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s: %s\n%s", c.Socket, out, c.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

func envWithout(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// LogTail returns the last lines of the daemon's log, for failure messages.
func (c *Containerd) LogTail() string {
	data, _ := os.ReadFile(c.Log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// StubCalls returns what the "runc" stub recorded: empty unless something
// ran runc instead of the runtime under test.
func (c *Containerd) StubCalls() string {
	data, _ := os.ReadFile(c.StubLog)
	return string(data)
}

// CtrCmd returns an unstarted "ctr -a <socket> -n <namespace> args...".
func (c *Containerd) CtrCmd(args ...string) *exec.Cmd {
	return exec.Command("ctr", append([]string{"-a", c.Socket, "-n", c.Namespace}, args...)...)
}

// Ctr runs ctr against the daemon, with no stdin, bounded by Timeout.
func (c *Containerd) Ctr(t testing.TB, args ...string) Result {
	t.Helper()
	return RunCmd(t, c.CtrCmd(args...))
}

// MustCtr runs ctr and fails the test on a non-zero exit.
func (c *Containerd) MustCtr(t testing.TB, args ...string) Result {
	t.Helper()
	r := c.Ctr(t, args...)
	if r.Code != 0 {
		t.Fatalf("ctr %v: exit %d\nstdout: %s\nstderr: %s\ncontainerd log:\n%s", args, r.Code, r.Stdout, r.Stderr, c.LogTail())
	}
	return r
}

// RunWithPty runs cmd with a new pseudo-terminal as its controlling
// terminal and stdio, and returns what it wrote there and its exit code.
func RunWithPty(t testing.TB, cmd *exec.Cmd) (string, int) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("skipped: no pseudo-terminals: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	slave.Close()
	var out bytes.Buffer
	copied := make(chan struct{})
	// Reading ends with EIO once the last holder of the terminal is gone.
	go func() { io.Copy(&out, master); close(copied) }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(Timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v: timed out after %v; output: %q", cmd.Args, Timeout, out.String())
	}
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
		// A process left holding the terminal; what was read is enough.
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// stop removes what the daemon started: tasks and containers in the
// namespace, the daemon, any shim still running, mounts, the runtime's
// state and cgroups, and the directory.
func (c *Containerd) stop(t testing.TB) {
	if c.cmd != nil && c.cmd.Process != nil {
		select {
		case err := <-c.done:
			c.done <- err
		default:
			c.removeAll()
			c.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.done:
			case <-time.After(15 * time.Second):
				c.cmd.Process.Kill()
				<-c.done
			}
		}
	}
	for _, pid := range c.shimPids() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// Containers the runtime still knows of (a shim killed above leaves
	// its container behind).
	if Bin != "" {
		nsRoot := filepath.Join(c.RuncRoot, c.Namespace)
		if entries, err := os.ReadDir(nsRoot); err == nil {
			for _, e := range entries {
				exec.Command(Bin, "--root", nsRoot, "delete", "--force", e.Name()).Run()
			}
		}
	}
	c.removeShimSockets()
	UnmountUnder(c.Dir)
	for _, ctl := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc", "systemd", "unified", ""} {
		os.Remove(filepath.Join("/sys/fs/cgroup", ctl, c.Namespace))
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Logf("remove %s: %v", c.Dir, err)
	}
}

// removeAll kills and deletes every task and container in the namespace,
// giving each ctr call 30 seconds.
func (c *Containerd) removeAll() {
	ctr := func(args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, "ctr", append([]string{"-a", c.Socket, "-n", c.Namespace}, args...)...).Output()
		return out
	}
	for _, id := range strings.Fields(string(ctr("containers", "ls", "-q"))) {
		ctr("tasks", "kill", "-a", "-s", "SIGKILL", id)
		ctr("tasks", "delete", "-f", id)
		ctr("containers", "delete", id)
	}
}

// shimPids lists the shims serving this daemon: their command lines name
// its socket.
func (c *Containerd) shimPids() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(data), "\x00")
		for i, a := range args {
			if a == "-address" && i+1 < len(args) && args[i+1] == c.Socket {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// removeShimSockets removes the sockets of killed shims: containerd 1.6
// keeps them in /run/containerd/s/, named in each task bundle's "address".
func (c *Containerd) removeShimSockets() {
	matches, _ := filepath.Glob(filepath.Join(c.Dir, "state", "io.containerd.runtime.v2.task", "*", "*", "address"))
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		addr := strings.TrimPrefix(strings.TrimSpace(string(data)), "unix://")
		if strings.HasPrefix(addr, "/run/containerd/s/") {
			os.Remove(addr)
		}
	}
}

// UnmountUnder detaches every mount at or below dir, deepest first.
func UnmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := UnescapeMountPath(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	f.Close()
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			fmt.Fprintf(os.Stderr, "unmount %s: %v\n", p, err)
		}
	}
}

// UnescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func UnescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
