package rootfs

import (
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []string
		want    mountOptions
		wantErr string
	}{
		{
			name: "tmpfs",
			opts: []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
			want: mountOptions{flags: unix.MS_NOSUID | unix.MS_STRICTATIME, data: []string{"mode=755", "size=65536k"}},
		},
		{
			name: "rbind ro with propagation",
			opts: []string{"rbind", "ro", "rprivate", "nodev"},
			want: mountOptions{flags: unix.MS_RDONLY | unix.MS_NODEV, bind: true, recursive: true, propagation: []uintptr{unix.MS_PRIVATE | unix.MS_REC}},
		},
		{
			name: "later option wins",
			opts: []string{"ro", "rw", "nosuid", "suid"},
			want: mountOptions{cleared: unix.MS_RDONLY | unix.MS_NOSUID},
		},
		{
			name: "recursive attributes",
			opts: []string{"bind", "rro", "rnosuid", "rstrictatime"},
			want: mountOptions{bind: true, recSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_STRICTATIME, recClr: unix.MOUNT_ATTR__ATIME},
		},
		{
			name: "rrw after rro",
			opts: []string{"rro", "rrw"},
			want: mountOptions{recClr: unix.MOUNT_ATTR_RDONLY},
		},
		{
			name: "tmpcopyup and idmap",
			opts: []string{"tmpcopyup", "idmap"},
			want: mountOptions{tmpcopyup: true, idmap: true},
		},
		{name: "remount refused", opts: []string{"remount"}, wantErr: "remount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountOptions(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestMountAttrs(t *testing.T) {
	o, _ := parseMountOptions([]string{"bind", "ro", "nosuid", "noatime"})
	set, clr := o.mountAttrs()
	wantSet := uint64(unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOATIME)
	wantClr := uint64(unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW | unix.MOUNT_ATTR__ATIME)
	if set != wantSet || clr != wantClr {
		t.Fatalf("set %#x clr %#x, want %#x %#x", set, clr, wantSet, wantClr)
	}
	if !o.changesMountFlags() {
		t.Fatal("ro bind must change mount flags")
	}
	plain, _ := parseMountOptions([]string{"rbind", "rprivate"})
	if plain.changesMountFlags() {
		t.Fatal("plain rbind must keep the source's flags")
	}
}

// Validation happens before any mount, so these run without root.
func TestMountRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		spec func(*specs.Spec)
		opts Options
		want string
	}{
		{
			name: "relative destination",
			spec: func(s *specs.Spec) { s.Mounts[1].Destination = "dev" },
			want: `mounts[1].destination "dev": must be an absolute path`,
		},
		{
			name: "relative rootfs",
			opts: Options{Rootfs: "rootfs"},
			want: "root.path",
		},
		{
			name: "bad rootfs propagation",
			spec: func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" },
			want: "linux.rootfsPropagation",
		},
		{
			name: "bad device type",
			spec: func(s *specs.Spec) {
				s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z"}}
			},
			want: "linux.devices[0].type",
		},
		{
			name: "idmap",
			spec: func(s *specs.Spec) { s.Mounts[0].Options = []string{"idmap"} },
			want: "mounts[0] (/proc): idmapped mounts are not supported",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := defaultSpec()
			if tt.spec != nil {
				tt.spec(s)
			}
			opts := tt.opts
			if opts.Rootfs == "" {
				opts.Rootfs = "/nonexistent/crossrun/rootfs"
			}
			for _, phase := range []func(*specs.Spec, Options) error{Mount, Pivot} {
				err := phase(s, opts)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want containing %q", err, tt.want)
				}
			}
		})
	}
}

func TestSysctlPath(t *testing.T) {
	tests := []struct {
		key, want string
		ok        bool
	}{
		{"kernel.domainname", "kernel/domainname", true},
		{"net.ipv4.ip_forward", "net/ipv4/ip_forward", true},
		{"net/ipv4/conf/eth0.100/forwarding", "net/ipv4/conf/eth0.100/forwarding", true},
		{"", "", false},
		{"../../etc/passwd", "", false},
		{"net/../../x", "", false},
		{"/etc/passwd", "", false},
		{"kernel..domainname", "", false},
		{"kernel.", "", false},
	}
	for _, tt := range tests {
		got, err := sysctlPath(tt.key)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("sysctlPath(%q) = %q, %v; want %q ok=%v", tt.key, got, err, tt.want, tt.ok)
		}
	}
	if err := WriteProcSelf("../1/oom_score_adj", []byte("0")); err == nil {
		t.Error("WriteProcSelf accepted a name with ..")
	}
	if err := WriteSysctl("kernel/../../../etc/x", "1"); err == nil {
		t.Error("WriteSysctl accepted a key with ..")
	}
}

func TestParseMountInfoLine(t *testing.T) {
	mi, err := parseMountInfoLine(`36 35 98:0 /mnt1 /mnt/with\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue`)
	if err != nil {
		t.Fatal(err)
	}
	want := mountInfo{ID: 36, Parent: 35, Root: "/mnt1", Mountpoint: "/mnt/with space", Options: "rw,noatime",
		Optional: []string{"master:1"}, FSType: "ext3", Source: "/dev/root", SuperOpts: "rw,errors=continue"}
	if !reflect.DeepEqual(mi, want) {
		t.Fatalf("got %+v\nwant %+v", mi, want)
	}
	if _, err := parseMountInfoLine("garbage"); err == nil {
		t.Fatal("malformed line accepted")
	}
}
