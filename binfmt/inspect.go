package binfmt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/internal/inroot"
)

// DefaultPATH is used when the process environment has no PATH, as runc does.
const DefaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// headSize is how much of a file the kernel looks at to pick a binary
// handler (BINPRM_BUF_SIZE): #! lines and binfmt_misc magic live in it.
const headSize = 256

// maxDepth bounds #! chains the way the kernel bounds handler rewrites.
const maxDepth = 5

// FileKind is what the first bytes of a file say it is.
type FileKind int

const (
	KindUnknown FileKind = iota
	KindELF
	KindScript
	KindPE
	KindMachO
)

func (k FileKind) String() string {
	switch k {
	case KindELF:
		return "ELF"
	case KindScript:
		return "script"
	case KindPE:
		return "PE"
	case KindMachO:
		return "Mach-O"
	}
	return "unknown"
}

// ABITag is the content of a NT_GNU_ABI_TAG note: the OS and the oldest
// kernel the binary's C library accepts ("FATAL: kernel too old" otherwise).
type ABITag struct {
	OS                  uint32 // 0 Linux, 1 GNU/Hurd, 2 Solaris, 3 FreeBSD
	Major, Minor, Patch uint32
}

// Version is "major.minor.patch".
func (t ABITag) Version() string { return fmt.Sprintf("%d.%d.%d", t.Major, t.Minor, t.Patch) }

// ELFInfo is what crossrun reads from an ELF file.
type ELFInfo struct {
	Class   Class
	Data    Data
	Machine Machine
	OSABI   OSABI
	Type    Type
	Flags   uint32
	// Arch is nil when the machine is not one crossrun knows.
	Arch *Arch
	// Interp is PT_INTERP, the dynamic loader; empty for static binaries.
	Interp string
	// ABITag is the GNU ABI note, if the file has one.
	ABITag *ABITag
}

// Describe is a short human description: "ELF 64-bit aarch64 binary".
func (e *ELFInfo) Describe() string {
	bits := "32-bit"
	if e.Class == elfClass64 {
		bits = "64-bit"
	}
	if e.Arch == nil {
		return fmt.Sprintf("ELF %s binary for machine %d", bits, e.Machine)
	}
	return fmt.Sprintf("ELF %s %s binary", bits, e.Arch.Name)
}

// Script is one #! step of the chain from the named file to the binary the
// kernel finally loads.
type Script struct {
	Path        string // the script, as a path inside the rootfs
	Interpreter string // the #! interpreter path as written
	Arg         string // the optional single argument after it
	Head        []byte
}

// Executable describes the file the kernel would load for a process.
type Executable struct {
	// Name is args[0] as given.
	Name string
	// Path is where Name was found (after PATH lookup), inside the rootfs.
	Path string
	// Scripts is the #! chain, outermost first; empty for a direct binary.
	Scripts []Script
	// File is the last file of the chain, the one whose kind is Kind;
	// Resolved is File with symlinks followed (busybox applets).
	File, Resolved string
	Kind           FileKind
	Mode           os.FileMode
	// Head is the first bytes of Resolved (at most 256).
	Head []byte
	ELF  *ELFInfo
}

// Describe names the file for messages: `"/bin/sh" (-> /bin/busybox)`.
func (x *Executable) Describe() string {
	s := fmt.Sprintf("%q", x.Name)
	var chain []string
	if x.Path != "" && x.Path != x.Name {
		chain = append(chain, x.Path)
	}
	for _, sc := range x.Scripts {
		if sc.Interpreter != "" {
			chain = append(chain, sc.Interpreter)
		}
	}
	if x.Resolved != "" && x.Resolved != x.File {
		chain = append(chain, x.Resolved)
	}
	if len(chain) > 0 {
		s += " (-> " + strings.Join(chain, " -> ") + ")"
	}
	return s
}

// root is an open rootfs directory with the path resolution rules of the
// security rules: every lookup stays inside it.
type root struct {
	path string // host path of the rootfs, as given
	real string // its canonical host path, to strip from /proc/self/fd links
	fd   int
}

func openRoot(rootfs string) (*root, error) {
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	r := &root{path: rootfs, fd: fd}
	if real, err := os.Readlink(fmt.Sprintf("/proc/thread-self/fd/%d", fd)); err == nil {
		r.real = real
	} else {
		r.real = path.Clean(rootfs)
	}
	return r, nil
}

func (r *root) close() { unix.Close(r.fd) }

// open opens name (a path inside the rootfs; symlinks are resolved as if
// the rootfs were /) and returns the file and its resolved path inside the
// rootfs. Unreadable files are opened O_PATH so that they can still be
// fstat'ed; such a file returns readable=false.
func (r *root) open(name string) (f *os.File, resolved string, readable bool, err error) {
	flags := uint64(unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY)
	fd, err := r.openat2(name, flags)
	readable = true
	if err == unix.EACCES {
		fd, err = r.openat2(name, unix.O_PATH|unix.O_CLOEXEC)
		readable = false
	}
	if err != nil {
		return nil, "", false, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f = os.NewFile(uintptr(fd), name)
	resolved = name
	if link, lerr := os.Readlink(fmt.Sprintf("/proc/thread-self/fd/%d", fd)); lerr == nil {
		if r.real == "/" {
			resolved = link
		} else if rest, ok := strings.CutPrefix(link, r.real); ok && (rest == "" || rest[0] == '/') {
			resolved = "/" + strings.TrimPrefix(rest, "/")
		}
	}
	return f, resolved, readable, nil
}

// openat2InRoot is inroot.Open; tests replace it to take the path of a
// kernel without openat2.
var openat2InRoot = inroot.Open

func (r *root) openat2(name string, flags uint64) (int, error) {
	fd, err := openat2InRoot(r.fd, name, flags)
	if err == unix.ENOSYS {
		return r.openLegacy(name, int(flags))
	}
	return fd, err
}

// openLegacy serves kernels before 5.6 (no openat2): resolve with
// securejoin's rules, then refuse a final symlink swapped in meanwhile.
func (r *root) openLegacy(name string, flags int) (int, error) {
	p, err := secureJoin(r.path, name)
	if err != nil {
		return -1, err
	}
	return unix.Open(p, flags|unix.O_NOFOLLOW, 0)
}

// Inspect finds the file the kernel would load when a process with this
// environment execs name inside rootfs: PATH lookup (from env, DefaultPATH
// if unset), symlinks, and #! interpreters, all resolved inside rootfs. cwd
// is the process's working directory inside the rootfs ("/" if empty).
// A file that cannot be executed yields a *Diagnosis.
func Inspect(rootfs, name, cwd string, env []string) (*Executable, error) {
	r, err := openRoot(rootfs)
	if err != nil {
		return nil, err
	}
	defer r.close()
	return inspect(r, name, cwd, env)
}

func inspect(r *root, name, cwd string, env []string) (*Executable, error) {
	if cwd == "" {
		cwd = "/"
	}
	x := &Executable{Name: name}
	if name == "" {
		return nil, &Diagnosis{What: `cannot exec ""`, Why: "process.args is empty", Fix: "set process.args[0] in config.json", Err: unix.ENOENT}
	}
	f, p, resolved, readable, err := lookPath(r, name, cwd, env, x)
	if err != nil {
		return nil, err
	}
	x.Path = p
	for depth := 0; ; depth++ {
		kind, head, ferr := examine(f, readable, x, p, resolved)
		if ferr != nil {
			f.Close()
			return nil, ferr
		}
		if kind != KindScript {
			if kind == KindELF {
				if err := readELF(f, x); err != nil {
					f.Close()
					return nil, err
				}
			}
			f.Close()
			return x, nil
		}
		f.Close()
		interp, arg := parseShebang(head)
		x.Scripts = append(x.Scripts, Script{Path: resolved, Interpreter: interp, Arg: arg, Head: head})
		if depth+1 >= maxDepth {
			return nil, x.diag(fmt.Sprintf("too many levels of #! interpreters (more than %d)", maxDepth-1), "", unix.ELOOP)
		}
		if interp == "" {
			return nil, x.diag(fmt.Sprintf("script %s has an empty #! line", resolved), "name an interpreter after #!", unix.ENOEXEC)
		}
		ip := interp
		if !path.IsAbs(ip) {
			ip = path.Join(cwd, ip)
		}
		f, resolved, readable, err = r.open(ip)
		if err != nil {
			return nil, missingInterpreter(x, interp, err)
		}
		p = ip
	}
}

// lookPath finds name as execvp(3) would, inside the rootfs.
func lookPath(r *root, name, cwd string, env []string, x *Executable) (*os.File, string, string, bool, error) {
	if strings.Contains(name, "/") {
		p := name
		if !path.IsAbs(p) {
			p = path.Join(cwd, p)
		}
		f, resolved, readable, err := r.open(p)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				return nil, "", "", false, &Diagnosis{What: fmt.Sprintf("cannot exec %q", name), Why: "no such file or directory in the container's rootfs", Fix: "check process.args[0] and the image contents", Err: unix.ENOENT}
			}
			return nil, "", "", false, &Diagnosis{What: fmt.Sprintf("cannot exec %q", name), Why: err.Error(), Err: err}
		}
		return f, p, resolved, readable, nil
	}
	pathEnv, ok := "", false
	for _, kv := range env {
		if v, found := strings.CutPrefix(kv, "PATH="); found {
			pathEnv, ok = v, true
			break
		}
	}
	if !ok {
		pathEnv = DefaultPATH
	}
	var firstRejected string
	var rejectErr error
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		if !path.IsAbs(dir) {
			dir = path.Join(cwd, dir)
		}
		p := path.Join(dir, name)
		f, resolved, readable, err := r.open(p)
		if err != nil {
			if firstRejected == "" && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
				firstRejected, rejectErr = p, err
			}
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0 {
			return f, p, resolved, readable, nil
		}
		f.Close()
		if firstRejected == "" {
			firstRejected = p
		}
	}
	if firstRejected != "" {
		// execvp reports EACCES when it saw a candidate it could not run.
		x.Path = firstRejected
		f, resolved, readable, err := r.open(firstRejected)
		if err != nil {
			return nil, "", "", false, &Diagnosis{What: fmt.Sprintf("cannot exec %q (-> %s)", name, firstRejected), Why: rejectErr.Error(), Err: rejectErr}
		}
		return f, firstRejected, resolved, readable, nil
	}
	return nil, "", "", false, &Diagnosis{
		What: fmt.Sprintf("cannot exec %q", name),
		Why:  fmt.Sprintf("executable file not found in $PATH (%s) inside the container", pathEnv),
		Fix:  "use an absolute path in process.args[0] or set PATH in process.env",
		Err:  unix.ENOENT,
	}
}

// examine checks that f is an executable regular file and classifies it.
func examine(f *os.File, readable bool, x *Executable, p, resolved string) (FileKind, []byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, nil, fmt.Errorf("stat %s: %w", resolved, err)
	}
	x.File, x.Resolved = p, resolved
	x.Mode = os.FileMode(st.Mode & 0o7777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		return 0, nil, x.diag("permission denied: it is a directory", "point process.args[0] at a file", unix.EACCES)
	default:
		return 0, nil, x.diag("permission denied: not a regular file", "point process.args[0] at a regular file", unix.EACCES)
	}
	if st.Mode&0o111 == 0 {
		return 0, nil, x.diag(fmt.Sprintf("permission denied: %s is not executable (mode %04o)", resolved, st.Mode&0o7777),
			fmt.Sprintf("chmod +x %s in the image", resolved), unix.EACCES)
	}
	if !readable {
		// Execute-only file: the kernel can still load it; we cannot look.
		x.Kind = KindUnknown
		return KindUnknown, nil, nil
	}
	buf := make([]byte, headSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return 0, nil, fmt.Errorf("read %s: %w", resolved, err)
	}
	head := buf[:n]
	x.Head = head
	x.Kind = classify(head)
	return x.Kind, head, nil
}

func classify(head []byte) FileKind {
	switch {
	case bytes.HasPrefix(head, []byte(elfMagic)):
		return KindELF
	case bytes.HasPrefix(head, []byte("#!")):
		return KindScript
	case bytes.HasPrefix(head, []byte("MZ")):
		return KindPE
	}
	if len(head) >= 4 {
		switch binary.BigEndian.Uint32(head) {
		case 0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe:
			return KindMachO
		case 0xcafebabe: // universal binary; Java class files share it
			if len(head) >= 8 && binary.BigEndian.Uint32(head[4:]) < 32 {
				return KindMachO
			}
		}
	}
	return KindUnknown
}

// parseShebang splits a #! line as the kernel does: the interpreter up to
// the first blank, then at most one argument (the rest, trimmed).
func parseShebang(head []byte) (interp, arg string) {
	line := head[2:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i] // the kernel reads the line as a C string
	}
	line = bytes.TrimLeft(line, " \t")
	i := bytes.IndexAny(line, " \t")
	if i < 0 {
		return string(line), ""
	}
	return string(line[:i]), string(bytes.Trim(line[i:], " \t"))
}

func missingInterpreter(x *Executable, interp string, err error) error {
	sc := x.Scripts[len(x.Scripts)-1].Path
	why := fmt.Sprintf("no such file or directory: the #! interpreter %s of %s is missing in the container", interp, sc)
	fix := fmt.Sprintf("install %s in the image or change the #! line", interp)
	if strings.HasSuffix(interp, "\r") {
		why = fmt.Sprintf("no such file or directory: the #! line of %s ends in a carriage return (DOS line endings), so the interpreter is %q", sc, interp)
		fix = fmt.Sprintf("convert %s to Unix line endings (dos2unix)", sc)
	} else if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
		why = fmt.Sprintf("the #! interpreter %s of %s: %v", interp, sc, err)
		fix = ""
	}
	return &Diagnosis{What: fmt.Sprintf("cannot exec %s", x.Describe()), Why: why, Fix: fix, Err: unix.ENOENT}
}

// maxNoteBytes bounds the PT_NOTE contents readELF reads from one file.
const maxNoteBytes = 64 << 10

// readELF fills x.ELF from the open file.
func readELF(f io.ReaderAt, x *Executable) error {
	ef, err := parseELF(f)
	if err != nil {
		return x.diag(fmt.Sprintf("exec format error: malformed ELF file: %v", err), "", unix.ENOEXEC)
	}
	info := &ELFInfo{
		Class: ef.Class, Data: ef.Data, Machine: ef.Machine, OSABI: ef.OSABI, Type: ef.Type, Flags: ef.Flags,
	}
	info.Arch, _ = ArchOf(ef.Class, ef.Data, ef.Machine, info.Flags)
	// The note segments read in all, at most: a file can list 65535 notes
	// of almost 64 KiB each, and create would read 4 GiB of them. Real
	// executables have a few notes of a few dozen bytes.
	noteBudget := uint64(maxNoteBytes)
	for _, p := range ef.progs {
		switch p.typ {
		case ptInterp:
			// The kernel refuses a PT_INTERP outside 2..PATH_MAX bytes;
			// p_filesz comes from the file, so bound it before allocating.
			if p.filesz < 2 || p.filesz > unix.PathMax {
				break
			}
			if b, err := readProg(f, p); err == nil {
				if i := bytes.IndexByte(b, 0); i >= 0 {
					b = b[:i] // a C string, as the kernel reads it
				}
				info.Interp = string(b)
			}
		case ptNote:
			if info.ABITag == nil && p.filesz <= noteBudget {
				noteBudget -= p.filesz
				if b, err := readProg(f, p); err == nil {
					info.ABITag = findABITag(b, ef.order, p.align)
				}
			}
		}
	}
	x.ELF = info
	return nil
}

// findABITag walks the notes of one PT_NOTE segment for NT_GNU_ABI_TAG.
func findABITag(b []byte, bo binary.ByteOrder, align uint64) *ABITag {
	a := 4
	if align == 8 {
		a = 8
	}
	round := func(n int) int { return (n + a - 1) &^ (a - 1) }
	for len(b) >= 12 {
		namesz := int(bo.Uint32(b[0:]))
		descsz := int(bo.Uint32(b[4:]))
		typ := bo.Uint32(b[8:])
		rest := b[12:]
		if namesz < 0 || descsz < 0 || round(namesz) > len(rest) || round(namesz)+descsz > len(rest) {
			return nil
		}
		name := rest[:namesz]
		desc := rest[round(namesz) : round(namesz)+descsz]
		const ntGNUABITag = 1
		if typ == ntGNUABITag && string(bytes.TrimRight(name, "\x00")) == "GNU" && descsz >= 16 {
			return &ABITag{OS: bo.Uint32(desc), Major: bo.Uint32(desc[4:]), Minor: bo.Uint32(desc[8:]), Patch: bo.Uint32(desc[12:])}
		}
		next := round(namesz) + round(descsz)
		if next > len(rest) {
			return nil
		}
		b = rest[next:]
	}
	return nil
}

// diag builds a Diagnosis about x.
func (x *Executable) diag(why, fix string, errno error) *Diagnosis {
	return &Diagnosis{What: "cannot exec " + x.Describe(), Why: why, Fix: fix, Err: errno}
}
