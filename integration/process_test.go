package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// runOut runs a container to completion and returns its stdout.
func runOut(t *testing.T, b *bundle, id string) string {
	t.Helper()
	cleanupContainer(t, id)
	r := crossrun(t, "run", "--bundle", b.Dir, id)
	if r.Code != 0 {
		t.Fatalf("run %s: exit %d; stderr: %s; stdout: %s", id, r.Code, r.Stderr, r.Stdout)
	}
	return r.Stdout
}

func TestProcessAttributes(t *testing.T) {
	umask := uint32(0o027)
	cases := []struct {
		name  string
		args  []string
		edit  func(s *specs.Spec)
		check func(t *testing.T, out string)
	}{
		{"user and groups", []string{"id"}, func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{2000, 2001}}
		}, func(t *testing.T, out string) {
			for _, want := range []string{"uid=1000", "gid=1001", "2000", "2001"} {
				if !strings.Contains(out, want) {
					t.Errorf("id output %q lacks %s", out, want)
				}
			}
		}},
		{"env and cwd", []string{"sh", "-c", "echo $FOO; pwd"}, func(s *specs.Spec) {
			s.Process.Env = append(s.Process.Env, "FOO=bar baz")
			s.Process.Cwd = "/tmp"
		}, func(t *testing.T, out string) {
			if out != "bar baz\n/tmp\n" {
				t.Errorf("got %q", out)
			}
		}},
		{"umask", []string{"sh", "-c", "umask"}, func(s *specs.Spec) { s.Process.User.Umask = &umask }, func(t *testing.T, out string) {
			if strings.TrimSpace(out) != "0027" {
				t.Errorf("umask %q, want 0027", out)
			}
		}},
		{"rlimit nofile", []string{"sh", "-c", "ulimit -n; ulimit -Hn"}, func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 123, Hard: 456}}
		}, func(t *testing.T, out string) {
			if out != "123\n456\n" {
				t.Errorf("nofile %q, want 123/456", out)
			}
		}},
		{"capabilities", []string{"grep", "^Cap", "/proc/self/status"}, func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_KILL", "CAP_CHOWN"},
				Effective: []string{"CAP_KILL"},
				Permitted: []string{"CAP_KILL"},
			}
		}, func(t *testing.T, out string) {
			// CAP_CHOWN is bit 0, CAP_KILL bit 5.
			for _, want := range []string{"CapEff:\t0000000000000020", "CapPrm:\t0000000000000020", "CapBnd:\t0000000000000021", "CapInh:\t0000000000000000"} {
				if !strings.Contains(out, want) {
					t.Errorf("%q lacks %q", out, want)
				}
			}
		}},
		{"ambient capabilities as non-root", []string{"grep", "^Cap", "/proc/self/status"}, func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 1000, GID: 1000}
			s.Process.NoNewPrivileges = false
			caps := []string{"CAP_NET_BIND_SERVICE"}
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps}
		}, func(t *testing.T, out string) {
			for _, want := range []string{"CapEff:\t0000000000000400", "CapAmb:\t0000000000000400"} {
				if !strings.Contains(out, want) {
					t.Errorf("%q lacks %q", out, want)
				}
			}
		}},
		{"no new privileges", []string{"grep", "NoNewPrivs", "/proc/self/status"}, nil, func(t *testing.T, out string) {
			if !strings.Contains(out, "NoNewPrivs:\t1") {
				t.Errorf("%q", out)
			}
		}},
		{"readonly root", []string{"sh", "-c", "touch /x 2>&1; echo rc=$?"}, nil, func(t *testing.T, out string) {
			if !strings.Contains(out, "Read-only file system") || !strings.Contains(out, "rc=1") {
				t.Errorf("write to a readonly root: %q", out)
			}
		}},
		{"masked path", []string{"sh", "-c", "wc -c < /proc/timer_list; ls /sys/firmware | wc -l"}, nil, func(t *testing.T, out string) {
			if f := strings.Fields(out); len(f) != 2 || f[0] != "0" || f[1] != "0" {
				t.Errorf("masked paths not empty: %q", out)
			}
		}},
		{"readonly path", []string{"sh", "-c", "echo 1 > /proc/sys/kernel/domainname 2>&1; echo rc=$?"}, nil, func(t *testing.T, out string) {
			if !strings.Contains(out, "rc=1") {
				t.Errorf("write to readonly /proc/sys succeeded: %q", out)
			}
		}},
		{"hostname and domainname", []string{"sh", "-c", "hostname; cat /proc/sys/kernel/domainname"}, func(s *specs.Spec) {
			s.Hostname = "box1"
			s.Domainname = "example.org"
		}, func(t *testing.T, out string) {
			if out != "box1\nexample.org\n" {
				t.Errorf("%q", out)
			}
		}},
		{"sysctl", []string{"cat", "/proc/sys/kernel/shmmni"}, func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"kernel.shmmni": "1234"}
		}, func(t *testing.T, out string) {
			if strings.TrimSpace(out) != "1234" {
				t.Errorf("shmmni %q, want 1234", out)
			}
		}},
		{"devices", []string{"sh", "-c", "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; readlink /dev/fd; readlink /dev/ptmx"}, nil, func(t *testing.T, out string) {
			want := map[string]string{"/dev/null": "1,   3", "/dev/zero": "1,   5", "/dev/full": "1,   7", "/dev/random": "1,   8", "/dev/urandom": "1,   9", "/dev/tty": "5,   0"}
			seen := 0
			for _, line := range strings.Split(out, "\n") {
				f := strings.Fields(line)
				if len(f) == 0 {
					continue
				}
				if dev, ok := want[f[len(f)-1]]; ok {
					seen++
					if !strings.HasPrefix(line, "crw-rw-rw-") || !strings.Contains(line, dev) {
						t.Errorf("device line %q, want mode crw-rw-rw- and %s", line, dev)
					}
				}
			}
			if seen != len(want) || !strings.Contains(out, "/proc/self/fd\npts/ptmx\n") {
				t.Errorf("devices/symlinks missing: %q", out)
			}
		}},
		{"extra device", []string{"ls", "-l", "/dev/mydev"}, func(s *specs.Spec) {
			mode := os.FileMode(0o620)
			uid, gid := uint32(7), uint32(8)
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mydev", Type: "c", Major: 1, Minor: 7, FileMode: &mode, UID: &uid, GID: &gid}}
		}, func(t *testing.T, out string) {
			if !strings.HasPrefix(out, "crw--w----") || !strings.Contains(out, "7        8") && !strings.Contains(out, " 7 ") {
				t.Errorf("%q", out)
			}
		}},
		{"tmpfs mount", []string{"sh", "-c", "grep ' /scratch ' /proc/self/mountinfo"}, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=700", "noexec"}})
		}, func(t *testing.T, out string) {
			if !strings.Contains(out, "noexec") || !strings.Contains(out, "size=1024k") || !strings.Contains(out, "mode=700") {
				t.Errorf("%q", out)
			}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, tc.args...)
			if tc.edit != nil {
				tc.edit(b.Spec)
				b.Save(t)
			}
			tc.check(t, runOut(t, b, "proc-"+strconv.Itoa(i)))
		})
	}
}

func TestBindMounts(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "file"), []byte("from host"), 0o644)
	b := newBundle(t, "sh", "-c", "cat /data/file; touch /data/new 2>&1; echo rc=$?; cat /ro/file; touch /ro/x 2>/dev/null; echo rc=$?")
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/ro", Type: "bind", Source: src, Options: []string{"bind", "ro"}},
	)
	b.Save(t)
	out := runOut(t, b, "bind")
	if out != "from hostrc=0\nfrom hostrc=1\n" {
		t.Fatalf("got %q", out)
	}
	if _, err := os.Stat(filepath.Join(src, "new")); err != nil {
		t.Fatalf("rw bind mount did not write through to the host: %v", err)
	}
}

func TestUserNamespace(t *testing.T) {
	b := newBundle(t, "sh", "-c", "cat /proc/self/uid_map; id -u; touch /tmp/x && stat -c %u /tmp/x")
	b.Spec.Root.Readonly = false
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	b.Spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	// The rootfs belongs to the container's root, who must be able to
	// reach it.
	chownTree(t, filepath.Join(b.Dir, "rootfs"), 100000)
	os.Chmod(b.Dir, 0o755)
	os.Chmod(filepath.Dir(b.Dir), 0o755)
	b.Save(t)
	out := runOut(t, b, "userns")
	fields := strings.Fields(out)
	if len(fields) < 5 || fields[0] != "0" || fields[1] != "100000" || fields[2] != "65536" || fields[3] != "0" || fields[4] != "0" {
		t.Fatalf("got %q", out)
	}
	// A file the container's root made belongs to the mapped host uid.
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(b.Dir, "rootfs/tmp/x"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 100000 || st.Gid != 100000 {
		t.Fatalf("file made by the container's root is owned by %d:%d on the host, want 100000:100000", st.Uid, st.Gid)
	}
}

func chownTree(t *testing.T, dir string, id int) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, id, id)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestHooks(t *testing.T) {
	b := newBundle(t, "true")
	out := t.TempDir()
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(out, name)}}
	}
	b.Spec.Hooks = &specs.Hooks{
		Prestart:      []specs.Hook{hook("prestart")},
		CreateRuntime: []specs.Hook{hook("createRuntime")},
		Poststart:     []specs.Hook{hook("poststart")},
		Poststop:      []specs.Hook{hook("poststop")},
	}
	b.Save(t)
	runOut(t, b, "hooks")
	for name, status := range map[string]string{"prestart": "created", "createRuntime": "creating", "poststart": "running", "poststop": "stopped"} {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Errorf("%s hook did not run: %v", name, err)
			continue
		}
		var st specs.State
		if err := json.Unmarshal(data, &st); err != nil {
			t.Errorf("%s hook stdin is not state JSON: %q", name, data)
			continue
		}
		if st.ID != "hooks" || string(st.Status) != status || st.Bundle != b.Dir {
			t.Errorf("%s hook state: %+v, want status %s", name, st, status)
		}
		if status != "stopped" && st.Pid <= 0 {
			t.Errorf("%s hook state has no pid", name)
		}
	}
}

func TestHookFailureAbortsCreate(t *testing.T) {
	b := newBundle(t, "true")
	timeout := 1
	b.Spec.Hooks = &specs.Hooks{
		CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo broken >&2; exit 3"}}},
	}
	b.Save(t)
	id := "hookfail"
	cleanupContainer(t, id)
	r := crossrun(t, "create", "--bundle", b.Dir, id)
	if r.Code == 0 || !strings.Contains(r.Stderr, "createRuntime") || !strings.Contains(r.Stderr, "broken") {
		t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(stateRoot, id)); !os.IsNotExist(err) {
		t.Fatalf("state left after failed hook")
	}
	b.Spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "10"}, Timeout: &timeout}}}
	b.Save(t)
	r = crossrun(t, "create", "--bundle", b.Dir, id)
	if r.Code == 0 || !strings.Contains(r.Stderr, "timed out") {
		t.Fatalf("hook timeout: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

func TestMoreProcessAttributes(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		edit  func(s *specs.Spec)
		check func(t *testing.T, out string)
	}{
		{"io priority", []string{"ionice"}, func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6}
		}, func(t *testing.T, out string) {
			if !strings.Contains(out, "best-effort") || !strings.Contains(out, "6") {
				t.Errorf("ionice: %q, want best-effort prio 6", out)
			}
		}},
		{"scheduler", []string{"sh", "-c", "grep -E '^policy' /proc/self/sched || cat /proc/self/stat | cut -d' ' -f41"}, func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}
		}, func(t *testing.T, out string) {
			f := strings.Fields(out)
			if len(f) == 0 || f[len(f)-1] != "3" {
				t.Errorf("scheduling policy %q, want 3 (SCHED_BATCH)", out)
			}
		}},
		{"personality", []string{"uname", "-m"}, func(s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
		}, func(t *testing.T, out string) {
			if strings.TrimSpace(out) != "i686" {
				t.Errorf("uname -m under LINUX32: %q, want i686", out)
			}
		}},
		{"oom score adj", []string{"cat", "/proc/self/oom_score_adj"}, func(s *specs.Spec) {
			v := 500
			s.Process.OOMScoreAdj = &v
		}, func(t *testing.T, out string) {
			if strings.TrimSpace(out) != "500" {
				t.Errorf("oom_score_adj %q, want 500", out)
			}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, tc.args...)
			tc.edit(b.Spec)
			b.Save(t)
			tc.check(t, runOut(t, b, "more-"+strconv.Itoa(i)))
		})
	}
}

// TestMissingCapabilityNamed checks that what root lacks on this kind of
// host (CAP_SYS_RESOURCE) is named when a configuration needs it.
func TestMissingCapabilityNamed(t *testing.T) {
	requireRoot(t)
	if out, _ := os.ReadFile("/proc/self/status"); strings.Contains(string(out), "CapEff:\t000001ffffffffff") {
		t.Skip("skipped: this host's root has CAP_SYS_RESOURCE, so nothing is missing")
	}
	b := newBundle(t, "true")
	v := -998
	b.Spec.Process.OOMScoreAdj = &v
	b.Save(t)
	cleanupContainer(t, "oomadj")
	r := crossrun(t, "run", "--bundle", b.Dir, "oomadj")
	if r.Code == 0 || !strings.Contains(r.Stderr, "CAP_SYS_RESOURCE") {
		t.Fatalf("exit %d, stderr %q; want an error naming CAP_SYS_RESOURCE", r.Code, r.Stderr)
	}
}

func TestContainerHooks(t *testing.T) {
	b := newBundle(t, "true")
	out := t.TempDir()
	// createContainer runs in the container's namespaces before the root
	// switch (host paths still visible); startContainer inside the
	// container, so it writes into the rootfs.
	b.Spec.Hooks = &specs.Hooks{
		CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(out, "createContainer") + "; hostname >> " + filepath.Join(out, "createContainer")}}},
		StartContainer:  []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /tmp/startContainer"}}},
	}
	b.Spec.Root.Readonly = false
	b.Save(t)
	runOut(t, b, "ctrhooks")
	data, err := os.ReadFile(filepath.Join(out, "createContainer"))
	if err != nil || !strings.Contains(string(data), `"status":"creating"`) || !strings.HasSuffix(string(data), "crossrun\n") {
		t.Errorf("createContainer hook: %q %v (want state JSON, then the container's hostname)", data, err)
	}
	data, err = os.ReadFile(filepath.Join(b.Dir, "rootfs/tmp/startContainer"))
	if err != nil || !strings.Contains(string(data), `"status":"created"`) {
		t.Errorf("startContainer hook: %q %v", data, err)
	}
}

// TestTimerSlackNotPassedOn: crossrun runs its own threads with a raised
// timer slack (internal/timerslack), but whatever it starts must have the
// slack crossrun was started with. crossrun is started here with an unusual
// one; the container's process, a process exec runs, and hooks of every
// kind (run by create, start and delete, and by init in the container)
// report theirs.
func TestTimerSlackNotPassedOn(t *testing.T) {
	const slack = 77777
	out := t.TempDir()
	b := newBundle(t, "sh", "-c", "cat /proc/self/timerslack_ns > /tmp/process; exec sleep 60")
	hook := func(dir, name string) []specs.Hook {
		return []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat /proc/self/timerslack_ns > " + filepath.Join(dir, name)}}}
	}
	b.Spec.Hooks = &specs.Hooks{
		Prestart:        hook(out, "prestart"),
		CreateRuntime:   hook(out, "createRuntime"),
		CreateContainer: hook(out, "createContainer"),
		StartContainer:  hook("/tmp", "startContainer"), // inside the container
		Poststart:       hook(out, "poststart"),
		Poststop:        hook(out, "poststop"),
	}
	b.Spec.Root.Readonly = false
	b.Save(t)
	id := "timerslack"
	cleanupContainer(t, id)

	// Each crossrun is forked from this thread, with its slack.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, slack, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(prev), 0, 0, 0)
	mustRun(t, "create", "--bundle", b.Dir, id)
	mustRun(t, "start", id)
	got := map[string]string{"exec": mustRun(t, "exec", id, "cat", "/proc/self/timerslack_ns").Stdout}
	processFile := filepath.Join(b.Dir, "rootfs/tmp/process")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if data, err := os.ReadFile(processFile); err == nil && len(data) > 0 {
			got["process"] = string(data)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's process did not write %s", processFile)
		}
	}
	mustRun(t, "delete", "--force", id)

	for _, name := range []string{"prestart", "createRuntime", "createContainer", "poststart", "poststop"} {
		data, _ := os.ReadFile(filepath.Join(out, name))
		got[name] = string(data)
	}
	data, _ := os.ReadFile(filepath.Join(b.Dir, "rootfs/tmp/startContainer"))
	got["startContainer"] = string(data)
	for name, v := range got {
		if strings.TrimSpace(v) != strconv.Itoa(slack) {
			t.Errorf("%s: timer slack %q, want %d (the one crossrun was started with)", name, v, slack)
		}
	}
}
