// Package faults tests crossrun's reliability end to end: a create killed at
// each of its steps is cleaned up by "delete --force", corrupt state files
// are reported and removable, two creates of one id cannot both win, and
// hundreds of container lifecycles leave no mount, cgroup, state directory,
// process, zombie or descriptor behind.
//
// The fault tests need crossrun built with the crossrun_faults tag; TestMain
// builds it. The tests need root; each says so when it skips.
package faults

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/integration/harness"
)

// faultBin is crossrun built with the crossrun_faults tag; faultBinErr says
// why there is none.
var (
	faultBin    string
	faultBinErr error
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(prepared{m}))
}

type prepared struct{ m *testing.M }

func (p prepared) Run() int {
	// Descriptors this test process inherited without close-on-exec would
	// reach every crossrun it starts, and the containers' processes: mark
	// them, so that a descriptor found there is one crossrun leaked.
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
				unix.CloseOnExec(fd)
			}
		}
	}
	if harness.SetupErr == nil && harness.Work != "" {
		faultBin = filepath.Join(harness.Work, "crossrun-faults")
		cmd := exec.Command("go", "build", "-tags", "crossrun_faults", "-o", faultBin, ".")
		cmd.Dir = harness.ModuleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			faultBinErr = fmt.Errorf("build crossrun with -tags crossrun_faults: %v\n%s", err, out)
		}
	}
	return p.m.Run()
}

// requireFaultBin fails (not skips) when the tagged build did not work.
func requireFaultBin(t *testing.T) {
	t.Helper()
	harness.RequireRoot(t)
	if faultBinErr != nil {
		t.Fatal(faultBinErr)
	}
}

// result is one crossrun invocation's outcome.
type result struct {
	stdout, stderr string
	code           int
	signal         syscall.Signal // set when killed by a signal
}

// run runs bin with --root harness.StateRoot and extra environment. Unlike
// harness.Run it is safe from any goroutine: it returns an error instead of
// failing the test. Output goes through files, since a created container
// keeps crossrun's stdio open after crossrun exits.
func run(bin string, env []string, args ...string) (result, error) {
	cmd := exec.Command(bin, append([]string{"--root", harness.StateRoot}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	outF, err := os.CreateTemp("", "flt-stdout-")
	if err != nil {
		return result{}, err
	}
	defer os.Remove(outF.Name())
	defer outF.Close()
	errF, err := os.CreateTemp("", "flt-stderr-")
	if err != nil {
		return result{}, err
	}
	defer os.Remove(errF.Name())
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(harness.Timeout):
		cmd.Process.Kill()
		<-done
		stderr, _ := os.ReadFile(errF.Name())
		return result{}, fmt.Errorf("crossrun %v: timed out after %v; stderr: %s", args, harness.Timeout, stderr)
	}
	stdout, _ := os.ReadFile(outF.Name())
	stderr, _ := os.ReadFile(errF.Name())
	r := result{stdout: string(stdout), stderr: string(stderr), code: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.signal = ws.Signal()
	}
	return r, nil
}

// mustRun runs the normal binary and fails the test on an error or a
// non-zero exit.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r, err := run(harness.Bin, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 0 {
		t.Fatalf("crossrun %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// forceDelete removes id with the normal binary when the test ends,
// whatever happened.
func forceDelete(t *testing.T, id string) {
	t.Cleanup(func() {
		_, _ = run(harness.Bin, nil, "delete", "--force", id)
	})
}

// oneLine checks that stderr is a single line and returns it.
func oneLine(t *testing.T, what, stderr string) string {
	t.Helper()
	s := strings.TrimRight(stderr, "\n")
	if s == "" || strings.Contains(s, "\n") {
		t.Errorf("%s: want a one-line error on stderr, got %q", what, stderr)
	}
	return s
}

// watched is a crossrun process whose stderr is read line by line while it
// runs, so that a test can wait for a line (its processes, init included,
// share that stderr).
type watched struct {
	cmd   *exec.Cmd
	r     *os.File
	mu    sync.Mutex
	lines []string
	cond  *sync.Cond
	eof   bool
	wait  chan struct{}
	err   error
}

// startWatched starts bin with args and extra environment; stdin and stdout
// are /dev/null.
func startWatched(t *testing.T, bin string, env []string, args ...string) *watched {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--root", harness.StateRoot}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	p := &watched{cmd: cmd, r: r, wait: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.cond.Broadcast()
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.eof = true
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.wait)
	}()
	t.Cleanup(func() {
		p.kill()
		<-p.wait
		r.Close()
	})
	return p
}

// waitLine waits until a line containing s has been written, stderr is
// closed, or timeout passes.
func (p *watched) waitLine(s string, timeout time.Duration) bool {
	timer := time.AfterFunc(timeout, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for _, l := range p.lines {
			if strings.Contains(l, s) {
				return true
			}
		}
		if p.eof || time.Now().After(deadline) {
			return false
		}
		p.cond.Wait()
	}
}

func (p *watched) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *watched) kill() {
	select {
	case <-p.wait:
	default:
		_ = p.cmd.Process.Signal(unix.SIGKILL)
	}
}

// exited waits for the process to end (at most timeout) and returns its
// wait status.
func (p *watched) exited(timeout time.Duration) (syscall.WaitStatus, error) {
	select {
	case <-p.wait:
	case <-time.After(timeout):
		return 0, errors.New("crossrun did not exit")
	}
	// What it wrote last may still be in the pipe: wait for the end of
	// stderr too, for a bounded time (a started container's init keeps
	// the pipe open).
	done := false
	timer := time.AfterFunc(5*time.Second, func() {
		p.mu.Lock()
		done = true
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	p.mu.Lock()
	for !p.eof && !done {
		p.cond.Wait()
	}
	p.mu.Unlock()
	timer.Stop()
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws, nil
}
