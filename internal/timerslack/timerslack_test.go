package timerslack

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// raisedHere skips a test where the constructor left the slack alone: a
// build without cgo, or a test started with a slack of Raised or more.
func raisedHere(t *testing.T) uint64 {
	t.Helper()
	h := Host()
	if h == 0 {
		t.Skip("skipped: the slack was not raised (a build without cgo, or started with a slack of at least 1 ms)")
	}
	return h
}

// childSlack starts cat on /proc/self/timerslack_ns through start and
// returns what it printed: the slack the child was started with.
func childSlack(t *testing.T, start func(*exec.Cmd) error) uint64 {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command("cat", "/proc/self/timerslack_ns")
	cmd.Stdout = &out
	if err := start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(out.String()), 10, 64)
	if err != nil {
		t.Fatalf("cat printed %q", out.String())
	}
	return n
}

// TestThreadsRaised: every thread of the process, the ones the Go runtime
// started after the constructor included, runs with the raised slack.
func TestThreadsRaised(t *testing.T) {
	raisedHere(t)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 2 {
		t.Fatalf("%d threads; the Go runtime starts more than one", len(tasks))
	}
	for _, task := range tasks {
		// timerslack_ns is under /proc/TID, not /proc/self/task/TID.
		// Only a thread may read its own without CAP_SYS_NICE.
		data, err := os.ReadFile("/proc/" + task.Name() + "/timerslack_ns")
		if err != nil {
			if os.IsPermission(err) {
				t.Skip("skipped: reading other threads' timer slack needs CAP_SYS_NICE")
			}
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(data)); got != strconv.Itoa(Raised) {
			t.Errorf("thread %s: slack %s ns, want %d", task.Name(), got, Raised)
		}
	}
}

// TestDo: a child started through Do has the slack the process was
// started with, and one started without it crossrun's; the thread gets its
// own slack back.
func TestDo(t *testing.T) {
	h := raisedHere(t)
	if got := childSlack(t, (*exec.Cmd).Start); got != Raised {
		t.Fatalf("child started without Do: slack %d, want %d (the raised one); the test cannot tell Do works", got, Raised)
	}
	if got := childSlack(t, func(c *exec.Cmd) error { return Do(c.Start) }); got != h {
		t.Errorf("child started through Do: slack %d, want %d", got, h)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const own = 77_777
	if err := set(own); err != nil {
		t.Fatal(err)
	}
	defer set(Raised)
	if got := childSlack(t, func(c *exec.Cmd) error { return Do(c.Start) }); got != h {
		t.Errorf("child started through Do from a thread with slack %d: slack %d, want %d", own, got, h)
	}
	if got, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0); err != nil || got != own {
		t.Errorf("thread slack after Do: %d %v, want its own %d back", got, err, own)
	}
}

// TestExec re-runs the test binary, which execs cat through Exec: cat must
// have the slack the test binary was started with.
func TestExec(t *testing.T) {
	if os.Getenv("TIMERSLACK_EXEC_HELPER") != "" {
		err := Exec("/bin/cat", []string{"cat", "/proc/self/timerslack_ns"}, os.Environ())
		t.Fatalf("exec: %v", err)
	}
	h := raisedHere(t)
	got := childSlack(t, func(c *exec.Cmd) error {
		c.Path = os.Args[0]
		c.Args = []string{os.Args[0], "-test.run=^TestExec$"}
		c.Env = append(os.Environ(), "TIMERSLACK_EXEC_HELPER=1")
		return Do(c.Start)
	})
	if got != h {
		t.Errorf("program exec'd through Exec: slack %d, want %d", got, h)
	}
}
