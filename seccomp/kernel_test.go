package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The kernel tests re-run the test binary as a helper process that loads
// a filter and reports what its syscalls return, so the test process
// itself never gets a filter. Loading a filter needs no_new_privs only,
// not root.
const (
	envHelper  = "CROSSRUN_SECCOMP_HELPER"
	envProfile = "CROSSRUN_SECCOMP_PROFILE"
	envCalls   = "CROSSRUN_SECCOMP_CALLS"
	envSocket  = "CROSSRUN_SECCOMP_SOCKET"
	envCount   = "CROSSRUN_SECCOMP_COUNT"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envHelper); mode != "" {
		if err := helperMain(mode); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// call is a raw syscall: number and six arguments.
type call [7]uint64

type result struct {
	R     uint64 `json:"r"`
	Errno int    `json:"errno"`
}

func doCall(c call) result {
	r, _, e := unix.Syscall6(uintptr(c[0]), uintptr(c[1]), uintptr(c[2]), uintptr(c[3]), uintptr(c[4]), uintptr(c[5]), uintptr(c[6]))
	return result{R: uint64(r), Errno: int(e)}
}

func helperMain(mode string) error {
	runtime.LockOSThread()
	// A filter that kills must not leave core files behind.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	var calls []call
	if s := os.Getenv(envCalls); s != "" {
		if err := json.Unmarshal([]byte(s), &calls); err != nil {
			return err
		}
	}
	var cfg *specs.LinuxSeccomp
	if s := os.Getenv(envProfile); s != "" {
		cfg = new(specs.LinuxSeccomp)
		if err := json.Unmarshal([]byte(s), cfg); err != nil {
			return err
		}
	}
	pid := os.Getpid() // getpid may be filtered from here on
	listener := -1
	if cfg != nil {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
		fd, err := Install(cfg)
		if err != nil {
			return err
		}
		listener = fd
	}
	switch mode {
	case "calls":
		var out []result
		for _, c := range calls {
			out = append(out, doCall(c))
		}
		return json.NewEncoder(os.Stdout).Encode(out)
	case "sigsys":
		// The Go runtime turns a SIGSYS it did not expect into a crash
		// report naming the signal and its si_code (1: SYS_SECCOMP).
		doCall(calls[0])
		fmt.Println("syscall returned")
		return nil
	case "killthread":
		tids, goAhead := make(chan int), make(chan struct{})
		go func() {
			runtime.LockOSThread() // never unlocked: the thread dies
			tids <- unix.Gettid()
			<-goAhead
			doCall(calls[0])
			tids <- -1
		}()
		tid := <-tids
		pidfd, err := unix.PidfdOpen(tid, unix.O_EXCL) // PIDFD_THREAD
		if err != nil {
			return fmt.Errorf("pidfd_open thread %d: %w", tid, err)
		}
		close(goAhead)
		for {
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, -1); err == nil {
				break
			} else if err != unix.EINTR {
				return err
			}
		}
		select {
		case <-tids:
			return errors.New("the syscall returned")
		default:
		}
		fmt.Println("thread gone")
		return nil
	case "notify":
		if listener < 0 {
			return errors.New("no listener fd")
		}
		state, _ := json.Marshal(specs.State{Version: specs.Version, ID: "ctr", Status: specs.StateCreating, Pid: pid, Bundle: "/bundle"})
		if err := SendListenerFd(os.Getenv(envSocket), "meta=1", state, listener); err != nil {
			return err
		}
		unix.Close(listener)
		return json.NewEncoder(os.Stdout).Encode([]result{doCall(calls[0])})
	case "bench":
		n, _ := strconv.Atoi(os.Getenv(envCount))
		start := time.Now()
		for i := 0; i < n; i++ {
			unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
		}
		fmt.Println(time.Since(start).Nanoseconds())
		return nil
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

func skipUnlessSeccomp(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("kernel tests use x86_64 syscall numbers; needs linux/amd64")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	b, _ := os.ReadFile("/proc/self/status")
	if !strings.Contains(string(b), "Seccomp_filters:") && !strings.Contains(string(b), "Seccomp:") {
		t.Skip("kernel without seccomp")
	}
}

// helper runs the test binary as a helper; it returns stdout and the exit
// status.
func helper(t testing.TB, mode string, cfg *specs.LinuxSeccomp, calls []call, env ...string) (string, *os.ProcessState) {
	out, _, st := helperFull(t, mode, cfg, calls, env...)
	return out, st
}

// helperFull is helper that also returns the helper's stderr.
func helperFull(t testing.TB, mode string, cfg *specs.LinuxSeccomp, calls []call, env ...string) (string, string, *os.ProcessState) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+mode)
	if cfg != nil {
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, envProfile+"="+string(b))
	}
	cb, _ := json.Marshal(calls)
	cmd.Env = append(cmd.Env, envCalls+"="+string(cb))
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run helper: %v", err)
	}
	if cmd.ProcessState.ExitCode() == 3 {
		t.Fatalf("helper %s failed: %s", mode, stderr.String())
	}
	return stdout.String(), stderr.String(), cmd.ProcessState
}

func helperResults(t *testing.T, cfg *specs.LinuxSeccomp, calls []call) []result {
	t.Helper()
	out, st := helper(t, "calls", cfg, calls)
	if !st.Success() {
		t.Fatalf("helper exited with %v", st)
	}
	var res []result
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != len(calls) {
		t.Fatalf("helper output %q: %v", out, err)
	}
	return res
}

func onGetpid(act specs.LinuxSeccompAction, errno *uint) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: act, ErrnoRet: errno}},
	}
}

var getpidCall = call{unix.SYS_GETPID}

func TestKernelActionsReturn(t *testing.T) {
	skipUnlessSeccomp(t)
	cases := []struct {
		name  string
		act   specs.LinuxSeccompAction
		errno *uint
		want  int // errno; 0 means the syscall ran
	}{
		{"errno custom", specs.ActErrno, uintp(uint(unix.EXDEV)), int(unix.EXDEV)},
		{"errno default EPERM", specs.ActErrno, nil, int(unix.EPERM)},
		{"allow", specs.ActAllow, nil, 0},
		{"log", specs.ActLog, nil, 0},
		{"trace without tracer", specs.ActTrace, uintp(5), int(unix.ENOSYS)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := helperResults(t, onGetpid(c.act, c.errno), []call{getpidCall})
			if res[0].Errno != c.want {
				t.Fatalf("getpid errno = %d, want %d", res[0].Errno, c.want)
			}
			if c.want == 0 && res[0].R == 0 {
				t.Fatalf("getpid returned 0")
			}
		})
	}
}

func TestKernelKillProcess(t *testing.T) {
	skipUnlessSeccomp(t)
	for _, act := range []specs.LinuxSeccompAction{specs.ActKillProcess} {
		out, st := helper(t, "calls", onGetpid(act, nil), []call{getpidCall})
		ws := st.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
			t.Fatalf("%s: helper ended with %v (output %q), want death by SIGSYS", act, st, out)
		}
	}
}

func TestKernelKillThread(t *testing.T) {
	skipUnlessSeccomp(t)
	for _, act := range []specs.LinuxSeccompAction{specs.ActKill, specs.ActKillThread} {
		out, st := helper(t, "killthread", onGetpid(act, nil), []call{getpidCall})
		if !st.Success() || strings.TrimSpace(out) != "thread gone" {
			t.Fatalf("%s: helper ended with %v, output %q; want the calling thread killed and the process alive", act, st, out)
		}
	}
}

func TestKernelTrap(t *testing.T) {
	skipUnlessSeccomp(t)
	out, errOut, st := helperFull(t, "sigsys", onGetpid(specs.ActTrap, nil), []call{getpidCall})
	if st.ExitCode() != 2 || out != "" || !strings.Contains(errOut, "SIGSYS: bad system call") || !strings.Contains(errOut, "sigcode=1") {
		t.Fatalf("helper ended with %v, output %q, stderr %.300q; want a SIGSYS with si_code SYS_SECCOMP", st, out, errOut)
	}
}

func TestKernelOperators(t *testing.T) {
	skipUnlessSeccomp(t)
	ops := []specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}
	const value = 1<<32 | 5
	args := []uint64{0, 5, 4, 6, 1 << 32, 1<<32 | 4, 1<<32 | 5, 1<<32 | 6, 2 << 32, 2<<32 | 5, 0xffffffff, ^uint64(0), 0x1234_0000_0000_5600, 0x1234_0001_0000_56ff}
	for i, op := range ops {
		t.Run(string(op), func(t *testing.T) {
			c := specs.LinuxSeccompArg{Index: 2, Value: value, Op: op}
			if op == specs.OpMaskedEqual {
				c.Value, c.ValueTwo = 0xffff_0000_0000_ff00, 0x1234_0000_0000_5600
			}
			errno := uint(100 + i)
			cfg := &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: &errno, Args: []specs.LinuxSeccompArg{c}}},
			}
			var calls []call
			for _, a := range args {
				calls = append(calls, call{unix.SYS_GETPID, 0, 0, a})
			}
			res := helperResults(t, cfg, calls)
			for j, a := range args {
				match := refCond(archTables["SCMP_ARCH_X86_64"], cond{index: 2, op: op, value: c.Value, v2: c.ValueTwo}, a)
				want := 0
				if match {
					want = int(errno)
				}
				if res[j].Errno != want {
					t.Errorf("arg %#x: errno %d, want %d", a, res[j].Errno, want)
				}
			}
		})
	}
}

func TestKernelDockerProfile(t *testing.T) {
	skipUnlessSeccomp(t)
	res := helperResults(t, loadDockerProfile(t), []call{
		getpidCall,
		{unix.SYS_ACCT},
		{1000},
		{400},
		{unix.SYS_PERSONALITY, 0xffffffff},
		{unix.SYS_PERSONALITY, 0x1_0000_0000},
	})
	want := []int{0, int(unix.EPERM), int(unix.ENOSYS), int(unix.EPERM), 0, int(unix.EPERM)}
	for i, w := range want {
		if res[i].Errno != w {
			t.Errorf("call %d: errno %d, want %d", i, res[i].Errno, w)
		}
	}
}

func TestKernelABIPidfdOpen(t *testing.T) {
	skipUnlessSeccomp(t)
	host, err := hostKernel()
	if err != nil {
		t.Fatal(err)
	}
	if host.Less(Version{5, 3}) {
		t.Skip("needs a 5.3 kernel for pidfd_open")
	}
	pidfdOpen := call{unix.SYS_PIDFD_OPEN, 1, 0} // pid 1 exists in any pid namespace
	for _, c := range []struct {
		ver  string
		want int
	}{{"5.2", int(unix.ENOSYS)}, {"5.3", 0}} {
		p, err := KernelABIProfile(c.ver, nil)
		if err != nil {
			t.Fatal(err)
		}
		res := helperResults(t, p, []call{pidfdOpen, getpidCall})
		if res[0].Errno != c.want {
			t.Errorf("kernel ABI %s: pidfd_open errno %d, want %d", c.ver, res[0].Errno, c.want)
		}
		if res[1].Errno != 0 {
			t.Errorf("kernel ABI %s: getpid errno %d", c.ver, res[1].Errno)
		}
	}
}

// seccompNotif and seccompNotifResp mirror the kernel's structs.
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

func TestKernelNotify(t *testing.T) {
	skipUnlessSeccomp(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type agentResult struct {
		msg specs.ContainerProcessState
		err error
	}
	done := make(chan agentResult, 1)
	go func() {
		var ar agentResult
		defer func() { done <- ar }()
		conn, err := ln.AcceptUnix()
		if err != nil {
			ar.err = err
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			ar.err = err
			return
		}
		if err := json.Unmarshal(buf[:n], &ar.msg); err != nil {
			ar.err = fmt.Errorf("agent message %q: %w", buf[:n], err)
			return
		}
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(cmsgs) != 1 {
			ar.err = fmt.Errorf("control messages: %v (%d)", err, len(cmsgs))
			return
		}
		fds, err := unix.ParseUnixRights(&cmsgs[0])
		if err != nil || len(fds) != 1 {
			ar.err = fmt.Errorf("rights: %v", err)
			return
		}
		fd := fds[0]
		defer unix.Close(fd)
		for {
			var req seccompNotif
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req))); e != 0 {
				ar.err = fmt.Errorf("NOTIF_RECV: %w", e)
				return
			}
			resp := seccompNotifResp{ID: req.ID}
			mine := req.Nr == unix.SYS_GETPID && req.Args[0] == 0xfeed
			if mine {
				resp.Val = 4242
			} else {
				resp.Flags = unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE
			}
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); e != 0 {
				ar.err = fmt.Errorf("NOTIF_SEND: %w", e)
				return
			}
			if mine {
				return
			}
		}
	}()

	cfg := onGetpid(specs.ActNotify, nil)
	cfg.ListenerPath = sock
	out, st := helper(t, "notify", cfg, []call{{unix.SYS_GETPID, 0xfeed}}, envSocket+"="+sock)
	ar := <-done
	if ar.err != nil {
		t.Fatal(ar.err)
	}
	if !st.Success() {
		t.Fatalf("helper ended with %v", st)
	}
	var res []result
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 {
		t.Fatalf("helper output %q: %v", out, err)
	}
	if res[0].Errno != 0 || res[0].R != 4242 {
		t.Errorf("notified getpid returned %d errno %d, want the agent's 4242", res[0].R, res[0].Errno)
	}
	m := ar.msg
	if m.Version != specs.Version || len(m.Fds) != 1 || m.Fds[0] != "seccompFd" || m.Metadata != "meta=1" ||
		m.State.ID != "ctr" || m.State.Bundle != "/bundle" || m.Pid != st.Pid() || m.State.Pid != st.Pid() {
		t.Errorf("agent got %+v", m)
	}
}

func TestInstallErrors(t *testing.T) {
	_, err := Install(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}})
	if err == nil || !strings.Contains(err.Error(), "unknown seccomp flag") {
		t.Fatalf("Install with a bogus flag: %v", err)
	}
}

func TestFeatures(t *testing.T) {
	skipUnlessSeccomp(t)
	f := Features()
	if len(f.Actions) != 9 || len(f.Operators) != 7 || len(f.Archs) != len(archTables) || len(f.KnownFlags) != 3 {
		t.Fatalf("features %+v", f)
	}
	// Linux 4.14+ knows SECCOMP_FILTER_FLAG_LOG.
	if len(f.SupportedFlags) == 0 || f.SupportedFlags[0] != string(specs.LinuxSeccompFlagLog) {
		t.Errorf("supported flags %v, want SECCOMP_FILTER_FLAG_LOG first", f.SupportedFlags)
	}
}

// BenchmarkGetpid measures a getpid loop in a helper process without a
// filter and under the Docker default profile.
func BenchmarkGetpid(b *testing.B) {
	skipUnlessSeccomp(b)
	for _, c := range []struct {
		name string
		cfg  *specs.LinuxSeccomp
	}{{"nofilter", nil}, {"docker-default", loadDockerProfile(b)}} {
		b.Run(c.name, func(b *testing.B) {
			out, st := helper(b, "bench", c.cfg, nil, envCount+"="+strconv.Itoa(b.N))
			if !st.Success() {
				b.Fatalf("helper ended with %v", st)
			}
			ns, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(ns/float64(b.N), "ns/getpid")
		})
	}
}
