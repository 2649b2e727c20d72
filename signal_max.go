//go:build !(linux && (mips || mipsle || mips64 || mips64le))

package main

import "golang.org/x/sys/unix"

// maxSignal is the highest signal number the kernel has (_NSIG): 64 on
// Linux except on MIPS.
const maxSignal = unix.Signal(64)
