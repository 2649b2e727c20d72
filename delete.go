package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/crossrun/crossrun/internal/cli"
	"github.com/sirupsen/logrus"

	"github.com/crossrun/crossrun/libcontainer"
)

var deleteCommand = &cli.Command{
	Name:      "delete",
	Usage:     "delete a container and the resources it holds",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill the container first if it is running"},
	},
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 1, true); err != nil {
			return err
		}
		force := ctx.Bool("force")
		c, err := loadContainer(ctx)
		if err != nil {
			if errors.Is(err, libcontainer.ErrCorruptState) && force {
				// What the file still tells is cleaned up, then the
				// directory goes.
				logrus.Warnf("deleting %s, whose state cannot be read", ctx.Args().First())
				return libcontainer.DestroyUnreadable(rootDir(ctx), ctx.Args().First())
			}
			if force && libcontainer.ValidateID(ctx.Args().First()) == nil {
				if _, serr := os.Stat(filepath.Join(rootDir(ctx), ctx.Args().First())); errors.Is(serr, os.ErrNotExist) {
					// runc's delete --force of a missing container succeeds.
					return nil
				}
			}
			return err
		}
		if err := c.Lock(); err != nil {
			return err
		}
		defer c.Release()
		return c.Delete(force)
	},
}
