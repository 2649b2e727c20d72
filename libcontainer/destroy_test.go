package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/libcontainer/cgroups"
)

// busyCgroup is a cgroup whose removal fails with EBUSY until busy reaches
// zero (never, when negative), with pids in it. Only the methods
// destroyCgroup calls are implemented.
type busyCgroup struct {
	cgroups.Manager
	busy        int
	pids        []int
	kills       int
	hierarchies int // v1: Destroy fails in this many
}

func (b *busyCgroup) Destroy() error {
	if b.busy == 0 {
		return nil
	}
	b.busy--
	err := fmt.Errorf("remove cgroup /sys/fs/cgroup/pids/x: %w", unix.EBUSY)
	if b.hierarchies > 1 {
		// A v1 manager joins one error per hierarchy.
		errs := []error{err}
		for i := 1; i < b.hierarchies; i++ {
			errs = append(errs, fmt.Errorf("remove cgroup /sys/fs/cgroup/h%d/x: %w", i, unix.EBUSY))
		}
		return errors.Join(errs...)
	}
	return err
}
func (b *busyCgroup) Pids() ([]int, error)          { return b.pids, nil }
func (b *busyCgroup) KillAll(sig unix.Signal) error { b.kills++; return nil }

// shortRemoveLimit makes destroyCgroup give up after 20 ms for the test.
func shortRemoveLimit(t *testing.T) {
	old := cgroupRemoveLimit
	cgroupRemoveLimit = 20 * time.Millisecond
	t.Cleanup(func() { cgroupRemoveLimit = old })
}

func TestDestroyCgroupRetries(t *testing.T) {
	m := &busyCgroup{busy: 3, pids: []int{os.Getpid()}}
	if err := destroyCgroup(m); err != nil {
		t.Fatal(err)
	}
	if m.kills != 3 {
		t.Errorf("%d kills for 3 busy removals, want 3", m.kills)
	}
}

// TestDestroyCgroupBusyNamesProcesses: a cgroup that stays busy is
// reported on one line with the processes still in it, by pid, command and
// state, or with the fact that none is.
func TestDestroyCgroupBusyNamesProcesses(t *testing.T) {
	shortRemoveLimit(t)
	self := os.Getpid()
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	comm := string(stat[strings.IndexByte(string(stat), '(')+1 : strings.LastIndexByte(string(stat), ')')])

	m := &busyCgroup{busy: -1, pids: []int{self, self, self, self, self, self, self}}
	err = destroyCgroup(m)
	if !errors.Is(err, unix.EBUSY) {
		t.Fatalf("error %v, want EBUSY kept", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"remove cgroup /sys/fs/cgroup/pids/x: device or resource busy",
		"7 processes are still in it",
		fmt.Sprintf("pid %d %q (", self, comm), // its main thread runs or sleeps
		"and 2 more",
		"run delete --force again once they have exited",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Count(msg, "pid "+strconv.Itoa(self)) != 5 {
		t.Errorf("message %q names the process %d times, want 5", msg, strings.Count(msg, "pid "+strconv.Itoa(self)))
	}
	if strings.Contains(msg, "uninterruptible") {
		t.Errorf("message %q explains state D, which no process is in", msg)
	}
	if strings.Contains(msg, "\n") || m.kills == 0 {
		t.Errorf("message %q on more than one line, or no kill (%d)", msg, m.kills)
	}

	// A process in uninterruptible sleep, which SIGKILL does not end at
	// once, is explained.
	defer func(f func(int) ([]byte, error)) { readProcStat = f }(readProcStat)
	readProcStat = func(pid int) ([]byte, error) { return []byte("4242 (cp) D 1 4242 4242 0 -1"), nil }
	m = &busyCgroup{busy: -1, pids: []int{4242}}
	msg = destroyCgroup(m).Error()
	if !strings.Contains(msg, `1 process is still in it`) || !strings.Contains(msg, `pid 4242 "cp" (D, uninterruptible sleep)`) ||
		!strings.Contains(msg, "dies only when what it waits for") || !strings.Contains(msg, "once it has exited") {
		t.Errorf("process in state D: %q", msg)
	}

	// Every v1 hierarchy busy: one line, naming the first.
	m = &busyCgroup{busy: -1, pids: []int{4242}, hierarchies: 11}
	err = destroyCgroup(m)
	msg = err.Error()
	if !errors.Is(err, unix.EBUSY) || strings.Contains(msg, "\n") ||
		!strings.HasPrefix(msg, "remove cgroup /sys/fs/cgroup/pids/x: device or resource busy (and 10 more cgroup directories): 1 process is still in it") {
		t.Errorf("11 busy hierarchies: %q", msg)
	}

	m = &busyCgroup{busy: -1}
	msg = destroyCgroup(m).Error()
	if !strings.Contains(msg, "no process is left in it") || m.kills != 0 {
		t.Errorf("empty busy cgroup: %q, %d kills", msg, m.kills)
	}
}

// TestDestroyKeepsStateOfBusyCgroup: a cgroup processes still hold keeps
// the state directory, so that "delete --force" can be run again as the
// error says; any other failure to remove the cgroup does not.
func TestDestroyKeepsStateOfBusyCgroup(t *testing.T) {
	shortRemoveLimit(t)
	for _, tc := range []struct {
		name      string
		m         cgroups.Manager
		wantErr   bool
		stateKept bool
	}{
		{"busy", &busyCgroup{busy: -1, pids: []int{os.Getpid()}}, true, true},
		{"busy for a moment", &busyCgroup{busy: 2}, false, false},
		{"other error", failingCgroup{err: unix.EACCES}, true, false},
		{"removed", &busyCgroup{}, false, false},
		{"no cgroup", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir() + "/c1"
			if err := os.Mkdir(dir, 0o711); err != nil {
				t.Fatal(err)
			}
			if err := writeState(dir, &State{ID: "c1"}); err != nil {
				t.Fatal(err)
			}
			c := &Container{dir: dir, state: &State{ID: "c1"}}
			err := c.destroyWith(tc.m)
			if (err != nil) != tc.wantErr {
				t.Errorf("error %v, want one: %v", err, tc.wantErr)
			}
			_, serr := os.Stat(dir + "/" + stateFile)
			if kept := serr == nil; kept != tc.stateKept {
				t.Errorf("state kept: %v, want %v", kept, tc.stateKept)
			}
		})
	}
}

type failingCgroup struct {
	cgroups.Manager
	err error
}

func (f failingCgroup) Destroy() error                { return fmt.Errorf("remove cgroup /x: %w", f.err) }
func (f failingCgroup) Pids() ([]int, error)          { return nil, nil }
func (f failingCgroup) KillAll(sig unix.Signal) error { return nil }
