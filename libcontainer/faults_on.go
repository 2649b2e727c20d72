//go:build crossrun_faults

package libcontainer

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Fault injection, compiled only with the crossrun_faults build tag, for the
// tests in integration/faults. CROSSRUN_FAULT names a point of create;
// CROSSRUN_FAULT_MODE says what the process that reaches it does:
//
//	kill   (default) die at once: SIGKILL itself (init, which is the
//	       unkillable first process of its pid namespace, exits 137)
//	block  wait there until killed from outside
//	stop   stop itself (SIGSTOP) there; SIGCONT lets it go on
//
// In every mode it first writes "crossrun-fault: reached POINT" to stderr, so
// that a test knows the point was reached. Every CROSSRUN_FAULT* variable
// is passed on to init.

// faultPoints are the points create passes, in order: the parent's, then
// init's.
var faultPoints = []string{
	"after-mkdir",       // state directory made, not yet locked
	"after-state-dir",   // state directory made and locked, nothing in it
	"after-fifo",        // exec fifo made
	"after-state-early", // state.json with the planned cgroup paths saved, no cgroup made
	"after-clone",       // init forked (into the unified cgroup where it can be), told nothing
	"after-cgroup",      // every cgroup directory made, limits set
	"after-bootstrap",   // configuration sent to init, init's pid not saved yet
	"after-state-write", // state.json with init's pid saved; init sets up
	"after-ready",       // init ready, state.json marked ready, pid file not written

	"init-after-cgroup",     // init has its configuration and has joined its cgroups
	"init-after-namespaces", // namespaces joined and made, hostname set
	"init-after-mounts",     // every mount made under the rootfs, exec routed, before pivot_root
	"init-after-pivot",      // pivot_root done, masked and read-only paths in place
	"init-before-ready",     // process attributes set, ready not yet sent
	"init-before-fifo",      // ready sent, sync socket closed, exec fifo not yet opened
}

var (
	faultName = os.Getenv("CROSSRUN_FAULT")
	faultMode = os.Getenv("CROSSRUN_FAULT_MODE")
)

func init() {
	if faultName == "" {
		return
	}
	for _, p := range faultPoints {
		if p == faultName {
			return
		}
	}
	fmt.Fprintf(os.Stderr, "crossrun: CROSSRUN_FAULT=%q is not a fault point; known: %s\n", faultName, strings.Join(faultPoints, " "))
	os.Exit(2)
}

func faultPoint(name string) {
	if name != faultName {
		return
	}
	msg := "crossrun-fault: reached " + name + "\n"
	_, _ = unix.Write(2, []byte(msg))
	switch faultMode {
	case "block":
		for {
			_ = unix.Pause()
		}
	case "stop":
		_ = unix.Kill(os.Getpid(), unix.SIGSTOP)
		return
	}
	if os.Getpid() == 1 {
		// The first process of a pid namespace ignores its own SIGKILL.
		unix.Exit(137)
	}
	_ = unix.Kill(os.Getpid(), unix.SIGKILL)
	unix.Exit(137)
}

func faultEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CROSSRUN_FAULT") {
			env = append(env, kv)
		}
	}
	return env
}
