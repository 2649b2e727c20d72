package libcontainer

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNotRunning and ErrNotPaused carry runc's messages for pause and resume
// on a container in the wrong state.
var (
	ErrNotRunning = errors.New("container not running")
	ErrNotPaused  = errors.New("container not paused")
)

// Pause freezes every process of a running container. The caller holds the
// lock (Lock).
func (c *Container) Pause() error {
	status := c.Status()
	if status != Running {
		return fmt.Errorf("cannot pause container %s (status %s): %w", c.state.ID, status, ErrNotRunning)
	}
	m := c.cgroup()
	if m == nil {
		return fmt.Errorf("cannot pause container %s: it has no cgroup to freeze", c.state.ID)
	}
	if err := m.Freeze(); err != nil {
		return fmt.Errorf("pause container %s: %w", c.state.ID, err)
	}
	return nil
}

// Resume thaws a paused container. The caller holds the lock (Lock).
func (c *Container) Resume() error {
	status := c.Status()
	if status != Paused {
		return fmt.Errorf("cannot resume container %s (status %s): %w", c.state.ID, status, ErrNotPaused)
	}
	m := c.cgroup()
	if m == nil {
		return fmt.Errorf("cannot resume container %s: it has no cgroup", c.state.ID)
	}
	if err := m.Thaw(); err != nil {
		return fmt.Errorf("resume container %s: %w", c.state.ID, err)
	}
	return nil
}

// UpdateResources writes new limits to a container's cgroup and records them
// in its saved configuration. Nil fields of r are left as they are; device
// rules are never changed. The caller holds the lock (Lock).
func (c *Container) UpdateResources(r *specs.LinuxResources) error {
	status := c.Status()
	if status == Stopped {
		return fmt.Errorf("cannot update container %s: %w", c.state.ID, ErrNotRunning)
	}
	m := c.cgroup()
	if m == nil {
		return fmt.Errorf("cannot update container %s: it has no cgroup", c.state.ID)
	}
	if mem := r.Memory; mem != nil && mem.Limit != nil && *mem.Limit > 0 && mem.Swap == nil {
		if cfg := c.state.Config; cfg != nil && cfg.Linux != nil && cfg.Linux.Resources != nil &&
			cfg.Linux.Resources.Memory != nil && cfg.Linux.Resources.Memory.Swap != nil {
			if sw := *cfg.Linux.Resources.Memory.Swap; sw > 0 && *mem.Limit > sw {
				return fmt.Errorf("cannot update container %s: memory limit %d is above its memory+swap limit %d; set the swap limit too (--memory-swap, -1 for unlimited)", c.state.ID, *mem.Limit, sw)
			}
		}
	}
	upd := *r
	upd.Devices = nil
	if mem := upd.Memory; mem != nil && mem.Swap != nil && mem.Limit == nil {
		// memory+swap is judged against the memory limit (and on cgroup
		// v2 converted with it): use the one in force.
		if cfg := c.state.Config; cfg != nil && cfg.Linux != nil && cfg.Linux.Resources != nil &&
			cfg.Linux.Resources.Memory != nil && cfg.Linux.Resources.Memory.Limit != nil {
			m := *mem
			m.Limit = cfg.Linux.Resources.Memory.Limit
			upd.Memory = &m
		}
	}
	if err := m.Set(&upd); err != nil {
		return fmt.Errorf("update container %s: %w", c.state.ID, err)
	}
	if c.state.Config == nil {
		return nil
	}
	if c.state.Config.Linux == nil {
		c.state.Config.Linux = &specs.Linux{}
	}
	if c.state.Config.Linux.Resources == nil {
		c.state.Config.Linux.Resources = &specs.LinuxResources{}
	}
	MergeResources(c.state.Config.Linux.Resources, &upd)
	if err := writeState(c.dir, c.state); err != nil {
		return fmt.Errorf("update container %s: limits applied but not saved: %w", c.state.ID, err)
	}
	return nil
}

// MergeResources copies every field set in upd into dst, field by field,
// so that an update of one limit keeps the others.
func MergeResources(dst, upd *specs.LinuxResources) {
	if m := upd.Memory; m != nil {
		if dst.Memory == nil {
			dst.Memory = &specs.LinuxMemory{}
		}
		d := dst.Memory
		setI64(&d.Limit, m.Limit)
		setI64(&d.Reservation, m.Reservation)
		setI64(&d.Swap, m.Swap)
		setI64(&d.Kernel, m.Kernel)
		setI64(&d.KernelTCP, m.KernelTCP)
		if m.Swappiness != nil {
			d.Swappiness = m.Swappiness
		}
		if m.DisableOOMKiller != nil {
			d.DisableOOMKiller = m.DisableOOMKiller
		}
		if m.UseHierarchy != nil {
			d.UseHierarchy = m.UseHierarchy
		}
		if m.CheckBeforeUpdate != nil {
			d.CheckBeforeUpdate = m.CheckBeforeUpdate
		}
	}
	if c := upd.CPU; c != nil {
		if dst.CPU == nil {
			dst.CPU = &specs.LinuxCPU{}
		}
		d := dst.CPU
		setU64(&d.Shares, c.Shares)
		setI64(&d.Quota, c.Quota)
		setU64(&d.Burst, c.Burst)
		setU64(&d.Period, c.Period)
		setI64(&d.RealtimeRuntime, c.RealtimeRuntime)
		setU64(&d.RealtimePeriod, c.RealtimePeriod)
		setI64(&d.Idle, c.Idle)
		if c.Cpus != "" {
			d.Cpus = c.Cpus
		}
		if c.Mems != "" {
			d.Mems = c.Mems
		}
	}
	if p := upd.Pids; p != nil {
		if dst.Pids == nil {
			dst.Pids = &specs.LinuxPids{}
		}
		if p.Limit != nil {
			dst.Pids.Limit = p.Limit
		}
	}
	if b := upd.BlockIO; b != nil {
		if dst.BlockIO == nil {
			dst.BlockIO = &specs.LinuxBlockIO{}
		}
		d := dst.BlockIO
		if b.Weight != nil {
			d.Weight = b.Weight
		}
		if b.LeafWeight != nil {
			d.LeafWeight = b.LeafWeight
		}
		if b.WeightDevice != nil {
			d.WeightDevice = b.WeightDevice
		}
		if b.ThrottleReadBpsDevice != nil {
			d.ThrottleReadBpsDevice = b.ThrottleReadBpsDevice
		}
		if b.ThrottleWriteBpsDevice != nil {
			d.ThrottleWriteBpsDevice = b.ThrottleWriteBpsDevice
		}
		if b.ThrottleReadIOPSDevice != nil {
			d.ThrottleReadIOPSDevice = b.ThrottleReadIOPSDevice
		}
		if b.ThrottleWriteIOPSDevice != nil {
			d.ThrottleWriteIOPSDevice = b.ThrottleWriteIOPSDevice
		}
	}
	if upd.HugepageLimits != nil {
		dst.HugepageLimits = upd.HugepageLimits
	}
	if upd.Network != nil {
		dst.Network = upd.Network
	}
	if upd.Rdma != nil {
		dst.Rdma = upd.Rdma
	}
	if upd.Unified != nil {
		if dst.Unified == nil {
			dst.Unified = make(map[string]string)
		}
		for k, v := range upd.Unified {
			dst.Unified[k] = v
		}
	}
}

func setI64(dst **int64, v *int64) {
	if v != nil {
		x := *v
		*dst = &x
	}
}

func setU64(dst **uint64, v *uint64) {
	if v != nil {
		x := *v
		*dst = &x
	}
}
