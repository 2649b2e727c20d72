package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// writeFile writes value to an existing cgroup control file. Control files
// are never created: a missing file means the controller or feature is
// absent, and the error says so (errors.Is(err, fs.ErrNotExist)).
func writeFile(dir, name, value string) error {
	p := filepath.Join(dir, name)
	if err := writeControl(p, value); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

// writeControl writes value to the control file at path in one write(2),
// which is how cgroupfs takes it, with plain system calls: an *os.File
// would register the file (cgroupfs files can be polled) with the Go
// runtime's poller and take it out again, four more system calls for each
// of the dozens of writes a container start makes. The error is the bare
// errno.
func writeControl(path, value string) error {
	for {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		_, err = unix.Write(fd, []byte(value))
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		if err != unix.EINTR {
			return err
		}
	}
}

func readFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return "", &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	// Plain reads, for the reason writeControl gives.
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n == 0 {
			return string(buf), nil
		}
		buf = buf[:len(buf)+n]
	}
}

// parseUint parses a cgroup number; "max" is math.MaxUint64 and negative
// values (v1 reports -1 for "unlimited" in a few places) are 0.
func parseUint(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("parse %q: %w", s, err)
	}
	return v, nil
}

func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	v, err := parseUint(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
	}
	return v, nil
}

// readUintOpt is readUint with a missing file read as 0.
func readUintOpt(dir, name string) (uint64, error) {
	v, err := readUint(dir, name)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	return v, err
}

// parseKeyValues parses "key value" lines (memory.stat, cpu.stat, ...).
// Lines that do not parse are skipped.
func parseKeyValues(content string) map[string]uint64 {
	m := make(map[string]uint64)
	sc := bufio.NewScanner(strings.NewReader(content))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		if v, err := parseUint(f[1]); err == nil {
			m[f[0]] = v
		}
	}
	return m
}

func readKeyValues(dir, name string) (map[string]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	return parseKeyValues(s), nil
}

// readProcs reads cgroup.procs of one directory.
func readProcs(dir string) ([]int, error) {
	s, err := readFile(dir, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(s) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s/cgroup.procs: bad pid %q", dir, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// readProcsRecursive collects cgroup.procs of dir and every cgroup below.
func readProcsRecursive(dir string) ([]int, error) {
	var all []int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, os.ErrNotExist) {
				return nil // a child cgroup went away while we walked
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := readProcs(p)
		if err != nil {
			if p != dir && errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		all = append(all, pids...)
		return nil
	})
	return all, err
}

// WritePid moves pid into the cgroup at dir (its cgroup.procs).
func WritePid(dir string, pid int) error {
	return writeFile(dir, "cgroup.procs", strconv.Itoa(pid))
}

// removeTree removes the cgroup at dir and every cgroup below it, deepest
// first. A missing dir is not an error.
func removeTree(dir string) error {
	// A container's cgroup rarely has children: try the directory itself
	// first and read it only when the kernel says it is not empty.
	err := unix.Rmdir(dir)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	return nil
}
