package main

import (
	"github.com/crossrun/crossrun/internal/cli"
)

var pauseCommand = &cli.Command{
	Name:      "pause",
	Usage:     "suspend all processes in a container",
	ArgsUsage: "<container-id>",
	Description: `The pause command freezes every process of a running container through the
cgroup freezer (freezer.state on cgroup v1, cgroup.freeze on v2). The
container's status becomes "paused" until "crossrun resume".`,
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
		return c.Pause()
	},
}

var resumeCommand = &cli.Command{
	Name:      "resume",
	Usage:     "resume all processes of a paused container",
	ArgsUsage: "<container-id>",
	Description: `The resume command thaws a container frozen by "crossrun pause"; its
status becomes "running" again.`,
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
		return c.Resume()
	},
}
