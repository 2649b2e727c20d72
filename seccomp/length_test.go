package seccomp

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestFilterLength reports the size of the Docker default profile's filter
// per architecture set and checks it stays well under the kernel limit.
func TestFilterLength(t *testing.T) {
	cfg := loadDockerProfile(t)
	for _, c := range []struct {
		arch   string
		arches []specs.Arch
	}{
		{"amd64", []specs.Arch{specs.ArchX86_64}},
		{"amd64", []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}},
		{"arm64", []specs.Arch{specs.ArchAARCH64, specs.ArchARM}},
		{"riscv64", nil},
		{"s390x", []specs.Arch{specs.ArchS390X, specs.ArchS390}},
	} {
		p := *cfg
		p.Architectures = c.arches
		prog, err := Compile(&p, c.arch)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("docker default profile for %s %v: %d instructions", c.arch, c.arches, len(prog))
		if len(prog) > 1024 {
			t.Errorf("%s: %d instructions", c.arch, len(prog))
		}
	}
}
