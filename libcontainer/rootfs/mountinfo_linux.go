package rootfs

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// mountInfo is one line of /proc/<pid>/mountinfo.
type mountInfo struct {
	ID         int
	Parent     int
	Root       string
	Mountpoint string
	Options    string // per-mount options
	Optional   []string
	FSType     string
	Source     string
	SuperOpts  string
}

func readMountInfo(path string) ([]mountInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountInfo
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		mi, err := parseMountInfoLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, mi)
	}
	return out, sc.Err()
}

func parseMountInfoLine(line string) (mountInfo, error) {
	var mi mountInfo
	fields := strings.Fields(line)
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if len(fields) < 7 || sep < 0 || len(fields) < sep+3 {
		return mi, fmt.Errorf("malformed mountinfo line %q", line)
	}
	var err error
	if mi.ID, err = strconv.Atoi(fields[0]); err != nil {
		return mi, fmt.Errorf("malformed mountinfo line %q: %w", line, err)
	}
	if mi.Parent, err = strconv.Atoi(fields[1]); err != nil {
		return mi, fmt.Errorf("malformed mountinfo line %q: %w", line, err)
	}
	mi.Root = unescapeMountInfo(fields[3])
	mi.Mountpoint = unescapeMountInfo(fields[4])
	mi.Options = fields[5]
	mi.Optional = fields[6:sep]
	mi.FSType = fields[sep+1]
	mi.Source = unescapeMountInfo(fields[sep+2])
	if len(fields) > sep+3 {
		mi.SuperOpts = fields[sep+3]
	}
	return mi, nil
}

// unescapeMountInfo decodes the \ooo octal escapes the kernel uses for
// space, tab, newline and backslash.
func unescapeMountInfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
