package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/crossrun/crossrun/internal/cli"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crossrun/crossrun/libcontainer"
	"github.com/crossrun/crossrun/spec"
)

// createFlags are shared by create and run.
var createFlags = []cli.Flag{
	&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: "", Usage: "path to the root of the bundle directory (default: the current directory)"},
	&cli.StringFlag{Name: "console-socket", Usage: "path to an AF_UNIX socket that receives the pty master of the console"},
	&cli.StringFlag{Name: "pid-file", Usage: "file to write the container's init pid to"},
	&cli.BoolFlag{Name: "no-pivot", Usage: "do not use pivot_root to jail the process inside the rootfs (for a rootfs on a ramdisk)"},
	&cli.BoolFlag{Name: "no-new-keyring", Usage: "do not create a new session keyring for the container"},
	&cli.IntFlag{Name: "preserve-fds", Usage: "pass this many extra file descriptors (from fd 3 on) into the container"},
}

var createCommand = &cli.Command{
	Name:      "create",
	Usage:     "create a container",
	ArgsUsage: "<container-id>",
	Description: `The create command creates a container from a bundle and leaves its
process waiting; "crossrun start" runs it.`,
	Flags: createFlags,
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 1, true); err != nil {
			return err
		}
		bundle, s, err := loadBundle(ctx)
		if err != nil {
			return err
		}
		c, _, err := createContainer(ctx, bundle, s, false, nil)
		if err != nil {
			return err
		}
		c.Release()
		return nil
	},
}

func bundlePath(ctx *cli.Context) (string, error) {
	b := ctx.String("bundle")
	if b == "" {
		b = "."
	}
	abs, err := filepath.Abs(b)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("bundle %s: %w", abs, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("bundle %s is not a directory", abs)
	}
	return abs, nil
}

// loadBundle checks the container id, resolves --bundle and loads its
// configuration with crossrun's annotations applied.
func loadBundle(ctx *cli.Context) (string, *specs.Spec, error) {
	if err := libcontainer.ValidateID(ctx.Args().First()); err != nil {
		return "", nil, err
	}
	bundle, err := bundlePath(ctx)
	if err != nil {
		return "", nil, err
	}
	s, err := spec.Load(bundle)
	if err != nil {
		return "", nil, err
	}
	if err := applyAnnotations(s); err != nil {
		return "", nil, err
	}
	if joinsPidNamespace(s) {
		// init is forked inside that pid namespace: fork it from the
		// read-only view of crossrun, not the host file.
		if err := libcontainer.RunFromProtectedView(); err != nil {
			return "", nil, err
		}
	}
	return bundle, s, nil
}

// createContainer creates the container named by the first argument from a
// loaded bundle. console, when set, receives the pty master in place of
// --console-socket (a foreground run with a terminal).
func createContainer(ctx *cli.Context, bundle string, s *specs.Spec, foreground bool, console *os.File) (*libcontainer.Container, *libcontainer.Process, error) {
	if n := ctx.Int("preserve-fds"); n < 0 {
		return nil, nil, fmt.Errorf("--preserve-fds %d must not be negative", n)
	}
	opts := libcontainer.CreateOptions{
		Root:          rootDir(ctx),
		ID:            ctx.Args().First(),
		Bundle:        bundle,
		Spec:          s,
		PidFile:       ctx.String("pid-file"),
		ConsoleSocket: ctx.String("console-socket"),
		NoPivot:       ctx.Bool("no-pivot"),
		NoNewKeyring:  ctx.Bool("no-new-keyring"),
		PreserveFDs:   ctx.Int("preserve-fds"),
		SystemdCgroup: ctx.Bool("systemd-cgroup"),
		Rootless:      rootless(ctx),
		Foreground:    foreground,
		Console:       console,
	}
	return libcontainer.Create(opts)
}

// joinsPidNamespace reports whether the configuration joins an existing pid
// namespace (linux.namespaces has a pid entry with a path).
func joinsPidNamespace(s *specs.Spec) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path != "" {
			return true
		}
	}
	return false
}
