package libcontainer

import (
	"github.com/crossrun/crossrun/internal/specjson"
)

// Codecs for the two JSON documents that carry a whole configuration:
// state.json and init's bootstrap message. They are written by hand on
// specjson's decoder and encoder, field for field as encoding/json would
// handle the struct tags (specjson falls back to encoding/json for
// anything unusual), so that no crossrun process pays for encoding/json's
// reflection over specs.Spec; see docs/performance.md.

var stateFields = []string{
	"id", "init_process_pid", "init_process_start", "created", "bundle", "rootfs", "owner",
	"annotations", "cgroup_paths", "namespace_paths", "ready", "config", "systemd_cgroup", "rootless",
}

func decodeState(data []byte) (*State, error) {
	return specjson.Unmarshal(data, func(d *specjson.Decoder, st *State) error {
		return d.Object(stateFields, func(i int) error {
			switch i {
			case 0:
				return d.String(&st.ID)
			case 1:
				return d.Int(&st.InitPid)
			case 2:
				return d.Uint64(&st.InitStartTime)
			case 3:
				return d.Time(&st.Created)
			case 4:
				return d.String(&st.Bundle)
			case 5:
				return d.String(&st.Rootfs)
			case 6:
				return d.String(&st.Owner)
			case 7:
				return d.StringMap(&st.Annotations)
			case 8:
				return d.StringMap(&st.CgroupPaths)
			case 9:
				return d.StringMap(&st.NamespacePaths)
			case 10:
				return d.Bool(&st.Ready)
			case 11:
				return d.Spec(&st.Config)
			case 12:
				return d.Bool(&st.SystemdCgroup)
			default:
				return d.Bool(&st.Rootless)
			}
		})
	})
}

func encodeState(st *State) ([]byte, error) {
	return specjson.Marshal(st, func(e *specjson.Encoder) {
		e.BeginObject()
		e.Key("id")
		e.String(st.ID)
		e.Key("init_process_pid")
		e.Int(int64(st.InitPid))
		e.Key("init_process_start")
		e.Uint(st.InitStartTime)
		e.Key("created")
		e.Time(st.Created)
		e.Key("bundle")
		e.String(st.Bundle)
		e.Key("rootfs")
		e.String(st.Rootfs)
		e.Key("owner")
		e.String(st.Owner)
		if len(st.Annotations) > 0 {
			e.Key("annotations")
			e.StringMap(st.Annotations)
		}
		if len(st.CgroupPaths) > 0 {
			e.Key("cgroup_paths")
			e.StringMap(st.CgroupPaths)
		}
		if len(st.NamespacePaths) > 0 {
			e.Key("namespace_paths")
			e.StringMap(st.NamespacePaths)
		}
		e.Key("ready")
		e.Bool(st.Ready)
		e.Key("config")
		e.Spec(st.Config)
		if st.SystemdCgroup {
			e.Key("systemd_cgroup")
			e.Bool(true)
		}
		if st.Rootless {
			e.Key("rootless")
			e.Bool(true)
		}
		e.EndObject()
	})
}

var bootstrapFields = []string{
	"id", "bundle", "rootfs", "spec", "no_pivot", "no_new_keyring", "preserve_fds", "host_pid", "has_console", "debug",
}

func decodeBootstrap(data []byte) (*bootstrap, error) {
	return specjson.Unmarshal(data, func(d *specjson.Decoder, b *bootstrap) error {
		return d.Object(bootstrapFields, func(i int) error {
			switch i {
			case 0:
				return d.String(&b.ID)
			case 1:
				return d.String(&b.Bundle)
			case 2:
				return d.String(&b.Rootfs)
			case 3:
				return d.Spec(&b.Spec)
			case 4:
				return d.Bool(&b.NoPivot)
			case 5:
				return d.Bool(&b.NoNewKeyring)
			case 6:
				return d.Int(&b.PreserveFDs)
			case 7:
				return d.Int(&b.HostPid)
			case 8:
				return d.Bool(&b.HasConsole)
			default:
				return d.Bool(&b.Debug)
			}
		})
	})
}

func encodeBootstrap(b *bootstrap) ([]byte, error) {
	return specjson.Marshal(b, func(e *specjson.Encoder) {
		e.BeginObject()
		e.Key("id")
		e.String(b.ID)
		e.Key("bundle")
		e.String(b.Bundle)
		e.Key("rootfs")
		e.String(b.Rootfs)
		e.Key("spec")
		e.Spec(b.Spec)
		e.Key("no_pivot")
		e.Bool(b.NoPivot)
		e.Key("no_new_keyring")
		e.Bool(b.NoNewKeyring)
		e.Key("preserve_fds")
		e.Int(int64(b.PreserveFDs))
		e.Key("host_pid")
		e.Int(int64(b.HostPid))
		e.Key("has_console")
		e.Bool(b.HasConsole)
		e.Key("debug")
		e.Bool(b.Debug)
		e.EndObject()
	})
}
