package libcontainer

import (
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestChildStartWait(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// fd 0 is /dev/null when Stdin is nil; fd 3 is the first extra file.
	c := &child{
		Path:       "/bin/sh",
		Args:       []string{"sh", "-c", `readlink /proc/self/fd/0 >&3; echo "$X" >&3; exit 7`},
		Env:        []string{"X=from-env"},
		Stderr:     os.Stderr,
		ExtraFiles: []*os.File{w},
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if c.Pid <= 0 {
		t.Fatalf("pid %d after start", c.Pid)
	}
	if err := c.Start(); err == nil {
		t.Fatal("a second start was accepted")
	}
	b, _ := io.ReadAll(r)
	out := string(b)
	for _, want := range []string{"/dev/null", "from-env"} {
		if !strings.Contains(out, want) {
			t.Errorf("child wrote %q, want %q in it", out, want)
		}
	}
	ws, err := c.Wait()
	if err != nil || !ws.Exited() || ws.ExitStatus() != 7 || !c.Exited() {
		t.Fatalf("wait: %v %v exited=%v", ws, err, c.Exited())
	}
	if ws2, err := c.Wait(); err != nil || ws2 != ws {
		t.Fatalf("second wait: %v %v, want %v", ws2, err, ws)
	}
	if err := statusError(ws); err == nil || err.Error() != "exit status 7" {
		t.Fatalf("statusError: %v", err)
	}
}

func TestChildKillAndStartError(t *testing.T) {
	c := &child{Path: "/bin/sleep", Args: []string{"sleep", "100"}}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	c.Kill()
	ws, err := c.Wait()
	if err != nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("after Kill: %v %v", ws, err)
	}
	if err := statusError(ws); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("statusError: %v", err)
	}
	if statusError(0) != nil {
		t.Fatal("exit status 0 is no error")
	}
	bad := &child{Path: "/nonexistent/crossrun", Args: []string{"x"}}
	if err := bad.Start(); err == nil || !strings.Contains(err.Error(), "fork/exec /nonexistent/crossrun") || bad.Pid != 0 {
		t.Fatalf("start of a missing program: %v (pid %d)", err, bad.Pid)
	}
	if _, err := bad.Wait(); err == nil {
		t.Fatal("wait on an unstarted child succeeded")
	}
}
