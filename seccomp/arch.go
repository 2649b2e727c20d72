package seccomp

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// archTable is one seccomp architecture: what the kernel puts in
// seccomp_data.arch for it, how its arguments are laid out, and its syscall
// numbers.
type archTable struct {
	name      string                   // SCMP_ARCH_ name
	goarch    string                   // GOARCH running natively as this arch ("" if none)
	audit     uint32                   // AUDIT_ARCH_* value
	bits      int                      // argument register width: 32 or 64
	bigEndian bool                     // layout of the 64-bit args in seccomp_data
	syscalls  func() map[string]uint32 // name -> number, built on first use
	maxNr     uint32                   // highest syscall number in the table (ARM private calls excluded)
	compat    []string                 // other arches a kernel of this arch also runs
}

// lookupArch accepts a Go arch name ("amd64") or an OCI/libseccomp name
// ("SCMP_ARCH_X86_64"); "" means the arch this program runs on.
func lookupArch(arch string) (*archTable, error) {
	if arch == "" {
		arch = runtime.GOARCH
	}
	if t, ok := archTables[arch]; ok {
		return t, nil
	}
	if t, ok := archTables["SCMP_ARCH_"+strings.ToUpper(arch)]; ok && arch == strings.ToLower(arch) && !strings.HasPrefix(arch, "scmp_") {
		// Lower-case libseccomp spellings such as "x86_64" or "aarch64".
		return t, nil
	}
	for _, t := range archTables {
		if t.goarch == arch {
			return t, nil
		}
	}
	return nil, fmt.Errorf("unknown seccomp architecture %q (want a GOARCH like amd64 or a SCMP_ARCH_ name)", arch)
}

// Architectures returns the SCMP_ARCH_ names the package can compile for,
// sorted.
func Architectures() []string {
	names := make([]string, 0, len(archTables))
	for n := range archTables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NativeArchitectures returns the SCMP_ARCH_ names a kernel of the given
// arch (GOARCH or SCMP_ARCH_ name; "" for the host) runs: the arch itself
// first, then its compat ABIs (SCMP_ARCH_X86_64 -> X86_64, X86, X32).
func NativeArchitectures(arch string) ([]string, error) {
	t, err := lookupArch(arch)
	if err != nil {
		return nil, err
	}
	return append([]string{t.name}, t.compat...), nil
}

// SyscallNumber returns the number of a syscall on an arch (GOARCH or
// SCMP_ARCH_ name) as seen by a seccomp filter.
func SyscallNumber(arch, name string) (uint32, bool) {
	t, err := lookupArch(arch)
	if err != nil {
		return 0, false
	}
	n, ok := t.syscalls()[name]
	return n, ok
}

// absentNr marks, in a generated number table, a syscall the arch lacks.
const absentNr = 0xffffffff

// nameList splits syscallNames once.
var nameList = sync.OnceValue(func() []string { return strings.Split(syscallNames, "\n") })

// decodeNumbers turns a generated table (4 little-endian bytes per name of
// syscallNames) into name -> number.
func decodeNumbers(nrs string) map[string]uint32 {
	names := nameList()
	m := make(map[string]uint32, len(names))
	for i, name := range names {
		v := uint32(nrs[4*i]) | uint32(nrs[4*i+1])<<8 | uint32(nrs[4*i+2])<<16 | uint32(nrs[4*i+3])<<24
		if v != absentNr {
			m[name] = v
		}
	}
	return m
}

// decodeReleases turns the generated releases (major, minor bytes per name;
// 0xff 0xff for none) into name -> release.
func decodeReleases(rel string) map[string]Version {
	names := nameList()
	m := make(map[string]Version, len(names))
	for i, name := range names {
		if rel[2*i] == 0xff {
			continue
		}
		m[name] = Version{int(rel[2*i]), int(rel[2*i+1])}
	}
	return m
}
