//go:build !linux || !cgo

package timerslack

// raisedInC stands for the C constructor's value, absent here.
const raisedInC = Raised

// host: without cgo there is no constructor, and nothing was raised.
func host() uint64 { return 0 }
