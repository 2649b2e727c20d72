package main

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	ok := map[string]unix.Signal{
		"KILL": unix.SIGKILL, "SIGKILL": unix.SIGKILL, "kill": unix.SIGKILL, "9": unix.SIGKILL,
		"TERM": unix.SIGTERM, "SIGUSR1": unix.SIGUSR1, "RTMIN": 34, "SIGRTMIN+2": 36, "RTMAX": 64,
	}
	for in, want := range ok {
		got, err := parseSignal(in)
		if err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65", "-1", "BOGUS", "SIGRTMAX+1"} {
		if _, err := parseSignal(in); err == nil {
			t.Errorf("parseSignal(%q) accepted", in)
		}
	}
}
