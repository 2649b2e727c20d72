package libcontainer

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/binfmt"
)

// routeExec decides, before the root switch and before create returns, how
// the user process will be executed: natively, through a host binfmt_misc
// handler, or through a private binfmt_misc instance in the container's user
// namespace. A process that cannot run fails here, with binfmt's diagnosis,
// so that create reports it. It returns the path to exec inside the
// container.
func routeExec(st *initState) (string, error) {
	s := st.spec
	// Only a new user namespace may get a private binfmt_misc instance: one
	// joined by path is shared, and an instance there would hide the host's
	// handlers from everything else in it.
	userNS := false
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace && ns.Path == "" {
			userNS = true
		}
	}
	d, err := binfmt.Route(st.boot.Rootfs, s.Process.Args, s.Process.Env, binfmt.Options{
		UserNS: userNS,
		Cwd:    s.Process.Cwd,
	})
	if err != nil {
		return "", err
	}
	logrus.Debugf("exec route for %q: %s", s.Process.Args[0], d)
	if err := d.Prepare(st.boot.Rootfs); err != nil {
		return "", fmt.Errorf("prepare exec route (%s): %w", d.Kind, err)
	}
	return d.Exe.Path, nil
}

// execError explains a failed execve.
func execError(arg0, path string, err error) error {
	if errors.Is(err, unix.ENOEXEC) {
		return fmt.Errorf("cannot exec %q (%s): exec format error", arg0, path)
	}
	return fmt.Errorf("exec %q (%s): %w", arg0, path, err)
}
