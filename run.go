package main

import (
	"errors"
	"os"

	"github.com/crossrun/crossrun/internal/cli"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

var runCommand = &cli.Command{
	Name:      "run",
	Usage:     "create and start a container, and wait for it",
	ArgsUsage: "<container-id>",
	Description: `The run command creates and starts a container from a bundle. In the
foreground it forwards signals to the container and exits with its exit
code (128+N when it was killed by signal N), then deletes it unless --keep.`,
	Flags: append([]cli.Flag{
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the container's process"},
		&cli.BoolFlag{Name: "keep", Usage: "do not delete the container after it exits"},
	}, createFlags...),
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 1, true); err != nil {
			return err
		}
		if ctx.Bool("detach") && ctx.Bool("keep") {
			return errors.New("--keep has no effect with --detach; use one of them")
		}
		code, err := runContainer(ctx)
		if err != nil {
			return err
		}
		if code != 0 {
			return &exitError{code}
		}
		return nil
	},
}

func runContainer(ctx *cli.Context) (int, error) {
	detach := ctx.Bool("detach")
	bundle, s, err := loadBundle(ctx)
	if err != nil {
		return 0, err
	}
	var local, remote *os.File
	if s.Process.Terminal && ctx.String("console-socket") == "" {
		if detach {
			return 0, errors.New("process.terminal is true and --detach was given: pass --console-socket to receive the terminal")
		}
		if local, remote, err = newConsolePair(); err != nil {
			return 0, err
		}
		defer local.Close()
	}
	if !detach {
		// Become the subreaper so an init forked by the nsenter
		// constructor is still ours to wait for.
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	sigs := make(chan os.Signal, 128)
	sigsReady, sigsRest := func() {}, func() {}
	if !detach {
		sigsReady, sigsRest = relaySignals(sigs)
	}
	c, p, err := createContainer(ctx, bundle, s, !detach, remote)
	if remote != nil {
		remote.Close()
	}
	if err != nil {
		return 0, err
	}
	defer c.Release()
	var master *os.File
	if local != nil {
		if master, err = recvConsole(local); err != nil {
			_ = c.Delete(true)
			return 0, err
		}
		defer master.Close()
	}
	sigsReady()
	if err := c.Start(); err != nil {
		_ = c.Delete(true)
		return 0, err
	}
	if detach {
		return 0, nil
	}
	sigsRest()
	code, err := forwardAndWait(p.Pid, master, sigs, p.Wait)
	if err != nil {
		return 0, err
	}
	if !ctx.Bool("keep") {
		if err := c.Delete(true); err != nil {
			logrus.Warnf("delete container %s: %v", c.ID(), err)
		}
	}
	return code, nil
}
