package binfmt

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Kind is the route a Decision takes.
type Kind int

const (
	// Native: the kernel runs the file itself (host arch, compat arch such
	// as i386 on x86_64, or a script/unknown file the kernel will handle).
	Native Kind = iota
	// HostHandler: an enabled host binfmt_misc entry serves the file and
	// nothing needs doing (flag F, or its interpreter already exists inside
	// the rootfs).
	HostHandler
	// HostHandlerBind: an enabled host entry without flag F serves the
	// file; the kernel will open its interpreter path inside the container,
	// so Prepare binds the host's interpreter there read-only.
	HostHandlerBind
	// PrivateBinfmt: no host entry; Prepare mounts a binfmt_misc instance
	// owned by the container's user namespace and registers the host's
	// static qemu in it with flag F.
	PrivateBinfmt
)

func (k Kind) String() string {
	switch k {
	case Native:
		return "native"
	case HostHandler:
		return "host-handler"
	case HostHandlerBind:
		return "host-handler-bind"
	case PrivateBinfmt:
		return "private-binfmt"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Options describe the container and host for Route. The zero value is a
// container without a user namespace on the running host.
type Options struct {
	// UserNS is true when the container has its own, new user namespace
	// and the caller runs as its root. Required for PrivateBinfmt, which
	// gives that namespace (and its descendants) a binfmt_misc instance of
	// its own. Leave it false when the container joins an existing user
	// namespace (linux.namespaces[].path): an instance there would be
	// shared with, and hide the host's handlers from, everything in it.
	UserNS bool
	// Cwd is process.cwd inside the rootfs ("/" if empty); used for
	// relative args[0] and relative #! interpreters.
	Cwd string
	// KernelRelease overrides uname -r (tests).
	KernelRelease string
	// BinfmtMisc is the host's binfmt_misc mount as the caller sees it
	// (DefaultBinfmtMisc if empty). Ignored when Registry is set.
	BinfmtMisc string
	// Registry, when set, is used instead of reading BinfmtMisc (for
	// callers that snapshot the host registry once, and for tests).
	Registry *Registry
	// HostPATH is searched for qemu-ARCH-static after the standard
	// locations (the caller's PATH if empty).
	HostPATH string
	// NoPrivate disables the PrivateBinfmt route.
	NoPrivate bool
	// Host and Compat override the host architecture and the foreign
	// architectures it runs natively (tests). Compat nil means detect.
	Host   *Arch
	Compat []*Arch
}

// Decision is the route chosen for a process, and what Prepare must do.
type Decision struct {
	Kind Kind
	// Exe is what was inspected.
	Exe *Executable
	// Arch is the binary's architecture (nil for non-ELF files).
	Arch *Arch
	// Entry is the host binfmt_misc entry used (HostHandler, HostHandlerBind).
	Entry *Entry
	// BindSource is the host interpreter file and BindTarget the path
	// inside the rootfs it is bound onto (HostHandlerBind).
	BindSource, BindTarget string
	// Register is what Prepare registers in the private instance
	// (PrivateBinfmt): the host's enabled entries, so that the container
	// keeps seeing them (a private instance hides the host's), then the
	// entry for Arch. Interpreters are host paths, opened by the kernel at
	// registration (flag F) or, without F, at exec inside the container.
	Register []*Entry
	// Reason is a one-line explanation, for logs.
	Reason string
}

// PrivateFlags are the flags of the entry registered in a private
// instance: P keeps argv[0] (busybox applets), O hands qemu an fd of the
// binary, F opens the interpreter at registration (from the host).
const PrivateFlags = "POF"

// KernelVersion is a parsed kernel release.
type KernelVersion struct{ Major, Minor, Patch int }

// ParseKernelVersion parses "6.18.44-foo" (missing parts are 0).
func ParseKernelVersion(release string) KernelVersion {
	var v [3]int
	parts := strings.SplitN(release, ".", 3)
	for i, p := range parts {
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		v[i], _ = strconv.Atoi(p[:end])
		if end < len(p) {
			break
		}
	}
	return KernelVersion{v[0], v[1], v[2]}
}

// Less reports whether k is older than o.
func (k KernelVersion) Less(o KernelVersion) bool {
	if k.Major != o.Major {
		return k.Major < o.Major
	}
	if k.Minor != o.Minor {
		return k.Minor < o.Minor
	}
	return k.Patch < o.Patch
}

func (k KernelVersion) String() string { return fmt.Sprintf("%d.%d.%d", k.Major, k.Minor, k.Patch) }

// sandboxedBinfmt is the first kernel where binfmt_misc can be mounted in a
// user namespace, giving that namespace its own instance.
var sandboxedBinfmt = KernelVersion{6, 7, 0}

// Route decides how to exec args in the container whose root filesystem is
// at rootfs (an absolute host path, mounts in place, before pivot_root).
// env is process.env. It returns a *Diagnosis when the process cannot run.
func Route(rootfs string, args []string, env []string, opts Options) (*Decision, error) {
	if len(args) == 0 {
		return nil, &Diagnosis{What: "cannot exec", Why: "process.args is empty", Fix: "set process.args in config.json", Err: unix.ENOENT}
	}
	r, err := openRoot(rootfs)
	if err != nil {
		return nil, err
	}
	defer r.close()
	x, err := inspect(r, args[0], opts.Cwd, env)
	if err != nil {
		return nil, err
	}
	host := opts.Host
	if host == nil {
		host = HostArch()
	}
	release := opts.KernelRelease
	if release == "" {
		release = KernelRelease()
	}
	kv := ParseKernelVersion(release)
	d := &Decision{Exe: x}

	if x.Kind == KindELF {
		e := x.ELF
		d.Arch = e.Arch
		if err := checkELF(r, x, host, kv); err != nil {
			return nil, err
		}
		if e.Arch == host {
			d.Reason = "native " + e.Describe()
			return d, nil
		}
		compat := opts.Compat
		if compat == nil && compatCandidate(host, e.Arch) {
			compat = CompatArches() // costs ~1 ms once: reads the kernel config
		}
		for _, c := range compat {
			if e.Arch == c {
				d.Reason = fmt.Sprintf("%s runs natively on %s", e.Describe(), host.Name)
				return d, nil
			}
		}
	} else if x.Kind == KindUnknown && x.Head == nil {
		d.Reason = "execute-only file, left to the kernel"
		return d, nil
	}

	reg := opts.Registry
	if reg == nil && opts.UserNS {
		// A container (re)entered after Prepare already has its instance
		// (crossrun exec): that, not the host's, is what the kernel uses.
		reg = containerRegistry(r)
	}
	if reg == nil {
		dir := opts.BinfmtMisc
		if dir == "" {
			dir = DefaultBinfmtMisc
		}
		if reg, err = ReadRegistry(dir); err != nil {
			return nil, err
		}
	}
	if ent := matchChain(reg, x); ent != nil {
		return hostRoute(r, d, ent, opts)
	}

	switch x.Kind {
	case KindELF:
		return privateRoute(r, d, reg, host, kv, opts)
	case KindPE:
		return nil, x.diag("exec format error: this is a Windows PE executable (MZ header), Linux cannot run it", "use a Linux image, or register a handler such as wine in binfmt_misc", unix.ENOEXEC)
	case KindMachO:
		return nil, x.diag("exec format error: this is a macOS Mach-O executable, Linux cannot run it", "build the program for Linux", unix.ENOEXEC)
	}
	if len(x.Head) == 0 {
		return nil, x.diag("exec format error: the file is empty", "check the image contents", unix.ENOEXEC)
	}
	return nil, x.diag(fmt.Sprintf("exec format error: neither ELF nor a #! script (starts with %q)", printable(x.Head, 8)), "add a #! line or point process.args[0] at a binary", unix.ENOEXEC)
}

// matchChain finds the host entry the kernel would use at any step of the
// #! chain (binfmt_misc is tried before the script and ELF loaders).
func matchChain(reg *Registry, x *Executable) *Entry {
	for _, s := range x.Scripts {
		if e := reg.Match(s.Path, s.Head); e != nil {
			return e
		}
	}
	if x.Head == nil {
		return nil
	}
	return reg.Match(x.Resolved, x.Head)
}

func printable(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// checkELF diagnoses ELF files no interpreter can help with.
func checkELF(r *root, x *Executable, host *Arch, kv KernelVersion) error {
	e := x.ELF
	switch e.Type {
	case etExec, etDyn:
	default:
		return x.diag(fmt.Sprintf("exec format error: %s is not an executable (%s)", e.Describe(), strings.ToLower(strings.TrimPrefix(e.Type.String(), "ET_"))), "link it into an executable", unix.ENOEXEC)
	}
	switch e.OSABI {
	case osabiNone, osabiLinux, osabiARM:
	default:
		return x.diag(fmt.Sprintf("exec format error: %s is built for %s (OS ABI %d), not Linux", e.Describe(), osabiName(e.OSABI), e.OSABI), "use a Linux build of the program", unix.ENOEXEC)
	}
	if e.ABITag != nil && e.ABITag.OS != 0 {
		return x.diag(fmt.Sprintf("exec format error: %s carries a GNU ABI note for OS %d, not Linux", e.Describe(), e.ABITag.OS), "use a Linux build of the program", unix.ENOEXEC)
	}
	if e.Arch == nil {
		return x.diag(fmt.Sprintf("exec format error: %s, a machine crossrun does not know, host is %s", e.Describe(), host.Name), "", unix.ENOEXEC)
	}
	if e.Interp != "" {
		f, _, _, err := r.open(e.Interp)
		if err != nil {
			return x.diag(fmt.Sprintf("no such file or directory: the file exists, but its ELF interpreter %s (PT_INTERP of this %s) is missing in the container", e.Interp, e.Describe()),
				"install the "+e.Arch.Name+" C library (loader) in the image, or build the program statically", unix.ENOENT)
		}
		f.Close()
	}
	if t := e.ABITag; t != nil {
		need := KernelVersion{int(t.Major), int(t.Minor), int(t.Patch)}
		if kv.Less(need) {
			return x.diag(fmt.Sprintf("%s whose C library needs Linux >= %s (GNU ABI note), host kernel is %s: it would fail with \"FATAL: kernel too old\"", e.Describe(), t.Version(), kv),
				"use an image built for an older kernel or run on a newer host kernel", unix.ENOEXEC)
		}
	}
	return nil
}

// hostRoute handles a file served by the host entry ent.
func hostRoute(r *root, d *Decision, ent *Entry, opts Options) (*Decision, error) {
	d.Entry = ent
	what := "file"
	if d.Exe.ELF != nil {
		what = d.Exe.ELF.Describe()
	}
	if ent.HasFlag('F') {
		d.Kind = HostHandler
		d.Reason = fmt.Sprintf("%s runs via host binfmt_misc entry %s (%s, flag F)", what, ent.Name, ent.Interpreter)
		return d, nil
	}
	// Without F the kernel opens ent.Interpreter at exec time, inside the
	// container's root.
	if f, _, _, err := r.open(ent.Interpreter); err == nil {
		var st unix.Stat_t
		ok := unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG
		f.Close()
		if ok {
			d.Kind = HostHandler
			d.Reason = fmt.Sprintf("%s runs via host binfmt_misc entry %s, whose interpreter %s exists in the container", what, ent.Name, ent.Interpreter)
			return d, nil
		}
	}
	q, err := InspectQEMU(ent.Interpreter)
	if err != nil {
		return nil, d.Exe.diag(fmt.Sprintf("host binfmt_misc entry %s (no flag F) needs %s inside the container, and the host's copy is unusable: %v", ent.Name, ent.Interpreter, err),
			"re-register the handler with flag F (\"crossrun binfmt install\") or put the interpreter in the image", unix.ENOENT)
	}
	if !q.Static {
		return nil, d.Exe.diag(fmt.Sprintf("host binfmt_misc entry %s (no flag F) needs %s inside the container, and the host's copy is dynamically linked", ent.Name, ent.Interpreter),
			"install qemu-user-static, or re-register with flag F (\"crossrun binfmt install\")", unix.ENOENT)
	}
	d.Kind = HostHandlerBind
	d.BindSource = q.Real
	d.BindTarget = ent.Interpreter
	d.Reason = fmt.Sprintf("%s runs via host binfmt_misc entry %s (no flag F): bind %s read-only onto %s in the container", what, ent.Name, q.Real, ent.Interpreter)
	return d, nil
}

// privateRoute handles a foreign ELF with no host entry.
func privateRoute(r *root, d *Decision, reg *Registry, host *Arch, kv KernelVersion, opts Options) (*Decision, error) {
	x := d.Exe
	a := x.ELF.Arch
	missing := fmt.Sprintf("exec format error: %s, host is %s, no %s handler in binfmt_misc", x.ELF.Describe(), host.Name, a.QEMUName())
	if reg != nil && reg.Mounted && !reg.Enabled {
		missing += " (binfmt_misc is disabled on the host)"
	} else if reg != nil && !reg.Mounted {
		missing += " (binfmt_misc is not mounted on the host)"
	} else if e := reg.Lookup(a.QEMUName()); e != nil && !e.Enabled {
		missing += " (the entry " + e.Name + " is disabled)"
	}
	fix := fmt.Sprintf("install qemu-user-static or run \"crossrun binfmt install %s\"", a.Name)
	pathEnv := opts.HostPATH
	if pathEnv == "" {
		pathEnv = os.Getenv("PATH")
	}
	if opts.NoPrivate {
		return nil, x.diag(missing, fix, unix.ENOEXEC)
	}
	if !opts.UserNS {
		if !kv.Less(sandboxedBinfmt) {
			if _, err := FindQEMU(a, pathEnv, true); err == nil {
				fix = fmt.Sprintf("run \"crossrun binfmt install %s\", or give the container a user namespace (the host's static qemu is then registered privately)", a.Name)
			}
		}
		return nil, x.diag(missing, fix, unix.ENOEXEC)
	}
	if kv.Less(sandboxedBinfmt) {
		return nil, x.diag(missing+fmt.Sprintf(", and kernel %s is too old for a private binfmt_misc in the container's user namespace (needs 6.7)", kv), fix, unix.ENOEXEC)
	}
	q, err := FindQEMU(a, pathEnv, true)
	if err != nil {
		return nil, x.diag(missing+", and no static "+a.QEMUName()+" on the host for a private registration", "install qemu-user-static (only the files are needed, no host registration)", unix.ENOEXEC)
	}
	if err := checkProcMount(r); err != nil {
		return nil, x.diag(missing+"; a private binfmt_misc needs the container's /proc: "+err.Error(), "mount proc at /proc in config.json", unix.ENOEXEC)
	}
	d.Kind = PrivateBinfmt
	d.Register = privateEntries(reg, a, q.Path)
	d.Reason = fmt.Sprintf("%s runs via a private binfmt_misc in the container's user namespace (%s, flags %s)", x.ELF.Describe(), q.Path, PrivateFlags)
	return d, nil
}

// privateEntries is the registration list of a private instance.
func privateEntries(reg *Registry, a *Arch, qemuPath string) []*Entry {
	magic, mask := a.BinfmtMagic()
	own := &Entry{Name: a.QEMUName(), Enabled: true, Interpreter: qemuPath, Flags: PrivateFlags, Magic: magic, Mask: mask}
	var out []*Entry
	if reg != nil && reg.Enabled {
		// Oldest first, so that the kernel's newest-first order matches
		// the host's.
		for i := len(reg.Entries) - 1; i >= 0; i-- {
			e := reg.Entries[i]
			if e.Enabled && e.Name != own.Name {
				out = append(out, e)
			}
		}
	}
	return append(out, own)
}

// procSuperMagic is PROC_SUPER_MAGIC.
const procSuperMagic = 0x9fa0

// checkProcMount verifies that /proc inside the rootfs is a procfs with a
// sys/fs/binfmt_misc directory to mount the private instance on.
func checkProcMount(r *root) error {
	fd, err := r.openat2("/proc/sys/fs/binfmt_misc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return errors.New("/proc/sys/fs/binfmt_misc does not exist in the rootfs (is proc mounted?)")
		}
		return fmt.Errorf("open /proc/sys/fs/binfmt_misc: %w", err)
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return err
	}
	switch uint32(sfs.Type) {
	case procSuperMagic:
		return nil
	case binfmtfsMagic:
		return errors.New("/proc/sys/fs/binfmt_misc is already a binfmt_misc mount")
	}
	return fmt.Errorf("/proc/sys/fs/binfmt_misc is not on procfs (fs type %#x)", sfs.Type)
}

func (d *Decision) String() string { return d.Kind.String() + ": " + d.Reason }

func osabiName(a OSABI) string {
	switch a {
	case osabiFreeBSD:
		return "FreeBSD"
	case osabiNetBSD:
		return "NetBSD"
	case osabiOpenBSD:
		return "OpenBSD"
	case osabiSolaris:
		return "Solaris"
	case osabiHurd:
		return "GNU Hurd"
	case osabiStandalone:
		return "bare metal (standalone)"
	}
	return strings.ToLower(strings.TrimPrefix(a.String(), "ELFOSABI_"))
}

// containerRegistry reads the binfmt_misc instance mounted at
// /proc/sys/fs/binfmt_misc inside the rootfs, or returns nil if none is.
func containerRegistry(r *root) *Registry {
	fd, err := r.openat2("/proc/sys/fs/binfmt_misc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if unix.Fstatfs(fd, &sfs) != nil || uint32(sfs.Type) != binfmtfsMagic {
		return nil
	}
	reg, err := ReadRegistry(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil || !reg.Mounted {
		return nil
	}
	reg.Dir = "/proc/sys/fs/binfmt_misc (container)"
	return reg
}
