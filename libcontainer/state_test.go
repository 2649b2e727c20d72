package libcontainer

import (
	"os"
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	for _, id := range []string{"a", "my-container_1.2+x", strings.Repeat("x", 1024)} {
		if err := ValidateID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", "../x", "a/b", "a b", "x\n", strings.Repeat("x", 1025)} {
		if err := ValidateID(id); err == nil {
			t.Errorf("%q accepted", id)
		}
	}
}

func TestStateRoundTripAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	st := &State{ID: "c1", InitPid: 42, Bundle: "/b", Ready: true}
	if err := writeState(dir, st); err != nil {
		t.Fatal(err)
	}
	got, err := readState(dir)
	if err != nil || got.ID != "c1" || got.InitPid != 42 || !got.Ready {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	os.WriteFile(dir+"/"+stateFile, []byte(`{"id": "c1", "init_pro`), 0o600)
	if _, err := readState(dir); err == nil || !strings.Contains(err.Error(), "delete --force") {
		t.Fatalf("truncated state: %v", err)
	}
}

func TestProcessStartTimeIdentifiesSelf(t *testing.T) {
	a, err := processStartTime(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("start time of self: %d %v", a, err)
	}
	st := &State{InitPid: os.Getpid(), InitStartTime: a}
	if !st.initAlive() {
		t.Fatal("self not alive")
	}
	st.InitStartTime++
	if st.initAlive() {
		t.Fatal("a different start time must mean a different process")
	}
}
