package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/libcontainer"
)

var runCommand = &cli.Command{
	Name:      "run",
	Usage:     "create and start a container, and wait for it",
	ArgsUsage: "<container-id>",
	Description: `The run command creates and starts a container from a bundle. In the
foreground it forwards signals to the container and exits with its exit
code (128+N when it was killed by signal N), then deletes it unless --keep.`,
	Flags: append([]cli.Flag{
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the container's process"},
		&cli.BoolFlag{Name: "keep", Usage: "do not delete the container after it exits"},
	}, createFlags...),
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 1, true); err != nil {
			return err
		}
		if ctx.Bool("detach") && ctx.Bool("keep") {
			return errors.New("--keep has no effect with --detach; use one of them")
		}
		code, err := runContainer(ctx)
		if err != nil {
			return err
		}
		if code != 0 {
			return &exitError{code}
		}
		return nil
	},
}

func runContainer(ctx *cli.Context) (int, error) {
	detach := ctx.Bool("detach")
	var consoleEnd *os.File
	var localConsole *os.File
	bundle, err := bundlePath(ctx)
	if err != nil {
		return 0, err
	}
	_ = bundle
	wantTTY, err := bundleWantsTerminal(ctx)
	if err != nil {
		return 0, err
	}
	if wantTTY && ctx.String("console-socket") == "" {
		if detach {
			return 0, errors.New("process.terminal is true and --detach was given: pass --console-socket to receive the terminal")
		}
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, err
		}
		localConsole = os.NewFile(uintptr(fds[0]), "console-local")
		consoleEnd = os.NewFile(uintptr(fds[1]), "console-init")
		defer localConsole.Close()
	}
	if !detach {
		// Become the subreaper so an init forked by the nsenter
		// constructor is still ours to wait for.
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	c, p, err := createContainerWithConsole(ctx, !detach, consoleEnd)
	if consoleEnd != nil {
		consoleEnd.Close()
	}
	if err != nil {
		return 0, err
	}
	defer c.Release()
	var master *os.File
	if localConsole != nil {
		master, err = recvConsole(localConsole)
		if err != nil {
			_ = c.Delete(true)
			return 0, err
		}
		defer master.Close()
	}
	sigs := make(chan os.Signal, 128)
	if !detach {
		signal.Notify(sigs)
	}
	if err := c.Start(); err != nil {
		_ = c.Delete(true)
		return 0, err
	}
	if detach {
		return 0, nil
	}
	var restore func()
	if master != nil {
		restore = attachTerminal(master)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				sig := s.(unix.Signal)
				switch sig {
				case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
					continue
				case unix.SIGWINCH:
					if master != nil {
						resizeFromStdin(master)
					}
					continue
				}
				if err := unix.Kill(p.Pid, sig); err != nil {
					logrus.Debugf("forward %v to %d: %v", sig, p.Pid, err)
				}
			case <-done:
				return
			}
		}
	}()
	ws, err := p.Wait()
	close(done)
	signal.Stop(sigs)
	if restore != nil {
		restore()
	}
	if err != nil && ws == 0 {
		return 0, fmt.Errorf("wait for container: %w", err)
	}
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	if !ctx.Bool("keep") {
		if err := c.Delete(true); err != nil {
			logrus.Warnf("delete container %s: %v", c.ID(), err)
		}
	}
	return code, nil
}

func createContainerWithConsole(ctx *cli.Context, foreground bool, console *os.File) (*libcontainer.Container, *libcontainer.Init, error) {
	consoleOverride = console
	defer func() { consoleOverride = nil }()
	return createContainer(ctx, foreground)
}

// recvConsole receives the pty master init sends over the console socket.
func recvConsole(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receive console: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, errors.New("receive console: no descriptor sent")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, errors.New("receive console: no descriptor sent")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// attachTerminal copies between our stdio and the container's pty, with our
// terminal in raw mode when stdin is one. It returns a function that
// restores the terminal.
func attachTerminal(master *os.File) func() {
	var saved *unix.Termios
	if t, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		saved = t
		raw := *t
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN] = 1
		raw.Cc[unix.VTIME] = 0
		_ = unix.IoctlSetTermios(0, unix.TCSETS, &raw)
		resizeFromStdin(master)
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	outDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(os.Stdout, master)
		close(outDone)
	}()
	return func() {
		<-outDone
		if saved != nil {
			_ = unix.IoctlSetTermios(0, unix.TCSETS, saved)
		}
	}
}

func resizeFromStdin(master *os.File) {
	ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
}
