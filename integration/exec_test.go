package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// startLongRunning runs b detached (its process sleeps) and returns the
// host pid of its init.
func startLongRunning(t *testing.T, b *bundle, id string) int {
	t.Helper()
	cleanupContainer(t, id)
	mustRun(t, "run", "-d", "--bundle", b.Dir, id)
	st := state(t, id)
	if st["status"] != "running" {
		t.Fatalf("container %s: status %v, want running", id, st["status"])
	}
	pid, ok := st["pid"].(float64)
	if !ok || pid <= 0 {
		t.Fatalf("container %s: no pid in state %v", id, st)
	}
	return int(pid)
}

func hostNamespaces(t *testing.T, pid int, names []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, n))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = link
	}
	return out
}

// nsReport is a shell line that prints "name link" for each namespace of
// the shell itself.
func nsReport(names []string) string {
	return "for n in " + strings.Join(names, " ") + "; do echo $n $(readlink /proc/self/ns/$n); done"
}

func parseNsReport(out string) map[string]string {
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			got[f[0]] = f[1]
		}
	}
	return got
}

func specNamespaceNames(s *specs.Spec) []string {
	procName := map[specs.LinuxNamespaceType]string{
		specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
		specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
		specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
	}
	var names []string
	for _, ns := range s.Linux.Namespaces {
		names = append(names, procName[ns.Type])
	}
	return names
}

func TestExecJoinsNamespaces(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.Spec.Hostname = "exec-ns"
	hasCgroupNS := false
	for _, ns := range b.Spec.Linux.Namespaces {
		if ns.Type == specs.CgroupNamespace {
			hasCgroupNS = true
		}
	}
	if !hasCgroupNS {
		b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	b.Save(t)
	id := "exec-ns"
	initPid := startLongRunning(t, b, id)
	names := specNamespaceNames(b.Spec)
	want := hostNamespaces(t, initPid, names)
	self := hostNamespaces(t, os.Getpid(), names)

	r := mustRun(t, "exec", id, "sh", "-c", "hostname; "+nsReport(names)+"; echo pid1 $(cat /proc/1/comm)")
	lines := strings.SplitN(r.Stdout, "\n", 2)
	if lines[0] != "exec-ns" {
		t.Errorf("hostname in exec: %q, want exec-ns", lines[0])
	}
	got := parseNsReport(lines[1])
	for _, n := range names {
		if got[n] != want[n] {
			t.Errorf("%s namespace in exec: %q, want the container's %q", n, got[n], want[n])
		}
		if got[n] == self[n] {
			t.Errorf("%s namespace in exec is the host's (%s)", n, got[n])
		}
	}
	if !strings.Contains(r.Stdout, "pid1 sleep") {
		t.Errorf("exec does not see the container's pid 1: %q", r.Stdout)
	}
}

func TestExecExitCodes(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	id := "exec-codes"
	startLongRunning(t, b, id)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"success", []string{"true"}, 0, ""},
		{"exit 7", []string{"sh", "-c", "exit 7"}, 7, ""},
		{"killed by SIGKILL", []string{"sh", "-c", "kill -9 $$"}, 137, ""},
		{"not found in PATH", []string{"no-such-program"}, 127, `executable "no-such-program" not found`},
		{"absolute path missing", []string{"/bin/no-such-program"}, 127, "no such file or directory"},
		{"not executable", []string{"/etc/passwd"}, 126, "permission denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := crossrun(t, append([]string{"exec", id}, tc.args...)...)
			if r.Code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", r.Code, tc.code, r.Stderr)
			}
			if tc.stderr != "" {
				if !strings.Contains(r.Stderr, tc.stderr) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
					t.Errorf("stderr %q: want one line containing %q", r.Stderr, tc.stderr)
				}
			}
		})
	}
	// The container is unharmed by all that.
	if st := state(t, id); st["status"] != "running" {
		t.Fatalf("container after execs: %v", st["status"])
	}
}

func TestExecProcessFlags(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.Spec.Process.Env = append(b.Spec.Process.Env, "FROMCONFIG=1", "OVERRIDE=old")
	b.Save(t)
	id := "exec-flags"
	startLongRunning(t, b, id)

	r := mustRun(t, "exec", "--env", "FOO=bar", "--env", "OVERRIDE=new", "--cwd", "/tmp", "--user", "1000:1001", "-g", "2000",
		id, "sh", "-c", `echo "$FOO $FROMCONFIG $OVERRIDE"; pwd; id -u; id -g; id -G; grep NoNewPrivs /proc/self/status`)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 6 {
		t.Fatalf("output %q", r.Stdout)
	}
	want := []string{"bar 1 new", "/tmp", "1000", "1001"}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d: %q, want %q", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[4], "2000") {
		t.Errorf("groups %q lack 2000", lines[4])
	}
	// The default spec sets noNewPrivileges.
	if b.Spec.Process.NoNewPrivileges && !strings.HasSuffix(lines[5], "1") {
		t.Errorf("NoNewPrivs line %q, want 1 (from the container's config)", lines[5])
	}

	// Capabilities: the container's set, and --cap adds one.
	r = mustRun(t, "exec", id, "grep", "CapEff", "/proc/self/status")
	base := capMask(t, r.Stdout)
	r = mustRun(t, "exec", "--cap", "CAP_SYS_ADMIN", id, "grep", "CapEff", "/proc/self/status")
	added := capMask(t, r.Stdout)
	const sysAdmin = 1 << 21
	if base&sysAdmin != 0 {
		t.Fatalf("default container caps already include CAP_SYS_ADMIN: %x", base)
	}
	if added != base|sysAdmin {
		t.Errorf("--cap CAP_SYS_ADMIN: CapEff %x, want %x", added, base|sysAdmin)
	}
}

func capMask(t *testing.T, line string) uint64 {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 2 {
		t.Fatalf("cap line %q", line)
	}
	v, err := strconv.ParseUint(f[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestExecProcessJSON(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	id := "exec-json"
	startLongRunning(t, b, id)
	p := specs.Process{
		Args: []string{"sh", "-c", `echo "$GREETING"; pwd; id -u; exit 3`},
		Env:  []string{"PATH=/bin:/usr/bin", "GREETING=hello from json"},
		Cwd:  "/etc",
		User: specs.User{UID: 65534, GID: 65534},
	}
	data, _ := json.Marshal(p)
	path := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := crossrun(t, "exec", "--process", path, id)
	if r.Code != 3 {
		t.Fatalf("exit %d, want 3; stderr %s", r.Code, r.Stderr)
	}
	if want := "hello from json\n/etc\n65534\n"; r.Stdout != want {
		t.Errorf("output %q, want %q", r.Stdout, want)
	}
}

func TestExecDetachPidFileCgroup(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	id := "exec-detach"
	initPid := startLongRunning(t, b, id)
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r := mustRun(t, "exec", "-d", "--pid-file", pidFile, id, "sleep", "999")
	if r.Stdout != "" || r.Stderr != "" {
		t.Errorf("exec -d printed stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatalf("pid file %q: %v", data, err)
	}
	defer func() {
		if proc, err := os.FindProcess(pid); err == nil {
			proc.Kill()
		}
	}()
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(string(cmdline), "\x00", " "); got != "sleep 999 " {
		t.Errorf("pid file names %q, want the exec'd sleep", got)
	}
	initCg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", initPid))
	if err != nil {
		t.Fatal(err)
	}
	execCg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	if string(initCg) != string(execCg) {
		t.Errorf("exec'd process cgroups:\n%s\nwant the container's:\n%s", execCg, initCg)
	}
	// The container's processes, as ps (if any) or the cgroup sees them,
	// include it: kill --all reaches it.
	names := specNamespaceNames(b.Spec)
	if got, want := hostNamespaces(t, pid, names), hostNamespaces(t, initPid, names); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("exec'd namespaces %v, want %v", got, want)
	}
	// Non-dumpable flag is reset by exec; the process is the container's
	// sleep, not crossrun: its exe is busybox in the rootfs.
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(exe, "/bin/busybox") {
		t.Errorf("exe of the exec'd process: %q", exe)
	}
}

func TestExecUserNamespace(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.Spec.Root.Readonly = false
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	b.Spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	chownTree(t, filepath.Join(b.Dir, "rootfs"), 100000)
	os.Chmod(b.Dir, 0o755)
	os.Chmod(filepath.Dir(b.Dir), 0o755)
	b.Save(t)
	id := "exec-userns"
	initPid := startLongRunning(t, b, id)
	names := specNamespaceNames(b.Spec)
	want := hostNamespaces(t, initPid, names)

	r := mustRun(t, "exec", id, "sh", "-c", "cat /proc/self/uid_map; id -u; "+nsReport(names))
	lines := strings.SplitN(r.Stdout, "\n", 3)
	if len(lines) < 3 {
		t.Fatalf("output %q", r.Stdout)
	}
	if f := strings.Fields(lines[0]); len(f) != 3 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" {
		t.Errorf("uid_map in exec: %q", lines[0])
	}
	if lines[1] != "0" {
		t.Errorf("id -u in exec: %q, want 0", lines[1])
	}
	got := parseNsReport(lines[2])
	for _, n := range names {
		if got[n] != want[n] {
			t.Errorf("%s namespace in exec: %q, want %q", n, got[n], want[n])
		}
	}

	// As a non-root user of the namespace, with a file it creates owned by
	// the mapped host uid.
	r = mustRun(t, "exec", "-u", "1000:1000", "--cwd", "/tmp", id, "sh", "-c", "touch f && stat -c %u f")
	if strings.TrimSpace(r.Stdout) != "1000" {
		t.Errorf("owner inside: %q", r.Stdout)
	}
	st, err := os.Stat(filepath.Join(b.Dir, "rootfs/tmp/f"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := statUID(st); uid != 101000 {
		t.Errorf("owner on the host: %d, want 101000", uid)
	}
}

func TestExecTerminal(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	id := "exec-tty"
	startLongRunning(t, b, id)
	r := crossrunIn(t, "", []byte{}, "exec", "-t", id, "sh", "-c", "tty; [ -t 0 ] && echo stdin-is-tty; exit 5")
	if r.Code != 5 {
		t.Fatalf("exit %d, want 5; stderr %s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "/dev/pts/") || !strings.Contains(r.Stdout, "stdin-is-tty") {
		t.Errorf("output %q: want a /dev/pts terminal on stdio", r.Stdout)
	}
}

func TestExecStoppedContainer(t *testing.T) {
	b := newBundle(t, "true")
	id := "exec-stopped"
	cleanupContainer(t, id)
	mustRun(t, "run", "-d", "--bundle", b.Dir, id)
	waitStatus(t, id, "stopped")
	r := crossrun(t, "exec", id, "true")
	if r.Code == 0 {
		t.Fatal("exec in a stopped container succeeded")
	}
	if !strings.Contains(r.Stderr, "cannot exec in a stopped container") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Errorf("stderr %q", r.Stderr)
	}

	r = crossrun(t, "exec", "no-such-container", "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "does not exist") {
		t.Errorf("exec in a missing container: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

func statUID(st os.FileInfo) uint32 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Uid
	}
	return ^uint32(0)
}

func TestExecPausedContainer(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	id := "exec-paused"
	startLongRunning(t, b, id)
	mustRun(t, "pause", id)
	r := crossrun(t, "exec", id, "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "cannot exec in a paused container") || !strings.Contains(r.Stderr, "resume it first") {
		t.Errorf("exec in a paused container: exit %d, stderr %q", r.Code, r.Stderr)
	}
	mustRun(t, "resume", id)
	mustRun(t, "exec", id, "true")
}

func TestExecSeccompAndRlimits(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{
			Names:    []string{"mkdir", "mkdirat"},
			Action:   specs.ActErrno,
			ErrnoRet: func() *uint { v := uint(1); return &v }(),
		}},
	}
	b.Spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 123, Hard: 456}}
	b.Save(t)
	id := "exec-seccomp"
	startLongRunning(t, b, id)
	r := crossrun(t, "exec", id, "mkdir", "/tmp/denied")
	if r.Code == 0 || !strings.Contains(r.Stderr, "Operation not permitted") {
		t.Errorf("mkdir under the container's seccomp filter: exit %d, stderr %q", r.Code, r.Stderr)
	}
	r = mustRun(t, "exec", id, "sh", "-c", "ulimit -n; ulimit -Hn")
	if r.Stdout != "123\n456\n" {
		t.Errorf("rlimits in exec: %q, want 123/456", r.Stdout)
	}
}

func TestExecSignalsAndPreservedFds(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	id := "exec-signals"
	startLongRunning(t, b, id)

	extra, err := os.CreateTemp(t.TempDir(), "preserved")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	cmd := exec.Command(crossrunBin, "--root", stateRoot, "exec", "--preserve-fds", "1", id,
		"sh", "-c", "echo via-fd3 >&3; ls /proc/self/fd | tr '\\n' ' '; echo; echo ready; exec sleep 100")
	cmd.ExtraFiles = []*os.File{extra}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var out strings.Builder
	buf := make([]byte, 256)
	for !strings.Contains(out.String(), "ready\n") {
		n, err := stdout.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			t.Fatalf("exec output before ready: %q: %v", out.String(), err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit after SIGTERM: %d (%v), want %d", code, err, 128+int(syscall.SIGTERM))
	}
	// ls lists its own descriptors: stdio, 3, and the one it reads
	// /proc/self/fd with; nothing of crossrun's leaks.
	fds := strings.Fields(strings.SplitN(out.String(), "\n", 2)[0])
	if len(fds) > 5 || len(fds) < 4 || fds[3] != "3" {
		t.Errorf("descriptors in exec: %v, want 0 1 2 3 and ls's own", fds)
	}
	data, err := os.ReadFile(extra.Name())
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "via-fd3\n" {
		t.Errorf("preserved fd 3 got %q", data)
	}
}

func TestExecTimeNamespaceAndNoPivot(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	b.Spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}}
	b.Save(t)
	id := "exec-timens"
	cleanupContainer(t, id)
	mustRun(t, "run", "-d", "--no-pivot", "--bundle", b.Dir, id)
	initPid := int(state(t, id)["pid"].(float64))
	names := specNamespaceNames(b.Spec)
	want := hostNamespaces(t, initPid, names)
	r := mustRun(t, "exec", id, "sh", "-c", "cut -d. -f1 /proc/uptime; ls /; "+nsReport(names))
	lines := strings.SplitN(r.Stdout, "\n", 2)
	if up, err := strconv.Atoi(lines[0]); err != nil || up < 86400*365 {
		t.Errorf("uptime in exec %q: want the container's boottime offset", lines[0])
	}
	if !strings.Contains(lines[1], "busybox") && !strings.Contains(lines[1], "bin\n") {
		t.Errorf("ls / in exec: %q, want the container's root", lines[1])
	}
	got := parseNsReport(lines[1])
	for _, n := range names {
		if got[n] != want[n] {
			t.Errorf("%s namespace in exec: %q, want %q", n, got[n], want[n])
		}
	}
}

// A foreground "crossrun run" holds the container's lock while it waits;
// exec must not wait for it.
func TestExecIntoForegroundRun(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	id := "exec-foreground"
	cleanupContainer(t, id)
	run := exec.Command(crossrunBin, "--root", stateRoot, "run", "--bundle", b.Dir, id)
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			run.Process.Kill()
			run.Wait()
		}
	}()
	waitStatus(t, id, "running")
	r := mustRun(t, "exec", id, "cat", "/proc/1/comm")
	if r.Stdout != "sleep\n" {
		t.Errorf("exec beside a foreground run: %q", r.Stdout)
	}
	mustRun(t, "kill", id, "KILL")
	run.Wait()
	waited = true
	if code := run.ProcessState.ExitCode(); code != 137 {
		t.Errorf("foreground run exit %d, want 137", code)
	}
}

// The way containerd's shim execs: --process with terminal true, --detach,
// --console-socket and --pid-file.
func TestExecConsoleSocketDetached(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	id := "exec-console"
	startLongRunning(t, b, id)
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type recvd struct {
		name   string
		master *os.File
		err    error
	}
	got := make(chan recvd, 1)
	go func() {
		conn, err := ln.AcceptUnix()
		if err != nil {
			got <- recvd{err: err}
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		oob := make([]byte, syscall.CmsgSpace(4))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- recvd{err: err}
			return
		}
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			got <- recvd{err: fmt.Errorf("control messages: %v %v", msgs, err)}
			return
		}
		fds, err := syscall.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			got <- recvd{err: fmt.Errorf("rights: %v %v", fds, err)}
			return
		}
		got <- recvd{name: string(buf[:n]), master: os.NewFile(uintptr(fds[0]), "master")}
	}()
	p := specs.Process{
		Terminal: true,
		Args:     []string{"sh", "-c", "echo tty=$(tty); exit 4"},
		Env:      []string{"PATH=/bin:/usr/bin"},
		Cwd:      "/",
	}
	data, _ := json.Marshal(p)
	procPath := filepath.Join(dir, "process.json")
	os.WriteFile(procPath, data, 0o644)
	pidFile := filepath.Join(dir, "pid")
	r := mustRun(t, "exec", "--process", procPath, "--detach", "--console-socket", sockPath, "--pid-file", pidFile, id)
	if r.Stdout != "" {
		t.Errorf("exec -d printed %q", r.Stdout)
	}
	rv := <-got
	if rv.err != nil {
		t.Fatal(rv.err)
	}
	defer rv.master.Close()
	if !strings.HasPrefix(rv.name, "/dev/pts/") {
		t.Errorf("console name %q", rv.name)
	}
	if _, err := os.Stat(pidFile); err != nil {
		t.Errorf("pid file: %v", err)
	}
	// Read until the pty reports the process gone (EIO).
	var out strings.Builder
	buf := make([]byte, 1024)
	for {
		n, err := rv.master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(out.String(), "tty="+rv.name) {
		t.Errorf("terminal output %q, want tty=%s", out.String(), rv.name)
	}
}
