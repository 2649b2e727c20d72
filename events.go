package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/crossrun/crossrun/internal/cli"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/libcontainer"
	"github.com/crossrun/crossrun/libcontainer/cgroups"
)

// event is one line of "crossrun events", in runc's shape.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

var eventsCommand = &cli.Command{
	Name:      "events",
	Usage:     "display container events such as OOM notifications and resource usage",
	ArgsUsage: "<container-id>",
	Description: `The events command prints one JSON object per line:

  {"type":"stats","id":"<id>","data":{...}}   resource usage, every --interval
  {"type":"oom","id":"<id>"}                  the OOM killer acted in the container

It runs until the container stops. With --stats it prints one stats event
and exits.`,
	Flags: []cli.Flag{
		&cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "time between stats events"},
		&cli.BoolFlag{Name: "stats", Usage: "print the container's resource usage once and exit"},
	},
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 1, true); err != nil {
			return err
		}
		interval := ctx.Duration("interval")
		if interval <= 0 {
			return errors.New("--interval must be greater than 0")
		}
		c, err := loadContainer(ctx)
		if err != nil {
			return err
		}
		if c.Status() == libcontainer.Stopped {
			return fmt.Errorf("container with id %s is not running", c.ID())
		}
		m := c.Cgroup()
		if m == nil {
			return fmt.Errorf("container %s has no cgroup to report on", c.ID())
		}
		enc := json.NewEncoder(os.Stdout)
		if ctx.Bool("stats") {
			st, err := m.Stats()
			if err != nil {
				return fmt.Errorf("read stats of %s: %w", c.ID(), err)
			}
			return enc.Encode(event{Type: "stats", ID: c.ID(), Data: st})
		}
		return streamEvents(c, m, interval, enc)
	},
}

// streamEvents prints stats every interval and an oom event for each OOM
// kill until the container's init exits or its cgroup goes away.
func streamEvents(c *libcontainer.Container, m cgroups.Manager, interval time.Duration, enc *json.Encoder) error {
	id := c.ID()
	exited, err := watchExit(c.State().InitPid)
	if err != nil {
		return fmt.Errorf("container with id %s is not running", id)
	}
	stop := make(chan struct{})
	defer close(stop)
	baseKills, countErr := m.OOMKillCount()
	counted := countErr == nil
	ooms, err := m.NotifyOOM(stop)
	if err != nil {
		logrus.Warnf("no OOM events for %s: %v", id, err)
		ooms = nil
	}
	// The kernel may signal one OOM several times (cgroup v1 does, once per
	// charge attempt), and before the kill is counted; so each kill counted
	// in oom_kill is one event. After a notification the counter is polled
	// for a while, and once more when the container is gone. Where the
	// kernel has no kill counter each notification is one event.
	reported := uint64(0)
	emitOOM := func() error {
		reported++
		return enc.Encode(event{Type: "oom", ID: id})
	}
	// emitKills reports kills not reported yet; it returns how many.
	emitKills := func() (uint64, error) {
		kills, err := m.OOMKillCount()
		if err != nil || kills <= baseKills {
			return 0, nil
		}
		n := uint64(0)
		for reported < kills-baseKills {
			if err := emitOOM(); err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
	var recheck <-chan time.Time
	var recheckUntil time.Time
	finish := func() error {
		if !counted {
			return nil
		}
		_, err := emitKills()
		return err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case _, ok := <-ooms:
			if !ok {
				// The cgroup is gone.
				ooms = nil
				return finish()
			}
			if !counted {
				if err := emitOOM(); err != nil {
					return err
				}
				continue
			}
			n, err := emitKills()
			if err != nil {
				return err
			}
			if n == 0 {
				recheckUntil = time.Now().Add(oomRecheckFor)
				recheck = time.After(oomRecheckEvery)
			}
		case <-recheck:
			recheck = nil
			n, err := emitKills()
			if err != nil {
				return err
			}
			if n == 0 && time.Now().Before(recheckUntil) {
				recheck = time.After(oomRecheckEvery)
			}
		case <-exited:
			return finish()
		case <-tick.C:
			if counted {
				if _, err := emitKills(); err != nil {
					return err
				}
			}
			st, err := m.Stats()
			if err != nil {
				if !m.Exists() {
					return finish()
				}
				logrus.Warnf("read stats of %s: %v", id, err)
				continue
			}
			if err := enc.Encode(event{Type: "stats", ID: id, Data: st}); err != nil {
				return err
			}
		}
	}
}

// After an OOM notification whose kill is not counted yet, the counter is
// polled every oomRecheckEvery for up to oomRecheckFor.
const (
	oomRecheckEvery = 50 * time.Millisecond
	oomRecheckFor   = 5 * time.Second
)

// watchExit returns a channel closed when process pid exits.
func watchExit(pid int) (<-chan struct{}, error) {
	if pid <= 0 {
		return nil, errors.New("no init pid")
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, err
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer unix.Close(pidfd)
		for {
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, -1); err == unix.EINTR {
				continue
			} else if err != nil {
				return
			}
			return
		}
	}()
	return ch, nil
}
