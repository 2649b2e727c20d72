package faults

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crossrun/crossrun/integration/harness"
)

// TestCorruptState damages the state.json of a created container in several
// ways and checks that "state" fails with a one-line message naming the
// file and the fix, "list" still lists the good containers and warns about
// the bad one, and "delete --force" removes the bad one: its state
// directory, its cgroups and its processes.
func TestCorruptState(t *testing.T) {
	harness.RequireRoot(t)
	good := "flt-cs-good"
	gb := harness.NewBundle(t, "sleep", "1000")
	forceDelete(t, good)
	mustRun(t, "create", "--bundle", gb.Dir, good)

	variants := []struct {
		name   string
		damage func(valid []byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"truncated", func(v []byte) []byte { return v[:len(v)/2] }},
		{"garbage", func([]byte) []byte { return []byte("\x00\x01\x02 not json at all {{{\xff") }},
		{"null", func([]byte) []byte { return []byte("null\n") }},
		{"wrong-types", func(v []byte) []byte {
			var m map[string]any
			if err := json.Unmarshal(v, &m); err != nil {
				t.Fatal(err)
			}
			m["init_process_pid"] = "one"
			m["created"] = 12
			m["config"] = []int{1, 2}
			out, _ := json.Marshal(m)
			return out
		}},
		{"other-id", func(v []byte) []byte {
			var m map[string]any
			if err := json.Unmarshal(v, &m); err != nil {
				t.Fatal(err)
			}
			m["id"] = "someone-else"
			out, _ := json.Marshal(m)
			return out
		}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			id := "flt-cs-" + v.name
			b := harness.NewBundle(t, "sleep", "1000")
			tg := target{id, b.Dir}
			forceDelete(t, id)
			mustRun(t, "create", "--bundle", b.Dir, id)
			file := filepath.Join(harness.StateRoot, id, "state.json")
			valid, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, v.damage(valid), 0o600); err != nil {
				t.Fatal(err)
			}

			r, err := run(harness.Bin, nil, "state", id)
			if err != nil {
				t.Fatal(err)
			}
			if r.code == 0 {
				t.Fatalf("state of a corrupt container succeeded: %s", r.stdout)
			}
			msg := oneLine(t, "state", r.stderr)
			if !strings.Contains(msg, file) || !strings.Contains(msg, "delete --force "+id) {
				t.Errorf("state's error %q should name %s and \"delete --force %s\"", msg, file, id)
			}

			for _, format := range []string{"table", "json"} {
				r, err := run(harness.Bin, nil, "list", "--format", format)
				if err != nil {
					t.Fatal(err)
				}
				if r.code != 0 {
					t.Fatalf("list --format %s with a corrupt container: exit %d: %s", format, r.code, r.stderr)
				}
				if !strings.Contains(r.stdout, good) {
					t.Errorf("list --format %s lost the good container: %s", format, r.stdout)
				}
				if strings.Contains(r.stdout, id) {
					t.Errorf("list --format %s shows the corrupt container: %s", format, r.stdout)
				}
				if format == "json" {
					var states []map[string]any
					if err := json.Unmarshal([]byte(r.stdout), &states); err != nil {
						t.Errorf("list --format json: %v: %s", err, r.stdout)
					}
				}
				warn := oneLine(t, "list", r.stderr)
				if !strings.Contains(warn, id) || !strings.Contains(warn, "state.json") {
					t.Errorf("list's warning %q should name %s and its state.json", warn, id)
				}
			}
			if st := harness.State(t, good); st["status"] != "created" {
				t.Errorf("good container: %v", st)
			}

			requireFound(t, []target{tg}, "state directory", "cgroup", "process")
			r = mustRun(t, "delete", "--force", id)
			t.Logf("delete --force: %s", strings.TrimSpace(r.stderr))
			requireClean(t, tg)
		})
	}
	mustRun(t, "delete", "--force", good)
	requireClean(t, target{good, gb.Dir})
}
