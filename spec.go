package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/crossrun/crossrun/internal/cli"

	"github.com/crossrun/crossrun/seccomp"
	"github.com/crossrun/crossrun/spec"
)

var specCommand = &cli.Command{
	Name:  "spec",
	Usage: "create a new specification file (config.json)",
	Description: `The spec command writes a config.json for a bundle: an interactive sh
in its own namespaces, like runc's. Edit it before running the container.

With --kernel-abi X.Y the spec also gets a seccomp profile (linux.seccomp)
under which every syscall introduced after Linux X.Y fails with ENOSYS, as
if the container ran on that kernel; everything else is allowed. X.Y is
3.0 or later and no newer than the running kernel. See docs/kernel-abi.md.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "path to the root of the bundle directory"},
		&cli.BoolFlag{Name: "rootless", Usage: "generate a configuration for a rootless container"},
		&cli.StringFlag{Name: "kernel-abi", Usage: "make syscalls newer than Linux `X.Y` fail with ENOSYS (a seccomp profile)"},
	},
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 0, true); err != nil {
			return err
		}
		s := spec.Default()
		if ctx.Bool("rootless") {
			spec.MakeRootless(s)
		}
		if ctx.IsSet("kernel-abi") {
			prof, err := seccomp.KernelABIProfile(ctx.String("kernel-abi"), s.Linux.Seccomp)
			if err != nil {
				return fmt.Errorf("--kernel-abi: %w", err)
			}
			s.Linux.Seccomp = prof
		}
		bundle := ctx.String("bundle")
		path := filepath.Join(bundle, spec.ConfigName)
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("file %s exists; remove it first", path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		data, err := json.MarshalIndent(s, "", "\t")
		if err != nil {
			return err
		}
		return os.WriteFile(path, append(data, '\n'), 0o666)
	},
}
