package libcontainer

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setupConsole runs in init after the root switch, and in an exec'd process
// with a terminal: it opens a pty in the container's devpts, makes its slave
// the process's controlling terminal and stdio, and sends the master to the
// console socket (SCM_RIGHTS, with the pty name as data, as runc does).
// Init also bind-mounts the slave on /dev/console.
func setupConsole(sock *os.File, size *specs.Box, devConsole bool) error {
	defer sock.Close()
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx in the container: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("get pty number: %w", err)
	}
	slavePath := fmt.Sprintf("/dev/pts/%d", n)
	// TIOCGPTPEER opens the slave from the master, without a path lookup
	// the container could redirect.
	slave, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if e != 0 {
		return fmt.Errorf("open pty slave %s: %w", slavePath, e)
	}
	defer unix.Close(int(slave))
	if size != nil && size.Height > 0 && size.Width > 0 {
		_ = unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)})
	}
	if devConsole {
		if err := bindConsole(int(slave)); err != nil {
			return err
		}
	}
	if err := unix.Sendmsg(int(sock.Fd()), []byte(slavePath), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send pty master to the console socket: %w", err)
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(int(slave), unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("make the pty the controlling terminal: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(int(slave), fd, 0); err != nil {
			return fmt.Errorf("dup pty to fd %d: %w", fd, err)
		}
	}
	return nil
}

// bindConsole bind-mounts the pty slave on /dev/console. The target is
// created as a plain file when missing, and refused if it is a symlink or
// anything but a regular file or character device (CVE-2025-52565).
func bindConsole(slave int) error {
	var st unix.Stat_t
	err := unix.Lstat("/dev/console", &st)
	switch {
	case err == nil:
		typ := st.Mode & unix.S_IFMT
		if typ != unix.S_IFREG && typ != unix.S_IFCHR {
			return fmt.Errorf("/dev/console in the container is not a regular file or character device; refusing to mount the console on it")
		}
	case err == unix.ENOENT:
		fd, err := unix.Open("/dev/console", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create /dev/console: %w", err)
		}
		unix.Close(fd)
	default:
		return fmt.Errorf("stat /dev/console: %w", err)
	}
	target, err := unix.Open("/dev/console", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/console: %w", err)
	}
	defer unix.Close(target)
	src := fmt.Sprintf("/proc/self/fd/%d", slave)
	dst := fmt.Sprintf("/proc/self/fd/%d", target)
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind the console onto /dev/console: %w", err)
	}
	return nil
}
