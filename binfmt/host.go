package binfmt

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// InstallFlags are the flags of host entries written by Install: F (the
// kernel opens the interpreter at registration, so it works in every
// container without a copy inside), P (argv[0] preserved, for busybox-style
// multi-call binaries) and O (qemu gets an fd of the binary, so
// execute-only files work). C is left out: it would let setuid foreign
// binaries gain privileges through the interpreter.
const InstallFlags = "POF"

// HostDir is the host binfmt_misc mount used by Install, Uninstall, List
// and Supported.
var HostDir = DefaultBinfmtMisc

// EnsureMounted mounts binfmt_misc on dir if it is not mounted there. Call
// it only in the host's user namespace: in another one it would create that
// namespace's private instance.
func EnsureMounted(dir string) error {
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err == nil && uint32(sfs.Type) == binfmtfsMagic {
		return nil
	}
	if err := unix.Mount("binfmt_misc", dir, "binfmt_misc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount binfmt_misc on %s: %w", dir, err)
	}
	return nil
}

// List returns the host's binfmt_misc entries (newest first), mounting
// binfmt_misc first if needed.
func List() ([]*Entry, error) {
	if err := EnsureMounted(HostDir); err != nil {
		return nil, err
	}
	reg, err := ReadRegistry(HostDir)
	if err != nil {
		return nil, err
	}
	return reg.Entries, nil
}

// ExpandArches turns user arguments into architectures. "all" means every
// foreign architecture with a static qemu on this host. Native and compat
// architectures are refused for explicit names.
func ExpandArches(names []string) ([]*Arch, error) {
	var out []*Arch
	seen := map[*Arch]bool{}
	for _, n := range names {
		if n == "all" {
			for i := range Arches {
				a := &Arches[i]
				if seen[a] || runsNatively(a) {
					continue
				}
				if _, err := FindQEMU(a, os.Getenv("PATH"), true); err != nil {
					continue
				}
				seen[a] = true
				out = append(out, a)
			}
			continue
		}
		a, ok := ArchByName(n)
		if !ok {
			return nil, fmt.Errorf("unknown architecture %q (known: %s)", n, strings.Join(ArchNames(), ", "))
		}
		if runsNatively(a) {
			return nil, fmt.Errorf("%s runs natively on this %s host, it needs no handler", a.Name, HostArch().Name)
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}

// ArchNames lists the qemu names of all known architectures.
func ArchNames() []string {
	var s []string
	for _, a := range Arches {
		s = append(s, a.Name)
	}
	return s
}

// InstallEntry is the host entry Install registers for a with the
// interpreter qemuPath.
func InstallEntry(a *Arch, qemuPath string) *Entry {
	magic, mask := a.BinfmtMagic()
	return &Entry{Name: a.QEMUName(), Enabled: true, Interpreter: qemuPath, Flags: InstallFlags, Magic: magic, Mask: mask}
}

// Install registers host handlers (named qemu-ARCH, flags InstallFlags)
// for arches ("all" allowed) using the host's static qemu, replacing
// existing entries of the same name, like "qemu-user-static --reset -p yes"
// without a container. binfmt_misc is mounted first if needed.
func Install(arches []string) error {
	list, err := ExpandArches(arches)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return errors.New("no architecture to install (is qemu-user-static installed?)")
	}
	if err := EnsureMounted(HostDir); err != nil {
		return err
	}
	var errs []error
	for _, a := range list {
		q, err := FindQEMU(a, os.Getenv("PATH"), true)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w; install qemu-user-static", a.Name, err))
			continue
		}
		if err := registerHost(HostDir, InstallEntry(a, q.Path)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// registerHost (re)registers e in the binfmt_misc mounted at dir.
func registerHost(dir string, e *Entry) error {
	if err := removeEntry(dir, e.Name); err != nil {
		return err
	}
	if err := writeControl(path.Join(dir, "register"), e.RegisterString()); err != nil {
		return fmt.Errorf("register %s (%s): %w", e.Name, e.Interpreter, err)
	}
	return nil
}

// removeEntry deletes the entry name if it exists.
func removeEntry(dir, name string) error {
	err := writeControl(path.Join(dir, name), "-1")
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("remove binfmt_misc entry %s: %w", name, err)
}

// Uninstall removes the host entries qemu-ARCH for arches; "all" removes
// every entry named qemu-*.
func Uninstall(arches []string) error {
	if err := EnsureMounted(HostDir); err != nil {
		return err
	}
	var names []string
	for _, n := range arches {
		if n == "all" {
			reg, err := ReadRegistry(HostDir)
			if err != nil {
				return err
			}
			for _, e := range reg.Entries {
				if strings.HasPrefix(e.Name, "qemu-") {
					names = append(names, e.Name)
				}
			}
			continue
		}
		a, ok := ArchByName(n)
		if !ok {
			return fmt.Errorf("unknown architecture %q (known: %s)", n, strings.Join(ArchNames(), ", "))
		}
		names = append(names, a.QEMUName())
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, removeEntry(HostDir, n))
	}
	return errors.Join(errs...)
}

// PlatformInfo says whether and how this host runs one architecture.
type PlatformInfo struct {
	Arch     *Arch
	Platform string // OCI platform, "linux/arm64"
	// Route is Native for the host and compat arches, HostHandler or
	// HostHandlerBind when a host entry serves it, PrivateBinfmt when only
	// a container with a user namespace can run it.
	Route Kind
	// Interpreter is the host entry's interpreter or the static qemu.
	Interpreter string
	// Note qualifies the route ("compat", "needs a user namespace").
	Note string
}

// Supported lists what this host can run, native first. It does not mount
// binfmt_misc.
func Supported() []PlatformInfo {
	reg, _ := ReadRegistry(HostDir)
	kv := ParseKernelVersion(KernelRelease())
	host := HostArch()
	var out []PlatformInfo
	out = append(out, PlatformInfo{Arch: host, Platform: host.Platform(), Route: Native})
	for _, c := range CompatArches() {
		out = append(out, PlatformInfo{Arch: c, Platform: c.Platform(), Route: Native, Note: "compat"})
	}
	for i := range Arches {
		a := &Arches[i]
		if runsNatively(a) {
			continue
		}
		magic, _ := a.BinfmtMagic()
		head := make([]byte, headSize)
		copy(head, magic)
		if e := reg.Match("", head); e != nil {
			p := PlatformInfo{Arch: a, Platform: a.Platform(), Route: HostHandler, Interpreter: e.Interpreter, Note: "flags " + e.Flags}
			if !e.HasFlag('F') {
				p.Route = HostHandlerBind
			}
			out = append(out, p)
			continue
		}
		if kv.Less(sandboxedBinfmt) {
			continue
		}
		if q, err := FindQEMU(a, os.Getenv("PATH"), true); err == nil {
			out = append(out, PlatformInfo{Arch: a, Platform: a.Platform(), Route: PrivateBinfmt, Interpreter: q.Path, Note: "containers with a user namespace"})
		}
	}
	return out
}

// writeControl writes one command to an existing binfmt_misc file.
func writeControl(p, s string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(s))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
