//go:build linux && cgo

package timerslack

import "testing"

func TestRaisedMatchesC(t *testing.T) {
	if raisedInC != Raised {
		t.Fatalf("timerslack.h raises the slack to %d ns, timerslack.go says %d", raisedInC, Raised)
	}
}
