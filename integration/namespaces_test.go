package integration

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestJoinNamespacesByPath starts one container and runs a second in its
// network, ipc, uts and pid namespaces, given by path.
func TestJoinNamespacesByPath(t *testing.T) {
	a := newBundle(t, "sleep", "1000")
	a.Spec.Hostname = "shared-uts"
	a.Save(t)
	cleanupContainer(t, "ns-a")
	mustRun(t, "run", "-d", "--bundle", a.Dir, "ns-a")
	pid := strconv.Itoa(int(state(t, "ns-a")["pid"].(float64)))

	b := newBundle(t, "sh", "-c", "readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts /proc/self/ns/pid_for_children 2>/dev/null || for n in net ipc uts; do readlink /proc/self/ns/$n; done; hostname; ps -o pid,args | grep -c 'sleep 1000'")
	b.Spec.Hostname = ""
	var ns []specs.LinuxNamespace
	for _, n := range b.Spec.Linux.Namespaces {
		switch n.Type {
		case specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.PIDNamespace:
			name := map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.PIDNamespace: "pid"}[n.Type]
			n.Path = "/proc/" + pid + "/ns/" + name
		}
		ns = append(ns, n)
	}
	b.Spec.Linux.Namespaces = ns
	b.Save(t)
	out := runOut(t, b, "ns-b")
	for _, name := range []string{"net", "ipc", "uts"} {
		want, err := os.Readlink("/proc/" + pid + "/ns/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, want) {
			t.Errorf("joined container is not in %s; output %q, want %s", name, out, want)
		}
	}
	if !strings.Contains(out, "shared-uts\n") {
		t.Errorf("hostname of the joined uts namespace missing: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if n, _ := strconv.Atoi(lines[len(lines)-1]); n < 1 {
		t.Errorf("the first container's sleep is not visible in the joined pid namespace: %q", out)
	}
}

func TestTimeNamespace(t *testing.T) {
	b := newBundle(t, "cat", "/proc/uptime")
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	b.Spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1000000}}
	b.Save(t)
	out := runOut(t, b, "timens")
	up, err := strconv.ParseFloat(strings.Fields(out)[0], 64)
	if err != nil {
		t.Fatalf("uptime %q: %v", out, err)
	}
	var host unix.Sysinfo_t
	unix.Sysinfo(&host)
	if up < 1000000 || up > float64(host.Uptime)+1000100 {
		t.Fatalf("uptime in the container %.0f, host %d: the boottime offset was not applied", up, host.Uptime)
	}
}

func TestCgroupNamespace(t *testing.T) {
	b := newBundle(t, "cat", "/proc/self/cgroup")
	out := runOut(t, b, "cgroupns")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasSuffix(line, ":/") {
			t.Errorf("in a cgroup namespace the container's cgroup is its root; got %q", line)
		}
	}
}

func TestNoPivot(t *testing.T) {
	b := newBundle(t, "ls", "/")
	id := "nopivot"
	cleanupContainer(t, id)
	r := crossrun(t, "run", "--no-pivot", "--bundle", b.Dir, id)
	if r.Code != 0 || !strings.Contains(r.Stdout, "bin\n") {
		t.Fatalf("--no-pivot: exit %d, out %q, err %q", r.Code, r.Stdout, r.Stderr)
	}
}

func TestPreserveFds(t *testing.T) {
	b := newBundle(t, "sh", "-c", "cat <&3; ls /proc/self/fd")
	id := "preserve"
	cleanupContainer(t, id)
	f, err := os.CreateTemp(t.TempDir(), "fd3")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("through fd 3\n")
	f.Seek(0, 0)
	cmd := crossrunCmd("run", "--preserve-fds", "1", "--bundle", b.Dir, id)
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run --preserve-fds: %v", err)
	}
	if !strings.HasPrefix(string(out), "through fd 3\n") {
		t.Fatalf("got %q", out)
	}
	// stdio, fd 3 and the directory ls reads: nothing else leaks in.
	fds := strings.Fields(strings.TrimPrefix(string(out), "through fd 3\n"))
	if len(fds) > 5 {
		t.Fatalf("descriptors leaked into the container: %v", fds)
	}
}

// TestConsoleSocket checks terminal: true with --console-socket: the pty
// master arrives over the socket and the process runs on the pty.
func TestConsoleSocket(t *testing.T) {
	b := newBundle(t, "sh", "-c", "tty; stty size")
	b.Spec.Process.Terminal = true
	b.Spec.Process.ConsoleSize = &specs.Box{Height: 40, Width: 100}
	b.Save(t)
	id := "console"
	cleanupContainer(t, id)
	sockPath := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		buf := make([]byte, 256)
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) == 0 {
			got <- nil
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		got <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	mustRun(t, "create", "--console-socket", sockPath, "--bundle", b.Dir, id)
	var master *os.File
	select {
	case master = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no pty master received on the console socket")
	}
	if master == nil {
		t.Fatal("console socket: no descriptor")
	}
	defer master.Close()
	mustRun(t, "start", id)
	var out []byte
	buf := make([]byte, 1024)
	for {
		n, err := master.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break // EIO once the container's side is closed
		}
	}
	s := strings.ReplaceAll(string(out), "\r", "")
	if !strings.Contains(s, "/dev/pts/0\n") || !strings.Contains(s, "40 100") {
		t.Fatalf("terminal output %q, want /dev/pts/0 and size 40 100", s)
	}
}
