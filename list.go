package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/crossrun/crossrun/internal/cli"
	"github.com/sirupsen/logrus"

	"github.com/crossrun/crossrun/libcontainer"
)

var listCommand = &cli.Command{
	Name:  "list",
	Usage: "list the containers crossrun knows about",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the container ids"},
	},
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 0, true); err != nil {
			return err
		}
		format := ctx.String("format")
		if format != "table" && format != "json" {
			return fmt.Errorf("--format %q is not table or json", format)
		}
		ids, err := libcontainer.List(rootDir(ctx))
		if err != nil {
			return err
		}
		states := []containerState{}
		for _, id := range ids {
			c, err := libcontainer.Load(rootDir(ctx), id)
			if err != nil {
				logrus.Warnf("skipping %s: %v", id, err)
				continue
			}
			states = append(states, stateOf(c))
		}
		if ctx.Bool("quiet") {
			for _, s := range states {
				fmt.Println(s.ID)
			}
			return nil
		}
		if format == "json" {
			return json.NewEncoder(os.Stdout).Encode(states)
		}
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.InitProcessPid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return w.Flush()
	},
}
