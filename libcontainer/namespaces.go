package libcontainer

import (
	"fmt"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/nsenter"
	"github.com/crossrun/crossrun/spec"
)

// nsPlan says how init gets its namespaces.
//
// New namespaces come from the clone flags of init's fork (one process, no
// extra exec), except cgroup and time: a cgroup namespace must be made after
// init has joined its cgroup, and a time namespace after its offsets are
// known, so init unshares those itself.
//
// Namespaces given by path are joined as follows: a pid namespace by the
// parent thread that forks init (setns on a pid namespace applies to
// children); net, ipc, uts, cgroup and time by init's own locked thread
// before it does anything else. Joining a user or mount namespace needs a
// single-threaded process, which a Go program never is; the nsenter
// constructor does that before the Go runtime starts.
type nsPlan struct {
	cloneFlags uintptr
	pidPath    string
	nsenter    string
}

func planNamespaces(s *specs.Spec) (*nsPlan, error) {
	p := &nsPlan{}
	var joinUserOrMount []string
	newUser := false
	hasPaths := false
	for _, ns := range s.Linux.Namespaces {
		flag := spec.NamespaceFlags[ns.Type]
		if ns.Path == "" {
			switch ns.Type {
			case specs.CgroupNamespace, specs.TimeNamespace:
				// unshared by init
			default:
				p.cloneFlags |= flag
			}
			if ns.Type == specs.UserNamespace {
				newUser = true
			}
			continue
		}
		hasPaths = true
		switch ns.Type {
		case specs.PIDNamespace:
			p.pidPath = ns.Path
		case specs.UserNamespace, specs.MountNamespace:
			joinUserOrMount = append(joinUserOrMount, spec.NamespaceProcName[ns.Type]+":"+ns.Path)
		}
	}
	if len(joinUserOrMount) > 0 {
		p.nsenter = strings.Join(joinUserOrMount, ",")
		if !nsenterAvailable {
			return nil, fmt.Errorf("joining a %s namespace by path needs crossrun built with cgo (the nsenter constructor)", strings.Join(joinUserOrMount, ", "))
		}
	}
	if newUser && hasPaths {
		// A namespace created inside a new user namespace cannot join one
		// owned by the host's: joined namespaces must be entered first.
		for _, ns := range s.Linux.Namespaces {
			if ns.Path != "" && ns.Type != specs.UserNamespace {
				return nil, fmt.Errorf("linux.namespaces: joining the %s namespace at %s together with a new user namespace is not supported; join the user namespace that owns it instead", ns.Type, ns.Path)
			}
		}
	}
	return p, nil
}

// startInit forks init, from a thread that has joined the configured pid
// namespace when there is one.
func startInit(cmd *child, p *nsPlan) error {
	if p.pidPath == "" {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked: it ends with the goroutine instead of
		// going back to the scheduler inside another pid namespace.
		runtime.LockOSThread()
		fd, err := unix.Open(p.pidPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open pid namespace %s: %w", p.pidPath, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWPID); err != nil {
			errc <- fmt.Errorf("join pid namespace %s: %w", p.pidPath, err)
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// joinNamespaces is run by init on its locked thread: it enters the
// namespaces given by path that a multi-threaded process can enter.
func joinNamespaces(s *specs.Spec) error {
	for _, ns := range s.Linux.Namespaces {
		if ns.Path == "" {
			continue
		}
		switch ns.Type {
		case specs.PIDNamespace, specs.UserNamespace, specs.MountNamespace:
			continue
		}
		fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s namespace %s: %w", ns.Type, ns.Path, err)
		}
		err = unix.Setns(fd, int(spec.NamespaceFlags[ns.Type]))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join %s namespace %s: %w", ns.Type, ns.Path, err)
		}
	}
	return nil
}

var nsenterAvailable = nsenter.Available
