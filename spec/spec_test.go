package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func bundleWith(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(s *specs.Spec)
		want string // "" = valid
	}{
		{"default", func(s *specs.Spec) {}, ""},
		{"old version", func(s *specs.Spec) { s.Version = "1.0.0" }, ""},
		{"dev version", func(s *specs.Spec) { s.Version = "1.2.1-dev" }, ""},
		{"major 2", func(s *specs.Spec) { s.Version = "2.0.0" }, `ociVersion "2.0.0" is not supported`},
		{"bad version", func(s *specs.Spec) { s.Version = "one" }, "MAJOR.MINOR.PATCH"},
		{"no version", func(s *specs.Spec) { s.Version = "" }, "ociVersion is missing"},
		{"no root", func(s *specs.Spec) { s.Root = nil }, "root.path is missing"},
		{"missing rootfs", func(s *specs.Spec) { s.Root.Path = "nope" }, `root.path "nope"`},
		{"no process", func(s *specs.Spec) { s.Process = nil }, "field process is missing"},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, "process.args is empty"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "x" }, "process.cwd"},
		{"bad env", func(s *specs.Spec) { s.Process.Env = []string{"NOEQUALS"} }, "process.env[0]"},
		{"unknown ns", func(s *specs.Spec) { s.Linux.Namespaces[0].Type = "bogus" }, "linux.namespaces[0].type"},
		{"duplicate ns", func(s *specs.Spec) { s.Linux.Namespaces = append(s.Linux.Namespaces, s.Linux.Namespaces[0]) }, "listed twice"},
		{"no mount ns", func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.MountNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
		}, `no "mount" namespace`},
		{"relative mount", func(s *specs.Spec) { s.Mounts[0].Destination = "proc" }, "mounts[0].destination"},
		{"userns without maps", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, "uidMappings"},
		{"maps without userns", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{Size: 1}}
		}, "no \"user\" namespace"},
		{"unknown cap", func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_TEST"} }, `unknown capability "CAP_TEST"`},
		{"unknown rlimit", func(s *specs.Spec) { s.Process.Rlimits[0].Type = "RLIMIT_FOO" }, "RLIMIT_FOO"},
		{"soft above hard", func(s *specs.Spec) { s.Process.Rlimits[0].Soft = 2048 }, "soft limit"},
		{"relative hook", func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "bin/true"}}} }, "hooks.poststop[0].path"},
		{"bad propagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" }, "rootfsPropagation"},
		{"net sysctl without netns", func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.NetworkNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, "network"},
		{"bad device type", func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z"}} }, "linux.devices[0].type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bundle := bundleWith(t)
			s := Default()
			tc.edit(s)
			err := Validate(s, bundle)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestLoadRefusesNonRegularConfig(t *testing.T) {
	bundle := bundleWith(t)
	cfg := filepath.Join(bundle, ConfigName)
	real := filepath.Join(bundle, "real.json")
	os.WriteFile(real, []byte(`{}`), 0o644)
	os.Symlink(real, cfg)
	if _, err := Load(bundle); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("symlinked config.json: %v", err)
	}
	os.Remove(cfg)
	if err := unix.Mkfifo(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bundle); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("FIFO config.json: %v", err)
	}
	os.Remove(cfg)
	f, _ := os.Create(cfg)
	f.Truncate(MaxConfigSize + 1)
	f.Close()
	if _, err := Load(bundle); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized config.json: %v", err)
	}
	os.Remove(cfg)
	if _, err := Load(bundle); err == nil || !strings.Contains(err.Error(), "crossrun spec") {
		t.Fatalf("missing config.json: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	_, err := Parse([]byte("{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": \n"))
	if err == nil || !strings.Contains(err.Error(), "invalid JSON") {
		t.Fatalf("truncated JSON: %v", err)
	}
	_, err = Parse([]byte(`{"process": {"args": "sh"}}`))
	if err == nil || !strings.Contains(err.Error(), "process.args") {
		t.Fatalf("wrong type: %v", err)
	}
	s, err := Parse([]byte(`{"ociVersion": "1.3.0", "unknownField": {"x": 1}, "annotations": {"a": "b"}}`))
	if err != nil || s.Annotations["a"] != "b" {
		t.Fatalf("unknown fields must be accepted: %v", err)
	}
}

func TestRootless(t *testing.T) {
	s := Default()
	MakeRootless(s)
	hasUser, hasNet := false, false
	for _, n := range s.Linux.Namespaces {
		hasUser = hasUser || n.Type == specs.UserNamespace
		hasNet = hasNet || n.Type == specs.NetworkNamespace
	}
	if !hasUser || hasNet || len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0].HostID != uint32(os.Geteuid()) {
		t.Fatalf("rootless spec: user=%v net=%v maps=%v", hasUser, hasNet, s.Linux.UIDMappings)
	}
}
