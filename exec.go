package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/crossrun/crossrun/internal/cli"
	"github.com/crossrun/crossrun/internal/specjson"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/libcontainer"
)

var execCommand = &cli.Command{
	Name:      "exec",
	Usage:     "run a new process inside a running container",
	ArgsUsage: "<container-id> [command [args...]]",
	Description: `The exec command runs a process in all of the namespaces and the cgroup
of a running (or created) container, with its capabilities, rlimits, seccomp
filter, user and environment unless the flags say otherwise. The program is
given after the container id, or as a whole runtime-spec process with
--process.

In the foreground crossrun forwards signals to the process and exits with
its exit code (128+N when it was killed by signal N). When the program
cannot be executed it exits with 127 (not found) or 126 (not executable),
and 1 for any other failure, with a one-line error.

    crossrun exec mycontainer ps
    crossrun exec -t mycontainer sh
    crossrun exec -d --pid-file /run/x.pid -e FOO=bar --cwd /tmp mycontainer sleep 100`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "path to a process.json (a runtime-spec process); replaces the arguments and the other process flags"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-TTY inside the container"},
		&cli.StringFlag{Name: "console-socket", Usage: "path to an AF_UNIX socket that receives the pty master (with --tty)"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "do not wait for the process: exit once it has started"},
		&cli.StringFlag{Name: "pid-file", Usage: "file to write the process's pid to"},
		&cli.StringFlag{Name: "cwd", Usage: "working directory inside the container"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable KEY=VALUE (repeatable)"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "UID[:GID] to run the process as (numeric)"},
		&cli.StringSliceFlag{Name: "additional-gids", Aliases: []string{"g"}, Usage: "additional group id (repeatable)"},
		&cli.StringSliceFlag{Name: "cap", Aliases: []string{"c"}, Usage: "add a capability to the container's (repeatable), e.g. CAP_NET_ADMIN"},
		&cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs for the process"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass this many extra file descriptors (from fd 3 on) to the process"},
		&cli.StringFlag{Name: "apparmor", Usage: "accepted for runc compatibility; ignored (no AppArmor support)"},
		&cli.StringFlag{Name: "process-label", Usage: "accepted for runc compatibility; ignored (no SELinux support)"},
	},
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 1, false); err != nil {
			return err
		}
		code, err := execProcess(ctx)
		if err != nil {
			var se *libcontainer.ExecStartError
			if errors.As(err, &se) {
				reportError(se)
				return &exitError{se.Code}
			}
			return err
		}
		if code != 0 {
			return &exitError{code}
		}
		return nil
	},
}

func execProcess(ctx *cli.Context) (int, error) {
	c, err := loadContainer(ctx)
	if err != nil {
		return 0, err
	}
	st := c.State()
	if st.Config == nil || st.Config.Process == nil {
		// Not yet saved: a create is under way.
		return 0, fmt.Errorf("cannot exec in container %s while it is being created; wait for \"crossrun create\" to finish", c.ID())
	}
	p, err := execSpec(ctx, st.Config)
	if err != nil {
		return 0, err
	}
	if v := ctx.String("apparmor"); v != "" {
		logrus.Debugf("exec: --apparmor %q ignored: crossrun has no AppArmor support", v)
	}
	if v := ctx.String("process-label"); v != "" {
		logrus.Debugf("exec: --process-label %q ignored: crossrun has no SELinux support", v)
	}
	detach := ctx.Bool("detach")
	opts := libcontainer.ExecOptions{
		Process:       p,
		ConsoleSocket: ctx.String("console-socket"),
		PidFile:       ctx.String("pid-file"),
		PreserveFDs:   ctx.Int("preserve-fds"),
	}
	var localConsole *os.File
	if p.Terminal && opts.ConsoleSocket == "" {
		if detach {
			return 0, errors.New("exec: --tty with --detach needs --console-socket to receive the terminal")
		}
		if localConsole, opts.Console, err = newConsolePair(); err != nil {
			return 0, err
		}
		defer localConsole.Close()
		if p.ConsoleSize == nil {
			if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
				p.ConsoleSize = &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
			}
		}
	}
	sigs := make(chan os.Signal, 128)
	sigsReady, sigsRest := func() {}, func() {}
	if !detach {
		sigsReady, sigsRest = relaySignals(sigs)
	}
	proc, err := c.Exec(opts)
	if opts.Console != nil {
		opts.Console.Close()
	}
	if err != nil {
		return 0, err
	}
	var master *os.File
	if localConsole != nil {
		master, err = recvConsole(localConsole)
		if err != nil {
			_ = unix.Kill(proc.Pid, unix.SIGKILL)
			_, _ = proc.Wait()
			return 0, err
		}
		defer master.Close()
	}
	if detach {
		return 0, nil
	}
	sigsReady()
	sigsRest()
	return forwardAndWait(proc.Pid, master, sigs, proc.Wait)
}

// execSpec builds the process to run: the --process file as it is, or the
// container's process with the arguments and flags applied.
func execSpec(ctx *cli.Context, cfg *specs.Spec) (*specs.Process, error) {
	if path := ctx.String("process"); path != "" {
		if ctx.NArg() > 1 {
			return nil, errors.New("exec: give the command either in --process or after the container id, not both")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read --process: %w", err)
		}
		p, err := specjson.DecodeProcess(data)
		if err != nil {
			return nil, fmt.Errorf("parse --process %s: %w", path, err)
		}
		if len(p.Args) == 0 {
			return nil, fmt.Errorf("--process %s: args is empty", path)
		}
		if ctx.Bool("tty") {
			p.Terminal = true
		}
		return p, nil
	}
	if ctx.NArg() < 2 {
		return nil, errors.New("exec: no command given; pass it after the container id (crossrun exec <id> <command> [args...]) or use --process")
	}
	// A deep copy of the container's process, so that appends do not
	// alias its slices.
	data, err := specjson.EncodeProcess(cfg.Process)
	if err != nil {
		return nil, fmt.Errorf("copy the container's process: %w", err)
	}
	p, err := specjson.DecodeProcess(data)
	if err != nil {
		return nil, fmt.Errorf("copy the container's process: %w", err)
	}
	p.Args = ctx.Args().Slice()[1:]
	p.Terminal = ctx.Bool("tty")
	p.ConsoleSize = nil
	if cwd := ctx.String("cwd"); cwd != "" {
		p.Cwd = cwd
	}
	for _, kv := range ctx.StringSlice("env") {
		p.Env = setEnv(p.Env, kv)
	}
	if u := ctx.String("user"); u != "" {
		uidStr, gidStr, hasGid := strings.Cut(u, ":")
		uid, err := strconv.ParseUint(uidStr, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--user %q: the uid must be a number (names are not looked up)", u)
		}
		p.User.UID = uint32(uid)
		if hasGid {
			gid, err := strconv.ParseUint(gidStr, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("--user %q: the gid must be a number", u)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, g := range ctx.StringSlice("additional-gids") {
		gid, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--additional-gids %q is not a number", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	if caps := ctx.StringSlice("cap"); len(caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, c := range caps {
			c = strings.ToUpper(c)
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			pc := p.Capabilities
			pc.Bounding = append(pc.Bounding, c)
			pc.Effective = append(pc.Effective, c)
			pc.Permitted = append(pc.Permitted, c)
			// Ambient needs inheritable; add to it only when the
			// container already uses inheritable capabilities.
			if len(pc.Inheritable) > 0 {
				pc.Inheritable = append(pc.Inheritable, c)
				pc.Ambient = append(pc.Ambient, c)
			}
		}
	}
	if ctx.IsSet("no-new-privs") {
		p.NoNewPrivileges = ctx.Bool("no-new-privs")
	}
	return p, nil
}

// setEnv sets KEY=VALUE in env, replacing an earlier KEY.
func setEnv(env []string, kv string) []string {
	key, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}
