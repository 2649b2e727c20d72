package main

import (
	"encoding/json"
	"os"
	"time"

	"github.com/crossrun/crossrun/internal/cli"

	"github.com/crossrun/crossrun/libcontainer"
)

// containerState is runc's "state" JSON.
type containerState struct {
	Version        string            `json:"ociVersion"`
	ID             string            `json:"id"`
	InitProcessPid int               `json:"pid"`
	Status         string            `json:"status"`
	Bundle         string            `json:"bundle"`
	Rootfs         string            `json:"rootfs"`
	Created        time.Time         `json:"created"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Owner          string            `json:"owner"`
}

func stateOf(c *libcontainer.Container) containerState {
	st := c.State()
	status := c.Status()
	version := ""
	if st.Config != nil {
		version = st.Config.Version
	}
	// A stopped container keeps reporting the pid its init had (the
	// runtime-spec makes pid optional once stopped), so that a manager can
	// match hook states and exit events to the container.
	pid := st.InitPid
	return containerState{
		Version: version, ID: st.ID, InitProcessPid: pid, Status: string(status),
		Bundle: st.Bundle, Rootfs: st.Rootfs, Created: st.Created, Annotations: st.Annotations, Owner: st.Owner,
	}
}

var stateCommand = &cli.Command{
	Name:      "state",
	Usage:     "output the state of a container",
	ArgsUsage: "<container-id>",
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 1, true); err != nil {
			return err
		}
		c, err := loadContainer(ctx)
		if err != nil {
			return err
		}
		data, err := json.MarshalIndent(stateOf(c), "", "  ")
		if err != nil {
			return err
		}
		os.Stdout.Write(append(data, '\n'))
		return nil
	},
}
