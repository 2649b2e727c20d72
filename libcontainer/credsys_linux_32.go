//go:build linux && (386 || arm)

package libcontainer

import "golang.org/x/sys/unix"

// On 386 and arm the plain calls take 16-bit ids; the *32 ones do not.
const (
	sysSetresuid = unix.SYS_SETRESUID32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetgroups = unix.SYS_SETGROUPS32
)
