package main

import (
	"github.com/crossrun/crossrun/internal/cli"
)

var startCommand = &cli.Command{
	Name:      "start",
	Usage:     "start a created container",
	ArgsUsage: "<container-id>",
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 1, true); err != nil {
			return err
		}
		c, err := loadContainer(ctx)
		if err != nil {
			return err
		}
		if err := c.Lock(); err != nil {
			return err
		}
		defer c.Release()
		return c.Start()
	},
}
