package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// stopFD returns a descriptor that becomes readable once stop is closed,
// so a poll loop can wait on it next to its event source.
func stopFD(stop <-chan struct{}) (r int, cleanup func(), err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return -1, nil, err
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-stop:
		case <-done:
		}
		unix.Close(p[1])
	}()
	return p[0], func() { close(done); unix.Close(p[0]) }, nil
}

// NotifyOOM on v1 registers an eventfd on memory.oom_control.
func (m *v1Manager) NotifyOOM(stop <-chan struct{}) (<-chan struct{}, error) {
	dir := m.path("memory")
	if dir == "" {
		return nil, errors.New("cannot watch for OOM: the memory cgroup controller is not available")
	}
	ofd, err := unix.Open(filepath.Join(dir, "memory.oom_control"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open memory.oom_control: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ofd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := writeFile(dir, "cgroup.event_control", strconv.Itoa(efd)+" "+strconv.Itoa(ofd)); err != nil {
		unix.Close(ofd)
		unix.Close(efd)
		return nil, err
	}
	sfd, cleanup, err := stopFD(stop)
	if err != nil {
		unix.Close(ofd)
		unix.Close(efd)
		return nil, err
	}
	ch := make(chan struct{}, 16)
	go func() {
		defer close(ch)
		defer cleanup()
		defer unix.Close(ofd)
		defer unix.Close(efd)
		buf := make([]byte, 8)
		for waitReadable(efd, sfd) {
			if _, err := unix.Read(efd, buf); err != nil {
				continue
			}
			// The kernel also signals the eventfd when the cgroup is
			// removed.
			if _, err := os.Stat(filepath.Join(dir, "cgroup.event_control")); err != nil {
				return
			}
			n := binary.NativeEndian.Uint64(buf)
			for ; n > 0; n-- {
				select {
				case ch <- struct{}{}:
				case <-stop:
					return
				}
			}
		}
	}()
	return ch, nil
}

// NotifyOOM on v2 watches memory.events for a growing oom_kill count and
// cgroup.events for the cgroup emptying.
func (m *v2Manager) NotifyOOM(stop <-chan struct{}) (<-chan struct{}, error) {
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	for _, f := range []string{"memory.events", "cgroup.events"} {
		if _, err := unix.InotifyAddWatch(ifd, filepath.Join(m.dir, f), unix.IN_MODIFY); err != nil {
			unix.Close(ifd)
			return nil, fmt.Errorf("watch %s: %w", filepath.Join(m.dir, f), err)
		}
	}
	last, err := m.OOMKillCount()
	if err != nil {
		unix.Close(ifd)
		return nil, err
	}
	sfd, cleanup, err := stopFD(stop)
	if err != nil {
		unix.Close(ifd)
		return nil, err
	}
	ch := make(chan struct{}, 16)
	go func() {
		defer close(ch)
		defer cleanup()
		defer unix.Close(ifd)
		buf := make([]byte, 4096)
		for waitReadable(ifd, sfd) {
			for {
				if _, err := unix.Read(ifd, buf); err != nil {
					break
				}
			}
			n, err := m.OOMKillCount()
			if err != nil {
				return
			}
			for ; last < n; last++ {
				select {
				case ch <- struct{}{}:
				case <-stop:
					return
				}
			}
			ev, err := readKeyValues(m.dir, "cgroup.events")
			if err != nil || ev["populated"] == 0 {
				return
			}
		}
	}()
	return ch, nil
}

// waitReadable blocks until fd is readable (true), or until stopFd is or
// poll fails (false).
func waitReadable(fd, stopFd int) bool {
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(stopFd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return false
		}
		return fds[1].Revents == 0
	}
}
