//go:build !linux || !cgo

package sigrelay

import (
	"os"

	"golang.org/x/sys/unix"
)

// direct says that Catch installs the C handler in this build: not here.
const direct = false

// catch leaves every signal to os/signal: without cgo there is no C handler.
func catch(_ chan<- os.Signal, want []unix.Signal) []unix.Signal { return want }
