package cgroups

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// Prepare on a v1 tree makes every directory, fills cpuset, moves nobody,
// and returns one tasks file per hierarchy.
func TestV1PrepareMovesNothing(t *testing.T) {
	noMountinfo(t)
	root := t.TempDir()
	for ctrl := range v1Files() {
		writeTree(t, filepath.Join(root, ctrl), map[string]string{"cgroup.procs": ""})
	}
	writeTree(t, filepath.Join(root, "cpuset"), map[string]string{"cpuset.cpus": "0-1\n", "cpuset.mems": "0\n"})
	dir := filepath.Join(root, "cpuset", "ctr")
	writeTree(t, dir, map[string]string{"cpuset.cpus": "", "cpuset.mems": ""})
	m, err := New("/ctr", "ctr", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if p.Dir != "" {
		t.Errorf("Dir = %q on a v1 tree, want none", p.Dir)
	}
	var want []string
	for ctrl, d := range m.Paths() {
		want = append(want, filepath.Join(d, "tasks"))
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v", ctrl, err)
		}
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			t.Errorf("%s: Prepare wrote cgroup.procs", ctrl)
		}
	}
	sort.Strings(want)
	got := append([]string(nil), p.Tasks...)
	sort.Strings(got)
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("Tasks = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Tasks[%d] = %q, want %q", i, got[i], want[i])
		}
	}
	if got := readTrim(t, filepath.Join(dir, "cpuset.cpus")); got != "0-1" {
		t.Errorf("cpuset.cpus = %q, want the parent's 0-1", got)
	}
}

// On a v2 tree the process is cloned into the directory: no tasks files.
func TestV2PrepareReturnsDir(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": ""})
	m := &v2Manager{root: root, dir: filepath.Join(root, "a", "ctr")}
	p, err := m.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if p.Dir != m.dir || len(p.Tasks) != 0 {
		t.Errorf("placement = %+v, want Dir %s and no tasks", p, m.dir)
	}
	if st, err := os.Stat(m.dir); err != nil || !st.IsDir() {
		t.Errorf("cgroup directory not made: %v", err)
	}
}

func TestJoinThreadWritesZero(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeTree(t, dir, map[string]string{"a": "", "b": ""})
	if err := JoinThread([]string{a, b}, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{a, b} {
		if got := readTrim(t, f); got != "0" {
			t.Errorf("%s = %q, want 0 (the calling thread)", f, got)
		}
	}
	err := JoinThread([]string{filepath.Join(dir, "missing", "tasks")}, false)
	if err == nil {
		t.Fatal("joining a missing cgroup succeeded")
	}
}
