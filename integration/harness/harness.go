// Package harness is what crossrun's end-to-end test packages share: the
// binary under test, a busybox-static root filesystem template, bundles made
// from it, and crossrun invocations with a timeout. The tests need root; each
// says so when it skips.
package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var (
	// Bin is the crossrun binary under test.
	Bin string
	// Rootfs is a busybox-static root filesystem that bundles copy.
	Rootfs string
	// StateRoot is the --root every invocation passes.
	StateRoot string
	// Work is a scratch directory removed when the test binary exits.
	Work string
	// SetupErr, when set, makes RequireRoot skip with its message.
	SetupErr error
)

// Main prepares the environment and runs the tests: it builds crossrun
// (unless CROSSRUN_BINARY names one) and the busybox rootfs.
func Main(m interface{ Run() int }) int {
	if os.Geteuid() != 0 {
		SetupErr = fmt.Errorf("integration tests need root")
		return m.Run()
	}
	work, err := os.MkdirTemp("", "crossrun-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)
	Work = work
	if bin := os.Getenv("CROSSRUN_BINARY"); bin != "" {
		Bin = bin
	} else {
		Bin = filepath.Join(work, "crossrun")
		cmd := exec.Command("go", "build", "-o", Bin, ".")
		cmd.Dir = ModuleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build crossrun: %v\n%s", err, out)
			return 1
		}
	}
	Rootfs = filepath.Join(work, "rootfs")
	if err := MakeBusyboxRootfs(Rootfs); err != nil {
		SetupErr = err
	}
	StateRoot = filepath.Join(work, "state")
	return m.Run()
}

// ModuleRoot is the repository's top directory (where go.mod is).
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// RequireRoot skips a test that cannot run without root or busybox-static.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (runs containers)")
	}
	if SetupErr != nil {
		t.Skipf("skipped: %v", SetupErr)
	}
}

// RequireCommand skips the test when a program is not installed, naming the
// Debian package to install.
func RequireCommand(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("skipped: needs %s (apt-get install -y %s)", name, pkg)
	}
	return p
}

// MakeBusyboxRootfs builds a minimal root filesystem from Debian's
// busybox-static: /bin/busybox and a symlink per applet.
func MakeBusyboxRootfs(dir string) error {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
			if _, err := os.Stat(p); err == nil {
				bb = p
			}
		}
	}
	if bb == "" {
		return fmt.Errorf("needs busybox-static (apt-get install -y busybox-static)")
	}
	if out, err := exec.Command("file", "-L", bb).CombinedOutput(); err == nil && !bytes.Contains(out, []byte("statically linked")) && !bytes.Contains(out, []byte("static-pie")) {
		return fmt.Errorf("%s is not static; needs busybox-static", bb)
	}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	data, err := os.ReadFile(bb)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(bb, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		link := filepath.Join(dir, applet)
		if applet == "bin/busybox" {
			continue
		}
		os.MkdirAll(filepath.Dir(link), 0o755)
		rel, _ := filepath.Rel(filepath.Dir(link), filepath.Join(dir, "bin/busybox"))
		if err := os.Symlink(rel, link); err != nil && !os.IsExist(err) {
			return err
		}
	}
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	return nil
}

// Bundle is a test bundle: a directory with config.json and a rootfs.
type Bundle struct {
	Dir  string
	Spec *specs.Spec
}

// NewBundle makes a bundle with a copy of the busybox rootfs and the default
// spec, non-interactive, running args.
func NewBundle(t testing.TB, args ...string) *Bundle {
	t.Helper()
	return NewBundleSpec(t, nil, args...)
}

// NewBundleSpec is NewBundle with extra "crossrun spec" flags (e.g.
// --kernel-abi 5.2) for the config.json.
func NewBundleSpec(t testing.TB, specArgs []string, args ...string) *Bundle {
	t.Helper()
	RequireRoot(t)
	dir := t.TempDir()
	if err := exec.Command("cp", "-a", Rootfs, filepath.Join(dir, "rootfs")).Run(); err != nil {
		t.Fatalf("copy rootfs: %v", err)
	}
	full := append([]string{"spec", "--bundle", dir}, specArgs...)
	out, err := exec.Command(Bin, full...).CombinedOutput()
	if err != nil {
		t.Fatalf("crossrun %v: %v: %s", full, err, out)
	}
	b := &Bundle{Dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	b.Spec = &specs.Spec{}
	if err := json.Unmarshal(data, b.Spec); err != nil {
		t.Fatal(err)
	}
	b.Spec.Process.Terminal = false
	if len(args) > 0 {
		b.Spec.Process.Args = args
	}
	b.Save(t)
	return b
}

// Save writes the bundle's spec to its config.json.
func (b *Bundle) Save(t testing.TB) {
	t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Result is one crossrun invocation's outcome.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Timeout bounds every crossrun invocation, so that a hang fails the test
// instead of the whole run.
const Timeout = 60 * time.Second

// Run runs the binary with --root StateRoot.
func Run(t testing.TB, args ...string) Result {
	t.Helper()
	return RunIn(t, "", nil, args...)
}

// RunIn runs the binary in dir with stdin, with --root StateRoot.
func RunIn(t testing.TB, dir string, stdin []byte, args ...string) Result {
	t.Helper()
	cmd := Cmd(args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return RunCmd(t, cmd)
}

// RunCmd runs cmd with stdout and stderr to files (a detached container
// may keep a pipe open), killing it after Timeout.
func RunCmd(t testing.TB, cmd *exec.Cmd) Result {
	t.Helper()
	outF, err := os.CreateTemp("", "crossrun-stdout-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(outF.Name())
	defer outF.Close()
	errF, err := os.CreateTemp("", "crossrun-stderr-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(errF.Name())
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(Timeout):
		cmd.Process.Kill()
		<-done
		errData, _ := os.ReadFile(errF.Name())
		t.Fatalf("%v: timed out after %v; stderr: %s", cmd.Args, Timeout, errData)
	}
	outData, _ := os.ReadFile(outF.Name())
	errData, _ := os.ReadFile(errF.Name())
	return Result{Stdout: string(outData), Stderr: string(errData), Code: cmd.ProcessState.ExitCode()}
}

// MustRun runs crossrun and fails the test on a non-zero exit.
func MustRun(t testing.TB, args ...string) Result {
	t.Helper()
	r := Run(t, args...)
	if r.Code != 0 {
		t.Fatalf("crossrun %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// State returns the parsed "crossrun state" of id.
func State(t testing.TB, id string) map[string]any {
	t.Helper()
	r := MustRun(t, "state", id)
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &m); err != nil {
		t.Fatalf("state %s: %v: %s", id, err, r.Stdout)
	}
	return m
}

// Cleanup removes id, whatever state it is in, when the test ends.
func Cleanup(t testing.TB, id string) {
	t.Cleanup(func() {
		Run(t, "delete", "--force", id)
	})
}

// WaitStatus waits until the container reaches want (or 20 s pass), polling
// "crossrun state", which is the interface under test.
func WaitStatus(t testing.TB, id, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st map[string]any
		if r := Run(t, "state", id); r.Code == 0 {
			if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
				t.Fatalf("state %s: %v", id, err)
			}
			if st["status"] == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: status %v, want %s", id, st["status"], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cmd returns an unstarted crossrun command with --root StateRoot.
func Cmd(args ...string) *exec.Cmd {
	return exec.Command(Bin, append([]string{"--root", StateRoot}, args...)...)
}

// BuildStatic cross-compiles the Go package pkg (a directory) into a static
// binary at dst for goarch (and goarm, for arm).
func BuildStatic(t testing.TB, pkg, goarch, goarm, dst string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", dst, ".")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if goarm != "" {
		cmd.Env = append(cmd.Env, "GOARM="+goarm)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s for %s: %v\n%s", pkg, goarch, err, out)
	}
}
