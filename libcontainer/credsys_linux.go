//go:build linux && !386 && !arm

package libcontainer

import "golang.org/x/sys/unix"

// Syscall numbers of the 32-bit-id credential calls.
const (
	sysSetresuid = unix.SYS_SETRESUID
	sysSetresgid = unix.SYS_SETRESGID
	sysSetgroups = unix.SYS_SETGROUPS
)
