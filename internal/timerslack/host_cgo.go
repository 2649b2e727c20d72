//go:build linux && cgo

package timerslack

// #include "timerslack.h"
import "C"

// raisedInC is the C constructor's value, for the test that keeps it equal
// to Raised.
const raisedInC = C.CROSSRUN_RAISED_TIMERSLACK

func host() uint64 { return uint64(C.crossrun_host_timerslack()) }
