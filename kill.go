package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/crossrun/crossrun/internal/cli"
	"golang.org/x/sys/unix"
)

var killCommand = &cli.Command{
	Name:      "kill",
	Usage:     "send a signal to a container's init process",
	ArgsUsage: "<container-id> [signal]",
	Description: `The signal is a name (KILL, SIGKILL) or a number (9); the default is
SIGTERM.`,
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "send the signal to every process in the container"},
	},
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 1, false); err != nil {
			return err
		}
		if ctx.NArg() > 2 {
			return fmt.Errorf("\"kill\" takes a container id and at most one signal; see \"crossrun kill --help\"")
		}
		sig := unix.SIGTERM
		if ctx.NArg() == 2 {
			var err error
			if sig, err = parseSignal(ctx.Args().Get(1)); err != nil {
				return err
			}
		}
		c, err := loadContainer(ctx)
		if err != nil {
			return err
		}
		return c.Signal(sig, ctx.Bool("all"))
	},
}

func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d is out of range 1..64", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if strings.HasPrefix(name, "SIGRTMIN") || strings.HasPrefix(name, "SIGRTMAX") {
		base, off := 34, 0
		rest := name[8:]
		if strings.HasPrefix(name, "SIGRTMAX") {
			base = 64
		}
		if rest != "" {
			n, err := strconv.Atoi(rest)
			if err != nil {
				return 0, fmt.Errorf("unknown signal %q", s)
			}
			off = n
		}
		if sig := base + off; sig >= 34 && sig <= 64 {
			return unix.Signal(sig), nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q; use a name like KILL or TERM, or a number", s)
}
