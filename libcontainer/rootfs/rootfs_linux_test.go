package rootfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const containerNS = unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET

func setupRootfs(t *testing.T, dir string) {
	mkdirs(t, dir, "rootfs/etc", "rootfs/tmp")
	writeFile(t, filepath.Join(dir, "rootfs/etc/passwd"), "root:x:0:0::/:/bin/sh\n")
	writeFile(t, filepath.Join(dir, "host-marker"), "host")
}

func expectErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

func TestDefaultSpec(t *testing.T) {
	inChild(t, containerNS, setupRootfs, func(t *testing.T, dir string) {
		_, kcoreErr := os.Stat("/proc/kcore")
		_, sysrqErr := os.Stat("/proc/sysrq-trigger")
		own, err := readSelfCgroup()
		if err != nil {
			t.Fatal(err)
		}
		hier, err := cgroupV1Hierarchies(own)
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Statfs_t
		if err := unix.Statfs(cgroupRoot, &st); err != nil {
			t.Fatal(err)
		}
		unified := st.Type == unix.CGROUP2_SUPER_MAGIC

		s := defaultSpec()
		maskedHost := map[string]os.FileInfo{}
		for _, p := range s.Linux.MaskedPaths {
			if fi, err := os.Stat(p); err == nil {
				maskedHost[p] = fi
			}
		}
		opts := Options{Rootfs: filepath.Join(dir, "rootfs"), Bundle: dir}
		if err := Mount(s, opts); err != nil {
			t.Fatalf("Mount: %v", err)
		}
		if err := Pivot(s, opts); err != nil {
			t.Fatalf("Pivot: %v", err)
		}

		// The old root is gone.
		if _, err := os.Stat(filepath.Join(dir, "host-marker")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("host file still reachable after pivot: %v", err)
		}
		if b, err := os.ReadFile("/etc/passwd"); err != nil || !strings.HasPrefix(string(b), "root:x") {
			t.Errorf("/etc/passwd of the rootfs: %q, %v", b, err)
		}
		if cwd, _ := os.Getwd(); cwd != "/" {
			t.Errorf("cwd = %q, want /", cwd)
		}

		mounts := mountsByPoint(t)
		for p := range mounts {
			if strings.HasPrefix(p, dir) {
				t.Errorf("mount of the old root still visible: %s", p)
			}
		}
		expectMount(t, mounts, "/", "")
		expectMount(t, mounts, "/proc", "proc")
		expectMount(t, mounts, "/dev", "tmpfs", "nosuid", "mode=755", "size=65536k")
		expectMount(t, mounts, "/dev/pts", "devpts", "nosuid", "noexec", "ptmxmode=666", "mode=620", "gid=5")
		expectMount(t, mounts, "/dev/shm", "tmpfs", "nosuid", "nodev", "noexec", "size=65536k")
		expectMount(t, mounts, "/dev/mqueue", "mqueue", "nosuid", "nodev", "noexec")
		expectMount(t, mounts, "/sys", "sysfs", "ro", "nosuid", "nodev", "noexec")
		if unified {
			expectMount(t, mounts, "/sys/fs/cgroup", "cgroup2", "ro", "nosuid", "nodev", "noexec")
		} else {
			expectMount(t, mounts, "/sys/fs/cgroup", "tmpfs", "ro", "nosuid", "nodev", "noexec")
			if len(hier) == 0 {
				t.Fatal("hybrid host without cgroup v1 hierarchies")
			}
			for _, h := range hier {
				p := filepath.Join("/sys/fs/cgroup", filepath.Base(h.mountpoint))
				mi := expectMount(t, mounts, p, "cgroup", "ro")
				if want := own[h.subsystems[0]]; mi.Root != want {
					t.Errorf("%s shows cgroup %s, want the process's own %s", p, mi.Root, want)
				}
			}
		}

		// Devices.
		for _, d := range defaultDevices {
			var st unix.Stat_t
			if err := unix.Lstat(d.Path, &st); err != nil {
				t.Errorf("%s: %v", d.Path, err)
				continue
			}
			if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(uint64(st.Rdev)) != uint32(d.Major) || unix.Minor(uint64(st.Rdev)) != uint32(d.Minor) || st.Mode&0o777 != 0o666 {
				t.Errorf("%s: mode %#o device %d:%d, want char %d:%d 0666", d.Path, st.Mode, unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)), d.Major, d.Minor)
			}
		}
		links := map[string]string{"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2"}
		if kcoreErr == nil {
			links["/dev/core"] = "/proc/kcore"
		}
		for l, want := range links {
			if got, err := os.Readlink(l); err != nil || got != want {
				t.Errorf("readlink %s = %q, %v; want %q", l, got, err, want)
			}
		}
		if f, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0); err != nil {
			t.Errorf("open /dev/ptmx: %v", err)
		} else {
			f.Close()
		}
		zero, err := os.Open("/dev/zero")
		if err != nil {
			t.Fatal(err)
		}
		buf := []byte{1, 1, 1}
		if _, err := io.ReadFull(zero, buf); err != nil || buf[0] != 0 || buf[2] != 0 {
			t.Errorf("read /dev/zero: %v %v", buf, err)
		}
		zero.Close()

		// Masked paths: every one that exists is empty.
		for _, p := range s.Linux.MaskedPaths {
			fi, ok := maskedHost[p]
			if !ok {
				continue
			}
			if fi.IsDir() {
				expectMount(t, mounts, p, "tmpfs", "ro")
				if ents, err := os.ReadDir(p); err != nil || len(ents) != 0 {
					t.Errorf("masked %s has %d entries, %v", p, len(ents), err)
				}
				continue
			}
			expectMount(t, mounts, p, "")
			if b, err := os.ReadFile(p); err != nil || len(b) != 0 {
				t.Errorf("masked %s read %d bytes, %v; want empty", p, len(b), err)
			}
		}
		if len(maskedHost) == 0 {
			t.Error("no masked path exists on this host; nothing was checked")
		}

		// Read-only paths.
		_, err = os.OpenFile("/proc/sys/kernel/hostname", os.O_WRONLY, 0)
		expectErrno(t, "write /proc/sys/kernel/hostname", err, unix.EROFS)
		if sysrqErr == nil {
			_, err = os.OpenFile("/proc/sysrq-trigger", os.O_WRONLY, 0)
			expectErrno(t, "write /proc/sysrq-trigger", err, unix.EROFS)
		}
		expectMount(t, mounts, "/proc/sys", "proc", "ro", "nosuid", "nodev", "noexec")

		// The root itself stays writable.
		if err := os.WriteFile("/tmp/written", []byte("x"), 0o644); err != nil {
			t.Errorf("write to rootfs: %v", err)
		}
	})
}

func TestReadonlyRootAndDev(t *testing.T) {
	inChild(t, containerNS, setupRootfs, func(t *testing.T, dir string) {
		s := &specs.Spec{
			Root: &specs.Root{Readonly: true},
			Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc", Source: "proc"},
				{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755", "ro"}},
				{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "nodev"}},
			},
			Linux: &specs.Linux{RootfsPropagation: "rprivate"},
		}
		opts := Options{Rootfs: filepath.Join(dir, "rootfs")}
		if err := Mount(s, opts); err != nil {
			t.Fatalf("Mount: %v", err)
		}
		if err := Pivot(s, opts); err != nil {
			t.Fatalf("Pivot: %v", err)
		}
		expectErrno(t, "create /newfile", os.WriteFile("/newfile", nil, 0o644), unix.EROFS)
		expectErrno(t, "create /dev/newfile", os.WriteFile("/dev/newfile", nil, 0o644), unix.EROFS)
		if err := os.WriteFile("/dev/shm/ok", nil, 0o644); err != nil {
			t.Errorf("/dev/shm must stay writable: %v", err)
		}
		var st unix.Stat_t
		if err := unix.Stat("/dev/null", &st); err != nil || uint64(st.Rdev) != unix.Mkdev(1, 3) {
			t.Errorf("/dev/null on read-only /dev: %v", err)
		}
		mounts := mountsByPoint(t)
		root := expectMount(t, mounts, "/", "", "ro")
		for _, o := range root.Optional {
			if strings.HasPrefix(o, "shared:") || strings.HasPrefix(o, "master:") {
				t.Errorf("rootfsPropagation rprivate: / has %s", o)
			}
		}
	})
}

func TestBindDestinationSymlinkStaysInRootfs(t *testing.T) {
	setup := func(t *testing.T, dir string) {
		setupRootfs(t, dir)
		rootfs := filepath.Join(dir, "rootfs")
		for link, target := range map[string]string{"evil": "/etc", "evilfile": "/etc/hostname", "dangling": "/nonexistent-crossrun-test", "up": "../../../../../../etc"} {
			if err := os.Symlink(target, filepath.Join(rootfs, link)); err != nil {
				t.Fatal(err)
			}
		}
		writeFile(t, filepath.Join(dir, "src/payload"), "payload")
		writeFile(t, filepath.Join(dir, "srcfile"), "file payload")
	}
	inChild(t, 0, setup, func(t *testing.T, dir string) {
		rootfs := filepath.Join(dir, "rootfs")
		hostHostname, _ := os.ReadFile("/etc/hostname")
		s := &specs.Spec{Mounts: []specs.Mount{
			{Destination: "/evilfile", Type: "none", Source: "srcfile", Options: []string{"bind"}}, // relative to the bundle
			{Destination: "/up/sub", Type: "tmpfs", Source: "tmpfs"},
		}}
		if err := Mount(s, Options{Rootfs: rootfs, Bundle: dir}); err != nil {
			t.Fatalf("Mount: %v", err)
		}
		mounts := mountsByPoint(t)
		expectMount(t, mounts, filepath.Join(rootfs, "etc/hostname"), "")
		expectMount(t, mounts, filepath.Join(rootfs, "etc/sub"), "tmpfs")
		if b, err := os.ReadFile(filepath.Join(rootfs, "etc/hostname")); err != nil || string(b) != "file payload" {
			t.Errorf("file bind in rootfs: %q, %v", b, err)
		}
		s = &specs.Spec{Mounts: []specs.Mount{
			{Destination: "/evil", Type: "bind", Source: filepath.Join(dir, "src"), Options: []string{"rbind", "ro"}},
		}}
		if err := Mount(s, Options{Rootfs: rootfs, Bundle: dir}); err != nil {
			t.Fatalf("Mount: %v", err)
		}
		mounts = mountsByPoint(t)
		expectMount(t, mounts, filepath.Join(rootfs, "etc"), "", "ro")
		for _, p := range []string{"/etc", "/etc/hostname", "/etc/sub"} {
			if _, ok := mounts[p]; ok {
				t.Errorf("mount escaped the rootfs onto host %s", p)
			}
		}
		if _, err := os.Stat("/etc/payload"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("host /etc/payload: %v", err)
		}
		if b, _ := os.ReadFile("/etc/hostname"); string(b) != string(hostHostname) {
			t.Errorf("host /etc/hostname changed to %q", b)
		}
		if b, err := os.ReadFile(filepath.Join(rootfs, "etc/payload")); err != nil || string(b) != "payload" {
			t.Errorf("payload in rootfs: %q, %v", b, err)
		}

		// A dangling symlink is not followed out of the rootfs either.
		s = &specs.Spec{Mounts: []specs.Mount{{Destination: "/dangling/x", Type: "tmpfs", Source: "tmpfs"}}}
		err := Mount(s, Options{Rootfs: rootfs, Bundle: dir})
		if _, serr := os.Stat("/nonexistent-crossrun-test"); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("host /nonexistent-crossrun-test was created (Mount err %v)", err)
		}
		if err == nil {
			if _, serr := os.Stat(filepath.Join(rootfs, "nonexistent-crossrun-test/x")); serr != nil {
				t.Errorf("Mount succeeded but not inside the rootfs: %v", serr)
			}
		} else if !strings.Contains(err.Error(), "mounts[0]: mount tmpfs on /dangling/x") {
			t.Errorf("error does not name the mount: %v", err)
		}

		// Mounting over /proc entries is refused.
		s = &specs.Spec{Mounts: []specs.Mount{{Destination: "/proc/sysrq-trigger", Type: "bind", Source: "/dev/null", Options: []string{"bind"}}}}
		if err := Mount(s, Options{Rootfs: rootfs}); err == nil || !strings.Contains(err.Error(), "inside /proc") {
			t.Errorf("bind over /proc/sysrq-trigger: err = %v", err)
		}
	})
}

func TestMaskedPathsRefuseSymlinks(t *testing.T) {
	setup := func(t *testing.T, dir string) {
		setupRootfs(t, dir)
		rootfs := filepath.Join(dir, "rootfs")
		writeFile(t, filepath.Join(rootfs, "secret"), "secret")
		mkdirs(t, rootfs, "secretdir/inner")
		for link, target := range map[string]string{"masklink": "/etc/passwd", "linkdir": "/etc"} {
			if err := os.Symlink(target, filepath.Join(rootfs, link)); err != nil {
				t.Fatal(err)
			}
		}
	}
	inChild(t, containerNS, setup, func(t *testing.T, dir string) {
		s := &specs.Spec{
			Mounts: []specs.Mount{{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"}},
			Linux:  &specs.Linux{MaskedPaths: []string{"/secret", "/secretdir", "/does/not/exist"}},
		}
		opts := Options{Rootfs: filepath.Join(dir, "rootfs")}
		if err := Mount(s, opts); err != nil {
			t.Fatalf("Mount: %v", err)
		}
		if err := Pivot(s, opts); err != nil {
			t.Fatalf("Pivot: %v", err)
		}
		if b, err := os.ReadFile("/secret"); err != nil || len(b) != 0 {
			t.Errorf("masked /secret: %q, %v", b, err)
		}
		if ents, err := os.ReadDir("/secretdir"); err != nil || len(ents) != 0 {
			t.Errorf("masked /secretdir: %d entries, %v", len(ents), err)
		}
		expectErrno(t, "write masked dir", os.WriteFile("/secretdir/x", nil, 0o644), unix.EROFS)

		for _, p := range []string{"/masklink", "/linkdir/passwd"} {
			err := maskPaths([]string{p})
			if err == nil || !strings.Contains(err.Error(), "symlink") {
				t.Errorf("mask %s: err = %v, want refusal", p, err)
			}
		}
		if b, err := os.ReadFile("/etc/passwd"); err != nil || !strings.HasPrefix(string(b), "root:x") {
			t.Errorf("/etc/passwd was masked through a symlink: %q, %v", b, err)
		}

		// A /dev/null that is not the null device is never used.
		if err := os.Remove("/dev/null"); err != nil {
			t.Fatal(err)
		}
		writeFile(t, "/dev/null", "not null")
		err := maskPaths([]string{"/etc/passwd"})
		if err == nil || !strings.Contains(err.Error(), "not the null device") {
			t.Errorf("mask with a fake /dev/null: err = %v", err)
		}
		if err := os.Remove("/dev/null"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/etc/passwd", "/dev/null"); err != nil {
			t.Fatal(err)
		}
		if err := maskPaths([]string{"/etc/passwd"}); err == nil {
			t.Error("mask with /dev/null a symlink: no error")
		}
	})
}

func TestNoPivot(t *testing.T) {
	setup := func(t *testing.T, dir string) {
		setupRootfs(t, dir)
		writeFile(t, filepath.Join(dir, "rootfs/inside-marker"), "inside")
	}
	inChild(t, containerNS, setup, func(t *testing.T, dir string) {
		s := &specs.Spec{
			Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc", Source: "proc"},
				{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			},
			Linux: &specs.Linux{MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"}},
		}
		opts := Options{Rootfs: filepath.Join(dir, "rootfs"), NoPivot: true}
		if err := Mount(s, opts); err != nil {
			t.Fatalf("Mount: %v", err)
		}
		if err := Pivot(s, opts); err != nil {
			t.Fatalf("Pivot: %v", err)
		}
		if b, err := os.ReadFile("/inside-marker"); err != nil || string(b) != "inside" {
			t.Errorf("/inside-marker: %q, %v", b, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "host-marker")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("host file reachable after chroot: %v", err)
		}
		if self, err := os.Readlink("/proc/self"); err != nil || self != "1" {
			t.Errorf("/proc is not the container's procfs: self = %q, %v", self, err)
		}
		_, err := os.OpenFile("/proc/sys/kernel/hostname", os.O_WRONLY, 0)
		expectErrno(t, "write /proc/sys/kernel/hostname", err, unix.EROFS)
		mounts := mountsByPoint(t)
		expectMount(t, mounts, "/proc/sys", "proc", "ro")
		expectMount(t, mounts, "/dev", "tmpfs")
	})
}

func TestBindOptions(t *testing.T) {
	setup := func(t *testing.T, dir string) {
		setupRootfs(t, dir)
		mkdirs(t, dir, "src/sub")
		rootfs := filepath.Join(dir, "rootfs")
		writeFile(t, filepath.Join(rootfs, "data/file"), "lower file")
		writeFile(t, filepath.Join(rootfs, "data/d/g"), "nested")
		if err := os.Symlink("file", filepath.Join(rootfs, "data/link")); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(rootfs, "data/file"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	inChild(t, 0, setup, func(t *testing.T, dir string) {
		src := filepath.Join(dir, "src")
		if err := unix.Mount("tmpfs", filepath.Join(src, "sub"), "tmpfs", 0, ""); err != nil {
			t.Fatal(err)
		}
		rootfs := filepath.Join(dir, "rootfs")
		s := &specs.Spec{Mounts: []specs.Mount{
			{Destination: "/a", Source: src, Options: []string{"rbind", "rro", "rprivate"}},
			{Destination: "/b", Source: src, Options: []string{"bind", "ro", "nosuid", "unbindable"}},
			{Destination: "/c", Source: src, Options: []string{"rbind"}},
			{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "nodev"}},
		}}
		if err := Mount(s, Options{Rootfs: rootfs}); err != nil {
			t.Fatalf("Mount: %v", err)
		}
		mounts := mountsByPoint(t)
		expectMount(t, mounts, rootfs+"/a", "", "ro")
		expectMount(t, mounts, rootfs+"/a/sub", "tmpfs", "ro")
		b := expectMount(t, mounts, rootfs+"/b", "", "ro", "nosuid")
		if !hasOpt(strings.Join(b.Optional, ","), "unbindable") {
			t.Errorf("/b propagation %v, want unbindable", b.Optional)
		}
		if _, ok := mounts[rootfs+"/b/sub"]; ok {
			t.Error("non-recursive bind carried the submount")
		}
		c := expectMount(t, mounts, rootfs+"/c", "", "rw")
		if hasOpt(c.Options, "ro") {
			t.Error("/c is read-only")
		}
		expectMount(t, mounts, rootfs+"/c/sub", "tmpfs", "rw")

		expectMount(t, mounts, rootfs+"/data", "tmpfs", "nodev")
		if got, err := os.ReadFile(rootfs + "/data/file"); err != nil || string(got) != "lower file" {
			t.Errorf("tmpcopyup file: %q, %v", got, err)
		}
		if fi, err := os.Stat(rootfs + "/data/file"); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("tmpcopyup mode: %v, %v", fi, err)
		}
		if got, err := os.ReadFile(rootfs + "/data/d/g"); err != nil || string(got) != "nested" {
			t.Errorf("tmpcopyup nested: %q, %v", got, err)
		}
		if got, err := os.Readlink(rootfs + "/data/link"); err != nil || got != "file" {
			t.Errorf("tmpcopyup symlink: %q, %v", got, err)
		}
	})
}

func TestDevicesAndUserNSBinds(t *testing.T) {
	inChild(t, 0, func(t *testing.T, dir string) {
		mkdirs(t, dir, "r1", "r2")
	}, func(t *testing.T, dir string) {
		uid, gid, mode := uint32(1000), uint32(1001), os.FileMode(0o600)
		s := &specs.Spec{
			Mounts: []specs.Mount{{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"}},
			Linux: &specs.Linux{Devices: []specs.LinuxDevice{
				{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &uid, GID: &gid},
				{Path: "/dev/sub/fifo", Type: "p"},
				{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: &mode},
			}},
		}
		r1 := filepath.Join(dir, "r1")
		if err := Mount(s, Options{Rootfs: r1}); err != nil {
			t.Fatalf("Mount: %v", err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(r1+"/dev/fuse", &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != unix.S_IFCHR|0o600 || uint64(st.Rdev) != unix.Mkdev(10, 229) || st.Uid != uid || st.Gid != gid {
			t.Errorf("/dev/fuse: mode %#o rdev %d:%d owner %d:%d", st.Mode, unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)), st.Uid, st.Gid)
		}
		if err := unix.Lstat(r1+"/dev/sub/fifo", &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
			t.Errorf("/dev/sub/fifo: mode %#o, %v", st.Mode, err)
		}
		if err := unix.Lstat(r1+"/dev/null", &st); err != nil || st.Mode != unix.S_IFCHR|0o600 {
			t.Errorf("spec /dev/null must override the default: mode %#o, %v", st.Mode, err)
		}

		// In a user namespace devices are host nodes bind-mounted in.
		r2 := filepath.Join(dir, "r2")
		s = &specs.Spec{Mounts: []specs.Mount{{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"}}}
		if err := Mount(s, Options{Rootfs: r2, UserNS: true}); err != nil {
			t.Fatalf("Mount (userns): %v", err)
		}
		mounts := mountsByPoint(t)
		expectMount(t, mounts, r2+"/dev/null", "")
		if err := unix.Stat(r2+"/dev/null", &st); err != nil || uint64(st.Rdev) != unix.Mkdev(1, 3) {
			t.Errorf("bound /dev/null: rdev %d:%d, %v", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)), err)
		}
	})
}

func TestConsole(t *testing.T) {
	inChild(t, 0, func(t *testing.T, dir string) {
		mkdirs(t, dir, "r1", "r2", "r3")
	}, func(t *testing.T, dir string) {
		ptmx, err := os.OpenFile("/dev/pts/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			t.Skipf("no devpts: %v", err)
		}
		defer ptmx.Close()
		if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
			t.Fatal(err)
		}
		n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
		if err != nil {
			t.Fatal(err)
		}
		slave := filepath.Join("/dev/pts", strconv.Itoa(n))
		var want unix.Stat_t
		if err := unix.Stat(slave, &want); err != nil {
			t.Fatal(err)
		}
		s := &specs.Spec{Mounts: []specs.Mount{{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"}}}
		r1 := filepath.Join(dir, "r1")
		if err := Mount(s, Options{Rootfs: r1, ConsolePath: slave}); err != nil {
			t.Fatalf("Mount: %v", err)
		}
		var st unix.Stat_t
		if err := unix.Stat(r1+"/dev/console", &st); err != nil || st.Rdev != want.Rdev || st.Mode&unix.S_IFMT != unix.S_IFCHR {
			t.Errorf("/dev/console: rdev %d:%d, %v; want %d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)), err, unix.Major(uint64(want.Rdev)), unix.Minor(uint64(want.Rdev)))
		}

		link := filepath.Join(dir, "console-link")
		if err := os.Symlink(slave, link); err != nil {
			t.Fatal(err)
		}
		for path, msg := range map[string]string{link: "symlink", "/dev/null": "not a pty slave"} {
			err := Mount(s, Options{Rootfs: filepath.Join(dir, "r2"), ConsolePath: path})
			if err == nil || !strings.Contains(err.Error(), msg) {
				t.Errorf("console %s: err = %v, want %q", path, err, msg)
			}
		}
	})
}

func TestCgroupNamespace(t *testing.T) {
	inChild(t, containerNS|unix.CLONE_NEWCGROUP, setupRootfs, func(t *testing.T, dir string) {
		var st unix.Statfs_t
		if err := unix.Statfs(cgroupRoot, &st); err != nil {
			t.Fatal(err)
		}
		s := &specs.Spec{Mounts: []specs.Mount{
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		}}
		rootfs := filepath.Join(dir, "rootfs")
		if err := Mount(s, Options{Rootfs: rootfs, CgroupNS: true}); err != nil {
			t.Fatalf("Mount: %v", err)
		}
		mounts := mountsByPoint(t)
		cg := rootfs + "/sys/fs/cgroup"
		if st.Type == unix.CGROUP2_SUPER_MAGIC {
			mi := expectMount(t, mounts, cg, "cgroup2", "ro")
			if mi.Root != "/" {
				t.Errorf("cgroup2 root %s, want /", mi.Root)
			}
			return
		}
		expectMount(t, mounts, cg, "tmpfs", "ro")
		mi := expectMount(t, mounts, cg+"/memory", "cgroup", "ro", "memory")
		if mi.Root != "/" {
			t.Errorf("memory hierarchy root %s, want / in a cgroup namespace", mi.Root)
		}
		expectMount(t, mounts, cg+"/systemd", "cgroup", "name=systemd")
	})
}
