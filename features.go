package main

import (
	"encoding/json"
	"os"
	"sort"
	"strings"

	"github.com/crossrun/crossrun/internal/cli"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/binfmt"
	"github.com/crossrun/crossrun/libcontainer/cgroups"
	"github.com/crossrun/crossrun/seccomp"
	"github.com/crossrun/crossrun/spec"
)

var featuresCommand = &cli.Command{
	Name:  "features",
	Usage: "show what this crossrun supports, as runtime-spec features JSON",
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 0, true); err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "    ")
		return enc.Encode(runtimeFeatures())
	},
}

func boolp(b bool) *bool { return &b }

func runtimeFeatures() *features.Features {
	var caps []string
	for name := range spec.CapabilityNames {
		caps = append(caps, name)
	}
	sort.Strings(caps)
	mode := cgroups.DetectMode("")
	f := &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions: []string{
			"acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
			"iversion", "lazytime", "loud", "mand", "noacl", "noatime", "nodev", "nodiratime", "noexec",
			"noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow",
			"private", "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec",
			"rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid",
			"rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave",
			"rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave",
			"strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
		},
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Capabilities: caps,
			Cgroup: &features.Cgroup{
				V1:      boolp(mode != cgroups.Unified),
				V2:      boolp(mode != cgroups.Legacy),
				Systemd: boolp(false), SystemdUser: boolp(false), Rdma: boolp(false),
			},
			Seccomp:         seccomp.Features(),
			Apparmor:        &features.Apparmor{Enabled: boolp(false)},
			Selinux:         &features.Selinux{Enabled: boolp(false)},
			IntelRdt:        &features.IntelRdt{Enabled: boolp(false)},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: boolp(false)}},
		},
		Annotations: map[string]string{
			"org.opencontainers.runc.checkpoint.enabled": "false",
			"run.crossrun.version":                       version,
			seccomp.KernelABIAnnotation:                  kernelABIRange(),
		},
	}
	addForeignArchFeatures(f)
	return f
}

// kernelABIRange describes the values the kernel-ABI annotation (and
// `crossrun spec --kernel-abi`) accepts on this host: "X.Y" from the oldest
// release the syscall tables date up to the running kernel, found by asking
// seccomp.ParseKernelVersion, the parser the annotation goes through.
func kernelABIRange() string {
	const oldest = "3.0" // seccomp's minKernelABI; checked below
	if _, err := seccomp.ParseKernelVersion(oldest); err != nil {
		return "unavailable: " + err.Error()
	}
	var u unix.Utsname
	host := "the running kernel"
	if unix.Uname(&u) == nil {
		rel := unix.ByteSliceToString(u.Release[:])
		if maj, rest, ok := strings.Cut(rel, "."); ok {
			end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
			if end < 0 {
				end = len(rest)
			}
			if v := maj + "." + rest[:end]; end > 0 {
				if _, err := seccomp.ParseKernelVersion(v); err == nil {
					host = v + " (the running kernel)"
				}
			}
		}
	}
	return "X.Y from " + oldest + " to " + host + ": syscalls added after Linux X.Y fail with ENOSYS"
}

// addForeignArchFeatures lists, as annotations, the platforms this host can
// run and how.
func addForeignArchFeatures(f *features.Features) {
	for _, p := range binfmt.Supported() {
		v := p.Route.String()
		if p.Interpreter != "" {
			v += " " + p.Interpreter
		}
		if p.Note != "" {
			v += " (" + p.Note + ")"
		}
		f.Annotations["run.crossrun.platform."+p.Platform] = v
	}
}
