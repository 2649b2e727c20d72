package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/crossrun/crossrun/integration/harness"
)

// TestConcurrentCreate starts two creates of one id at the same moment, from
// two bundles, 20 times: exactly one must win, the other fail with a
// one-line "already exists" error and leave nothing of its own; the
// winner's container must be intact.
func TestConcurrentCreate(t *testing.T) {
	harness.RequireRoot(t)
	bundles := []string{
		harness.NewBundle(t, "sleep", "1000").Dir,
		harness.NewBundle(t, "sleep", "1000").Dir,
	}
	wins := [2]int{}
	for round := 0; round < 20; round++ {
		id := fmt.Sprintf("flt-cc-%02d", round)
		forceDelete(t, id)
		var rs [2]result
		var errs [2]error
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range bundles {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-gate
				rs[i], errs[i] = run(harness.Bin, nil, "create", "--bundle", bundles[i], id)
			}(i)
		}
		close(gate)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		winner := -1
		for i, r := range rs {
			if r.code == 0 {
				if winner >= 0 {
					t.Fatalf("round %d: both creates of %s succeeded", round, id)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: neither create of %s succeeded:\n%s\n%s", round, id, rs[0].stderr, rs[1].stderr)
		}
		wins[winner]++
		loser := 1 - winner
		if rs[loser].code != 1 {
			t.Errorf("round %d: losing create exit %d, want 1", round, rs[loser].code)
		}
		msg := oneLine(t, "losing create", rs[loser].stderr)
		if !strings.Contains(msg, "already exists") || !strings.Contains(msg, id) {
			t.Errorf("round %d: losing create's error %q, want %q already exists", round, msg, id)
		}
		checkWinner(t, id, bundles[winner], bundles[loser])
		mustRun(t, "delete", "--force", id)
		requireClean(t, target{id, bundles[0]}, target{id, bundles[1]})
	}
	t.Logf("wins by bundle: %v", wins)
}

// checkWinner checks that id is the created container from the winning
// bundle, alone in its cgroup, and that the losing bundle is used by no
// process and no mount.
func checkWinner(t *testing.T, id, winner, loser string) {
	t.Helper()
	st := harness.State(t, id)
	if st["status"] != "created" || st["bundle"] != winner {
		t.Errorf("%s after the race: status %v bundle %v, want created from %s", id, st["status"], st["bundle"], winner)
	}
	pid := int(st["pid"].(float64))
	if found := findLeftovers([]target{{"flt-no-such-id", loser}}); len(found) > 0 {
		t.Errorf("the losing create left: %v", found)
	}
	// Every hierarchy holds the winner's init and nothing else.
	for _, dir := range cgroupLeftovers(map[string]bool{id: true}) {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		procs := strings.Fields(string(data))
		sort.Strings(procs)
		if len(procs) != 1 || procs[0] != strconv.Itoa(pid) {
			t.Errorf("cgroup %s holds %v, want only the winner's init %d", dir, procs, pid)
		}
	}
}

// TestCreateWhileCreating starts a second create of an id whose first
// create is still under way (stopped at a step by the fault build): the
// second fails at once and does not disturb the first, which is then
// killed and cleaned up by delete --force.
func TestCreateWhileCreating(t *testing.T) {
	requireFaultBin(t)
	for _, point := range []string{"after-state-dir", "after-cgroup", "init-after-mounts"} {
		t.Run(point, func(t *testing.T) {
			id := "flt-cw-" + point
			first := harness.NewBundle(t, "sleep", "1000")
			second := harness.NewBundle(t, "sleep", "1000")
			forceDelete(t, id)
			env := []string{"CROSSRUN_FAULT=" + point, "CROSSRUN_FAULT_MODE=block", "CROSSRUN_FAULT_TAG=" + id}
			p := startWatched(t, faultBin, env, "create", "--bundle", first.Dir, id)
			if !p.waitLine("crossrun-fault: reached "+point, harness.Timeout) {
				t.Fatalf("fault point %s never reached; stderr:\n%s", point, p.stderr())
			}
			dir := filepath.Join(harness.StateRoot, id)
			before := listDir(t, dir)

			r, err := run(harness.Bin, nil, "create", "--bundle", second.Dir, id)
			if err != nil {
				t.Fatal(err)
			}
			msg := oneLine(t, "second create", r.stderr)
			if r.code != 1 || !strings.Contains(msg, "already exists") {
				t.Fatalf("second create: exit %d, %q; want 1 and \"already exists\"", r.code, msg)
			}
			if after := listDir(t, dir); after != before {
				t.Errorf("the second create changed the first's state directory: %q -> %q", before, after)
			}
			if found := findLeftovers([]target{{"flt-no-such-id", second.Dir}}); len(found) > 0 {
				t.Errorf("the second create left: %v", found)
			}
			// A status query while the first create holds its lock.
			if st := harness.State(t, id); st["status"] != "creating" {
				t.Errorf("status while the create is under way: %v, want creating", st["status"])
			}
			p.kill()
			if _, err := p.exited(harness.Timeout); err != nil {
				t.Fatal(err)
			}
			mustRun(t, "delete", "--force", id)
			requireClean(t, target{id, first.Dir}, target{id, second.Dir})
		})
	}
}

// listDir names the entries of dir with their sizes, to tell whether it
// changed.
func listDir(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%s ", e.Name(), info.Size(), info.ModTime())
	}
	return b.String()
}

// TestCreateRacingDelete stops a create between making its state directory
// and locking it, lets "delete --force" remove that directory, and then
// resumes the create: it must notice, fail with one line, and leave alone a
// container that another create has made under the same id meanwhile.
func TestCreateRacingDelete(t *testing.T) {
	requireFaultBin(t)
	for _, recreate := range []bool{false, true} {
		name := map[bool]string{false: "gone", true: "recreated"}[recreate]
		t.Run(name, func(t *testing.T) {
			id := "flt-rd-" + name
			first := harness.NewBundle(t, "sleep", "1000")
			second := harness.NewBundle(t, "sleep", "1000")
			forceDelete(t, id)
			env := []string{"CROSSRUN_FAULT=after-mkdir", "CROSSRUN_FAULT_MODE=stop", "CROSSRUN_FAULT_TAG=" + id}
			p := startWatched(t, faultBin, env, "create", "--bundle", first.Dir, id)
			if !p.waitLine("crossrun-fault: reached after-mkdir", harness.Timeout) {
				t.Fatalf("fault point never reached; stderr:\n%s", p.stderr())
			}
			mustRun(t, "delete", "--force", id)
			if recreate {
				mustRun(t, "create", "--bundle", second.Dir, id)
			}
			if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			ws, err := p.exited(harness.Timeout)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(p.stderr(), "\n")
			last := lines[len(lines)-1]
			want := "was deleted while it was being created"
			if recreate {
				want = "already exists"
			}
			if ws.ExitStatus() != 1 || len(lines) != 2 || !strings.Contains(last, want) {
				t.Fatalf("resumed create: %v, stderr %q; want exit 1 and one line saying %q", ws, p.stderr(), want)
			}
			if recreate {
				st := harness.State(t, id)
				if st["status"] != "created" || st["bundle"] != second.Dir {
					t.Errorf("the other create's container: %v, want created from %s", st, second.Dir)
				}
				checkWinner(t, id, second.Dir, first.Dir)
				mustRun(t, "delete", "--force", id)
			}
			requireClean(t, target{id, first.Dir}, target{id, second.Dir})
		})
	}
}
