package libcontainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/libcontainer/cgroups"
)

// Status is a container's lifecycle state, as the runtime-spec names them,
// plus runc's "paused".
type Status string

const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Paused   Status = "paused"
	Stopped  Status = "stopped"
)

const (
	stateFile    = "state.json"
	execFifoName = "exec.fifo"
)

// State is what crossrun keeps about a container in <root>/<id>/state.json.
// The status is not stored: it is computed from the init process, the exec
// fifo and the cgroup freezer each time it is asked for.
type State struct {
	ID             string            `json:"id"`
	InitPid        int               `json:"init_process_pid"`
	InitStartTime  uint64            `json:"init_process_start"`
	Created        time.Time         `json:"created"`
	Bundle         string            `json:"bundle"`
	Rootfs         string            `json:"rootfs"`
	Owner          string            `json:"owner"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	CgroupPaths    map[string]string `json:"cgroup_paths,omitempty"`
	NamespacePaths map[string]string `json:"namespace_paths,omitempty"`
	// Ready is set once init has finished setting up and waits on the exec
	// fifo; before that the container is "creating".
	Ready bool `json:"ready"`
	// Config is the configuration the container was created with, after
	// crossrun's own additions (kernel-ABI profile).
	Config *specs.Spec `json:"config"`
	// SystemdCgroup and Rootless record the global flags at create time.
	SystemdCgroup bool `json:"systemd_cgroup,omitempty"`
	Rootless      bool `json:"rootless,omitempty"`
}

// ValidateID checks a container id the way runc does: letters, digits and
// "_+.-" only, not "." or "..".
func ValidateID(id string) error {
	if id == "" {
		return errors.New("container id is empty; give one, e.g. \"crossrun run mycontainer\"")
	}
	if len(id) > 1024 {
		return fmt.Errorf("container id is %d characters long; the limit is 1024", len(id))
	}
	if !validIDChars(id) || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q: use only letters, digits and _ + . - (and not \".\" or \"..\")", id)
	}
	return nil
}

// validIDChars reports whether id is made of letters, digits and "_+.-"
// only (runc's ^[\w+.-]+$).
func validIDChars(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '+', c == '.', c == '-':
		default:
			return false
		}
	}
	return id != ""
}

// writeState replaces dir/state.json atomically: a reader sees the old
// content or the new, never a part. The new content goes into a temporary
// file that is then exchanged with state.json (renameat2 RENAME_EXCHANGE)
// and unlinked with the old content. A plain rename over state.json would do
// as well, but ext4 (auto_da_alloc) starts writing back a file renamed over
// another at once, 0.1-0.3 ms on the path of every start where the state
// directory is on ext4 rather than tmpfs; an exchange does not. The first
// write, and file systems without exchange, use rename.
func writeState(dir string, st *State) error {
	data, err := encodeState(st)
	if err != nil {
		return fmt.Errorf("save state of %s: encode: %w", st.ID, err)
	}
	tmp := filepath.Join(dir, ".state-"+strconv.Itoa(os.Getpid()))
	if err := writeNewFile(tmp, data); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	target := filepath.Join(dir, stateFile)
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, target, unix.RENAME_EXCHANGE)
	if err == nil {
		// tmp now holds the old state.
		unix.Unlink(tmp)
		return nil
	}
	if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		unix.Unlink(tmp)
		return fmt.Errorf("save state: %w", err)
	}
	if err := unix.Rename(tmp, target); err != nil {
		unix.Unlink(tmp)
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// writeNewFile writes data into a new file at path (mode 0600), replacing a
// leftover of an earlier process that had the same pid and died before it
// removed its temporary file.
func writeNewFile(path string, data []byte) error {
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Open(path, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		unix.Unlink(path)
		fd, err = unix.Open(path, flags, 0o600)
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: path, Err: err}
	}
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			unix.Close(fd)
			unix.Unlink(path)
			return &os.PathError{Op: "write", Path: path, Err: err}
		}
		data = data[n:]
	}
	if err := unix.Close(fd); err != nil {
		unix.Unlink(path)
		return &os.PathError{Op: "close", Path: path, Err: err}
	}
	return nil
}

// ErrCorruptState marks a state.json that exists but cannot be read.
var ErrCorruptState = errors.New("corrupt state")

func readState(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, corruptState(dir, errors.New("the file is empty"))
	}
	st, err := decodeState(data)
	if err != nil {
		return nil, corruptState(dir, err)
	}
	return st, nil
}

// readStateOf reads the state of container id and checks that it is one:
// JSON that decodes (even "null") but names another container or has no
// configuration is corrupt too.
func readStateOf(dir, id string) (*State, error) {
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	if st.ID != id {
		return nil, corruptState(dir, fmt.Errorf("it is for container %q", st.ID))
	}
	if st.Config == nil || st.Config.Process == nil {
		return nil, corruptState(dir, errors.New("it has no configuration"))
	}
	return st, nil
}

func corruptState(dir string, why error) error {
	return fmt.Errorf("%w: %s: %v; \"crossrun delete --force %s\" removes the container", ErrCorruptState, filepath.Join(dir, stateFile), why, filepath.Base(dir))
}

// salvageState reads what it can of a corrupt state.json: the top-level
// members that precede the damage and decode on their own (init's pid and
// start time, the cgroup paths). A cgroup path is kept only when it is
// under the cgroup root and names the container, so that a damaged file
// cannot point the cleanup at someone else's processes.
func salvageState(dir, id string) *State {
	st := &State{ID: id}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return st
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			break
		}
		switch key {
		case "init_process_pid":
			_ = json.Unmarshal(raw, &st.InitPid)
		case "init_process_start":
			_ = json.Unmarshal(raw, &st.InitStartTime)
		case "systemd_cgroup":
			_ = json.Unmarshal(raw, &st.SystemdCgroup)
		case "rootless":
			_ = json.Unmarshal(raw, &st.Rootless)
		case "cgroup_paths":
			var paths map[string]string
			if json.Unmarshal(raw, &paths) != nil {
				continue
			}
			for ctrl, p := range paths {
				if filepath.IsAbs(p) && filepath.Clean(p) == p && strings.HasPrefix(p, cgroups.DefaultRoot+"/") &&
					strings.Contains(filepath.Base(p), id) {
					if st.CgroupPaths == nil {
						st.CgroupPaths = map[string]string{}
					}
					st.CgroupPaths[ctrl] = p
				}
			}
		}
	}
	if st.InitStartTime == 0 {
		// Without its start time a pid could be anyone's by now.
		st.InitPid = 0
	}
	return st
}

// processStartTime returns field 22 of /proc/PID/stat (start time in clock
// ticks), which together with the pid identifies a process across pid reuse.
func processStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is the state (field 3); start time is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return 0, unix.ESRCH
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// initAlive reports whether the container's init process still runs (and
// is the same process, not a reused pid).
func (st *State) initAlive() bool {
	if st.InitPid <= 0 {
		return false
	}
	start, err := processStartTime(st.InitPid)
	if err != nil {
		return false
	}
	return start == st.InitStartTime
}
