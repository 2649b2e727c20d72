package security

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/integration/harness"
)

// runRoot runs crossrun with its own --root and returns the result and the
// peak resident set size of the crossrun process, in KiB. The figure comes
// from wait4 in the attacker's small "maxrss" mode, which forks crossrun:
// a process inherits its parent's peak across fork and execve, and this
// test binary is larger than the figures that matter.
func runRoot(t *testing.T, root string, args ...string) (harness.Result, int64) {
	t.Helper()
	cmd := exec.Command(attacker(t), append([]string{"maxrss", harness.Bin, "--root", root}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(harness.Timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("crossrun %v: timed out", args)
	}
	var rss int64 = -1
	var stderr []string
	for _, line := range strings.Split(errb.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "maxrss "); ok {
			rss, _ = strconv.ParseInt(v, 10, 64)
			continue
		}
		if line != "" {
			stderr = append(stderr, line)
		}
	}
	if rss < 0 {
		t.Fatalf("crossrun %v: no peak RSS reported: %s", args, errb.String())
	}
	return harness.Result{Stdout: out.String(), Stderr: strings.Join(stderr, "\n"), Code: cmd.ProcessState.ExitCode()}, rss
}

// TestHostileContainerIDs passes ids that are paths, empty, huge, or carry
// control characters to every command that takes one. Each must be refused
// with a one-line error, and nothing may appear outside --root.
func TestHostileContainerIDs(t *testing.T) {
	b := harness.NewBundle(t, "true")
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	ids := map[string]string{
		"dot-dot path":   "../x",
		"deep dot-dot":   "../../../../../../tmp/sec-escape",
		"slash":          "a/b",
		"absolute":       "/tmp/sec-abs",
		"dot":            ".",
		"dot-dot":        "..",
		"empty":          "",
		"1024 chars":     strings.Repeat("a", 1024),
		"256 chars":      strings.Repeat("b", 256),
		"newline":        "sec-a\nb",
		"carriage ret":   "sec-a\rb",
		"tab":            "sec-a\tb",
		"escaped nul":    `sec-a\x00b`,
		"percent nul":    "sec-a%00b",
		"unicode nul":    "sec-a\u2400b",
		"space":          "sec a",
		"leading dash":   "-sec",
		"glob":           "sec-*",
		"unicode letter": "sec-é",
	}
	cmds := [][]string{
		{"create", "--bundle", b.Dir},
		{"run", "--bundle", b.Dir},
		{"state"}, {"start"}, {"kill"}, {"delete"}, {"delete", "--force"},
		{"pause"}, {"resume"}, {"ps"}, {"events", "--stats"},
		{"exec"}, {"update", "--pids-limit", "10"},
	}
	for name, id := range ids {
		t.Run(name, func(t *testing.T) {
			for _, c := range cmds {
				args := append(append([]string{}, c...), id)
				if c[0] == "exec" {
					args = append(args, "true")
				}
				r, _ := runRoot(t, root, args...)
				if r.Code == 0 {
					t.Errorf("crossrun %s %q: succeeded", c[0], id)
					runRoot(t, root, "delete", "--force", id)
					continue
				}
				msg := strings.TrimSpace(r.Stderr)
				if msg == "" || strings.Contains(msg, "\n") {
					t.Errorf("crossrun %s %q: error is not one line: %q", c[0], id, msg)
				}
			}
			entries, _ := os.ReadDir(parent)
			for _, e := range entries {
				if e.Name() != "root" {
					t.Errorf("%q appeared next to --root", e.Name())
				}
			}
			if entries, err := os.ReadDir(root); err == nil && len(entries) > 0 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("left in --root: %v", names)
			}
			for _, p := range []string{"/tmp/sec-escape", "/tmp/sec-abs", filepath.Join(b.Dir, "x")} {
				if _, err := os.Lstat(p); err == nil {
					os.RemoveAll(p)
					t.Errorf("%s was created", p)
				}
			}
		})
	}
}

// TestRootfsOfAnotherUser runs a container whose rootfs directory belongs
// to uid 1234 with mode 0700. crossrun runs as root, but the container's
// process has the default capabilities, without CAP_DAC_OVERRIDE: it cannot
// search its own root directory, so nothing in the container (its program,
// the exec fifo) can be reached. runc lets such a container die after
// create; crossrun refuses it at create with a one-line error. With mode
// 0711 it runs.
func TestRootfsOfAnotherUser(t *testing.T) {
	b := harness.NewBundle(t, "true")
	rootfs := filepath.Join(b.Dir, "rootfs")
	chownTree(t, rootfs, 1234)
	must(t, os.Chmod(rootfs, 0o700))
	id := "sec-rootfs-owner"
	harness.Cleanup(t, id)
	r := harness.Run(t, "run", "--bundle", b.Dir, id)
	if r.Code == 0 {
		t.Fatalf("a container that cannot search its root directory ran")
	}
	msg := oneLineError(t, r)
	if !strings.Contains(msg, "root directory") || !strings.Contains(msg, "1234") {
		t.Errorf("the error does not say what is wrong: %q", msg)
	}
	if _, err := os.Stat(filepath.Join(harness.StateRoot, id)); err == nil {
		t.Errorf("state left behind after the failed run")
	}
	must(t, os.Chmod(rootfs, 0o711))
	harness.MustRun(t, "run", "--bundle", b.Dir, id)
}

// TestHostileConfigFile replaces a bundle's config.json with a symlink (to a
// valid configuration outside the bundle, inside it, and to /dev/zero), a
// FIFO nobody writes, a directory, and a 1 GiB sparse file. Each must fail
// promptly with a one-line error, and crossrun must not read the huge file
// into memory: its peak RSS (wait4's rusage) stays under 100 MB, and below
// that of reading a 7 MiB configuration.
func TestHostileConfigFile(t *testing.T) {
	harness.RequireRoot(t)
	root := filepath.Join(t.TempDir(), "root")
	cases := []struct {
		name   string
		setup  func(t *testing.T, cfg string)
		expect string
	}{
		{"symlink outside the bundle", func(t *testing.T, cfg string) {
			other := harness.NewBundle(t, "true")
			must(t, os.Symlink(filepath.Join(other.Dir, "config.json"), cfg))
		}, "symlink"},
		{"symlink inside the bundle", func(t *testing.T, cfg string) {
			must(t, os.Rename(cfg, cfg+".real"))
			must(t, os.Symlink("config.json.real", cfg))
		}, "symlink"},
		{"symlink to /dev/zero", func(t *testing.T, cfg string) {
			must(t, os.Symlink("/dev/zero", cfg))
		}, "symlink"},
		{"fifo", func(t *testing.T, cfg string) {
			must(t, unix.Mkfifo(cfg, 0o644))
		}, "regular file"},
		{"directory", func(t *testing.T, cfg string) {
			must(t, os.Mkdir(cfg, 0o755))
		}, "regular file"},
		{"1 GiB sparse file", func(t *testing.T, cfg string) {
			f, err := os.Create(cfg)
			must(t, err)
			must(t, f.Truncate(1<<30))
			f.Close()
		}, "limit"},
	}
	// Control for the memory measure: a configuration of 7 MiB, under
	// the limit, that crossrun reads and parses before refusing its
	// ociVersion, must show in the peak RSS.
	var controlRSS int64
	t.Run("control: 7 MiB configuration is read", func(t *testing.T) {
		b := harness.NewBundle(t, "true")
		b.Spec.Version = "2.0.0"
		b.Spec.Annotations = map[string]string{"sec.padding": strings.Repeat("x", 7<<20)}
		b.Save(t)
		r, rss := runRoot(t, root, "create", "--bundle", b.Dir, "sec-config")
		if r.Code == 0 || !strings.Contains(r.Stderr, "2.0.0") {
			t.Fatalf("create: exit %d: %s", r.Code, r.Stderr)
		}
		t.Logf("peak RSS %d KiB", rss)
		controlRSS = rss
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := harness.NewBundle(t, "true")
			cfg := filepath.Join(b.Dir, "config.json")
			must(t, os.Remove(cfg))
			if tc.name == "symlink inside the bundle" {
				b.Save(t)
			}
			tc.setup(t, cfg)
			for _, cmd := range []string{"create", "run"} {
				r, rss := runRoot(t, root, cmd, "--bundle", b.Dir, "sec-config")
				if r.Code == 0 {
					runRoot(t, root, "delete", "--force", "sec-config")
					t.Fatalf("%s accepted the bundle", cmd)
				}
				msg := strings.TrimSpace(r.Stderr)
				t.Logf("%s: %s (peak RSS %d KiB)", cmd, msg, rss)
				if msg == "" || strings.Contains(msg, "\n") {
					t.Errorf("%s: error is not one line: %q", cmd, msg)
				}
				if !strings.Contains(msg, tc.expect) {
					t.Errorf("%s: error %q does not mention %q", cmd, msg, tc.expect)
				}
				if rss > 100<<10 {
					t.Errorf("%s: peak RSS %d KiB, over 100 MB", cmd, rss)
				}
				if tc.name == "1 GiB sparse file" && controlRSS > 0 && rss+7<<10 > controlRSS {
					t.Errorf("%s: peak RSS %d KiB, not clearly below the %d KiB of reading a 7 MiB configuration; the measure proves nothing", cmd, rss, controlRSS)
				}
			}
		})
	}
}
