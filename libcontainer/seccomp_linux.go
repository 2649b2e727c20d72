package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/seccomp"
)

// installSeccomp loads the container's filter into init. A notify listener
// descriptor is handed to the parent, which passes it to the agent at
// linux.seccomp.listenerPath.
func installSeccomp(st *initState) error {
	if st.spec.Linux.Seccomp == nil {
		return nil
	}
	if err := prepareSeccomp(st); err != nil {
		return err
	}
	fd, err := st.seccomp.Load()
	if err != nil {
		return fmt.Errorf("install linux.seccomp filter: %w", err)
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	if err := st.sock.send(msgSeccompFd, nil, fd); err != nil {
		return fmt.Errorf("pass seccomp notify descriptor: %w", err)
	}
	if _, err := st.sock.expect(msgSeccompDone); err != nil {
		return err
	}
	return nil
}

// prepareSeccomp compiles the container's filter, once. It runs before the
// process's rlimits are set: compiling allocates, and a low RLIMIT_AS or
// RLIMIT_DATA would make the Go runtime fail to grow its heap.
func prepareSeccomp(st *initState) error {
	cfg := st.spec.Linux.Seccomp
	if cfg == nil || st.seccomp != nil {
		return nil
	}
	f, err := seccomp.Prepare(cfg)
	if err != nil {
		return fmt.Errorf("compile linux.seccomp filter: %w", err)
	}
	st.seccomp = f
	return nil
}

// handleSeccompFd runs in the parent: it gives init's notify descriptor to
// the seccomp agent.
func handleSeccompFd(s *specs.Spec, c *Container, fds []int) error {
	if len(fds) != 1 {
		return errors.New("init sent a seccomp notify message without a descriptor")
	}
	sc := s.Linux.Seccomp
	if sc == nil || sc.ListenerPath == "" {
		return errors.New("linux.seccomp uses SCMP_ACT_NOTIFY but has no listenerPath; set linux.seccomp.listenerPath to the agent's socket")
	}
	st := c.OCIState()
	st.Status = specs.StateCreating
	st.Pid = c.state.InitPid
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := seccomp.SendListenerFd(sc.ListenerPath, sc.ListenerMetadata, data, fds[0]); err != nil {
		return fmt.Errorf("send seccomp notify descriptor to %s: %w", sc.ListenerPath, err)
	}
	return nil
}
