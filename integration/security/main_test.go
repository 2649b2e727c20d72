// Package security performs the attacks behind runc's CVEs against crossrun,
// from hostile containers and hostile bundles, and checks that each fails
// and leaves the host unharmed. Every attack is also aimed at a target
// that is not protected, where the test can tell it works, so that a pass
// means crossrun stopped it rather than that the attack did nothing.
//
// The tests need root; each says what is missing when it skips.
package security

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crossrun/crossrun/integration/harness"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m))
}

var (
	attackerOnce sync.Once
	attackerPath string
	attackerErr  string
)

// attacker returns the host path of the static attacker program
// (testdata/attacker), built once.
func attacker(t *testing.T) string {
	t.Helper()
	harness.RequireRoot(t)
	attackerOnce.Do(func() {
		if _, err := exec.LookPath("go"); err != nil {
			attackerErr = "needs the go toolchain to build testdata/attacker"
			return
		}
		dst := filepath.Join(harness.Work, "attacker")
		cmd := exec.Command("go", "build", "-trimpath", "-o", dst, ".")
		cmd.Dir = filepath.Join("testdata", "attacker")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			attackerErr = fmt.Sprintf("build testdata/attacker: %v: %s", err, out)
			return
		}
		attackerPath = dst
	})
	if attackerErr != "" {
		t.Fatal(attackerErr)
	}
	return attackerPath
}

// attackBundle is a busybox bundle with the attacker at /attacker and a
// host directory, writable by anyone, bind-mounted read-write at /out for
// its reports.
type attackBundle struct {
	*harness.Bundle
	Out string
}

func newAttackBundle(t *testing.T, args ...string) *attackBundle {
	t.Helper()
	bin := attacker(t)
	b := harness.NewBundle(t, args...)
	copyFile(t, bin, filepath.Join(b.Dir, "rootfs", "attacker"), 0o755)
	out := t.TempDir()
	os.Chmod(out, 0o777)
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
	b.Save(t)
	return &attackBundle{Bundle: b, Out: out}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
}

// report is what the attacker wrote: key -> values, in order.
type report map[string][]string

func (r report) first(key string) string {
	if v := r[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func parseReport(data string) report {
	r := report{}
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		r[k] = append(r[k], v)
	}
	return r
}

// waitReport waits for the attacker's report file and parses it.
func waitReport(t *testing.T, path string) report {
	t.Helper()
	waitFile(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s:\n%s", filepath.Base(path), data)
	return parseReport(string(data))
}

// waitFile waits up to a minute for path to exist.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// useBinary makes the tests' crossrun invocations run bin until the test
// ends.
func useBinary(t *testing.T, bin string) {
	old := harness.Bin
	harness.Bin = bin
	t.Cleanup(func() { harness.Bin = old })
}

// copyRuntime copies the crossrun under test to a fresh directory, so an
// attack that succeeds harms only the copy.
func copyRuntime(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "crossrun")
	copyFile(t, harness.Bin, dst, 0o755)
	return dst
}

// bg is a crossrun invocation running in the background. Its stderr goes
// to a file, not a pipe: a created container's init keeps crossrun's stdio.
type bg struct {
	cmd     *exec.Cmd
	errFile *os.File
	done    chan error
}

func startBg(t *testing.T, dir string, args ...string) *bg {
	t.Helper()
	errFile, err := os.CreateTemp(t.TempDir(), "stderr-")
	if err != nil {
		t.Fatal(err)
	}
	b := &bg{cmd: harness.Cmd(args...), errFile: errFile, done: make(chan error, 1)}
	b.cmd.Dir = dir
	b.cmd.Stderr = errFile
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			b.cmd.Process.Kill()
			<-b.done
		}
		errFile.Close()
	})
	return b
}

// stderr returns what the invocation wrote to stderr so far.
func (b *bg) stderr() string {
	data, _ := os.ReadFile(b.errFile.Name())
	return string(data)
}

// wait waits for the invocation (up to harness.Timeout) and returns its
// exit code.
func (b *bg) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(harness.Timeout):
		b.cmd.Process.Kill()
		<-b.done
		t.Fatalf("crossrun %v timed out", b.cmd.Args)
	}
	b.done <- nil // for the cleanup
	return b.cmd.ProcessState.ExitCode()
}

// hostMounts returns the host's mount table.
func hostMounts(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// mountsUnder lists the mount points of the host's mount table at or below
// dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(hostMounts(t), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// oneLineError checks a failed invocation's stderr is one line.
func oneLineError(t *testing.T, r harness.Result) string {
	t.Helper()
	msg := strings.TrimSpace(r.Stderr)
	if msg == "" {
		t.Errorf("failed (exit %d) without an error message", r.Code)
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	return msg
}

// chownTree gives every file under dir to uid:uid (for user namespaces).
func chownTree(t *testing.T, dir string, uid int) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func addCaps(p *specs.Process, caps ...string) {
	c := p.Capabilities
	c.Bounding = append(c.Bounding, caps...)
	c.Effective = append(c.Effective, caps...)
	c.Permitted = append(c.Permitted, caps...)
}
