package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/crossrun/crossrun/internal/cli"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

var updateCommand = &cli.Command{
	Name:      "update",
	Usage:     "update the resource limits of a container",
	ArgsUsage: "<container-id>",
	Description: `The update command changes the cgroup limits of a created, running or
paused container, and records them in the container's saved configuration.

Memory sizes take a unit suffix (binary: 1k = 1024), e.g. 512k, 100M, 1.5g,
2GiB; -1 means unlimited.

With -r/--resources the limits come from a runtime-spec LinuxResources JSON
document (a file, or "-" for standard input), for example:

  {"memory": {"limit": 67108864}, "cpu": {"shares": 512}, "pids": {"limit": 20}}

and every other flag is ignored, as with runc. Device rules are never
changed by update.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "read the new limits as LinuxResources JSON from `FILE` (\"-\": standard input); other flags are ignored"},
		&cli.IntFlag{Name: "blkio-weight", Usage: "block I/O weight, 10 to 1000"},
		&cli.StringFlag{Name: "cpu-period", Usage: "CPU CFS period in microseconds (0: system default)"},
		&cli.StringFlag{Name: "cpu-quota", Usage: "CPU CFS quota in microseconds per period (-1: no limit)"},
		&cli.StringFlag{Name: "cpu-share", Aliases: []string{"cpu-shares"}, Usage: "CPU shares (relative weight against other containers)"},
		&cli.StringFlag{Name: "cpu-rt-period", Usage: "CPU realtime period in microseconds"},
		&cli.StringFlag{Name: "cpu-rt-runtime", Usage: "CPU realtime runtime in microseconds per period"},
		&cli.StringFlag{Name: "cpu-idle", Usage: "1 puts the container in SCHED_IDLE, 0 takes it out"},
		&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs the container may use, e.g. 0-3,5"},
		&cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes the container may use, e.g. 0"},
		&cli.StringFlag{Name: "kernel-memory", Usage: "ignored: kernel memory limits are not supported by current kernels"},
		&cli.StringFlag{Name: "kernel-memory-tcp", Usage: "kernel TCP buffer memory limit (cgroup v1), e.g. 16M"},
		&cli.StringFlag{Name: "memory", Usage: "memory limit, e.g. 100M (-1: unlimited)"},
		&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit, e.g. 50M"},
		&cli.StringFlag{Name: "memory-swap", Usage: "memory plus swap limit, e.g. 200M (-1: unlimited swap)"},
		&cli.Int64Flag{Name: "pids-limit", Usage: "maximum number of processes (-1: unlimited)"},
	},
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 1, true); err != nil {
			return err
		}
		r, err := updateResources(ctx)
		if err != nil {
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
		return c.UpdateResources(r)
	},
}

// updateResources builds the LinuxResources an update asks for; fields not
// asked for stay nil, which leaves them as they are.
func updateResources(ctx *cli.Context) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if in := ctx.String("resources"); in != "" {
		var src io.Reader = os.Stdin
		name := "standard input"
		if in != "-" {
			f, err := os.Open(in)
			if err != nil {
				return nil, fmt.Errorf("--resources: %w", err)
			}
			defer f.Close()
			src, name = f, in
		}
		dec := json.NewDecoder(src)
		if err := dec.Decode(r); err != nil {
			return nil, fmt.Errorf("--resources: parse %s as runtime-spec LinuxResources JSON: %w", name, err)
		}
		if r.Memory != nil && r.Memory.Kernel != nil {
			logrus.Warn("memory.kernel is ignored: kernel memory limits are not supported")
			r.Memory.Kernel = nil
		}
		r.Devices = nil
		fixMemoryUnlimited(r)
		return r, nil
	}
	if ctx.IsSet("blkio-weight") {
		w := ctx.Int("blkio-weight")
		if w != 0 && (w < 10 || w > 1000) {
			return nil, fmt.Errorf("--blkio-weight %d is out of range 10..1000", w)
		}
		v := uint16(w)
		r.BlockIO = &specs.LinuxBlockIO{Weight: &v}
	}
	cpu := &specs.LinuxCPU{}
	cpuSet := false
	for _, f := range []struct {
		flag string
		dst  **uint64
	}{{"cpu-period", &cpu.Period}, {"cpu-rt-period", &cpu.RealtimePeriod}, {"cpu-share", &cpu.Shares}} {
		if s := ctx.String(f.flag); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("--%s %q: not a non-negative integer", f.flag, s)
			}
			*f.dst = &v
			cpuSet = true
		}
	}
	for _, f := range []struct {
		flag string
		dst  **int64
	}{{"cpu-quota", &cpu.Quota}, {"cpu-rt-runtime", &cpu.RealtimeRuntime}, {"cpu-idle", &cpu.Idle}} {
		if s := ctx.String(f.flag); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("--%s %q: not an integer", f.flag, s)
			}
			*f.dst = &v
			cpuSet = true
		}
	}
	if s := ctx.String("cpuset-cpus"); s != "" {
		cpu.Cpus, cpuSet = s, true
	}
	if s := ctx.String("cpuset-mems"); s != "" {
		cpu.Mems, cpuSet = s, true
	}
	if cpuSet {
		r.CPU = cpu
	}
	if ctx.String("kernel-memory") != "" {
		logrus.Warn("--kernel-memory is ignored: kernel memory limits are not supported")
	}
	mem := &specs.LinuxMemory{}
	memSet := false
	for _, f := range []struct {
		flag string
		dst  **int64
	}{{"memory", &mem.Limit}, {"memory-reservation", &mem.Reservation}, {"memory-swap", &mem.Swap}, {"kernel-memory-tcp", &mem.KernelTCP}} {
		if s := ctx.String(f.flag); s != "" {
			v, err := parseMemory(s)
			if err != nil {
				return nil, fmt.Errorf("--%s: %w", f.flag, err)
			}
			*f.dst = &v
			memSet = true
		}
	}
	if memSet {
		r.Memory = mem
	}
	if ctx.IsSet("pids-limit") {
		v := ctx.Int64("pids-limit")
		if v == 0 {
			// runc treats 0 as "no change"; say so rather than do nothing silently.
			return nil, fmt.Errorf("--pids-limit 0 is not a limit; use a positive number, or -1 for unlimited")
		}
		r.Pids = &specs.LinuxPids{Limit: &v}
	}
	if r.BlockIO == nil && r.CPU == nil && r.Memory == nil && r.Pids == nil && ctx.String("kernel-memory") == "" {
		return nil, fmt.Errorf("nothing to update: give a limit flag or --resources; see \"crossrun update --help\"")
	}
	fixMemoryUnlimited(r)
	return r, nil
}

// fixMemoryUnlimited makes "--memory -1" without a swap setting lift the
// swap limit too: on cgroup v1 memory+swap may not sit below memory.
func fixMemoryUnlimited(r *specs.LinuxResources) {
	if m := r.Memory; m != nil && m.Limit != nil && *m.Limit == -1 && m.Swap == nil {
		v := int64(-1)
		m.Swap = &v
	}
}

// parseMemory parses a size like docker's RAMInBytes: a decimal number with
// an optional binary unit k, m, g, t or p (optionally followed by "i" and/or
// "b", any case), e.g. "100M", "1.5g", "2GiB", "512kb", "4096". "-1" means
// unlimited.
func parseMemory(s string) (int64, error) {
	in := strings.TrimSpace(s)
	if in == "-1" {
		return -1, nil
	}
	num := in
	i := 0
	for i < len(num) && (num[i] >= '0' && num[i] <= '9' || num[i] == '.') {
		i++
	}
	num, unit := in[:i], strings.ToLower(strings.TrimSpace(in[i:]))
	if num == "" || strings.HasPrefix(num, ".") || strings.HasSuffix(num, ".") {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional unit, e.g. 100M", s)
	}
	unit = strings.TrimSuffix(unit, "b")
	unit = strings.TrimSuffix(unit, "i")
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
	m, ok := mult[unit]
	if !ok || (unit == "" && len(in[i:]) > 0 && strings.TrimSpace(strings.ToLower(in[i:])) != "b") {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use k, m, g, t or p)", s, strings.TrimSpace(in[i:]))
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %v", s, err)
	}
	v := f * m
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(v), nil
}
