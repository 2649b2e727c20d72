package faults

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crossrun/crossrun/integration/harness"
)

// target is a container whose traces the leftover check looks for.
type target struct {
	id     string
	bundle string
}

// findLeftovers lists what is left of the targets on the host:
//   - their state directories under harness.StateRoot;
//   - cgroup directories named by their ids, in every v1 hierarchy and the
//     unified one;
//   - mounts (in this mount namespace) that mention a bundle or an id;
//   - processes whose cgroup is one of theirs, whose cwd or root is in a
//     bundle, or whose environment carries the id as CROSSRUN_FAULT_TAG
//     (create and init of the fault-injection build);
//   - zombies whose parent is this test.
func findLeftovers(targets []target) []string {
	var found []string
	ids := map[string]bool{}
	for _, tg := range targets {
		ids[tg.id] = true
		if _, err := os.Lstat(filepath.Join(harness.StateRoot, tg.id)); err == nil {
			found = append(found, "state directory "+filepath.Join(harness.StateRoot, tg.id))
		}
	}
	for _, dir := range cgroupLeftovers(ids) {
		found = append(found, "cgroup "+dir)
	}
	found = append(found, mountLeftovers(targets)...)
	found = append(found, processLeftovers(targets, ids)...)
	return found
}

// cgroupMounts lists the mount points of the cgroup hierarchies.
func cgroupMounts() []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var mnts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(f) || len(f) < 5 {
			continue
		}
		if fstype := f[sep+1]; fstype == "cgroup" || fstype == "cgroup2" {
			mnts = append(mnts, unescapeMount(f[4]))
		}
	}
	return mnts
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func cgroupLeftovers(ids map[string]bool) []string {
	var found []string
	for _, mnt := range cgroupMounts() {
		_ = filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && p != mnt && ids[d.Name()] {
				found = append(found, p)
			}
			return nil
		})
	}
	return found
}

// mountLeftovers reports mountinfo lines that mention a bundle, or an id as
// a path component.
func mountLeftovers(targets []target) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var found []string
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		l := unescapeMount(line)
		for _, tg := range targets {
			if strings.Contains(l, tg.bundle) || strings.Contains(l, "/"+tg.id+"/") || strings.Contains(l, "/"+tg.id+" ") {
				found = append(found, "mount "+line)
				break
			}
		}
	}
	return found
}

type procInfo struct {
	pid, ppid int
	comm      string
	state     string
}

func readProc(pid int) (procInfo, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	s := string(data)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return procInfo{}, false
	}
	f := strings.Fields(s[j+1:])
	if len(f) < 2 {
		return procInfo{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return procInfo{pid: pid, ppid: ppid, comm: s[i+1 : j], state: f[0]}, true
}

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func processLeftovers(targets []target, ids map[string]bool) []string {
	var found []string
	self := os.Getpid()
	for _, pid := range allPids() {
		if pid == self {
			continue
		}
		info, ok := readProc(pid)
		if !ok {
			continue
		}
		if why := processWhy(pid, targets, ids); why != "" {
			found = append(found, fmt.Sprintf("process %d (%s, state %s): %s", pid, info.comm, info.state, why))
			continue
		}
		if info.state == "Z" && info.ppid == self {
			found = append(found, fmt.Sprintf("zombie %d (%s), a child of the test", pid, info.comm))
		}
	}
	return found
}

// processWhy says why pid belongs to one of the targets, or "".
func processWhy(pid int, targets []target, ids map[string]bool) string {
	base := "/proc/" + strconv.Itoa(pid)
	if data, err := os.ReadFile(base + "/cgroup"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			for _, comp := range strings.Split(parts[2], "/") {
				if ids[comp] {
					return "in cgroup " + parts[2]
				}
			}
		}
	}
	for _, link := range []string{"cwd", "root"} {
		if dest, err := os.Readlink(base + "/" + link); err == nil {
			for _, tg := range targets {
				if dest == tg.bundle || strings.HasPrefix(dest, tg.bundle+"/") {
					return link + " " + dest
				}
			}
		}
	}
	if env, err := os.ReadFile(base + "/environ"); err == nil {
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("CROSSRUN_FAULT_TAG=")); ok && ids[string(v)] {
				return "CROSSRUN_FAULT_TAG=" + string(v) + " in its environment"
			}
		}
	}
	return ""
}

// requireClean fails the test if anything of the targets is left. A process
// that is still exiting (it was killed, and leaves its cgroup a moment
// later) is given a few seconds.
func requireClean(t *testing.T, targets ...target) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		found := findLeftovers(targets)
		if len(found) == 0 {
			return
		}
		if !onlyExiting(found) || time.Now().After(deadline) {
			sort.Strings(found)
			t.Errorf("left behind:\n  %s", strings.Join(found, "\n  "))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// onlyExiting reports whether every finding is a process in state X or Z
// or one already gone (it exits, and is reaped, on its own).
func onlyExiting(found []string) bool {
	for _, f := range found {
		if !strings.HasPrefix(f, "process ") {
			return false
		}
		var pid int
		fmt.Sscanf(f, "process %d", &pid)
		if info, ok := readProc(pid); ok && info.state != "Z" && info.state != "X" {
			return false
		}
	}
	return true
}

// requireFound fails the test unless the check finds each kind of
// leftover named in kinds ("state directory", "cgroup", "process", "mount",
// "zombie") for the targets: proof that it would see a leak.
func requireFound(t *testing.T, tg []target, kinds ...string) {
	t.Helper()
	found := findLeftovers(tg)
	for _, k := range kinds {
		ok := false
		for _, f := range found {
			if strings.HasPrefix(f, k+" ") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the leftover check found no %s of %v while it exists; found: %v", k, tg, found)
		}
	}
}
