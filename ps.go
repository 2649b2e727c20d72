package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/crossrun/crossrun/internal/cli"
	"github.com/crossrun/crossrun/internal/timerslack"

	"github.com/crossrun/crossrun/libcontainer"
)

var psCommand = &cli.Command{
	Name:      "ps",
	Usage:     "list the processes running in a container",
	ArgsUsage: "<container-id> [ps options]",
	Description: `With --format table (the default) crossrun runs the host's ps(1) with the
given options (default -ef) and keeps the header and the lines of the
container's processes; ps must be installed and its output must have a PID
column. With --format json it prints the container's host pids as a JSON
array and takes no ps options.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "output format: table or json"},
	},
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 1, false); err != nil {
			return err
		}
		format := ctx.String("format")
		if format != "table" && format != "json" {
			return fmt.Errorf("--format %q is not table or json", format)
		}
		psArgs := ctx.Args().Slice()[1:]
		if format == "json" && len(psArgs) > 0 {
			return errors.New("ps options cannot be used with --format json")
		}
		c, err := loadContainer(ctx)
		if err != nil {
			return err
		}
		if c.Status() == libcontainer.Stopped {
			return fmt.Errorf("container %s is not running", c.ID())
		}
		m := c.Cgroup()
		if m == nil {
			return fmt.Errorf("container %s has no cgroup to list processes from", c.ID())
		}
		pids, err := m.Pids()
		if err != nil {
			return fmt.Errorf("list processes of %s: %w", c.ID(), err)
		}
		if format == "json" {
			if pids == nil {
				pids = []int{}
			}
			return json.NewEncoder(os.Stdout).Encode(pids)
		}
		if len(psArgs) == 0 {
			psArgs = []string{"-ef"}
		}
		var out, stderr strings.Builder
		cmd := exec.Command("ps", psArgs...)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		err = timerslack.Do(cmd.Start)
		if err == nil {
			err = cmd.Wait()
		}
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) && stderr.Len() > 0 {
				return fmt.Errorf("ps %s: %v: %s", strings.Join(psArgs, " "), err, strings.TrimSpace(stderr.String()))
			}
			return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
		}
		table, err := filterPsTable(out.String(), pids)
		if err != nil {
			return err
		}
		_, err = os.Stdout.WriteString(table)
		return err
	},
}

// filterPsTable keeps ps's header and the rows whose PID column is one of
// pids.
func filterPsTable(out string, pids []int) (string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return "", errors.New("ps printed nothing")
	}
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
			break
		}
	}
	if col < 0 {
		return "", errors.New("ps output has no PID column; include pid in the -o format")
	}
	want := make(map[int]bool, len(pids))
	for _, p := range pids {
		want[p] = true
	}
	var b strings.Builder
	b.WriteString(lines[0] + "\n")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		if p, err := strconv.Atoi(f[col]); err == nil && want[p] {
			b.WriteString(l + "\n")
		}
	}
	return b.String(), nil
}
