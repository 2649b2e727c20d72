package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/integration/harness"
)

// TestLeakCycles runs 200 create/start/delete cycles of a busybox "true"
// container, two at a time, next to a long-running foreground "crossrun
// run", and then checks that nothing is left: no mount, cgroup, state
// directory, process or zombie of any of them, no descriptor in the
// foreground crossrun beyond what it needs, and only stdio in the
// containers' processes.
func TestLeakCycles(t *testing.T) {
	harness.RequireRoot(t)
	const workers, perWorker = 2, 100
	mountsBefore := mountinfoEntries()
	var targets []target

	// A foreground run that lives through the cycles.
	fg := "flt-leak-fg"
	fgb := harness.NewBundle(t, "sleep", "1000")
	targets = append(targets, target{fg, fgb.Dir})
	forceDelete(t, fg)
	fgCmd := harness.Cmd("run", "--bundle", fgb.Dir, fg)
	fgOut, err := os.CreateTemp(t.TempDir(), "fg-out-")
	if err != nil {
		t.Fatal(err)
	}
	defer fgOut.Close()
	fgCmd.Stdout, fgCmd.Stderr = fgOut, fgOut
	if err := fgCmd.Start(); err != nil {
		t.Fatal(err)
	}
	fgDone := make(chan error, 1)
	go func() { fgDone <- fgCmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-fgDone:
		default:
			fgCmd.Process.Kill()
			<-fgDone
		}
	})
	harness.WaitStatus(t, fg, "running")
	fgPid := int(harness.State(t, fg)["pid"].(float64))

	// A created container: its init waits on the exec fifo and must hold
	// nothing that would survive into the user process.
	cr := "flt-leak-created"
	crb := harness.NewBundle(t, "true")
	targets = append(targets, target{cr, crb.Dir})
	forceDelete(t, cr)
	mustRun(t, "create", "--bundle", crb.Dir, cr)
	crPid := int(harness.State(t, cr)["pid"].(float64))
	checkInitFds(t, crPid, filepath.Join(harness.StateRoot, cr, "exec.fifo"))
	requireFound(t, []target{{cr, crb.Dir}}, "state directory", "cgroup", "process")
	mustRun(t, "delete", "--force", cr)

	// The cycles.
	pidDir := t.TempDir()
	start := time.Now()
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		b := harness.NewBundle(t, "true")
		for n := 0; n < perWorker; n++ {
			targets = append(targets, target{fmt.Sprintf("flt-leak-%d-%03d", w, n), b.Dir})
		}
		wg.Add(1)
		go func(w int, bundle string) {
			defer wg.Done()
			for n := 0; n < perWorker; n++ {
				id := fmt.Sprintf("flt-leak-%d-%03d", w, n)
				if err := cycle(id, bundle, pidDir); err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					_, _ = run(harness.Bin, nil, "delete", "--force", id)
					return
				}
			}
		}(w, b.Dir)
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("%d create/start/delete cycles, %d at a time: %v (%v per cycle per worker)",
		workers*perWorker, workers, elapsed.Round(time.Millisecond), (elapsed / perWorker).Round(100*time.Microsecond))

	// The long-running crossrun and its container, after all that.
	checkRunFds(t, fgCmd.Process.Pid, filepath.Join(harness.StateRoot, fg))
	if fds := fdList(t, fgPid); strings.Join(fds, " ") != "0 1 2" {
		t.Errorf("the container's process (pid %d) holds descriptors %v, want only 0 1 2", fgPid, fds)
	}
	for _, pid := range allPids() {
		if info, ok := readProc(pid); ok && info.ppid == fgCmd.Process.Pid && info.state == "Z" {
			t.Errorf("zombie %d (%s), a child of the foreground crossrun", pid, info.comm)
		}
	}

	// What a container's process sees.
	ls := "flt-leak-ls"
	lsb := harness.NewBundle(t, "ls", "/proc/self/fd")
	targets = append(targets, target{ls, lsb.Dir})
	forceDelete(t, ls)
	r := mustRun(t, "run", "--bundle", lsb.Dir, ls)
	if got := strings.Join(strings.Fields(r.stdout), " "); got != "0 1 2 3" {
		t.Errorf("ls /proc/self/fd in a container: %q, want \"0 1 2 3\" (stdio and ls's own directory)", got)
	}

	// Stop the foreground run; it deletes its container.
	mustRun(t, "kill", fg, "KILL")
	select {
	case err := <-fgDone:
		fgDone <- err
		if fgCmd.ProcessState.ExitCode() != 137 {
			out, _ := os.ReadFile(fgOut.Name())
			t.Errorf("foreground run killed with SIGKILL: exit %d, want 137; output: %s", fgCmd.ProcessState.ExitCode(), out)
		}
	case <-time.After(harness.Timeout):
		t.Fatal("the foreground run did not exit after its container was killed")
	}

	requireClean(t, targets...)
	mountsAfter := mountinfoEntries()
	var related, other []string
	for e, n := range mountsAfter {
		if n <= mountsBefore[e] {
			continue
		}
		if mentionsTest(e, targets) {
			related = append(related, e)
		} else {
			other = append(other, e)
		}
	}
	t.Logf("mountinfo: %d entries before, %d after", total(mountsBefore), total(mountsAfter))
	if len(related) > 0 {
		sort.Strings(related)
		t.Errorf("mounts left by the test's containers:\n  %s", strings.Join(related, "\n  "))
	}
	if len(other) > 0 {
		t.Logf("new mounts that do not mention the test's bundles or state (another process's):\n  %s", strings.Join(other, "\n  "))
	}
}

// cycle creates, starts, waits for and deletes one container. It runs on a
// worker goroutine, so it returns errors instead of failing the test.
func cycle(id, bundle, pidDir string) error {
	pidFile := filepath.Join(pidDir, id+".pid")
	if r, err := run(harness.Bin, nil, "create", "--bundle", bundle, "--pid-file", pidFile, id); err != nil || r.code != 0 {
		return fmt.Errorf("create %s: %v %q", id, err, r.stderr)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("%s: %v", id, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("%s: pid file %q: %v", id, data, err)
	}
	// Opened before start: the pid cannot be reused while it is held.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("%s: pidfd_open %d: %v", id, pid, err)
	}
	defer unix.Close(pidfd)
	if r, err := run(harness.Bin, nil, "start", id); err != nil || r.code != 0 {
		return fmt.Errorf("start %s: %v %q", id, err, r.stderr)
	}
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, int(harness.Timeout/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return fmt.Errorf("%s: its process %d did not exit: %v", id, pid, err)
		}
		break
	}
	if r, err := run(harness.Bin, nil, "delete", id); err != nil || r.code != 0 {
		return fmt.Errorf("delete %s: %v %q", id, err, r.stderr)
	}
	return nil
}

// fdList returns the descriptor numbers pid holds, sorted.
func fdList(t *testing.T, pid int) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatalf("descriptors of %d: %v", pid, err)
	}
	var fds []int
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		fds = append(fds, n)
	}
	sort.Ints(fds)
	out := make([]string, len(fds))
	for i, n := range fds {
		out[i] = strconv.Itoa(n)
	}
	return out
}

// fdInfo returns what descriptor fd of pid points at and whether it is
// close-on-exec.
func fdInfo(pid int, fd string) (string, bool) {
	base := "/proc/" + strconv.Itoa(pid)
	link, _ := os.Readlink(base + "/fd/" + fd)
	data, _ := os.ReadFile(base + "/fdinfo/" + fd)
	cloexec := false
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, _ := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			cloexec = flags&unix.O_CLOEXEC != 0
		}
	}
	return link, cloexec
}

// checkInitFds checks a created container's init: besides stdio, only the
// exec fifo may survive exec; everything else is close-on-exec.
func checkInitFds(t *testing.T, pid int, fifo string) {
	t.Helper()
	var held []string
	for _, fd := range fdList(t, pid) {
		link, cloexec := fdInfo(pid, fd)
		held = append(held, fd+"->"+link)
		if n, _ := strconv.Atoi(fd); n <= 2 || cloexec || link == fifo {
			continue
		}
		t.Errorf("created container's init (pid %d) holds descriptor %s -> %s without close-on-exec", pid, fd, link)
	}
	t.Logf("created container's init holds: %s", strings.Join(held, " "))
}

// checkRunFds checks a foreground "crossrun run": it may hold stdio, the Go
// runtime's poller and cgroup CPU files, a pidfd on init, the lock on its
// state directory, the read-only view of its own binary and both ends of
// one pipe (the signal relay's, internal/sigrelay), all but stdio
// close-on-exec; a socket, another pipe, a fifo or a file of the bundle is
// a leak.
func checkRunFds(t *testing.T, pid int, stateDir string) {
	t.Helper()
	self, err := os.Stat(harness.Bin)
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	pipes := map[string][]string{} // pipe:[inode] -> descriptors
	for _, fd := range fdList(t, pid) {
		link, cloexec := fdInfo(pid, fd)
		held = append(held, fd+"->"+link)
		if n, _ := strconv.Atoi(fd); n <= 2 {
			continue
		}
		if !cloexec {
			t.Errorf("foreground crossrun (pid %d): descriptor %s -> %s is not close-on-exec", pid, fd, link)
		}
		switch {
		case strings.HasPrefix(link, "pipe:["):
			pipes[link] = append(pipes[link], fd)
		case link == "anon_inode:[eventpoll]", link == "anon_inode:[eventfd]", link == "anon_inode:[pidfd]":
		case strings.HasPrefix(link, "/sys/fs/cgroup/") &&
			(strings.HasSuffix(link, "/cpu.cfs_quota_us") || strings.HasSuffix(link, "/cpu.cfs_period_us") || strings.HasSuffix(link, "/cpu.max")):
		case link == stateDir:
		case strings.HasPrefix(link, "/memfd:crossrun"):
		default:
			if st, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/fd/" + fd); err == nil && os.SameFile(st, self) {
				continue
			}
			t.Errorf("foreground crossrun (pid %d) holds an unexpected descriptor %s -> %s", pid, fd, link)
		}
	}
	for link, fds := range pipes {
		if len(pipes) > 1 || len(fds) != 2 {
			t.Errorf("foreground crossrun (pid %d) holds descriptors %v -> %s: only the two ends of the signal relay's pipe are expected", pid, fds, link)
		}
	}
	t.Logf("foreground crossrun holds: %s", strings.Join(held, " "))
}

// mountinfoEntries counts this namespace's mounts by everything but their
// ids.
func mountinfoEntries() map[string]int {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	m := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		m[strings.Join(f[2:], " ")]++
	}
	return m
}

func total(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// mentionsTest reports whether a mountinfo entry names a bundle, the state
// root, the test's scratch directory, the binary or a container id.
func mentionsTest(entry string, targets []target) bool {
	e := unescapeMount(entry)
	for _, s := range []string{harness.StateRoot, harness.Work, harness.Bin, "flt-"} {
		if strings.Contains(e, s) {
			return true
		}
	}
	for _, tg := range targets {
		if strings.Contains(e, tg.bundle) {
			return true
		}
	}
	return false
}
