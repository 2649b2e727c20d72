package libcontainer

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestReadStateOfRejectsWhatIsNotItsState(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "c1")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	good := &State{ID: "c1", InitPid: 7, Config: &specs.Spec{Process: &specs.Process{}}}
	if err := writeState(dir, good); err != nil {
		t.Fatal(err)
	}
	if st, err := readStateOf(dir, "c1"); err != nil || st.InitPid != 7 {
		t.Fatalf("valid state: %+v %v", st, err)
	}
	for name, data := range map[string]string{
		"empty":      "",
		"blank":      " \n",
		"null":       "null",
		"object":     "{}",
		"other id":   `{"id":"c2","config":{"process":{}}}`,
		"no config":  `{"id":"c1"}`,
		"garbage":    "\x00\x01{{",
		"truncated":  `{"id":"c1","init_process_pid":7,"conf`,
		"wrong type": `{"id":"c1","init_process_pid":"seven","config":{"process":{}}}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := readStateOf(dir, "c1")
		if !errors.Is(err, ErrCorruptState) {
			t.Errorf("%s: %v, want a corrupt-state error", name, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, filepath.Join(dir, stateFile)) || !strings.Contains(msg, `"crossrun delete --force c1"`) || strings.Contains(msg, "\n") {
			t.Errorf("%s: message %q should be one line naming the file and the fix", name, msg)
		}
	}
}

func TestSalvageState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c1")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	full, err := json.Marshal(&State{
		ID: "c1", InitPid: 42, InitStartTime: 99,
		CgroupPaths: map[string]string{
			"":        "/sys/fs/cgroup/unified/c1",
			"memory":  "/sys/fs/cgroup/memory/x/c1",
			"pids":    "/sys/fs/cgroup/pids",     // does not name the container
			"cpu":     "/tmp/c1",                 // outside the cgroup root
			"devices": "/sys/fs/cgroup/../../c1", // not clean
		},
		Config: &specs.Spec{Version: strings.Repeat("x", 500)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Cut inside the configuration: everything before it is readable.
	cut := full[:strings.Index(string(full), `"config"`)+20]
	for name, data := range map[string][]byte{"truncated": cut, "wrong type later": append(append([]byte{}, full[:len(full)-1]...), []byte(`,"ready":"no"}`)...)} {
		if err := os.WriteFile(filepath.Join(dir, stateFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		st := salvageState(dir, "c1")
		if st.ID != "c1" || st.InitPid != 42 || st.InitStartTime != 99 {
			t.Errorf("%s: pid %d start %d", name, st.InitPid, st.InitStartTime)
		}
		want := map[string]string{"": "/sys/fs/cgroup/unified/c1", "memory": "/sys/fs/cgroup/memory/x/c1"}
		if len(st.CgroupPaths) != len(want) || st.CgroupPaths[""] != want[""] || st.CgroupPaths["memory"] != want["memory"] {
			t.Errorf("%s: cgroup paths %v, want %v", name, st.CgroupPaths, want)
		}
	}
	for name, data := range map[string]string{
		"empty":         "",
		"garbage":       "\x00garbage",
		"no start time": `{"id":"c1","init_process_pid":42}`,
		"array":         `[1,2]`,
	} {
		if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if st := salvageState(dir, "c1"); st.InitPid != 0 || len(st.CgroupPaths) != 0 {
			t.Errorf("%s: salvaged pid %d cgroups %v from nothing trustworthy", name, st.InitPid, st.CgroupPaths)
		}
	}
}
