package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"true", []string{"true"}, 0, ""},
		{"echo", []string{"echo", "hello from crossrun"}, 0, "hello from crossrun\n"},
		{"exit code", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"exit 255", []string{"sh", "-c", "exit 255"}, 255, ""},
		{"hostname", []string{"hostname"}, 0, "crossrun\n"},
		{"pid 1", []string{"sh", "-c", "echo $$"}, 0, "1\n"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, tc.args...)
			id := "exit-" + strconv.Itoa(i)
			cleanupContainer(t, id)
			r := crossrun(t, "run", "--bundle", b.Dir, id)
			if r.Code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", r.Code, tc.code, r.Stderr)
			}
			if tc.out != "" && r.Stdout != tc.out {
				t.Fatalf("stdout %q, want %q", r.Stdout, tc.out)
			}
			if _, err := os.Stat(filepath.Join(stateRoot, id)); !os.IsNotExist(err) {
				t.Fatalf("state directory of %s left after run: %v", id, err)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	id := "lifecycle"
	cleanupContainer(t, id)
	pidFile := filepath.Join(t.TempDir(), "pid")
	mustRun(t, "create", "--bundle", b.Dir, "--pid-file", pidFile, id)

	st := state(t, id)
	if st["status"] != "created" {
		t.Fatalf("after create: status %v, want created", st["status"])
	}
	pid := int(st["pid"].(float64))
	data, err := os.ReadFile(pidFile)
	if err != nil || string(data) != strconv.Itoa(pid) {
		t.Fatalf("pid file %q (%v), want %d", data, err, pid)
	}
	if st["bundle"] != b.Dir || st["id"] != id || st["ociVersion"] == "" {
		t.Fatalf("state fields wrong: %v", st)
	}
	// The process is blocked before exec: it is still crossrun.
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if strings.TrimSpace(string(comm)) == "sleep" {
		t.Fatalf("created container already exec'd its process")
	}

	r := crossrun(t, "start", id)
	if r.Code != 0 {
		t.Fatalf("start: %s", r.Stderr)
	}
	if st := state(t, id); st["status"] != "running" {
		t.Fatalf("after start: status %v", st["status"])
	}
	comm, _ = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if strings.TrimSpace(string(comm)) != "sleep" {
		t.Fatalf("after start, pid %d runs %q, want sleep", pid, comm)
	}
	if r := crossrun(t, "start", id); r.Code == 0 {
		t.Fatalf("second start of a running container succeeded")
	}
	if r := crossrun(t, "delete", id); r.Code == 0 || !strings.Contains(r.Stderr, "not stopped") {
		t.Fatalf("delete of a running container: exit %d, stderr %q", r.Code, r.Stderr)
	}

	r = crossrun(t, "list", "--format", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
		t.Fatalf("list json: %v: %s", err, r.Stdout)
	}
	found := false
	for _, c := range list {
		if c["id"] == id && c["status"] == "running" {
			found = true
		}
	}
	if !found {
		t.Fatalf("list does not show %s running: %s", id, r.Stdout)
	}
	if r := mustRun(t, "list", "-q"); !strings.Contains(r.Stdout, id+"\n") {
		t.Fatalf("list -q: %q", r.Stdout)
	}
	if r := mustRun(t, "list"); !strings.HasPrefix(r.Stdout, "ID") || !strings.Contains(r.Stdout, "running") {
		t.Fatalf("list table: %q", r.Stdout)
	}

	mustRun(t, "kill", id, "KILL")
	waitStatus(t, id, "stopped")
	if r := crossrun(t, "kill", id, "TERM"); r.Code == 0 {
		t.Fatalf("kill of a stopped container succeeded")
	}
	mustRun(t, "delete", id)
	if r := crossrun(t, "state", id); r.Code == 0 || !strings.Contains(r.Stderr, "does not exist") {
		t.Fatalf("state after delete: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

func TestKillSignalForms(t *testing.T) {
	for i, sig := range []string{"TERM", "SIGTERM", "15"} {
		t.Run(sig, func(t *testing.T) {
			// As pid 1 the shell ignores TERM until its trap is set: the
			// signal goes only once the trap is there.
			b := newBundle(t, "sh", "-c", "trap 'exit 42' TERM; touch /trap-set; while true; do sleep 0.1; done")
			b.Spec.Root.Readonly = false
			b.Save(t)
			id := "killsig-" + strconv.Itoa(i)
			cleanupContainer(t, id)
			mustRun(t, "run", "-d", "--bundle", b.Dir, id)
			waitFile(t, filepath.Join(b.Dir, "rootfs", "trap-set"))
			mustRun(t, "kill", id, sig)
			waitStatus(t, id, "stopped")
		})
	}
}

func TestDeleteForceRunning(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	id := "delete-force"
	cleanupContainer(t, id)
	mustRun(t, "run", "-d", "--bundle", b.Dir, id)
	pid := int(state(t, id)["pid"].(float64))
	mustRun(t, "delete", "--force", id)
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe"); err == nil {
		t.Fatalf("init %d still alive after delete --force", pid)
	}
	if _, err := os.Stat(filepath.Join(stateRoot, id)); !os.IsNotExist(err) {
		t.Fatalf("state dir left after delete --force")
	}
}

func TestDeleteCreated(t *testing.T) {
	b := newBundle(t, "true")
	id := "delete-created"
	cleanupContainer(t, id)
	mustRun(t, "create", "--bundle", b.Dir, id)
	pid := int(state(t, id)["pid"].(float64))
	// The runtime-spec: deleting a container that is not stopped is an
	// error; --force kills it first.
	if r := crossrun(t, "delete", id); r.Code == 0 || !strings.Contains(r.Stderr, "not stopped") {
		t.Fatalf("delete of a created container: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if st := state(t, id); st["status"] != "created" {
		t.Fatalf("failed delete changed the container: %v", st["status"])
	}
	mustRun(t, "delete", "--force", id)
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe"); err == nil {
		t.Fatalf("init %d still alive after delete --force", pid)
	}
}

func TestRunKeep(t *testing.T) {
	b := newBundle(t, "true")
	id := "keep"
	cleanupContainer(t, id)
	mustRun(t, "run", "--keep", "--bundle", b.Dir, id)
	if st := state(t, id); st["status"] != "stopped" {
		t.Fatalf("kept container status %v, want stopped", st["status"])
	}
	mustRun(t, "delete", id)
}

// TestRunKilledBySignal checks that a foreground run exits 128+N when its
// container is killed by signal N.
func TestRunKilledBySignal(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	id := "run-killed"
	cleanupContainer(t, id)
	done := make(chan result, 1)
	go func() { done <- crossrun(t, "run", "--bundle", b.Dir, id) }()
	waitStatus(t, id, "running")
	mustRun(t, "kill", id, "KILL")
	r := <-done
	if r.Code != 137 {
		t.Fatalf("run exit %d, want 137; stderr %s", r.Code, r.Stderr)
	}
}

// TestRunRelaysSignals checks that a foreground run forwards signals to
// the container's process: a common one (USR1) from the moment the process
// runs, and any other one (a real-time signal) once crossrun says, in its
// debug log, that every signal is relayed.
func TestRunRelaysSignals(t *testing.T) {
	const script = `trap 'echo usr1' USR1; trap 'echo rt; exit 7' 36; echo ready; while :; do sleep 1 & wait $!; done`
	b := newBundle(t, "sh", "-c", script)
	id := "run-relay"
	cleanupContainer(t, id)
	cmd := crossrunCmd("--debug", "run", "--bundle", b.Dir, id)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	relayed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "every signal is relayed") {
				once = true
				close(relayed)
			}
		}
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok || l != want {
				t.Fatalf("container printed %q (open %v), want %q", l, ok, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no %q from the container", want)
		}
	}
	expect("ready")
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	expect("usr1")
	select {
	case <-relayed:
	case <-time.After(20 * time.Second):
		t.Fatal("crossrun never logged that every signal is relayed")
	}
	if err := cmd.Process.Signal(syscall.Signal(36)); err != nil {
		t.Fatal(err)
	}
	expect("rt")
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Fatalf("run exit %d (%v), want 7", code, err)
	}
}
