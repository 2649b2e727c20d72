package binfmt

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultBinfmtMisc is where the host's binfmt_misc is mounted.
const DefaultBinfmtMisc = "/proc/sys/fs/binfmt_misc"

// binfmtfsMagic is BINFMTFS_MAGIC, the statfs type of binfmt_misc.
const binfmtfsMagic = 0x42494e4d

// Entry is one binfmt_misc registration, as the kernel reports it in
// <binfmt_misc>/<name>.
type Entry struct {
	Name        string
	Enabled     bool
	Interpreter string
	// Flags is the flag letters (any of P, O, C, F).
	Flags string
	// Magic entries: Offset, Magic and Mask (nil Mask means exact match).
	Offset      int
	Magic, Mask []byte
	// Extension entries match the file name's extension (without dot).
	Extension string
	// Ino is the entry's inode number; the kernel numbers entries in
	// registration order and tries the newest first.
	Ino uint64
}

// HasFlag reports whether the entry has flag c ('F', 'P', 'O', 'C').
func (e *Entry) HasFlag(c byte) bool { return strings.IndexByte(e.Flags, c) >= 0 }

// Matches reports whether the kernel would pick this entry for a file at
// name (a path; extensions match after its last dot) whose first bytes are
// head. Disabled entries never match.
func (e *Entry) Matches(name string, head []byte) bool {
	if !e.Enabled {
		return false
	}
	if e.Extension != "" {
		i := strings.LastIndexByte(name, '.')
		return i >= 0 && name[i+1:] == e.Extension
	}
	if e.Offset < 0 || e.Offset > headSize || len(e.Magic) > headSize-e.Offset { // no overflow on a huge offset
		return false
	}
	if e.Offset+len(e.Magic) > len(head) {
		// The kernel compares against a zero-filled 256-byte buffer.
		buf := make([]byte, headSize)
		copy(buf, head)
		head = buf
	}
	s := head[e.Offset:]
	for j, m := range e.Magic {
		d := s[j] ^ m
		if e.Mask != nil {
			d &= e.Mask[j]
		}
		if d != 0 {
			return false
		}
	}
	return true
}

// registerDelimiters are the field separators RegisterString may use, in
// order of preference. The kernel takes the first byte of a registration
// line as the separator, so it must not occur in the name, interpreter or
// extension; digits, backslash, letters and newline are never used (the
// offset, the escaped magic, the flags and the kernel's parsing need them).
const registerDelimiters = ":|!#%,;@~^&"

// registerDelimiterFor returns the separator for e's registration line, or
// 0 when each candidate occurs in one of its fields.
func registerDelimiterFor(e *Entry) byte {
	for i := 0; i < len(registerDelimiters); i++ {
		c := registerDelimiters[i]
		if strings.IndexByte(e.Name, c) < 0 && strings.IndexByte(e.Interpreter, c) < 0 && strings.IndexByte(e.Extension, c) < 0 {
			return c
		}
	}
	return 0
}

// RegisterString is the line that registers this entry via
// <binfmt_misc>/register (":name:type:offset:magic:mask:interpreter:flags").
// The separator is ':' unless a field contains one (an entry registered
// with another separator); then it is another character no field contains.
func (e *Entry) RegisterString() string {
	esc := func(b []byte) string {
		var s strings.Builder
		for _, c := range b {
			fmt.Fprintf(&s, "\\x%02x", c)
		}
		return s.String()
	}
	sep := ":"
	if d := registerDelimiterFor(e); d != 0 {
		sep = string(d)
	}
	if e.Extension != "" {
		return strings.Join([]string{"", e.Name, "E", "", e.Extension, "", e.Interpreter, e.Flags}, sep)
	}
	off := ""
	if e.Offset != 0 {
		off = strconv.Itoa(e.Offset)
	}
	return strings.Join([]string{"", e.Name, "M", off, esc(e.Magic), esc(e.Mask), e.Interpreter, e.Flags}, sep)
}

// ParseEntry parses the content of <binfmt_misc>/<name>.
func ParseEntry(name string, data []byte) (*Entry, error) {
	e := &Entry{Name: name}
	first := true
	// Lines end at '\n' only: a '\r' the kernel prints is part of the
	// field (bufio.Scanner would drop it).
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if first {
			first = false
			switch line {
			case "enabled":
				e.Enabled = true
				continue
			case "disabled":
				continue
			default:
				return nil, fmt.Errorf("binfmt_misc entry %s: unexpected status %q", name, line)
			}
		}
		key, val, _ := strings.Cut(line, " ")
		var err error
		switch key {
		case "interpreter":
			e.Interpreter = val
		case "flags:":
			e.Flags = val
		case "offset":
			e.Offset, err = strconv.Atoi(val)
		case "magic":
			e.Magic, err = hex.DecodeString(val)
		case "mask":
			e.Mask, err = hex.DecodeString(val)
		case "extension":
			e.Extension = strings.TrimPrefix(val, ".")
		}
		if err != nil {
			return nil, fmt.Errorf("binfmt_misc entry %s: %s: %w", name, key, err)
		}
	}
	if e.Interpreter == "" {
		return nil, fmt.Errorf("binfmt_misc entry %s: no interpreter", name)
	}
	if e.Extension == "" && len(e.Magic) == 0 {
		return nil, fmt.Errorf("binfmt_misc entry %s: neither magic nor extension", name)
	}
	if e.Mask != nil && len(e.Mask) != len(e.Magic) {
		return nil, fmt.Errorf("binfmt_misc entry %s: mask length %d != magic length %d", name, len(e.Mask), len(e.Magic))
	}
	return e, nil
}

// Registry is a snapshot of one binfmt_misc instance.
type Registry struct {
	Dir string
	// Mounted is false when Dir is not a binfmt_misc mount; then the
	// snapshot is empty and says nothing about the kernel's handlers.
	Mounted bool
	// Enabled is the global switch (<binfmt_misc>/status).
	Enabled bool
	// Entries, newest registration first (the kernel's match order).
	Entries []*Entry
}

// ReadRegistry reads the binfmt_misc instance mounted at dir.
func ReadRegistry(dir string) (*Registry, error) {
	r := &Registry{Dir: dir}
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return r, nil
		}
		return nil, fmt.Errorf("statfs %s: %w", dir, err)
	}
	if uint32(sfs.Type) != binfmtfsMagic {
		return r, nil
	}
	r.Mounted = true
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	names, err := readDirNames(dfd)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	buf := make([]byte, 4096)
	for _, n := range names {
		if n == "register" {
			continue
		}
		data, ino, err := readAt(dfd, n, buf)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return nil, fmt.Errorf("read %s/%s: %w", dir, n, err)
		}
		if n == "status" {
			r.Enabled = strings.TrimSpace(string(data)) == "enabled"
			continue
		}
		e, err := ParseEntry(n, data)
		if err != nil {
			return nil, err
		}
		e.Ino = ino
		r.Entries = append(r.Entries, e)
	}
	sort.SliceStable(r.Entries, func(i, j int) bool { return r.Entries[i].Ino > r.Entries[j].Ino })
	return r, nil
}

// Match returns the entry the kernel would use for a file at name with
// first bytes head, or nil.
func (r *Registry) Match(name string, head []byte) *Entry {
	if r == nil || !r.Enabled {
		return nil
	}
	for _, e := range r.Entries {
		if e.Matches(name, head) {
			return e
		}
	}
	return nil
}

// Lookup returns the entry called name, or nil.
func (r *Registry) Lookup(name string) *Entry {
	if r == nil {
		return nil
	}
	for _, e := range r.Entries {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// readDirNames lists a directory with getdents, without per-entry stats.
func readDirNames(dfd int) ([]string, error) {
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// readAt reads the small file name in directory dfd into buf and returns
// the data and the inode number.
func readAt(dfd int, name string, buf []byte) ([]byte, uint64, error) {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, 0, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, err
	}
	n, err := unix.Read(fd, buf)
	if err != nil {
		return nil, 0, err
	}
	return buf[:n], st.Ino, nil
}
