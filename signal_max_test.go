package main

import (
	"os"
	"strings"
	"testing"
)

// TestMaxSignal compares maxSignal with the kernel's own count: the signal
// masks in /proc/self/status have one hex digit for every four signals
// (16 digits on most architectures, 32 on MIPS).
func TestMaxSignal(t *testing.T) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("skipped: no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if mask, ok := strings.CutPrefix(line, "SigBlk:\t"); ok {
			if got := len(mask) * 4; got != int(maxSignal) {
				t.Fatalf("the kernel's signal masks have %d bits, maxSignal is %d", got, maxSignal)
			}
			return
		}
	}
	t.Fatal("no SigBlk line in /proc/self/status")
}
