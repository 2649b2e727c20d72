// Package spec loads, validates and generates OCI runtime configurations.
//
// The runtime-spec type specs.Spec is the only configuration type crossrun
// uses: this package reads it from a bundle, checks it, and never converts it
// into a second representation.
package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/internal/specjson"
)

// ConfigName is the name of the configuration file inside a bundle.
const ConfigName = "config.json"

// MaxConfigSize bounds how much of config.json is read. Real configurations
// are a few kilobytes; anything this large is a mistake or an attack.
const MaxConfigSize = 8 << 20

// Load reads and validates bundle/config.json. The file must be a regular
// file (not a symlink, FIFO or device) no larger than MaxConfigSize.
func Load(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, ConfigName)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("load %s: no such file; run \"crossrun spec\" in the bundle or pass --bundle", path)
		case errors.Is(err, unix.ELOOP):
			return nil, fmt.Errorf("load %s: is a symlink; the configuration must be a regular file in the bundle", path)
		}
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("load %s: not a regular file; the configuration must be a regular file", path)
	}
	if st.Size > MaxConfigSize {
		return nil, fmt.Errorf("load %s: file is %d bytes, larger than the %d byte limit", path, st.Size, MaxConfigSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("load %s: file grew beyond the %d byte limit while being read", path, MaxConfigSize)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := Validate(s, bundle); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse decodes a configuration. Unknown fields are accepted, as the
// runtime-spec requires of a runtime.
func Parse(data []byte) (*specs.Spec, error) {
	s, err := specjson.DecodeSpec(data)
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			return nil, fmt.Errorf("invalid JSON at line %d column %d: %v", line, col, se)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("field %q: expected %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	return s, nil
}

func position(data []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// Version reports the major, minor and patch of an ociVersion string such as
// "1.0.2-dev".
func Version(v string) (major, minor, patch int, err error) {
	core := v
	if i := strings.IndexAny(core, "-+"); i >= 0 {
		core = core[:i]
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return 0, 0, 0, fmt.Errorf("ociVersion %q is not of the form MAJOR.MINOR.PATCH", v)
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return 0, 0, 0, fmt.Errorf("ociVersion %q is not of the form MAJOR.MINOR.PATCH", v)
		}
		nums[i] = n
	}
	return nums[0], nums[1], nums[2], nil
}

// RootfsPath returns the absolute rootfs path of a bundle's configuration.
func RootfsPath(s *specs.Spec, bundle string) string {
	p := s.Root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(bundle, p)
	}
	return filepath.Clean(p)
}
