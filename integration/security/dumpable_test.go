package security

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/integration/harness"
)

// seccompNotif and seccompNotifResp are the kernel's struct seccomp_notif
// and struct seccomp_notif_resp.
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// notifyAgent is a seccomp agent (linux.seccomp.listenerPath) that lets
// every notified system call go on, except that it can hold the first one
// of the next listener it receives: a pause point inside crossrun's setup
// of a process, right before it execs.
type notifyAgent struct {
	path    string
	mu      sync.Mutex
	arm     bool
	paused  chan uint32
	release chan struct{}
}

func newNotifyAgent(t *testing.T) *notifyAgent {
	t.Helper()
	a := &notifyAgent{
		path:    filepath.Join(t.TempDir(), "agent.sock"),
		paused:  make(chan uint32, 1),
		release: make(chan struct{}),
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: a.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			buf := make([]byte, 1<<16)
			oob := make([]byte, syscall.CmsgSpace(4))
			_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			conn.Close()
			if err != nil {
				continue
			}
			msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
			if len(msgs) != 1 {
				continue
			}
			fds, _ := syscall.ParseUnixRights(&msgs[0])
			if len(fds) != 1 {
				continue
			}
			a.mu.Lock()
			hold := a.arm
			a.arm = false
			a.mu.Unlock()
			go a.serve(fds[0], hold)
		}
	}()
	return a
}

func (a *notifyAgent) serve(fd int, hold bool) {
	defer unix.Close(fd)
	for {
		var n seccompNotif
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n))); e != 0 {
			if e == unix.EINTR || e == unix.ENOENT {
				continue
			}
			return
		}
		if hold {
			hold = false
			a.paused <- n.Pid
			<-a.release
		}
		resp := seccompNotifResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
	}
}

// holdNext makes the agent hold the first notification of the next
// listener it receives.
func (a *notifyAgent) holdNext() {
	a.mu.Lock()
	a.arm = true
	a.mu.Unlock()
}

// TestCVE2016_9962 attacks a process crossrun is setting up inside a
// running container (CVE-2016-9962: runc init could be ptraced from the
// container, and its descriptors reached, before it exec'd). The process
// exec'd with "crossrun exec" is held at its last step before execve, with
// the container's capabilities, uid and seccomp filter already applied: the
// container's filter sends close_range to a seccomp agent (this test),
// which holds the call. Meanwhile a process of the container, with the same
// uid and capabilities, tries to ptrace it, read its memory and
// environment, follow its descriptors and write to its stderr (the host's).
// Only its being non-dumpable stops that; the control runs the same attack
// against an ordinary process exec'd into the container, where it works.
func TestCVE2016_9962(t *testing.T) {
	agent := newNotifyAgent(t)
	a := newAttackBundle(t, "/attacker", "pause")
	a.Spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		ListenerPath:  agent.path,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"close_range"}, Action: specs.ActNotify}},
	}
	a.Save(t)
	id := "sec-9962"
	harness.Cleanup(t, id)
	harness.MustRun(t, "run", "-d", "--bundle", a.Dir, id)

	t.Run("control", func(t *testing.T) {
		harness.MustRun(t, "exec", "-d", id, "/attacker", "pause", "sec-control")
		harness.MustRun(t, "exec", id, "/attacker", "ptrace", "^/attacker pause sec-control", "/out/control", "/etc/passwd")
		r := waitReport(t, filepath.Join(a.Out, "control"))
		if r.first("ptrace-attach") != "ok" || r.first("fd-write") != "ok" || r.first("fd-2") == "" || !strings.HasPrefix(r.first("root-read"), "ok") {
			t.Fatalf("control: the attack does not reach an ordinary process of the container; it proves nothing")
		}
	})

	t.Run("exec in setup", func(t *testing.T) {
		agent.holdNext()
		target := startBg(t, "", "exec", id, "true")
		var hostPid uint32
		select {
		case hostPid = <-agent.paused:
		case <-time.After(harness.Timeout):
			t.Fatalf("the exec'd process never reached the held system call")
		}
		released := false
		release := func() {
			if !released {
				released = true
				close(agent.release)
			}
		}
		defer release()
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", hostPid))
		if !strings.HasPrefix(string(cmdline), "crossrun\x00init") {
			t.Fatalf("the held process is %q, not crossrun setting up the exec", cmdline)
		}
		harness.MustRun(t, "exec", id, "/attacker", "ptrace", "^crossrun init", "/out/target", "/etc/passwd")
		r := waitReport(t, filepath.Join(a.Out, "target"))
		if r.first("found") == "no" {
			t.Fatalf("the attacker did not find the process being set up")
		}
		for _, k := range []string{"ptrace-attach", "fd-write", "environ", "process-vm-readv"} {
			if r.first(k) == "ok" {
				t.Errorf("%s on the runtime process being set up: ok", k)
			}
		}
		for _, k := range []string{"root-read", "cwd-read"} {
			if strings.HasPrefix(r.first(k), "ok") {
				t.Errorf("%s through the runtime process being set up: %s", k, r.first(k))
			}
		}
		for fd := 0; fd < 8; fd++ {
			if v := r.first(fmt.Sprintf("fd-%d", fd)); v != "" {
				t.Errorf("the container followed descriptor %d of the runtime process: %s", fd, v)
			}
		}
		release()
		if code := target.wait(t); code != 0 {
			t.Errorf("the held exec failed (exit %d): %s", code, target.stderr())
		}
		if strings.Contains(target.stderr(), "attacker-was-here") {
			t.Errorf("the container wrote to crossrun's stderr through /proc/PID/fd/2")
		}
	})
}

// TestCVE2016_9962JoinedInit holds the init of a container that joins
// another container's pid namespace in a createRuntime hook, after its
// mounts and before pivot_root: its root is still the host's. A process of
// the first container, with the default capabilities, tries the same
// attacks on it. Both its being non-dumpable and its larger capability
// set stop them.
func TestCVE2016_9962JoinedInit(t *testing.T) {
	_, hostFile, secret := hostSecret(t)
	a := newAttackBundle(t, "/attacker", "pause")
	id := "sec-9962-host"
	harness.Cleanup(t, id)
	harness.MustRun(t, "run", "-d", "--bundle", a.Dir, id)
	initPid := int(harness.State(t, id)["pid"].(float64))

	dir := t.TempDir()
	hook := filepath.Join(dir, "hold.sh")
	script := "#!/bin/sh\ntouch " + dir + "/held\nwhile [ ! -e " + dir + "/go ]; do sleep 0.05; done\n"
	must(t, os.WriteFile(hook, []byte(script), 0o755))
	b := harness.NewBundle(t, "true")
	for i, ns := range b.Spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			b.Spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/pid", initPid)
		}
	}
	b.Spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: hook}}}
	b.Save(t)
	jid := "sec-9962-joined"
	harness.Cleanup(t, jid)
	create := startBg(t, "/", "create", "--bundle", b.Dir, jid)
	waitFile(t, filepath.Join(dir, "held"))
	harness.MustRun(t, "exec", id, "/attacker", "ptrace", "^crossrun init", "/out/joined", hostFile)
	must(t, os.WriteFile(filepath.Join(dir, "go"), nil, 0o644))
	r := waitReport(t, filepath.Join(a.Out, "joined"))
	if code := create.wait(t); code != 0 {
		t.Errorf("the held create failed (exit %d): %s", code, create.stderr())
	}
	if r.first("found") == "no" {
		t.Fatalf("the attacker did not find the joining init")
	}
	for _, k := range []string{"ptrace-attach", "fd-write", "environ", "process-vm-readv"} {
		if r.first(k) == "ok" {
			t.Errorf("%s on the joining init: ok", k)
		}
	}
	for _, k := range []string{"root-read", "cwd-read"} {
		if strings.HasPrefix(r.first(k), "ok") || strings.Contains(r.first(k), secret) {
			t.Errorf("%s through the joining init: %s", k, r.first(k))
		}
	}
}

// TestCVE2016_9962Ptrace gives the container CAP_SYS_PTRACE, which lets it
// past the non-dumpable flag, and races for /proc/N/root of the next pids
// of its pid namespace while "crossrun exec" runs processes in it: a
// process of crossrun seen there before it has joined the container's mount
// namespace would show the host's root directory, and the container would
// read a host file through it. The file exists only on the host.
func TestCVE2016_9962Ptrace(t *testing.T) {
	_, hostFile, secret := hostSecret(t)
	a := newAttackBundle(t, "/attacker", "rootrace", "/out/report", "/out/stop", hostFile)
	addCaps(a.Spec.Process, "CAP_SYS_PTRACE")
	a.Save(t)
	id := "sec-9962-ptrace"
	harness.Cleanup(t, id)
	harness.MustRun(t, "run", "-d", "--bundle", a.Dir, id)
	for i := 0; i < 100; i++ {
		harness.MustRun(t, "exec", id, "true")
	}
	must(t, os.WriteFile(filepath.Join(a.Out, "stop"), nil, 0o644))
	r := waitReport(t, filepath.Join(a.Out, "report"))
	if r.first("attempts") == "" || r.first("attempts") == "0" {
		t.Fatalf("the attacker made no attempt")
	}
	if r.first("hits") != "0" || strings.Contains(strings.Join(r["read"], " "), secret) {
		t.Fatalf("the container read a host file through /proc/PID/root of a crossrun process (%s times): %v", r.first("hits"), r["read"])
	}
}
