package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzConfig feeds arbitrary bytes to the config.json path: Parse, then
// Validate against a bundle that has a rootfs directory, then Load on the
// same bytes written as the bundle's config.json. It checks that nothing
// panics, that every error is one non-empty line, that Load agrees with
// Parse+Validate, that Validate does not modify the configuration, and that
// a configuration Validate accepts survives marshal -> Parse -> Validate
// and marshals to the same bytes again.
func FuzzConfig(f *testing.F) {
	bundle := f.TempDir()
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		f.Fatal(err)
	}
	for _, s := range seedSpecs() {
		b, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"ociVersion":`, `{"ociVersion":"1.0.2-dev"}`,
		`{"process":{"args":"sh"}}`, `{"ociVersion":"1.3.0","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"},"linux":{"namespaces":[{"type":"mount"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkConfigBytes(t, bundle, data)
	})
}

// seedSpecs are valid configurations that reach deep into Validate.
func seedSpecs() []*specs.Spec {
	def := Default()
	rootless := Default()
	MakeRootless(rootless)
	full := Default()
	timeout := 5
	full.Hooks = &specs.Hooks{
		Prestart:  []specs.Hook{{Path: "/bin/true", Args: []string{"true"}, Timeout: &timeout}},
		Poststop:  []specs.Hook{{Path: "/bin/true"}},
		Poststart: []specs.Hook{{Path: "/usr/bin/logger", Env: []string{"A=b"}}},
	}
	full.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
	full.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "8192"}
	full.Linux.RootfsPropagation = "rslave"
	full.Linux.Namespaces = append(full.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace}, specs.LinuxNamespace{Type: specs.TimeNamespace})
	full.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	full.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	full.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
	full.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 4}
	full.Process.Rlimits = append(full.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_CORE", Soft: 0, Hard: 0})
	full.Process.Capabilities.Ambient = []string{"CAP_NET_BIND_SERVICE"}
	return []*specs.Spec{def, rootless, full}
}

func checkConfigBytes(t *testing.T, bundle string, data []byte) {
	s, perr := Parse(data)
	if perr != nil {
		oneLine(t, "Parse", perr)
	}
	var verr error
	var before []byte
	if perr == nil {
		before = mustMarshal(t, s)
		verr = Validate(s, bundle)
		if verr != nil {
			oneLine(t, "Validate", verr)
		}
		if after := mustMarshal(t, s); !bytes.Equal(before, after) {
			t.Fatalf("Validate modified the configuration:\nbefore %s\nafter  %s", before, after)
		}
	}

	// Load reads the same bytes from the bundle: same verdict, same value.
	cfg := filepath.Join(bundle, ConfigName)
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ls, lerr := Load(bundle)
	if lerr != nil {
		oneLine(t, "Load", lerr)
	}
	if (lerr == nil) != (perr == nil && verr == nil) {
		t.Fatalf("Load error %v, but Parse error %v and Validate error %v", lerr, perr, verr)
	}
	if lerr == nil && !reflect.DeepEqual(ls, s) {
		t.Fatalf("Load and Parse decode the same bytes differently")
	}
	if perr != nil || verr != nil {
		return
	}

	// Round trip: what crossrun accepts, it accepts again after
	// re-marshalling, and the marshalled form is a fixed point.
	s2, err := Parse(before)
	if err != nil {
		t.Fatalf("re-marshalled valid configuration does not parse: %v\n%s", err, before)
	}
	if err := Validate(s2, bundle); err != nil {
		t.Fatalf("re-marshalled valid configuration is rejected: %v\n%s", err, before)
	}
	if again := mustMarshal(t, s2); !bytes.Equal(before, again) {
		t.Fatalf("marshal is not stable:\nfirst  %s\nsecond %s", before, again)
	}
}

func mustMarshal(t *testing.T, s *specs.Spec) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("marshal a parsed configuration: %v", err)
	}
	return b
}

// oneLine fails unless err's message is one non-empty line, as every
// user-facing error of crossrun is.
func oneLine(t *testing.T, what string, err error) {
	t.Helper()
	msg := err.Error()
	if msg == "" || strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("%s error is not one line: %q", what, msg)
	}
}
