//go:build linux && (mips || mipsle || mips64 || mips64le)

package main

import "golang.org/x/sys/unix"

// maxSignal is the highest signal number the kernel has (_NSIG): 128 on
// MIPS. Those the C library refuses to catch (128) go to os/signal.
const maxSignal = unix.Signal(128)
