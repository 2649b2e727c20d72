package integration

import (
	"bufio"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const cgroupRoot = "/sys/fs/cgroup"

// cgBundle makes a writable-rootfs bundle running args with the given
// resources.
func cgBundle(t *testing.T, res *specs.LinuxResources, args ...string) *bundle {
	t.Helper()
	b := newBundle(t, args...)
	b.Spec.Root.Readonly = false
	if b.Spec.Linux == nil {
		b.Spec.Linux = &specs.Linux{}
	}
	if res != nil {
		if b.Spec.Linux.Resources != nil {
			res.Devices = b.Spec.Linux.Resources.Devices
		}
		b.Spec.Linux.Resources = res
	}
	b.Save(t)
	return b
}

func i64p(v int64) *int64 { return &v }

// cgInitPid returns the init pid of a live container from "crossrun state".
func cgInitPid(t *testing.T, id string) int {
	t.Helper()
	pid, ok := state(t, id)["pid"].(float64)
	if !ok || pid <= 0 {
		t.Fatalf("state of %s has no pid", id)
	}
	return int(pid)
}

// cgDir finds the directory of pid's cgroup for a v1 controller, from
// /proc/PID/cgroup. On a host without that v1 controller it returns the
// pid's directory in the cgroup v2 hierarchy, and v2 reports true.
func cgDir(t *testing.T, pid int, ctrl string) (dir string, v2 bool) {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatalf("read cgroup of pid %d: %v", pid, err)
	}
	var unified string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			unified = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == ctrl {
				mnt := filepath.Join(cgroupRoot, parts[1])
				if _, err := os.Stat(mnt); err != nil {
					mnt = filepath.Join(cgroupRoot, ctrl)
				}
				return filepath.Join(mnt, parts[2]), false
			}
		}
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		return filepath.Join(cgroupRoot, unified), true
	}
	t.Fatalf("pid %d is in no %s cgroup:\n%s", pid, ctrl, data)
	return "", false
}

func cgRead(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("read cgroup file: %v", err)
	}
	return strings.TrimSpace(string(data))
}

// cgLeftovers lists cgroup directories named id anywhere under the cgroup
// mounts (every v1 hierarchy and the unified one).
func cgLeftovers(t *testing.T, id string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(cgroupRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a cgroup removed while we walk
		}
		if d.IsDir() && d.Name() == id {
			found = append(found, p)
			return fs.SkipDir
		}
		return nil
	})
	return found
}

func assertNoCgroup(t *testing.T, id, after string) {
	t.Helper()
	if left := cgLeftovers(t, id); len(left) > 0 {
		t.Errorf("after %s, cgroup directories of %s are left: %v", after, id, left)
	}
}

// cgKeyValue reads the number after key in a "key value" cgroup file.
func cgKeyValue(t *testing.T, dir, file, key string) int {
	t.Helper()
	for _, line := range strings.Split(cgRead(t, dir, file), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("%s: %q", file, line)
			}
			return n
		}
	}
	t.Fatalf("%s has no %s line", file, key)
	return 0
}

// waitFile polls until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within 20s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const allocate64M = `x=$(head -c 64m /dev/zero | tr "\0" a); echo survived`

func memLimit32M() *specs.LinuxResources {
	return &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64p(32 << 20), Swap: i64p(32 << 20)}}
}

// TestCgroupsOOM: a 32M memory limit (no swap) kills a shell that holds
// 64M, and "events" reports it.
func TestCgroupsOOM(t *testing.T) {
	t.Run("run is killed", func(t *testing.T) {
		b := cgBundle(t, memLimit32M(), "sh", "-c", allocate64M)
		id := "cg-oom-run"
		cleanupContainer(t, id)
		r := crossrun(t, "run", "--bundle", b.Dir, id)
		if r.Code != 137 {
			t.Fatalf("run exit code %d, want 137 (SIGKILL by the OOM killer); stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
		}
		if strings.Contains(r.Stdout, "survived") {
			t.Fatalf("the allocation survived a 32M limit: %q", r.Stdout)
		}
		assertNoCgroup(t, id, "run exited")
	})
	t.Run("events reports oom", func(t *testing.T) {
		b := cgBundle(t, memLimit32M(), "sh", "-c", allocate64M)
		id := "cg-oom-events"
		cleanupContainer(t, id)
		mustRun(t, "create", "--bundle", b.Dir, id)
		memDir, v2 := cgDir(t, cgInitPid(t, id), "memory")

		es := startEvents(t, id)
		// The first stats line shows events is watching; only then start.
		first, ok := es.next()
		if !ok || first["type"] != "stats" || first["id"] != id {
			t.Fatalf("first event %v, want a stats event for %s; stderr %s", first, id, es.stderr.String())
		}
		mustRun(t, "start", id)
		if err := es.wait(); err != nil {
			t.Fatalf("events exited with %v after the container stopped; stderr %s", err, es.stderr.String())
		}
		ooms := 0
		for _, e := range es.events {
			if e["type"] == "oom" {
				ooms++
				if e["id"] != id {
					t.Errorf("oom event for %v, want %s", e["id"], id)
				}
			}
		}
		if ooms == 0 {
			t.Fatalf("events printed no oom event: %v", es.events)
		}
		if st := state(t, id)["status"]; st != "stopped" {
			t.Fatalf("status %v after OOM kill, want stopped", st)
		}
		// The kernel's own count agrees.
		file := "memory.oom_control"
		if v2 {
			file = "memory.events"
		}
		if n := cgKeyValue(t, memDir, file, "oom_kill"); n < 1 || n != ooms {
			t.Errorf("%s: oom_kill = %d, events printed %d oom events; want one per kill", file, n, ooms)
		}
		mustRun(t, "delete", id)
		assertNoCgroup(t, id, "delete")
	})
	t.Run("events reports oom of a child while running", func(t *testing.T) {
		// The child and its pipeline volunteer (oom_score_adj 1000): the
		// kernel may kill a second process while the first victim exits,
		// and that must not be init.
		b := cgBundle(t, memLimit32M(), "sh", "-c",
			`while [ ! -e /tmp/go ]; do sleep 0.05; done; sh -c 'echo 1000 >/proc/self/oom_score_adj; `+allocate64M+`'; echo $? >/tmp/child; exec sleep 1000`)
		id := "cg-oom-child"
		cleanupContainer(t, id)
		mustRun(t, "run", "--detach", "--bundle", b.Dir, id)
		es := startEvents(t, id)
		if first, ok := es.next(); !ok || first["type"] != "stats" {
			t.Fatalf("first event %v, want stats; stderr %s", first, es.stderr.String())
		}
		if err := os.WriteFile(filepath.Join(b.Dir, "rootfs/tmp/go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for {
			e, ok := es.next()
			if !ok {
				t.Fatalf("events ended without an oom event: %v; stderr %s", es.events, es.stderr.String())
			}
			if e["type"] == "oom" {
				break
			}
		}
		waitFile(t, filepath.Join(b.Dir, "rootfs/tmp/child"))
		code, _ := os.ReadFile(filepath.Join(b.Dir, "rootfs/tmp/child"))
		if strings.TrimSpace(string(code)) != "137" {
			t.Errorf("the allocating child exited %q, want 137 (SIGKILL)", code)
		}
		if st := state(t, id)["status"]; st != "running" {
			t.Errorf("status %v after a child was OOM-killed, want running", st)
		}
		mustRun(t, "kill", id, "KILL")
		if err := es.wait(); err != nil {
			t.Fatalf("events after the container was killed: %v; stderr %s", err, es.stderr.String())
		}
		mustRun(t, "delete", id)
	})
}

// eventStream is a running "crossrun events" with its output parsed.
type eventStream struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr strings.Builder
	lines  chan string
	events []map[string]any
}

// startEvents runs "crossrun events --interval 100ms id"; the first stats
// event shows it is watching.
func startEvents(t *testing.T, id string) *eventStream {
	t.Helper()
	es := &eventStream{t: t, cmd: crossrunCmd("events", "--interval", "100ms", id), lines: make(chan string, 1024)}
	stdout, err := es.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	es.cmd.Stderr = &es.stderr
	if err := es.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.cmd.Process.Kill() })
	go func() {
		defer close(es.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			es.lines <- sc.Text()
		}
	}()
	return es
}

// next returns the next event, or false once events has exited.
func (es *eventStream) next() (map[string]any, bool) {
	es.t.Helper()
	select {
	case l, ok := <-es.lines:
		if !ok {
			return nil, false
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			es.t.Fatalf("events printed a line that is not JSON: %q", l)
		}
		es.events = append(es.events, e)
		return e, true
	case <-time.After(30 * time.Second):
		es.t.Fatalf("no event within 30s; so far %v; stderr %s", es.events, es.stderr.String())
	}
	return nil, false
}

// wait reads the stream to its end and waits for events to exit.
func (es *eventStream) wait() error {
	for {
		if _, ok := es.next(); !ok {
			break
		}
	}
	return es.cmd.Wait()
}

// TestCgroupsPidsLimit: with pids.limit 10 a fork loop hits fork failures
// and the cgroup never holds more than 10 tasks.
func TestCgroupsPidsLimit(t *testing.T) {
	res := &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64p(10)}}
	b := cgBundle(t, res, "sh", "-c",
		`sh -c 'for i in $(seq 50); do sleep 100 & done' 2>/tmp/forkerr; echo done >/tmp/done; exec sleep 1000`)
	id := "cg-pids"
	cleanupContainer(t, id)
	mustRun(t, "run", "--detach", "--bundle", b.Dir, id)
	waitFile(t, filepath.Join(b.Dir, "rootfs/tmp/done"))
	errOut, err := os.ReadFile(filepath.Join(b.Dir, "rootfs/tmp/forkerr"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(errOut), "can't fork: Resource temporarily unavailable") {
		t.Fatalf("fork loop saw no fork failure (EAGAIN); stderr: %q", errOut)
	}
	dir, _ := cgDir(t, cgInitPid(t, id), "pids")
	if max := cgRead(t, dir, "pids.max"); max != "10" {
		t.Fatalf("pids.max = %s, want 10", max)
	}
	cur, err := strconv.Atoi(cgRead(t, dir, "pids.current"))
	if err != nil || cur < 2 || cur > 10 {
		t.Fatalf("pids.current = %d (%v), want 2..10", cur, err)
	}
	mustRun(t, "delete", "--force", id)
	assertNoCgroup(t, id, "delete --force")
}

// TestCgroupsUpdate changes the limits of a running container.
func TestCgroupsUpdate(t *testing.T) {
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64p(32 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64p(10)},
	}
	b := cgBundle(t, res, "sleep", "1000")
	id := "cg-update"
	cleanupContainer(t, id)
	mustRun(t, "run", "--detach", "--bundle", b.Dir, id)
	pid := cgInitPid(t, id)
	memDir, v2 := cgDir(t, pid, "memory")
	pidsDir, _ := cgDir(t, pid, "pids")
	memFile, softFile := "memory.limit_in_bytes", "memory.soft_limit_in_bytes"
	if v2 {
		memFile, softFile = "memory.max", "memory.low"
	}
	if got := cgRead(t, memDir, memFile); got != strconv.Itoa(32<<20) {
		t.Fatalf("%s before update = %s, want %d", memFile, got, 32<<20)
	}

	mustRun(t, "update", "--memory", "64M", "--pids-limit", "20", id)
	if got := cgRead(t, memDir, memFile); got != strconv.Itoa(64<<20) {
		t.Errorf("%s = %s after --memory 64M, want %d", memFile, got, 64<<20)
	}
	if got := cgRead(t, pidsDir, "pids.max"); got != "20" {
		t.Errorf("pids.max = %s after --pids-limit 20, want 20", got)
	}

	// Unit forms and --resources from standard input.
	mustRun(t, "update", "--memory-reservation", "1.5m", id)
	if got := cgRead(t, memDir, softFile); got != strconv.Itoa(3<<19) {
		t.Errorf("%s = %s after --memory-reservation 1.5m, want %d", softFile, got, 3<<19)
	}
	if r := crossrunIn(t, "", []byte(`{"pids": {"limit": 30}}`), "update", "-r", "-", id); r.Code != 0 {
		t.Fatalf("update -r -: exit %d: %s", r.Code, r.Stderr)
	}
	if got := cgRead(t, pidsDir, "pids.max"); got != "30" {
		t.Errorf("pids.max = %s after -r {pids.limit 30}, want 30", got)
	}
	if got := cgRead(t, memDir, memFile); got != strconv.Itoa(64<<20) {
		t.Errorf("%s = %s: an update of pids changed the memory limit", memFile, got)
	}

	// The new limits are saved with the container.
	data, err := os.ReadFile(filepath.Join(stateRoot, id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Config specs.Spec `json:"config"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	saved := st.Config.Linux.Resources
	if saved == nil || saved.Memory == nil || saved.Memory.Limit == nil || *saved.Memory.Limit != 64<<20 ||
		saved.Pids == nil || saved.Pids.Limit == nil || *saved.Pids.Limit != 30 || len(saved.Devices) == 0 {
		t.Errorf("saved resources not updated (or devices lost): %s", data)
	}

	// A swap limit alone is judged against the memory limit in force, and
	// a memory limit above the saved memory+swap limit is refused.
	mustRun(t, "update", "--memory-swap", "96M", id)
	if !v2 {
		if got := cgRead(t, memDir, "memory.memsw.limit_in_bytes"); got != strconv.Itoa(96<<20) {
			t.Errorf("memory.memsw.limit_in_bytes = %s after --memory-swap 96M, want %d", got, 96<<20)
		}
	} else if got := cgRead(t, memDir, "memory.swap.max"); got != strconv.Itoa(32<<20) {
		t.Errorf("memory.swap.max = %s after --memory-swap 96M with 64M memory, want %d", got, 32<<20)
	}

	for _, bad := range []struct {
		args []string
		msg  string
	}{
		{[]string{"update", "--memory", "12X", id}, "unknown unit"},
		{[]string{"update", id}, "nothing to update"},
		{[]string{"update", "--memory", "128M", id}, "above its memory+swap limit"},
		{[]string{"update", "--pids-limit", "5", "nosuch"}, "does not exist"},
	} {
		r := crossrun(t, bad.args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, bad.msg) {
			t.Errorf("crossrun %v: exit %d, stderr %q; want exit 1 and %q", bad.args, r.Code, r.Stderr, bad.msg)
		}
	}
}

// TestCgroupsPauseResume round-trips a container through the freezer.
func TestCgroupsPauseResume(t *testing.T) {
	b := cgBundle(t, nil, "sleep", "1000")
	id := "cg-pause"
	cleanupContainer(t, id)
	mustRun(t, "run", "--detach", "--bundle", b.Dir, id)
	dir, v2 := cgDir(t, cgInitPid(t, id), "freezer")
	frozen := func() bool {
		if v2 {
			return cgRead(t, dir, "cgroup.freeze") == "1"
		}
		return cgRead(t, dir, "freezer.state") == "FROZEN"
	}

	if r := crossrun(t, "resume", id); r.Code != 1 || !strings.Contains(r.Stderr, "container not paused") {
		t.Errorf("resume of a running container: exit %d, stderr %q; want \"container not paused\"", r.Code, r.Stderr)
	}
	mustRun(t, "pause", id)
	if st := state(t, id)["status"]; st != "paused" {
		t.Fatalf("status after pause = %v, want paused", st)
	}
	if !frozen() {
		t.Fatalf("freezer of %s is not FROZEN after pause", id)
	}
	if r := crossrun(t, "pause", id); r.Code != 1 || !strings.Contains(r.Stderr, "container not running") {
		t.Errorf("second pause: exit %d, stderr %q; want \"container not running\"", r.Code, r.Stderr)
	}
	mustRun(t, "resume", id)
	if st := state(t, id)["status"]; st != "running" {
		t.Fatalf("status after resume = %v, want running", st)
	}
	if frozen() {
		t.Fatalf("freezer of %s still frozen after resume", id)
	}
	// A paused container can be force-deleted.
	mustRun(t, "pause", id)
	mustRun(t, "delete", "--force", id)
	assertNoCgroup(t, id, "delete --force of a paused container")
	if r := crossrun(t, "pause", id); r.Code != 1 || !strings.Contains(r.Stderr, "does not exist") {
		t.Errorf("pause of a deleted container: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// TestCgroupsStatsAndPs checks "events --stats" and "ps".
func TestCgroupsStatsAndPs(t *testing.T) {
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64p(64 << 20)}, Pids: &specs.LinuxPids{Limit: i64p(50)}}
	b := cgBundle(t, res, "sleep", "1000")
	id := "cg-stats"
	cleanupContainer(t, id)
	mustRun(t, "run", "--detach", "--bundle", b.Dir, id)
	pid := cgInitPid(t, id)

	r := mustRun(t, "events", "--stats", id)
	var ev struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			Memory struct {
				Usage struct {
					Usage uint64 `json:"usage"`
					Limit uint64 `json:"limit"`
				} `json:"usage"`
			} `json:"memory"`
			Pids struct {
				Current uint64 `json:"current"`
				Limit   uint64 `json:"limit"`
			} `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &ev); err != nil {
		t.Fatalf("events --stats: %v: %q", err, r.Stdout)
	}
	if ev.Type != "stats" || ev.ID != id {
		t.Errorf("events --stats: type %q id %q", ev.Type, ev.ID)
	}
	if ev.Data.Memory.Usage.Usage == 0 || ev.Data.Memory.Usage.Limit != 64<<20 {
		t.Errorf("memory usage %d limit %d; want usage > 0, limit %d", ev.Data.Memory.Usage.Usage, ev.Data.Memory.Usage.Limit, 64<<20)
	}
	if ev.Data.Pids.Current < 1 || ev.Data.Pids.Limit != 50 {
		t.Errorf("pids current %d limit %d; want >= 1 and 50", ev.Data.Pids.Current, ev.Data.Pids.Limit)
	}

	r = mustRun(t, "ps", "--format", "json", id)
	var pids []int
	if err := json.Unmarshal([]byte(r.Stdout), &pids); err != nil {
		t.Fatalf("ps -f json: %v: %q", err, r.Stdout)
	}
	if len(pids) != 1 || pids[0] != pid {
		t.Errorf("ps -f json = %v, want [%d]", pids, pid)
	}
	if _, err := exec.LookPath("ps"); err == nil {
		r = mustRun(t, "ps", id, "-o", "pid,args")
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], "PID") ||
			strings.Fields(lines[1])[0] != strconv.Itoa(pid) || !strings.Contains(lines[1], "sleep 1000") {
			t.Errorf("ps %s -o pid,args:\n%s\nwant the header and one line for pid %d", id, r.Stdout, pid)
		}
	}
	if r := crossrun(t, "ps", "-f", "json", id, "-ef"); r.Code != 1 {
		t.Errorf("ps -f json with ps options: exit %d, want 1", r.Code)
	}

	mustRun(t, "kill", id, "KILL")
	waitStatus(t, id, "stopped")
	if r := crossrun(t, "events", "--stats", id); r.Code != 1 || !strings.Contains(r.Stderr, "is not running") {
		t.Errorf("events on a stopped container: exit %d, stderr %q", r.Code, r.Stderr)
	}
	mustRun(t, "delete", id)
	assertNoCgroup(t, id, "delete")
}

// TestCgroupsCleanup: no cgroup directory outlives the container.
func TestCgroupsCleanup(t *testing.T) {
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64p(64 << 20)}, Pids: &specs.LinuxPids{Limit: i64p(50)}}
	t.Run("run exits", func(t *testing.T) {
		b := cgBundle(t, res, "true")
		id := "cg-clean-run"
		cleanupContainer(t, id)
		mustRun(t, "run", "--bundle", b.Dir, id)
		assertNoCgroup(t, id, "run exited")
	})
	t.Run("failed create", func(t *testing.T) {
		b := cgBundle(t, res, "/no/such/binary")
		id := "cg-clean-failed"
		cleanupContainer(t, id)
		if r := crossrun(t, "create", "--bundle", b.Dir, id); r.Code == 0 {
			t.Fatalf("create of a missing binary succeeded")
		}
		assertNoCgroup(t, id, "a failed create")
	})
	t.Run("delete", func(t *testing.T) {
		b := cgBundle(t, res, "sleep", "1000")
		id := "cg-clean-delete"
		cleanupContainer(t, id)
		mustRun(t, "run", "--detach", "--bundle", b.Dir, id)
		if left := cgLeftovers(t, id); len(left) == 0 {
			t.Fatalf("running container %s has no cgroup directory to look for", id)
		}
		mustRun(t, "kill", id, "KILL")
		waitStatus(t, id, "stopped")
		mustRun(t, "delete", id)
		assertNoCgroup(t, id, "delete")
	})
}
