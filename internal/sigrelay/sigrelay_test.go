package sigrelay

import (
	"os"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCatch catches a standard signal, a real-time one, one that ends a Go
// program by default and SIGPIPE, sends each to the test process, and
// expects each on the channel, in order; the fault signal must be left to
// the Go runtime. A signal the handler did not catch would end the test
// binary (SIGTERM) or never arrive.
func TestCatch(t *testing.T) {
	rt := unix.Signal(40)
	set := []unix.Signal{unix.SIGUSR1, rt, unix.SIGTERM, unix.SIGPIPE, unix.SIGSEGV}
	ch := make(chan os.Signal, 8)
	left := Catch(ch, set)
	if !direct {
		if !reflect.DeepEqual(left, set) {
			t.Fatalf("without cgo Catch left %v, want all of %v", left, set)
		}
		t.Skip("built without cgo: no C handler, os/signal relays everything")
	}
	if want := []unix.Signal{unix.SIGSEGV}; !reflect.DeepEqual(left, want) {
		t.Fatalf("Catch left %v, want %v", left, want)
	}
	for _, s := range set[:4] {
		if err := unix.Kill(os.Getpid(), s); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-ch:
			if got != s {
				t.Fatalf("sent %v, relayed %v", s, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%v was not relayed", s)
		}
	}
}

// TestCatchOtherChannel: a second channel gets nothing caught; everything
// is left to os/signal.
func TestCatchOtherChannel(t *testing.T) {
	first := make(chan os.Signal, 1)
	Catch(first, []unix.Signal{unix.SIGUSR2})
	second := make(chan os.Signal, 1)
	set := []unix.Signal{unix.SIGHUP}
	if left := Catch(second, set); !reflect.DeepEqual(left, set) {
		t.Fatalf("Catch on a second channel left %v, want %v", left, set)
	}
}
