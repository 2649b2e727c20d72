package libcontainer

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/libcontainer/cgroups"
)

// newCgroup makes the cgroup manager for a new container.
func newCgroup(s *specs.Spec, id string, systemd, rootless bool) (cgroups.Manager, error) {
	return cgroups.New(s.Linux.CgroupsPath, id, cgroups.Options{Systemd: systemd, Rootless: rootless})
}

// loadCgroup rebuilds a container's cgroup manager from its saved paths.
func loadCgroup(paths map[string]string, systemd, rootless bool) (cgroups.Manager, error) {
	return cgroups.Load(paths, cgroups.Options{Systemd: systemd, Rootless: rootless})
}

// Cgroup returns the container's cgroup manager, or nil if it has none.
func (c *Container) Cgroup() cgroups.Manager { return c.cgroup() }

// creatorAlive reports whether some crossrun holds the container's lock
// while its state is still empty, i.e. a create is under way.
func (c *Container) creatorAlive() bool {
	f, err := lockDirNonBlocking(c.dir)
	if err == unix.EWOULDBLOCK {
		return true
	}
	if f != nil {
		f.Close()
	}
	return false
}
