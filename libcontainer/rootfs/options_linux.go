package rootfs

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is the parsed form of a spec mount's options list.
type mountOptions struct {
	flags       uintptr   // MS_* flags to set
	cleared     uintptr   // MS_* flags named by their negation (rw, suid, ...)
	propagation []uintptr // MS_PRIVATE/MS_SHARED/... (maybe |MS_REC), in order
	recSet      uint64    // MOUNT_ATTR_* to set on the whole tree
	recClr      uint64    // MOUNT_ATTR_* to clear on the whole tree
	data        []string  // everything else, passed to the filesystem
	bind        bool
	recursive   bool // rbind
	idmap       bool
	tmpcopyup   bool
}

type flagOption struct {
	clear bool
	flag  uintptr
}

var flagOptions = map[string]flagOption{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"iversion":      {false, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"loud":          {true, unix.MS_SILENT},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"noiversion":    {true, unix.MS_I_VERSION},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"relatime":      {false, unix.MS_RELATIME},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// recursiveOptions are the mount_setattr(2) AT_RECURSIVE variants of the
// per-mount flags: set and clr are MOUNT_ATTR_* bits.
var recursiveOptions = map[string]struct{ set, clr uint64 }{
	"rro":          {unix.MOUNT_ATTR_RDONLY, 0},
	"rrw":          {0, unix.MOUNT_ATTR_RDONLY},
	"rnosuid":      {unix.MOUNT_ATTR_NOSUID, 0},
	"rsuid":        {0, unix.MOUNT_ATTR_NOSUID},
	"rnodev":       {unix.MOUNT_ATTR_NODEV, 0},
	"rdev":         {0, unix.MOUNT_ATTR_NODEV},
	"rnoexec":      {unix.MOUNT_ATTR_NOEXEC, 0},
	"rexec":        {0, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":  {unix.MOUNT_ATTR_NODIRATIME, 0},
	"rdiratime":    {0, unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime":    {unix.MOUNT_ATTR_RELATIME, unix.MOUNT_ATTR__ATIME},
	"rnorelatime":  {unix.MOUNT_ATTR_STRICTATIME, unix.MOUNT_ATTR__ATIME},
	"rnoatime":     {unix.MOUNT_ATTR_NOATIME, unix.MOUNT_ATTR__ATIME},
	"ratime":       {unix.MOUNT_ATTR_RELATIME, unix.MOUNT_ATTR__ATIME},
	"rstrictatime": {unix.MOUNT_ATTR_STRICTATIME, unix.MOUNT_ATTR__ATIME},
	"rnosymfollow": {unix.MOUNT_ATTR_NOSYMFOLLOW, 0},
	"rsymfollow":   {0, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

func parseMountOptions(options []string) (*mountOptions, error) {
	o := &mountOptions{}
	for _, opt := range options {
		if f, ok := flagOptions[opt]; ok {
			if f.clear {
				o.flags &^= f.flag
				o.cleared |= f.flag
			} else {
				o.flags |= f.flag
				o.cleared &^= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[opt]; ok {
			o.propagation = append(o.propagation, p)
			continue
		}
		if r, ok := recursiveOptions[opt]; ok {
			o.recClr |= r.clr
			o.recSet = (o.recSet &^ r.clr) | r.set
			if r.clr&unix.MOUNT_ATTR__ATIME == 0 {
				o.recClr &^= r.set
			}
			continue
		}
		switch opt {
		case "bind":
			o.bind = true
		case "rbind":
			o.bind, o.recursive = true, true
		case "idmap", "ridmap":
			o.idmap = true
		case "tmpcopyup":
			o.tmpcopyup = true
		case "remount":
			return nil, fmt.Errorf("option %q is not valid in a container mount", opt)
		case "":
		default:
			o.data = append(o.data, opt)
		}
	}
	return o, nil
}

// mountAttrs translates the per-mount MS_* flags into MOUNT_ATTR_* bits for
// a bind mount, reproducing MS_BIND|MS_REMOUNT semantics: ro, nosuid, nodev,
// noexec, nodiratime and nosymfollow are set exactly as given, the atime
// mode is changed only when one is named.
func (o *mountOptions) mountAttrs() (set, clr uint64) {
	pairs := []struct {
		ms   uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
		{unix.MS_NOSYMFOLLOW, unix.MOUNT_ATTR_NOSYMFOLLOW},
	}
	for _, p := range pairs {
		if o.flags&p.ms != 0 {
			set |= p.attr
		} else {
			clr |= p.attr
		}
	}
	switch {
	case o.flags&unix.MS_NOATIME != 0:
		set |= unix.MOUNT_ATTR_NOATIME
		clr |= unix.MOUNT_ATTR__ATIME
	case o.flags&unix.MS_STRICTATIME != 0:
		set |= unix.MOUNT_ATTR_STRICTATIME
		clr |= unix.MOUNT_ATTR__ATIME
	case o.flags&unix.MS_RELATIME != 0:
		set |= unix.MOUNT_ATTR_RELATIME
		clr |= unix.MOUNT_ATTR__ATIME
	}
	return set, clr
}

// changesMountFlags reports whether a bind mount needs its per-mount flags
// changed after the bind (runc skips the remount when no flag was given).
func (o *mountOptions) changesMountFlags() bool {
	return (o.flags|o.cleared)&^(unix.MS_BIND|unix.MS_REC) != 0
}

func parsePropagation(field, value string) (uintptr, error) {
	p, ok := propagationOptions[value]
	if !ok {
		return 0, fmt.Errorf("%s: unknown propagation %q (want one of private, rprivate, shared, rshared, slave, rslave, unbindable, runbindable)", field, value)
	}
	return p, nil
}

func dataString(data []string) string { return strings.Join(data, ",") }
