// Package integration runs the crossrun binary end to end. The tests need
// root; each says so when it skips. TestMain builds the binary once and a
// busybox-static root filesystem that every bundle copies.
package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var (
	crossrunBin string // the binary under test
	busyboxRoot string // a template rootfs
	stateRoot   string // --root for all tests
	setupErr    error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		setupErr = fmt.Errorf("integration tests need root")
		return m.Run()
	}
	work, err := os.MkdirTemp("", "crossrun-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)
	if bin := os.Getenv("CROSSRUN_BINARY"); bin != "" {
		crossrunBin = bin
	} else {
		crossrunBin = filepath.Join(work, "crossrun")
		cmd := exec.Command("go", "build", "-o", crossrunBin, ".")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build crossrun: %v\n%s", err, out)
			return 1
		}
	}
	busyboxRoot = filepath.Join(work, "rootfs")
	if err := makeBusyboxRootfs(busyboxRoot); err != nil {
		setupErr = err
	}
	stateRoot = filepath.Join(work, "state")
	return m.Run()
}

// requireRoot skips a test that cannot run without root or busybox-static.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (runs containers)")
	}
	if setupErr != nil {
		t.Skipf("skipped: %v", setupErr)
	}
}

// makeBusyboxRootfs builds a minimal root filesystem from Debian's
// busybox-static: /bin/busybox and a symlink per applet.
func makeBusyboxRootfs(dir string) error {
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

// bundle is a test bundle: a directory with config.json and a rootfs.
type bundle struct {
	Dir  string
	Spec *specs.Spec
}

// newBundle makes a bundle with a copy of the busybox rootfs and the default
// spec, non-interactive, running args.
func newBundle(t *testing.T, args ...string) *bundle {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	if err := exec.Command("cp", "-a", busyboxRoot, filepath.Join(dir, "rootfs")).Run(); err != nil {
		t.Fatalf("copy rootfs: %v", err)
	}
	out, err := exec.Command(crossrunBin, "spec", "--bundle", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("crossrun spec: %v: %s", err, out)
	}
	b := &bundle{Dir: dir}
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
	b.save(t)
	return b
}

func (b *bundle) save(t *testing.T) {
	t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// result is one crossrun invocation's outcome.
type result struct {
	Stdout, Stderr string
	Code           int
}

// crossrun runs the binary with --root stateRoot, with a timeout so that a
// hang fails the test instead of the whole run.
func crossrun(t *testing.T, args ...string) result {
	t.Helper()
	return crossrunIn(t, "", nil, args...)
}

func crossrunIn(t *testing.T, dir string, stdin []byte, args ...string) result {
	t.Helper()
	full := append([]string{"--root", stateRoot}, args...)
	cmd := exec.Command(crossrunBin, full...)
	cmd.Dir = dir
	// Files, not pipes: a created or detached container keeps its stdio
	// open long after crossrun has exited.
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
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start crossrun: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		errData, _ := os.ReadFile(errF.Name())
		t.Fatalf("crossrun %v: timed out after 60s; stderr: %s", args, errData)
	}
	outData, _ := os.ReadFile(outF.Name())
	errData, _ := os.ReadFile(errF.Name())
	return result{Stdout: string(outData), Stderr: string(errData), Code: cmd.ProcessState.ExitCode()}
}

// mustRun runs crossrun and fails the test on a non-zero exit.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := crossrun(t, args...)
	if r.Code != 0 {
		t.Fatalf("crossrun %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// state returns the parsed "crossrun state" of id.
func state(t *testing.T, id string) map[string]any {
	t.Helper()
	r := mustRun(t, "state", id)
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &m); err != nil {
		t.Fatalf("state %s: %v: %s", id, err, r.Stdout)
	}
	return m
}

// cleanupContainer removes id whatever state it is in.
func cleanupContainer(t *testing.T, id string) {
	t.Cleanup(func() {
		crossrun(t, "delete", "--force", id)
	})
}

// waitStatus waits until the container reaches want (or the test times out),
// polling "crossrun state", which is the interface under test.
func waitStatus(t *testing.T, id, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st map[string]any
		if r := crossrun(t, "state", id); r.Code == 0 {
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

// crossrunCmd returns an unstarted crossrun command with the test's --root.
func crossrunCmd(args ...string) *exec.Cmd {
	return exec.Command(crossrunBin, append([]string{"--root", stateRoot}, args...)...)
}
