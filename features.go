package main

import (
	"encoding/json"
	"os"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/urfave/cli/v2"

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
			Seccomp: &features.Seccomp{
				Enabled: boolp(true),
				Actions: []string{
					"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
					"SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
				},
				Operators: []string{
					"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
					"SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
				},
				Archs:          seccomp.Architectures(),
				KnownFlags:     []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"},
				SupportedFlags: []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"},
			},
			Apparmor:        &features.Apparmor{Enabled: boolp(false)},
			Selinux:         &features.Selinux{Enabled: boolp(false)},
			IntelRdt:        &features.IntelRdt{Enabled: boolp(false)},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: boolp(false)}},
		},
		Annotations: map[string]string{
			"org.opencontainers.runc.checkpoint.enabled": "false",
			"run.crossrun.version":                       version,
			seccomp.KernelABIAnnotation:                  "supported: X.Y from 3.0 up to the host kernel",
		},
	}
	addForeignArchFeatures(f)
	return f
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
