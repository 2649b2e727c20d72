package faults

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/integration/harness"
)

// The points of create where the fault-injection build stops, in the order
// create passes them (libcontainer/faults_on.go).
var (
	parentPoints = []string{
		"after-mkdir", "after-state-dir", "after-fifo", "after-state-early", "after-clone",
		"after-cgroup", "after-bootstrap", "after-state-write", "after-ready",
	}
	initPoints = []string{
		"init-after-cgroup", "init-after-namespaces", "init-after-mounts",
		"init-after-pivot", "init-before-ready", "init-before-fifo",
	}
)

// cgroupMade are the parent points by which every cgroup directory exists
// (from after-clone on, only the unified one may, depending on the host).
var cgroupMade = map[string]bool{"after-cgroup": true, "after-bootstrap": true, "after-state-write": true, "after-ready": true}

// TestFaultInjection kills crossrun create at each step, then checks that
// "crossrun delete --force" leaves nothing behind:
//   - parent points: the create process SIGKILLs itself there;
//   - init points, kill: init dies there (create must fail, one line, and
//     clean up by itself);
//   - init points, block: init stops there, the test SIGKILLs the create
//     process, and delete --force has to find and kill the stuck init.
func TestFaultInjection(t *testing.T) {
	requireFaultBin(t)
	type tc struct{ point, mode string }
	var cases []tc
	for _, p := range parentPoints {
		cases = append(cases, tc{p, "kill"})
	}
	for _, p := range initPoints {
		cases = append(cases, tc{p, "kill"}, tc{p, "block"})
	}
	for _, c := range cases {
		t.Run(c.point+"/"+c.mode, func(t *testing.T) {
			id := "flt-fi-" + c.point + "-" + c.mode
			b := harness.NewBundle(t, "sleep", "1000")
			tg := target{id, b.Dir}
			forceDelete(t, id)
			env := []string{"CROSSRUN_FAULT=" + c.point, "CROSSRUN_FAULT_MODE=" + c.mode, "CROSSRUN_FAULT_TAG=" + id}
			p := startWatched(t, faultBin, env, "create", "--bundle", b.Dir, id)
			reached := "crossrun-fault: reached " + c.point
			if !p.waitLine(reached, harness.Timeout) {
				p.kill()
				t.Fatalf("fault point %s never reached; stderr:\n%s", c.point, p.stderr())
			}
			isInit := strings.HasPrefix(c.point, "init-")
			if c.mode == "block" {
				// init is stuck at the point: kill the create that waits
				// for it (it has already exited for init-before-fifo).
				p.kill()
			}
			ws, err := p.exited(harness.Timeout)
			if err != nil {
				t.Fatalf("%v; stderr:\n%s", err, p.stderr())
			}
			switch {
			case !isInit:
				if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("create should have killed itself at %s, wait status %v; stderr:\n%s", c.point, ws, p.stderr())
				}
			case c.mode == "kill" && c.point != "init-before-fifo":
				// init died during setup: create reports it and undoes
				// everything itself.
				if ws.ExitStatus() != 1 {
					t.Fatalf("create with init killed at %s: exit %v, want 1; stderr:\n%s", c.point, ws, p.stderr())
				}
				lines := strings.Split(p.stderr(), "\n")
				last := lines[len(lines)-1]
				if !strings.HasPrefix(last, "crossrun: container init ") || !strings.Contains(last, "during setup") {
					t.Errorf("create's error: %q, want one line saying init died during setup", last)
				}
				requireClean(t, tg)
			case c.point == "init-before-fifo":
				if ws.ExitStatus() != 0 && !(c.mode == "block" && ws.Signaled()) {
					t.Fatalf("create should have succeeded before init stopped at %s: %v; stderr:\n%s", c.point, ws, p.stderr())
				}
			}
			if !(isInit && c.mode == "kill" && c.point != "init-before-fifo") {
				// Something is left for delete --force to clean: the check
				// must see it.
				requireFound(t, []target{tg}, "state directory")
				if cgroupMade[c.point] || isInit {
					requireFound(t, []target{tg}, "cgroup")
				}
				if c.mode == "block" || c.point == "after-ready" {
					requireFound(t, []target{tg}, "process")
				}
			}
			r := mustRun(t, "delete", "--force", id)
			if r.stderr != "" {
				t.Logf("delete --force stderr: %s", r.stderr)
			}
			requireClean(t, tg)
			if r, _ := run(harness.Bin, nil, "state", id); r.code == 0 {
				t.Errorf("state %s after delete --force succeeded: %s", id, r.stdout)
			}
		})
	}
}

// TestFaultUnknownPoint checks that the fault build refuses a point name it
// does not have, so that a renamed step cannot make a test pass vacuously.
func TestFaultUnknownPoint(t *testing.T) {
	requireFaultBin(t)
	r, err := run(faultBin, []string{"CROSSRUN_FAULT=no-such-point"}, "list")
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 2 || !strings.Contains(r.stderr, "is not a fault point") {
		t.Fatalf("unknown fault point: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestNormalBuildHasNoFaults checks that the normal binary ignores
// CROSSRUN_FAULT: its create goes through every point.
func TestNormalBuildHasNoFaults(t *testing.T) {
	harness.RequireRoot(t)
	id := "flt-nofault"
	b := harness.NewBundle(t, "true")
	forceDelete(t, id)
	for _, p := range append(append([]string{}, parentPoints...), initPoints...) {
		r, err := run(harness.Bin, []string{"CROSSRUN_FAULT=" + p}, "create", "--bundle", b.Dir, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.code != 0 || strings.Contains(r.stderr, "crossrun-fault") {
			t.Fatalf("normal build with CROSSRUN_FAULT=%s: exit %d, stderr %q", p, r.code, r.stderr)
		}
		mustRun(t, "delete", "--force", id)
	}
	requireClean(t, target{id, b.Dir})
}

// TestLeftoverCheckSees shows that each part of the leftover check finds
// what it looks for: a mount in a bundle, a process in a bundle, a zombie
// child, a state directory, a cgroup and the processes of a created
// container.
func TestLeftoverCheckSees(t *testing.T) {
	harness.RequireRoot(t)
	id := "flt-seen"
	b := harness.NewBundle(t, "sleep", "1000")
	tg := []target{{id, b.Dir}}
	requireClean(t, tg...)

	mnt := filepath.Join(b.Dir, "rootfs", "mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	requireFound(t, tg, "mount")
	if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}

	sleeper := exec.Command("sleep", "1000")
	sleeper.Dir = b.Dir
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	requireFound(t, tg, "process")
	sleeper.Process.Kill()
	sleeper.Wait()

	zombie := exec.Command("true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(zombie.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, int(harness.Timeout/time.Millisecond))
	unix.Close(pidfd)
	requireFound(t, tg, "zombie")
	zombie.Wait()

	forceDelete(t, id)
	mustRun(t, "create", "--bundle", b.Dir, id)
	requireFound(t, tg, "state directory", "cgroup", "process")
	mustRun(t, "delete", "--force", id)
	requireClean(t, tg...)
}

// TestDeleteAfterDeadCreate checks that a create which died before its
// container was ready leaves a container that reports "stopped" and that a
// plain delete (no --force) removes, as a stopped container would be.
func TestDeleteAfterDeadCreate(t *testing.T) {
	requireFaultBin(t)
	for _, point := range []string{"after-state-dir", "after-state-early", "after-cgroup"} {
		t.Run(point, func(t *testing.T) {
			id := "flt-dd-" + point
			b := harness.NewBundle(t, "sleep", "1000")
			forceDelete(t, id)
			r, err := run(faultBin, []string{"CROSSRUN_FAULT=" + point, "CROSSRUN_FAULT_TAG=" + id}, "create", "--bundle", b.Dir, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.signal != syscall.SIGKILL {
				t.Fatalf("create at %s: exit %d signal %v, want killed; stderr: %s", point, r.code, r.signal, r.stderr)
			}
			if st := harness.State(t, id); st["status"] != "stopped" {
				t.Errorf("status after create died at %s: %v, want stopped", point, st["status"])
			}
			mustRun(t, "delete", id)
			requireClean(t, target{id, b.Dir})
		})
	}
}
