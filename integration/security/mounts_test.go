package security

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crossrun/crossrun/integration/harness"
)

// hostTarget makes a host directory that hostile symlinks and destinations
// aim at, holding one file, and returns it. listing reports its content.
func hostTarget(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "host-target")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "host-file"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// listing is every path below dir, to compare before and after.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			out = append(out, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, " ")
}

// markerSource makes a host directory to bind-mount, with a uniquely named
// path (so the mount can be found in a mount table) and a marker file.
func markerSource(t *testing.T) (dir, marker string) {
	t.Helper()
	marker = fmt.Sprintf("sec-marker-%d", time.Now().UnixNano())
	dir = filepath.Join(t.TempDir(), marker)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "marker"), []byte(marker), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, marker
}

// TestMountDestinationsStayInRootfs gives mounts destinations that are, or
// go through, symlinks pointing out of the rootfs (absolute, and relative
// with more ".." than there are levels), and destinations with ".."
// components. A runtime that resolves them on the host mounts onto the
// host path (in the container's mount namespace), where the container
// never sees the mount after pivot_root. Each mount must land inside the
// rootfs, where the container reads the marker file through the
// destination path, or the create must fail; the host directory must be
// untouched either way.
func TestMountDestinationsStayInRootfs(t *testing.T) {
	target := hostTarget(t)
	rel := strings.Repeat("../", 20) + strings.TrimPrefix(target, "/")
	cases := []struct {
		name  string
		setup func(rootfs string) error
		dest  string
		// read is where the container reads the marker: the
		// destination as the container resolves it.
		read string
	}{
		{name: "absolute symlink", dest: "/mnt/abs", read: "/mnt/abs", setup: func(r string) error {
			return os.Symlink(target, filepath.Join(r, "mnt/abs"))
		}},
		{name: "relative symlink climbing out", dest: "/mnt/rel", read: "/mnt/rel", setup: func(r string) error {
			return os.Symlink(rel, filepath.Join(r, "mnt/rel"))
		}},
		{name: "symlinked parent directory", dest: "/etc/sub", read: "/etc/sub", setup: func(r string) error {
			if err := os.RemoveAll(filepath.Join(r, "etc")); err != nil {
				return err
			}
			return os.Symlink(target, filepath.Join(r, "etc"))
		}},
		{name: "dot-dot destination", dest: "/../../../.." + target, read: target},
		{name: "dot-dot through a symlink", dest: "/mnt/up/../../../.." + target, read: target, setup: func(r string) error {
			return os.Symlink("/", filepath.Join(r, "mnt/up"))
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, _ := markerSource(t)
			// The process always exits 0: a failure is crossrun's.
			b := harness.NewBundle(t, "sh", "-c", "cat "+tc.read+"/marker; exit 0")
			rootfs := filepath.Join(b.Dir, "rootfs")
			os.MkdirAll(filepath.Join(rootfs, "mnt"), 0o755)
			if tc.setup != nil {
				if err := tc.setup(rootfs); err != nil {
					t.Fatal(err)
				}
			}
			b.Spec.Root.Readonly = false
			b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: tc.dest, Type: "bind", Source: src, Options: []string{"bind", "ro"}})
			b.Save(t)
			before := listing(t, target)
			id := fmt.Sprintf("sec-mountdest-%d", i)
			harness.Cleanup(t, id)
			r := harness.Run(t, "run", "--bundle", b.Dir, id)
			t.Logf("exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
			if after := listing(t, target); after != before {
				t.Errorf("the host directory changed: %q -> %q", before, after)
			}
			if m := mountsUnder(t, target); len(m) > 0 {
				t.Errorf("mounts on the host directory: %v", m)
			}
			if r.Code != 0 {
				oneLineError(t, r)
				return
			}
			if !strings.Contains(r.Stdout, "sec-marker-") {
				t.Errorf("the mount is not where the container resolves %s: %q", tc.dest, r.Stdout)
			}
		})
	}
}

// TestCVE2021_30465 races a mount destination against a container that
// swaps it for a symlink (CVE-2021-30465: runc resolved a destination in
// the rootfs, then mounted onto the path, which a container sharing the
// volume had meanwhile turned into a symlink pointing outside). A racing
// container exchanges a directory and a symlink in a shared volume as fast
// as it can (renameat2 RENAME_EXCHANGE); victim containers mount the
// volume and then a marked directory onto the raced name. Each victim must
// fail to be created, or find its marked mount in its own mount table:
// a mount that went outside the rootfs disappears at pivot_root. The
// symlink points at a host directory that must be left untouched, or at
// "/".
func TestCVE2021_30465(t *testing.T) {
	target := hostTarget(t)
	for _, link := range []string{target, "/"} {
		t.Run("symlink to "+link, func(t *testing.T) {
			vol := t.TempDir()
			os.Chmod(vol, 0o777)
			if err := os.Mkdir(filepath.Join(vol, "x"), 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(link, filepath.Join(vol, "y")); err != nil {
				t.Fatal(err)
			}
			racer := newAttackBundle(t, "/attacker", "swap", "/vol/x", "/vol/y", "/vol/stop")
			racer.Spec.Mounts = append(racer.Spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}})
			racer.Save(t)
			rid := "sec-30465-racer"
			harness.Cleanup(t, rid)
			harness.MustRun(t, "run", "-d", "--bundle", racer.Dir, rid)

			before := listing(t, target)
			src, marker := markerSource(t)
			victim := harness.NewBundle(t, "sh", "-c", "grep -c "+marker+" /proc/self/mountinfo; exit 0")
			victim.Spec.Mounts = append(victim.Spec.Mounts,
				specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}},
				specs.Mount{Destination: "/vol/x", Type: "bind", Source: src, Options: []string{"bind", "ro"}})
			victim.Save(t)
			landed, refused := 0, 0
			for i := 0; i < 40; i++ {
				id := "sec-30465-victim"
				harness.Cleanup(t, id)
				r := harness.Run(t, "run", "--bundle", victim.Dir, id)
				if r.Code != 0 {
					refused++
					if msg := oneLineError(t, r); refused == 1 {
						t.Logf("refused: %s", msg)
					}
					harness.Run(t, "delete", "--force", id)
					continue
				}
				if strings.TrimSpace(r.Stdout) != "1" {
					t.Errorf("run %d: the marked mount is not in the container's mount table (grep -c: %q): it was mounted outside the rootfs", i, r.Stdout)
				}
				landed++
			}
			os.WriteFile(filepath.Join(vol, "stop"), nil, 0o644)
			harness.WaitStatus(t, rid, "stopped")
			t.Logf("%d victims mounted inside their rootfs, %d refused", landed, refused)
			if after := listing(t, target); after != before {
				t.Errorf("the host directory changed: %q -> %q", before, after)
			}
			if m := mountsUnder(t, target); len(m) > 0 {
				t.Errorf("mounts on the host directory: %v", m)
			}
			if strings.Contains(hostMounts(t), marker) {
				t.Errorf("the marked directory is mounted in the host's mount namespace")
			}
		})
	}
}
