package libcontainer

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/spec"
)

var (
	lastCapOnce sync.Once
	lastCapNum  int
)

// lastCap is the highest capability number the running kernel knows. It
// is asked of the kernel, which refuses PR_CAPBSET_READ past it, and not
// read from /proc/sys/kernel/cap_last_cap, which in an exec'd process is
// the container's procfs (see dropBoundingSet). The answer is kept: the
// first call comes from dropBoundingSet, before any seccomp filter that
// could deny prctl.
func lastCap() int {
	lastCapOnce.Do(func() {
		lastCapNum = -1
		for i := 0; i < 64; i++ {
			if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(i), 0, 0, 0); errors.Is(err, unix.EINVAL) {
				break
			}
			lastCapNum = i
		}
	})
	return lastCapNum
}

// capMask is a capability set as the kernel takes it from capset(2):
// capability n is bit n%32 of word n/32.
type capMask [2]uint32

// capMaskOf turns capability names into a set. Names the kernel does not
// know (above lastCap) are left out, so are names crossrun does not know.
func capMaskOf(names []string) capMask {
	var m capMask
	last := lastCap()
	for _, name := range names {
		c, ok := spec.CapabilityNames[strings.ToUpper(name)]
		if !ok {
			logrus.Debugf("capability %s is not known to crossrun; ignoring it", name)
			continue
		}
		if c > last {
			logrus.Debugf("capability %s is not known to this kernel; ignoring it", name)
			continue
		}
		m[c/32] |= 1 << (c % 32)
	}
	return m
}

func (m capMask) has(c int) bool { return m[c/32]&(1<<(c%32)) != 0 }

// capName is the CAP_ name of capability number c, for messages.
func capName(c int) string {
	for name, n := range spec.CapabilityNames {
		if n == c {
			return name
		}
	}
	return fmt.Sprintf("capability %d", c)
}

// capsetThread sets the effective, permitted and inheritable sets of the
// calling thread.
func capsetThread(eff, prm, inh capMask) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := range data {
		data[i] = unix.CapUserData{Effective: eff[i], Permitted: prm[i], Inheritable: inh[i]}
	}
	return unix.Capset(&hdr, &data[0])
}

// setAmbient makes the ambient set of the calling thread amb. The kernel
// raises a capability only if it is both permitted and inheritable; a
// refusal leaves that capability out and is logged, not returned, and a
// kernel without ambient capabilities (before 4.3) is not an error either.
func setAmbient(amb capMask) {
	err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	if errors.Is(err, unix.EINVAL) {
		return
	}
	if err != nil {
		logrus.Debugf("set process.capabilities.ambient: clear: %v", err)
	}
	for c := 0; c <= lastCap(); c++ {
		if !amb.has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			logrus.Warnf("process.capabilities.ambient: %s not raised (%v); the kernel raises only a capability that is also in permitted and inheritable", capName(c), err)
		}
	}
}
