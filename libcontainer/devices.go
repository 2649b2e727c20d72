package libcontainer

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func devRule(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
	if major >= 0 {
		r.Major = &major
	}
	if minor >= 0 {
		r.Minor = &minor
	}
	return r
}

// defaultDeviceRules are the devices every container may use, whatever its
// configuration says: the ones crossrun creates in /dev, plus mknod of any
// device (using one still needs an allow rule).
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	devRule("c", -1, -1, "m"),
	devRule("b", -1, -1, "m"),
	devRule("c", 1, 3, "rwm"),    // /dev/null
	devRule("c", 1, 5, "rwm"),    // /dev/zero
	devRule("c", 1, 7, "rwm"),    // /dev/full
	devRule("c", 1, 8, "rwm"),    // /dev/random
	devRule("c", 1, 9, "rwm"),    // /dev/urandom
	devRule("c", 5, 0, "rwm"),    // /dev/tty
	devRule("c", 5, 1, "rwm"),    // /dev/console
	devRule("c", 5, 2, "rwm"),    // /dev/ptmx
	devRule("c", 136, -1, "rwm"), // /dev/pts/N
}

// containerResources returns the resources to write to the container's
// cgroup: the configuration's, with the default devices and the devices of
// linux.devices allowed after the configured rules.
func containerResources(s *specs.Spec) *specs.LinuxResources {
	if s.Linux.Resources == nil && len(s.Linux.Devices) == 0 {
		return nil
	}
	r := specs.LinuxResources{}
	if s.Linux.Resources != nil {
		r = *s.Linux.Resources
	}
	if r.Devices == nil && len(s.Linux.Devices) == 0 {
		return &r
	}
	devs := append([]specs.LinuxDeviceCgroup(nil), r.Devices...)
	devs = append(devs, defaultDeviceRules...)
	for _, d := range s.Linux.Devices {
		typ := d.Type
		if typ == "u" {
			typ = "c"
		}
		if typ == "p" {
			continue
		}
		devs = append(devs, devRule(typ, d.Major, d.Minor, "rwm"))
	}
	r.Devices = devs
	return &r
}
