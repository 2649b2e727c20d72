package security

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/integration/harness"
)

const corePattern = "/proc/sys/kernel/core_pattern"

// guardCorePattern records the host's core_pattern and puts it back if a
// test changed it, which would mean an attack went through.
func guardCorePattern(t *testing.T) string {
	t.Helper()
	orig, err := os.ReadFile(corePattern)
	if err != nil {
		t.Skipf("skipped: needs %s: %v", corePattern, err)
	}
	t.Cleanup(func() {
		if now, _ := os.ReadFile(corePattern); string(now) != string(orig) {
			os.WriteFile(corePattern, orig, 0)
		}
	})
	return string(orig)
}

// canary makes a host file the container sees read-write at /vol/canary:
// an attack target whose change the test can see without harming the host.
func canary(t *testing.T, b *harness.Bundle) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	path := filepath.Join(dir, "canary")
	if err := os.WriteFile(path, []byte("canary\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: dir, Options: []string{"rbind", "rw"}})
	return path
}

// withoutDevTmpfs drops the tmpfs on /dev from the bundle's mounts, so the
// rootfs's own /dev (the image's) is the container's.
func withoutDevTmpfs(b *harness.Bundle) {
	var keep []specs.Mount
	for _, m := range b.Spec.Mounts {
		if m.Destination != "/dev" {
			keep = append(keep, m)
		}
	}
	b.Spec.Mounts = keep
}

// maskedFiles are the default maskedPaths that are files.
var maskedFiles = []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/latency_stats", "/proc/timer_stats", "/proc/sched_debug"}

// TestCVE2025_31133 gives the container an image whose /dev/null is not
// the null device (CVE-2025-31133: runc bind-mounted whatever /dev/null was
// over each masked path, so a /dev/null symlinked to a procfs file made
// that file writable through the masked path). The rootfs's own /dev is
// used (no tmpfs on /dev, or a /dev bind-mounted from the bundle), with the
// default maskedPaths. The container reads each masked file and writes to
// it: the create must fail, or every masked file must read empty and the
// writes must reach neither the host's core_pattern nor a host canary file that
// /dev/null pointed at. The control shows the canary is reachable, so a
// redirected mask would be seen.
func TestCVE2025_31133(t *testing.T) {
	origPattern := guardCorePattern(t)
	script := "for p in " + strings.Join(maskedFiles, " ") + `; do [ -e $p ] || continue; echo "read $p $(head -c 32 $p | od -An -c | tr -d ' \n')"; echo "|/sec-evil" > $p 2>/dev/null && echo "wrote $p"; done; true`
	cases := []struct {
		name  string
		setup func(t *testing.T, b *harness.Bundle, rootfs, canaryPath string)
	}{
		{"baseline: the null device", func(t *testing.T, b *harness.Bundle, rootfs, _ string) {
			must(t, unix.Mknod(filepath.Join(rootfs, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		}},
		{"symlink to core_pattern", func(t *testing.T, b *harness.Bundle, rootfs, _ string) {
			must(t, os.Symlink(corePattern, filepath.Join(rootfs, "dev/null")))
		}},
		{"symlink to a host file", func(t *testing.T, b *harness.Bundle, rootfs, _ string) {
			must(t, os.Symlink("/vol/canary", filepath.Join(rootfs, "dev/null")))
		}},
		{"regular file", func(t *testing.T, b *harness.Bundle, rootfs, _ string) {
			must(t, os.WriteFile(filepath.Join(rootfs, "dev/null"), []byte("not null"), 0o666))
		}},
		{"directory", func(t *testing.T, b *harness.Bundle, rootfs, _ string) {
			must(t, os.Mkdir(filepath.Join(rootfs, "dev/null"), 0o755))
		}},
		{"another character device", func(t *testing.T, b *harness.Bundle, rootfs, _ string) {
			must(t, unix.Mknod(filepath.Join(rootfs, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))))
		}},
		{"bind-mounted /dev with a symlink", func(t *testing.T, b *harness.Bundle, rootfs, _ string) {
			dev := t.TempDir()
			must(t, os.Symlink(corePattern, filepath.Join(dev, "null")))
			must(t, os.Mkdir(filepath.Join(dev, "pts"), 0o755))
			b.Spec.Mounts = append([]specs.Mount{b.Spec.Mounts[0], {Destination: "/dev", Type: "bind", Source: dev, Options: []string{"rbind", "rw"}}}, b.Spec.Mounts[1:]...)
		}},
		{"masked path that is a symlink", func(t *testing.T, b *harness.Bundle, rootfs, _ string) {
			must(t, os.Symlink(corePattern, filepath.Join(rootfs, "etc/secret")))
			b.Spec.Linux.MaskedPaths = append(b.Spec.Linux.MaskedPaths, "/etc/secret")
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := harness.NewBundle(t, "sh", "-c", script)
			withoutDevTmpfs(b)
			can := canary(t, b)
			rootfs := filepath.Join(b.Dir, "rootfs")
			tc.setup(t, b, rootfs, can)
			b.Save(t)
			id := fmt.Sprintf("sec-31133-%d", i)
			harness.Cleanup(t, id)
			r := harness.Run(t, "run", "--bundle", b.Dir, id)
			t.Logf("exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
			if now, _ := os.ReadFile(corePattern); string(now) != origPattern {
				t.Fatalf("the container changed the host's core_pattern to %q", now)
			}
			if data, _ := os.ReadFile(can); string(data) != "canary\n" {
				t.Fatalf("the container wrote the host canary through a masked path: %q", data)
			}
			if r.Code != 0 {
				if strings.HasPrefix(tc.name, "baseline") {
					t.Fatalf("the baseline container failed: %s", r.Stderr)
				}
				oneLineError(t, r)
				return
			}
			if strings.HasPrefix(tc.name, "baseline") && !strings.Contains(r.Stdout, "read /proc/") {
				t.Fatalf("baseline: no masked file was checked: %q", r.Stdout)
			}
			for _, line := range strings.Split(r.Stdout, "\n") {
				// Writes to a path masked by /dev/null succeed and go
				// nowhere; what they reach is checked on the host above.
				f := strings.Fields(line)
				if len(f) == 3 && f[0] == "read" {
					t.Errorf("a masked path is not empty: %s", line)
				}
			}
		})
	}
	t.Run("control", func(t *testing.T) {
		b := harness.NewBundle(t, "sh", "-c", "echo changed > /vol/canary")
		can := canary(t, b)
		b.Save(t)
		id := "sec-31133-control"
		harness.Cleanup(t, id)
		harness.MustRun(t, "run", "--bundle", b.Dir, id)
		if data, _ := os.ReadFile(can); string(data) != "changed\n" {
			t.Fatalf("control: the container cannot write the canary (%q); the test would not see an attack", data)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// consoleServer is a --console-socket: it receives one pty master and
// collects what the container writes to it until the pty closes.
type consoleServer struct {
	path string
	out  chan string
}

func newConsoleServer(t *testing.T) *consoleServer {
	t.Helper()
	c := &consoleServer{path: filepath.Join(t.TempDir(), "console.sock"), out: make(chan string, 1)}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: c.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.AcceptUnix()
		if err != nil {
			c.out <- "accept: " + err.Error()
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		oob := make([]byte, syscall.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			c.out <- "recvmsg: " + err.Error()
			return
		}
		msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			c.out <- "no descriptor"
			return
		}
		fds, _ := syscall.ParseUnixRights(&msgs[0])
		if len(fds) != 1 {
			c.out <- "no descriptor"
			return
		}
		master := os.NewFile(uintptr(fds[0]), "master")
		defer master.Close()
		var sb strings.Builder
		for {
			n, err := master.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		c.out <- sb.String()
	}()
	return c
}

func (c *consoleServer) output(t *testing.T) string {
	t.Helper()
	select {
	case s := <-c.out:
		return s
	case <-time.After(harness.Timeout):
		t.Fatal("no console output")
		return ""
	}
}

// TestCVE2025_52565 starts containers with a terminal (process.terminal
// and --console-socket) whose image makes /dev/console, or the pty
// multiplexer, something else (CVE-2025-52565: runc bind-mounted the pty
// onto /dev/console through a path the container controlled, so a symlink
// redirected the mount, e.g. onto a procfs file). The rootfs's own /dev is
// used. The container writes to /dev/console: the create must fail, or
// /dev/console must be the container's pty, with the host's core_pattern
// and a host canary file untouched.
func TestCVE2025_52565(t *testing.T) {
	origPattern := guardCorePattern(t)
	script := `echo "console $(stat -c %t:%T /dev/console 2>&1)"; echo "|/sec-evil" > /dev/console; echo "tty $(readlink /proc/self/fd/0)"`
	cases := []struct {
		name  string
		setup func(t *testing.T, b *harness.Bundle, rootfs string)
	}{
		{"baseline: no /dev/console in the image", func(t *testing.T, b *harness.Bundle, rootfs string) {}},
		{"console symlink to core_pattern", func(t *testing.T, b *harness.Bundle, rootfs string) {
			must(t, os.Symlink(corePattern, filepath.Join(rootfs, "dev/console")))
		}},
		{"console symlink to a host file", func(t *testing.T, b *harness.Bundle, rootfs string) {
			must(t, os.Symlink("/vol/canary", filepath.Join(rootfs, "dev/console")))
		}},
		{"console directory", func(t *testing.T, b *harness.Bundle, rootfs string) {
			must(t, os.Mkdir(filepath.Join(rootfs, "dev/console"), 0o755))
		}},
		{"dangling console symlink", func(t *testing.T, b *harness.Bundle, rootfs string) {
			must(t, os.Symlink("/vol/new-file", filepath.Join(rootfs, "dev/console")))
		}},
		{"pts/ptmx symlink to a host file", func(t *testing.T, b *harness.Bundle, rootfs string) {
			// No devpts of its own: /dev/ptmx is the image's.
			var keep []specs.Mount
			for _, m := range b.Spec.Mounts {
				if m.Destination != "/dev/pts" {
					keep = append(keep, m)
				}
			}
			b.Spec.Mounts = keep
			must(t, os.MkdirAll(filepath.Join(rootfs, "dev/pts"), 0o755))
			must(t, os.Symlink("/vol/canary", filepath.Join(rootfs, "dev/pts/ptmx")))
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := harness.NewBundle(t, "sh", "-c", script)
			b.Spec.Process.Terminal = true
			// The image's /dev is used; /dev/console is created in it
			// when missing.
			b.Spec.Root.Readonly = false
			withoutDevTmpfs(b)
			can := canary(t, b)
			rootfs := filepath.Join(b.Dir, "rootfs")
			tc.setup(t, b, rootfs)
			b.Save(t)
			console := newConsoleServer(t)
			id := fmt.Sprintf("sec-52565-%d", i)
			harness.Cleanup(t, id)
			r := harness.Run(t, "run", "-d", "--console-socket", console.path, "--bundle", b.Dir, id)
			out := ""
			if r.Code == 0 {
				out = console.output(t)
				harness.WaitStatus(t, id, "stopped")
			}
			t.Logf("exit %d: %s%s", r.Code, r.Stderr, out)
			if now, _ := os.ReadFile(corePattern); string(now) != origPattern {
				t.Fatalf("the container changed the host's core_pattern to %q", now)
			}
			if data, _ := os.ReadFile(can); string(data) != "canary\n" {
				t.Fatalf("the container wrote the host canary through /dev/console: %q", data)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(can), "new-file")); err == nil {
				t.Fatalf("the console mount created a file in the host directory")
			}
			if r.Code != 0 {
				if strings.HasPrefix(tc.name, "baseline") {
					t.Fatalf("the baseline container failed: %s", r.Stderr)
				}
				oneLineError(t, r)
				return
			}
			if !strings.Contains(out, "console 88:") || !strings.Contains(out, "tty /dev/pts/") {
				t.Errorf("/dev/console is not the container's pty (major 0x88): %q", out)
			}
		})
	}
}
