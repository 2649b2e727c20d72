package security

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crossrun/crossrun/integration/harness"
)

// fakeProc writes a file holding "fake" at rel below dir and returns its
// path.
func fakeProc(t *testing.T, dir, rel string) string {
	t.Helper()
	p := filepath.Join(dir, rel)
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte("fake\n"), 0o666))
	return p
}

// TestCVE2025_52881 arranges for a naive runtime's procfs writes to land in
// a file the bundle chose (CVE-2025-52881: runc wrote sysctls, LSM labels
// and the like through the container's /proc, which mounts in the bundle
// could redirect). Each bundle sets a sysctl (or oomScoreAdj) and covers or
// replaces the proc file it lives in: a bind mount on the proc file itself
// (an lxcfs-style path crossrun allows), on /proc/sys, on /proc, on
// /proc/self/oom_score_adj, or a rootfs whose /proc is a symlink to a fake
// tree. The write must not reach the fake file: the create fails, or the
// value really applies in the container.
func TestCVE2025_52881(t *testing.T) {
	cases := []struct {
		name   string
		sysctl map[string]string
		setup  func(t *testing.T, b *harness.Bundle, fakes string) string // returns the fake file
		args   []string
		check  func(t *testing.T, out string, pid int)
	}{
		{
			name:   "bind over the sysctl file",
			sysctl: map[string]string{"kernel.ns_last_pid": "4000"},
			setup: func(t *testing.T, b *harness.Bundle, fakes string) string {
				f := fakeProc(t, fakes, "ns_last_pid")
				b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/proc/sys/kernel/ns_last_pid", Type: "bind", Source: f, Options: []string{"bind", "rw"}})
				// No read-only /proc/sys to stop a write to the bind.
				b.Spec.Linux.ReadonlyPaths = nil
				return f
			},
			args: []string{"sh", "-c", "sleep 0 & echo child $!"},
			check: func(t *testing.T, out string, _ int) {
				f := strings.Fields(out)
				if len(f) != 2 || f[0] != "child" {
					t.Fatalf("output %q", out)
				}
				if n, _ := strconv.Atoi(f[1]); n <= 4000 {
					t.Errorf("kernel.ns_last_pid=4000 did not apply: the container's next pid is %d", n)
				}
			},
		},
		{
			name:   "bind over /proc/sys",
			sysctl: map[string]string{"kernel.domainname": "sec-domain"},
			setup: func(t *testing.T, b *harness.Bundle, fakes string) string {
				f := fakeProc(t, fakes, "sys/kernel/domainname")
				b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/proc/sys", Type: "bind", Source: filepath.Join(fakes, "sys"), Options: []string{"rbind", "rw"}})
				return f
			},
		},
		{
			name:   "bind over /proc",
			sysctl: map[string]string{"kernel.domainname": "sec-domain"},
			setup: func(t *testing.T, b *harness.Bundle, fakes string) string {
				f := fakeProc(t, fakes, "sys/kernel/domainname")
				b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/proc", Type: "bind", Source: fakes, Options: []string{"rbind", "rw"}})
				return f
			},
		},
		{
			name:   "/proc a symlink to a fake tree",
			sysctl: map[string]string{"kernel.domainname": "sec-domain"},
			setup: func(t *testing.T, b *harness.Bundle, _ string) string {
				rootfs := filepath.Join(b.Dir, "rootfs")
				f := fakeProc(t, rootfs, "fakeproc/sys/kernel/domainname")
				must(t, os.Remove(filepath.Join(rootfs, "proc")))
				must(t, os.Symlink("/fakeproc", filepath.Join(rootfs, "proc")))
				return f
			},
		},
		{
			name: "bind over /proc/self/oom_score_adj",
			setup: func(t *testing.T, b *harness.Bundle, fakes string) string {
				score := 500
				b.Spec.Process.OOMScoreAdj = &score
				f := fakeProc(t, fakes, "oom_score_adj")
				b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/proc/self/oom_score_adj", Type: "bind", Source: f, Options: []string{"bind", "rw"}})
				return f
			},
			args: []string{"sleep", "1000"},
			check: func(t *testing.T, _ string, pid int) {
				data, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid))
				if err != nil || strings.TrimSpace(string(data)) != "500" {
					t.Errorf("oom_score_adj of the container: %q %v, want 500", data, err)
				}
			},
		},
		{
			name:   "baseline: domainname applies",
			sysctl: map[string]string{"kernel.domainname": "sec-domain"},
			setup:  func(t *testing.T, b *harness.Bundle, fakes string) string { return fakeProc(t, fakes, "unused") },
			args:   []string{"cat", "/proc/sys/kernel/domainname"},
			check: func(t *testing.T, out string, _ int) {
				if strings.TrimSpace(out) != "sec-domain" {
					t.Errorf("kernel.domainname in the container: %q", out)
				}
			},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args == nil {
				args = []string{"true"}
			}
			b := harness.NewBundle(t, args...)
			fakes := t.TempDir()
			fake := tc.setup(t, b, fakes)
			if tc.sysctl != nil {
				b.Spec.Linux.Sysctl = tc.sysctl
			}
			b.Save(t)
			id := fmt.Sprintf("sec-52881-%d", i)
			harness.Cleanup(t, id)
			detach := len(args) > 0 && args[0] == "sleep"
			var r harness.Result
			if detach {
				r = harness.Run(t, "run", "-d", "--bundle", b.Dir, id)
			} else {
				r = harness.Run(t, "run", "--bundle", b.Dir, id)
			}
			t.Logf("exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
			if data, _ := os.ReadFile(fake); string(data) != "fake\n" {
				t.Fatalf("the runtime wrote into the bundle's fake proc file: %q", data)
			}
			if r.Code != 0 {
				if strings.HasPrefix(tc.name, "baseline") {
					t.Fatalf("the baseline container failed: %s", r.Stderr)
				}
				oneLineError(t, r)
				return
			}
			pid := 0
			if detach {
				pid = int(harness.State(t, id)["pid"].(float64))
			}
			if tc.check == nil {
				t.Fatalf("the container started; this case expects the create to fail")
			}
			tc.check(t, r.Stdout, pid)
		})
	}
}

// TestProcNotMountedExecFifo starts a bundle without a proc mount whose
// image fills /proc with files named like the descriptors crossrun's init
// reopens through /proc/self/fd (the exec fifo). Opening those would write
// into the image's file and start the container's process at create, before
// "crossrun start". The create must fail, or the process must wait for
// start.
func TestProcNotMountedExecFifo(t *testing.T) {
	a := newAttackBundle(t, "sh", "-c", "echo ran > /out/ran")
	var keep []specs.Mount
	for _, m := range a.Spec.Mounts {
		if m.Destination != "/proc" {
			keep = append(keep, m)
		}
	}
	a.Spec.Mounts = keep
	a.Spec.Root.Readonly = false
	a.Save(t)
	rootfs := filepath.Join(a.Dir, "rootfs")
	// A status file gets init past the capability setup, which reads it.
	fakes := []string{fakeProc(t, rootfs, "proc/self/status")}
	for fd := 3; fd < 16; fd++ {
		fakes = append(fakes, fakeProc(t, rootfs, fmt.Sprintf("proc/self/fd/%d", fd)))
	}
	id := "sec-52881-noproc"
	harness.Cleanup(t, id)
	r := harness.Run(t, "create", "--bundle", a.Dir, id)
	t.Logf("create: exit %d: %s", r.Code, r.Stderr)
	for _, f := range fakes[1:] {
		if data, _ := os.ReadFile(f); string(data) != "fake\n" {
			t.Errorf("init wrote into the image's %s: %q", strings.TrimPrefix(f, rootfs), data)
		}
	}
	if r.Code != 0 {
		oneLineError(t, r)
		return
	}
	// init either blocks opening the exec fifo, or (fooled) goes on and
	// runs the process, which writes /out/ran.
	pid := int(harness.State(t, id)["pid"].(float64))
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(a.Out, "ran")); err == nil {
			t.Fatalf("the container's process ran before start")
		}
		wchan, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
		if err != nil {
			t.Fatalf("init is gone before start: %v", err)
		}
		if string(wchan) == "wait_for_partner" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("init neither waits on the exec fifo nor ran (wchan %q)", wchan)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := harness.State(t, id); st["status"] != "created" {
		t.Fatalf("status before start: %v, want created", st["status"])
	}
	harness.MustRun(t, "start", id)
	waitFile(t, filepath.Join(a.Out, "ran"))
}

// capMask is the capability bit mask of names.
func capMask(t *testing.T, names []string) uint64 {
	t.Helper()
	bits := map[string]uint{"CAP_AUDIT_WRITE": 29, "CAP_KILL": 5, "CAP_NET_BIND_SERVICE": 10, "CAP_SYS_ADMIN": 21}
	var m uint64
	for _, n := range names {
		b, ok := bits[n]
		if !ok {
			t.Fatalf("capMask: add %s", n)
		}
		m |= 1 << b
	}
	return m
}

// statusMask parses a "CapXxx:\tHEX" line of /proc/PID/status output.
func statusMask(t *testing.T, out, field string) uint64 {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, field+":") {
			v, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, field+":")), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in %q", field, out)
	return 0
}

// TestCVE2025_52881ExecProcfs attacks the procfs reads of "crossrun exec":
// the exec'd process joins the container's mount namespace before it sets
// up capabilities and groups, so a container allowed to mount
// (CAP_SYS_ADMIN) can put files of its own where crossrun looks. The
// container covers /proc/sys/kernel/cap_last_cap with a file saying 1 (a
// runtime trusting it drops only capabilities 0 and 1 from the bounding
// set, and a root process without no_new_privs then gains every other one
// at its next execve), and, in the second case, covers /proc with a tmpfs
// whose self/setgroups says "deny" (a runtime trusting it keeps its own
// supplementary groups in the process). The exec'd process must have the
// container's bounding set, and only the groups asked for.
func TestCVE2025_52881ExecProcfs(t *testing.T) {
	cases := []struct {
		name  string
		setup string
	}{
		{"bind over cap_last_cap", `echo 1 > /dev/shm/last && mount --bind /dev/shm/last /proc/sys/kernel/cap_last_cap`},
		{"tmpfs over /proc", `mkdir /dev/shm/p && cp /proc/self/status /dev/shm/status && mount -t tmpfs tmpfs /proc && mkdir -p /proc/self /proc/sys/kernel && cp /dev/shm/status /proc/self/status && echo deny > /proc/self/setgroups && echo 1 > /proc/sys/kernel/cap_last_cap`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAttackBundle(t, "sh", "-c", tc.setup+" && cat /proc/sys/kernel/cap_last_cap > /out/s && mv /out/s /out/spoofed && exec sleep 1000")
			addCaps(a.Spec.Process, "CAP_SYS_ADMIN")
			a.Spec.Process.NoNewPrivileges = false
			a.Save(t)
			id := fmt.Sprintf("sec-52881-exec-%d", i)
			harness.Cleanup(t, id)
			harness.MustRun(t, "run", "-d", "--bundle", a.Dir, id)
			waitFile(t, filepath.Join(a.Out, "spoofed"))
			if data, _ := os.ReadFile(filepath.Join(a.Out, "spoofed")); strings.TrimSpace(string(data)) != "1" {
				t.Fatalf("the container could not put its cap_last_cap in place (%q); the attack did not run", data)
			}
			want := capMask(t, a.Spec.Process.Capabilities.Bounding)
			// /proc/self/status is read from the exec'd program's own view;
			// with /proc covered, the tmpfs copy would be stale, so read it
			// through the host.
			harness.MustRun(t, "exec", "-d", "--pid-file", filepath.Join(a.Out, "pid"), id, "sleep", "1000")
			pidData, err := os.ReadFile(filepath.Join(a.Out, "pid"))
			if err != nil {
				t.Fatal(err)
			}
			status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pidData)) + "/status")
			if err != nil {
				t.Fatal(err)
			}
			if got := statusMask(t, string(status), "CapBnd"); got != want {
				t.Errorf("bounding set of the exec'd process: %#x, want %#x (the container's)", got, want)
			}
			if got := statusMask(t, string(status), "CapPrm"); got&^want != 0 {
				t.Errorf("permitted set of the exec'd process after execve: %#x, more than the container's %#x", got, want)
			}
			// crossrun runs with a supplementary group of its own, 4242,
			// which the process must not keep.
			cmd := harness.Cmd("exec", "-u", "1000:1000", id, "id", "-G")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{4242}}}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("exec id -G: %v", err)
			}
			if got := strings.TrimSpace(string(out)); got != "1000" {
				t.Errorf("groups of a process exec'd as 1000:1000: %q, want \"1000\"", got)
			}
		})
	}
}
