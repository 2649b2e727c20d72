package binfmt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// QEMU is a qemu-user interpreter found on the host.
type QEMU struct {
	// Path is where it was found; Real is Path with symlinks resolved.
	Path, Real string
	// Static is true when the file has no PT_INTERP (it can be used from
	// inside any container).
	Static bool
	// Arch is the architecture the interpreter itself runs on.
	Arch *Arch
}

// ErrNoQEMU is wrapped by FindQEMU when no interpreter exists.
var ErrNoQEMU = errors.New("no qemu-user interpreter found")

// QEMUCandidates lists where FindQEMU looks for the interpreter of arch,
// in order: the Debian/Ubuntu static package, the binfmt wrapper path those
// packages register, then qemu-ARCH-static and qemu-ARCH on pathEnv.
func QEMUCandidates(arch *Arch, pathEnv string) []string {
	c := []string{
		"/usr/bin/qemu-" + arch.Name + "-static",
		"/usr/libexec/qemu-binfmt/" + arch.Name + "-binfmt-P",
	}
	for _, name := range []string{"qemu-" + arch.Name + "-static", "qemu-" + arch.Name} {
		for _, dir := range filepath.SplitList(pathEnv) {
			if dir == "" || !filepath.IsAbs(dir) {
				continue
			}
			c = append(c, filepath.Join(dir, name))
		}
	}
	return c
}

// FindQEMU finds the host's qemu-user interpreter for arch. With
// needStatic, dynamically linked interpreters are skipped (a container
// does not have the host's libraries). pathEnv is the host's PATH.
func FindQEMU(arch *Arch, pathEnv string, needStatic bool) (*QEMU, error) {
	var dynamic string
	seen := map[string]bool{}
	for _, p := range QEMUCandidates(arch, pathEnv) {
		if seen[p] {
			continue
		}
		seen[p] = true
		q, err := InspectQEMU(p)
		if err != nil {
			continue
		}
		if needStatic && !q.Static {
			if dynamic == "" {
				dynamic = p
			}
			continue
		}
		return q, nil
	}
	if dynamic != "" {
		return nil, fmt.Errorf("%w: qemu-%s: %s is dynamically linked, a static build is needed (qemu-user-static)", ErrNoQEMU, arch.Name, dynamic)
	}
	return nil, fmt.Errorf("%w: qemu-%s-static not in /usr/bin, /usr/libexec/qemu-binfmt or $PATH", ErrNoQEMU, arch.Name)
}

// InspectQEMU checks that p is an executable ELF file for this host and
// reports whether it is statically linked.
func InspectQEMU(p string) (*QEMU, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%s: not an executable file", p)
	}
	file, err := os.Open(real)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	f, err := parseELF(file)
	file.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	q := &QEMU{Path: p, Real: real, Static: true}
	q.Arch, _ = ArchOf(f.Class, f.Data, f.Machine, 0)
	for _, prog := range f.progs {
		if prog.typ == ptInterp {
			q.Static = false
		}
	}
	if q.Arch == nil || !runsNatively(q.Arch) {
		return nil, fmt.Errorf("%s: built for %s, not for this host", p, strings.ToLower(f.Machine.String()))
	}
	return q, nil
}

// runsNatively reports whether the host kernel runs a's binaries itself.
func runsNatively(a *Arch) bool {
	if a == HostArch() {
		return true
	}
	for _, c := range CompatArches() {
		if c == a {
			return true
		}
	}
	return false
}
