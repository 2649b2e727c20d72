package security

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/crossrun/crossrun/integration/harness"
)

// runWithFiles runs crossrun with extra descriptors: extra[i] becomes fd
// 3+i (nil entries are closed).
func runWithFiles(t *testing.T, extra []*os.File, args ...string) harness.Result {
	t.Helper()
	cmd := harness.Cmd(args...)
	cmd.ExtraFiles = extra
	return harness.RunCmd(t, cmd)
}

// hostSecret makes a host directory holding a file with a random secret,
// outside every container, and returns the directory, the file's path and
// the secret.
func hostSecret(t *testing.T) (dir, file, secret string) {
	t.Helper()
	dir = t.TempDir()
	secret = fmt.Sprintf("host-secret-%d", time.Now().UnixNano())
	file = filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file, secret
}

// upTo is a relative path from any directory to the host file abs.
func upTo(abs string) string {
	return strings.Repeat("../", 40) + strings.TrimPrefix(abs, "/")
}

// cwdOutcome checks the result of starting a process whose working
// directory is a descriptor: it must fail, or run inside the container.
func cwdOutcome(t *testing.T, r harness.Result, secret string) {
	t.Helper()
	if strings.Contains(r.Stdout+r.Stderr, secret) {
		t.Fatalf("the container read a host file through its working directory:\n%s%s", r.Stdout, r.Stderr)
	}
	if r.Code != 0 {
		oneLineError(t, r)
		return
	}
	for _, line := range strings.Split(r.Stdout, "\n") {
		if strings.HasPrefix(line, "cwd ") && (strings.Contains(line, "unreachable") || !strings.HasPrefix(line, `cwd "/`)) {
			t.Fatalf("the process started with a working directory outside the container: %s", line)
		}
	}
}

// leakedFd is where hostFds puts a host directory crossrun is not asked to
// preserve: above the descriptors crossrun itself passes on.
const leakedFd = 20

// hostFds returns crossrun's extra descriptors: dir at fd 3 .. 3+n-1 (to be
// preserved) and at leakedFd (not to be).
func hostFds(t *testing.T, dir string, n int) []*os.File {
	t.Helper()
	files := make([]*os.File, leakedFd-3+1)
	for i := 0; i < n; i++ {
		files[i] = openDir(t, dir)
	}
	files[leakedFd-3] = openDir(t, dir)
	return files
}

func openDir(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestCVE2024_21626Cwd sets process.cwd (for "run") and --cwd (for "exec")
// to /proc/self/fd/N (CVE-2024-21626: a descriptor of a host directory
// leaked into runc init became the container's working directory). N runs
// over the descriptors the runtime may hold, and over host directories the
// test hands crossrun on purpose: fd 3 preserved with --preserve-fds, and
// fd 20 not preserved. Through such a working directory the process would
// read a host file with a relative path; the control reads it through the
// preserved descriptor, which the container legitimately has, to show the
// probe works.
func TestCVE2024_21626Cwd(t *testing.T) {
	hostDir, hostFile, secret := hostSecret(t)
	probe := upTo(hostFile)
	extra := func() []*os.File { return hostFds(t, hostDir, 1) }
	fds := []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, leakedFd}

	t.Run("control", func(t *testing.T) {
		a := newAttackBundle(t, "/attacker", "fds", "/proc/self/fd/3/secret")
		id := "sec-21626-control"
		harness.Cleanup(t, id)
		r := runWithFiles(t, extra(), "run", "--preserve-fds", "1", "--bundle", a.Dir, id)
		if r.Code != 0 || !strings.Contains(r.Stdout, secret) {
			t.Fatalf("control: the preserved host directory is not readable (exit %d): %s%s", r.Code, r.Stdout, r.Stderr)
		}
	})

	for _, n := range fds {
		t.Run(fmt.Sprintf("run cwd fd %d", n), func(t *testing.T) {
			a := newAttackBundle(t, "/attacker", "fds", probe, "secret")
			a.Spec.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", n)
			a.Save(t)
			id := fmt.Sprintf("sec-21626-run-%d", n)
			harness.Cleanup(t, id)
			r := runWithFiles(t, extra(), "run", "--preserve-fds", "1", "--bundle", a.Dir, id)
			t.Logf("exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
			cwdOutcome(t, r, secret)
			if (n == 3 || n == leakedFd) && r.Code == 0 {
				t.Fatalf("a working directory on a host directory descriptor was accepted")
			}
		})
	}

	a := newAttackBundle(t, "/attacker", "pause")
	id := "sec-21626-exec"
	harness.Cleanup(t, id)
	harness.MustRun(t, "run", "-d", "--bundle", a.Dir, id)
	t.Run("exec control", func(t *testing.T) {
		r := runWithFiles(t, extra(), "exec", "--preserve-fds", "1", id, "/attacker", "fds", "/proc/self/fd/3/secret")
		if r.Code != 0 || !strings.Contains(r.Stdout, secret) {
			t.Fatalf("control: the preserved host directory is not readable (exit %d): %s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
	for _, n := range fds {
		t.Run(fmt.Sprintf("exec cwd fd %d", n), func(t *testing.T) {
			r := runWithFiles(t, extra(), "exec", "--preserve-fds", "1", "--cwd", fmt.Sprintf("/proc/self/fd/%d", n), id, "/attacker", "fds", probe, "secret")
			t.Logf("exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
			cwdOutcome(t, r, secret)
			if (n == 3 || n == leakedFd) && r.Code == 0 {
				t.Fatalf("a working directory on a host directory descriptor was accepted")
			}
		})
	}
}

// fdList returns the descriptors the attacker reported it started with.
func fdList(out string) []string {
	var fds []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "fd" {
			fds = append(fds, f[1])
		}
	}
	sort.Strings(fds)
	return fds
}

// TestCVE2024_21626Fds lists, inside the container, the descriptors the
// container's process starts with, for "run" and "exec": only stdio and the
// --preserve-fds ones may be open. crossrun itself is given a host
// directory at fd 20 that is not to be preserved.
func TestCVE2024_21626Fds(t *testing.T) {
	hostDir, _, _ := hostSecret(t)
	extra := func() []*os.File { return hostFds(t, hostDir, 2) }
	cases := []struct {
		preserve string
		want     string
	}{{"0", "0 1 2"}, {"2", "0 1 2 3 4"}}

	for _, tc := range cases {
		t.Run("run preserve "+tc.preserve, func(t *testing.T) {
			a := newAttackBundle(t, "/attacker", "fds")
			id := "sec-21626-fds-" + tc.preserve
			harness.Cleanup(t, id)
			r := runWithFiles(t, extra(), "run", "--preserve-fds", tc.preserve, "--bundle", a.Dir, id)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Stderr)
			}
			if got := strings.Join(fdList(r.Stdout), " "); got != tc.want {
				t.Errorf("descriptors in the container: %s, want %s\n%s", got, tc.want, r.Stdout)
			}
		})
	}
	a := newAttackBundle(t, "/attacker", "pause")
	id := "sec-21626-fds-exec"
	harness.Cleanup(t, id)
	harness.MustRun(t, "run", "-d", "--bundle", a.Dir, id)
	for _, tc := range cases {
		t.Run("exec preserve "+tc.preserve, func(t *testing.T) {
			r := runWithFiles(t, extra(), "exec", "--preserve-fds", tc.preserve, id, "/attacker", "fds")
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Stderr)
			}
			if got := strings.Join(fdList(r.Stdout), " "); got != tc.want {
				t.Errorf("descriptors in the exec'd process: %s, want %s\n%s", got, tc.want, r.Stdout)
			}
		})
	}
}
