package libcontainer

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
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

// TestWriteStateReplaces checks that a rewrite replaces state.json whole,
// leaves no temporary file behind (also over a stale one of the same pid),
// and that a reader running meanwhile only ever sees a complete state.
func TestWriteStateReplaces(t *testing.T) {
	dir := t.TempDir()
	stale := dir + "/.state-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(stale, []byte("left by a dead process"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeState(dir, &State{ID: "c1", InitPid: 1}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	bad := make(chan string, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if st, err := readState(dir); err != nil || st.ID != "c1" || st.InitPid == 0 {
				select {
				case bad <- fmt.Sprintf("%+v %v", st, err):
				default:
				}
				return
			}
		}
	}()
	for pid := 2; pid <= 300; pid++ {
		if err := writeState(dir, &State{ID: "c1", InitPid: pid, Bundle: strings.Repeat("b", pid)}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case m := <-bad:
		t.Fatalf("a reader saw a partial state: %s", m)
	default:
	}
	got, err := readState(dir)
	if err != nil || got.InitPid != 300 || len(got.Bundle) != 300 {
		t.Fatalf("last state: %+v %v", got, err)
	}
	names, _ := os.ReadDir(dir)
	if len(names) != 1 || names[0].Name() != stateFile {
		t.Fatalf("state directory holds %v, want only %s", names, stateFile)
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
