package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

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
				// Nothing trustworthy is left to clean but the directory.
				dir := filepath.Join(rootDir(ctx), ctx.Args().First())
				logrus.Warnf("removing %s with a corrupt state", dir)
				return os.RemoveAll(dir)
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
