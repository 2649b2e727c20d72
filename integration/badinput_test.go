package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// mountCount counts the host's mounts, to check a failed create leaves none.
func mountCount(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

func TestBadInput(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name   string
		id     string
		edit   func(b *bundle)
		raw    string // replaces config.json when set
		expect string // in the one-line error
	}{
		{name: "invalid json", raw: `{"ociVersion": "1.0.2", "process": `, expect: "invalid JSON"},
		{name: "wrong type", raw: `{"ociVersion": "1.0.2", "process": {"args": "sh"}}`, expect: "process.args"},
		{name: "missing root", edit: func(b *bundle) { b.Spec.Root = nil }, expect: "root.path"},
		{name: "missing rootfs dir", edit: func(b *bundle) { b.Spec.Root.Path = "nonexistent" }, expect: "root.path"},
		{name: "missing process", edit: func(b *bundle) { b.Spec.Process = nil }, expect: "process"},
		{name: "empty args", edit: func(b *bundle) { b.Spec.Process.Args = nil }, expect: "process.args"},
		{name: "unknown namespace", edit: func(b *bundle) {
			b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, expect: "linux.namespaces[6].type"},
		{name: "relative mount destination", edit: func(b *bundle) {
			b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "relative/path", Type: "tmpfs", Source: "tmpfs"})
		}, expect: "mounts[7].destination"},
		{name: "major version", edit: func(b *bundle) { b.Spec.Version = "2.0.0" }, expect: "2.0.0"},
		{name: "relative cwd", edit: func(b *bundle) { b.Spec.Process.Cwd = "tmp" }, expect: "process.cwd"},
		{name: "bad id", id: "../x", expect: "invalid container id"},
		{name: "missing program", edit: func(b *bundle) { b.Spec.Process.Args = []string{"/no/such/program"} }, expect: "/no/such/program"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, "true")
			if tc.edit != nil {
				tc.edit(b)
				b.Save(t)
			}
			if tc.raw != "" {
				if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), []byte(tc.raw), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			id := tc.id
			if id == "" {
				id = "bad-" + strings.ReplaceAll(tc.name, " ", "-")
			}
			before := mountCount(t)
			r := crossrun(t, "create", "--bundle", b.Dir, id)
			if r.Code == 0 {
				crossrun(t, "delete", "--force", id)
				t.Fatalf("create succeeded, want an error mentioning %q", tc.expect)
			}
			msg := strings.TrimSpace(r.Stderr)
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.Contains(msg, tc.expect) {
				t.Errorf("error %q does not mention %q", msg, tc.expect)
			}
			if _, err := os.Stat(filepath.Join(stateRoot, id)); !os.IsNotExist(err) && !strings.Contains(id, "/") {
				t.Errorf("state directory left behind after failed create")
			}
			if after := mountCount(t); after != before {
				t.Errorf("mounts: %d before, %d after the failed create", before, after)
			}
			if _, err := os.Stat("/sys/fs/cgroup/pids/" + id); err == nil {
				t.Errorf("cgroup /sys/fs/cgroup/pids/%s left behind", id)
			}
		})
	}
}

func TestDuplicateAndUnknownID(t *testing.T) {
	b := newBundle(t, "sleep", "100")
	id := "dup"
	cleanupContainer(t, id)
	mustRun(t, "create", "--bundle", b.Dir, id)
	r := crossrun(t, "create", "--bundle", b.Dir, id)
	if r.Code == 0 || !strings.Contains(r.Stderr, "already exists") {
		t.Fatalf("duplicate create: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if st := state(t, id); st["status"] != "created" {
		t.Fatalf("the failed duplicate disturbed the first container: %v", st["status"])
	}
	for _, cmd := range [][]string{{"state", "nosuch"}, {"start", "nosuch"}, {"kill", "nosuch"}, {"delete", "nosuch"}} {
		r := crossrun(t, cmd...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "does not exist") {
			t.Errorf("%v: exit %d, stderr %q", cmd, r.Code, r.Stderr)
		}
	}
}
