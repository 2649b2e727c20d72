// Command crossrun is an OCI container runtime with runc's command line. It
// also runs containers built for other CPU architectures through qemu-user,
// and can give a container an older kernel's syscall set.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/crossrun/crossrun/internal/cli"
	"github.com/sirupsen/logrus"

	"github.com/crossrun/crossrun/libcontainer"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `an OCI runtime that also runs foreign-architecture containers

crossrun runs containers from OCI bundles (a config.json and a root
filesystem) with the same commands, flags, state and exit codes as runc.
Before it execs a container's entrypoint it checks the binary's CPU
architecture: a foreign binary is run through qemu-user, and when nothing
can run it, crossrun says why.

To start a container:

    mkdir -p mybundle/rootfs && <put a root filesystem there>
    cd mybundle && crossrun spec && crossrun run mycontainer`

func init() {
	if libcontainer.IsInit() {
		// Init does its work on the main thread, which execs at the end.
		runtime.GOMAXPROCS(1)
		runtime.LockOSThread()
	}
}

func main() {
	if libcontainer.IsInit() {
		libcontainer.InitMain()
		return
	}
	app := newApp()
	if err := app.Run(os.Args); err != nil {
		fatal(err)
	}
}

func newApp() *cli.App {
	app := &cli.App{
		Name:    "crossrun",
		Usage:   usage,
		Version: version,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "debug", Usage: "enable debug logging"},
			&cli.StringFlag{Name: "log", Usage: "write logs to this file instead of stderr"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&cli.StringFlag{Name: "root", Value: defaultRoot(), Usage: "directory for the state of containers"},
			&cli.StringFlag{Name: "criu", Value: "criu", Usage: "accepted for runc compatibility; checkpointing is not supported"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "manage cgroups through systemd (cgroupsPath is \"slice:prefix:name\")"},
			&cli.StringFlag{Name: "rootless", Value: "auto", Usage: "ignore cgroup permission errors: true, false or auto"},
		},
		Before: setupLogging,
		Commands: []*cli.Command{
			createCommand,
			deleteCommand,
			eventsCommand,
			execCommand,
			featuresCommand,
			initCommand,
			killCommand,
			listCommand,
			pauseCommand,
			psCommand,
			resumeCommand,
			runCommand,
			specCommand,
			startCommand,
			stateCommand,
			updateCommand,
			binfmtCommand,
		},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	app.CommandNotFound = func(ctx *cli.Context, name string) {
		fatal(fmt.Errorf("unknown command %q; see \"crossrun --help\"", name))
	}
	return app
}

func defaultRoot() string {
	if os.Geteuid() != 0 {
		if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
			return dir + "/crossrun"
		}
	}
	return "/run/crossrun"
}

func setupLogging(ctx *cli.Context) error {
	if ctx.Bool("debug") {
		logrus.SetLevel(logrus.DebugLevel)
	}
	if path := ctx.String("log"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("open --log %s: %w", path, err)
		}
		logrus.SetOutput(f)
		logToFile = true
	}
	switch ctx.String("log-format") {
	case "text":
	case "json":
		logrus.SetFormatter(&logrus.JSONFormatter{})
	default:
		return fmt.Errorf("--log-format %q is not text or json", ctx.String("log-format"))
	}
	return nil
}

var logToFile bool

// exitError carries a process exit code out of a command.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// fatal reports err as one line and exits 1 (or the carried exit code).
func fatal(err error) {
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	reportError(err)
	os.Exit(1)
}

// reportError prints err as one line on stderr, and logs it when --log is
// set (containerd's shim reads the error from the log).
func reportError(err error) {
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	if logToFile {
		logrus.Error(msg)
	}
	fmt.Fprintln(os.Stderr, "crossrun: "+msg)
}

// checkArgs enforces a command's argument count with runc's message.
func checkArgs(ctx *cli.Context, want int, exact bool) error {
	n := ctx.NArg()
	if exact && n != want {
		return fmt.Errorf("%q requires exactly %d argument(s), got %d; see \"crossrun %s --help\"", ctx.Command.Name, want, n, ctx.Command.Name)
	}
	if !exact && n < want {
		return fmt.Errorf("%q requires at least %d argument(s), got %d; see \"crossrun %s --help\"", ctx.Command.Name, want, n, ctx.Command.Name)
	}
	return nil
}

func rootDir(ctx *cli.Context) string { return ctx.String("root") }

func rootless(ctx *cli.Context) bool {
	switch ctx.String("rootless") {
	case "true":
		return true
	case "false":
		return false
	}
	return os.Geteuid() != 0
}

// loadContainer opens the container named by the first argument.
func loadContainer(ctx *cli.Context) (*libcontainer.Container, error) {
	id := ctx.Args().First()
	if id == "" {
		return nil, fmt.Errorf("container id cannot be empty; see \"crossrun %s --help\"", ctx.Command.Name)
	}
	return libcontainer.Load(rootDir(ctx), id)
}
