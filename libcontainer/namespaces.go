package libcontainer

import (
	"fmt"
	"os"
	"os/exec"
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
func startInit(cmd *exec.Cmd, p *nsPlan) error {
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

// A new network namespace is the costliest part of init's clone (about
// 0.4 ms of kernel work on the test VM: sysctl tables, loopback, per-net
// state of every protocol). When no user namespace is involved, create
// makes it on a thread of its own while it does its other work, and init's
// main thread enters it with setns before anything else; the namespace is
// the same as one made by the clone, and /proc/<init>/ns/net names it since
// init's work and exec happen on its main thread (main.go locks it).
//
// earlyNetns reports whether s asks for a new network namespace that can
// be made this way: not inside a new user namespace, and not with a user
// or mount namespace joined by the nsenter constructor, whose user
// namespace would have to own it.
func earlyNetns(s *specs.Spec) bool {
	newNet := false
	for _, ns := range s.Linux.Namespaces {
		switch {
		case ns.Type == specs.NetworkNamespace && ns.Path == "":
			newNet = true
		case ns.Type == specs.UserNamespace, ns.Type == specs.MountNamespace && ns.Path != "":
			return false
		}
	}
	return newNet
}

// pendingNetns is a network namespace being made by startNetns.
type pendingNetns struct {
	done chan struct{}
	f    *os.File
	err  error
}

// startNetns makes a new network namespace on a locked thread, which ends
// with its goroutine, and keeps a descriptor of it.
func startNetns() *pendingNetns {
	p := &pendingNetns{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			p.err = fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			p.err = fmt.Errorf("open new network namespace: %w", err)
			return
		}
		p.f = os.NewFile(uintptr(fd), "netns")
	}()
	return p
}

// wait returns the namespace's descriptor once it is made.
func (p *pendingNetns) wait() (*os.File, error) {
	<-p.done
	return p.f, p.err
}

// close drops crossrun's descriptor (init has its own by then, or the
// create failed): the namespace goes away with its last user.
func (p *pendingNetns) close() {
	if f, _ := p.wait(); f != nil {
		f.Close()
	}
}

// enterNetns is run by init on its main thread, first: it enters the
// network namespace create made for it, when there is one.
func enterNetns() error {
	fd := envFd(envInitNetns)
	if fd < 0 {
		return nil
	}
	err := unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("enter the container's network namespace: %w", err)
	}
	return nil
}
