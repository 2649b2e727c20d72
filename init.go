package main

import (
	"errors"

	"github.com/crossrun/crossrun/internal/cli"
)

// initCommand is the name under which create re-executes crossrun as a
// container's init. main dispatches it before the command line is parsed;
// reaching this action means someone ran "crossrun init" by hand.
var initCommand = &cli.Command{
	Name:   "init",
	Usage:  "initialize a container's process (internal; do not call it)",
	Hidden: true,
	Action: func(ctx *cli.Context) error {
		return errors.New("\"crossrun init\" is run by crossrun itself inside a new container; it cannot be called directly")
	},
}
