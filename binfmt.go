package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/crossrun/crossrun/internal/cli"
	"github.com/sirupsen/logrus"

	"github.com/crossrun/crossrun/binfmt"
)

var binfmtCommand = &cli.Command{
	Name:  "binfmt",
	Usage: "list, install or remove the host's qemu-user binfmt_misc handlers",
	Description: `The host's binfmt_misc handlers let the kernel run binaries of other CPU
architectures through qemu-user. "install" registers the host's static qemu
(from qemu-user-static) with flag F, so that every container can use it
without a copy of qemu inside. Containers with a user namespace do not need
host handlers on Linux 6.7 and later: crossrun registers qemu privately in
the container's own binfmt_misc instance.

   crossrun binfmt ls
   crossrun binfmt install aarch64 riscv64
   crossrun binfmt install all
   crossrun binfmt uninstall all`,
	Subcommands: []*cli.Command{
		{
			Name:    "ls",
			Aliases: []string{"list"},
			Usage:   "list the host's binfmt_misc entries and what this host can run",
			Action:  binfmtList,
		},
		{
			Name:      "install",
			Usage:     "register qemu-user handlers (flags " + binfmt.InstallFlags + ") for architectures",
			ArgsUsage: "ARCH... | all",
			Action:    binfmtInstall,
		},
		{
			Name:      "uninstall",
			Usage:     "remove qemu-ARCH handlers",
			ArgsUsage: "ARCH... | all",
			Action:    binfmtUninstall,
		},
	},
}

func binfmtList(ctx *cli.Context) error {
	entries, err := binfmt.List()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tARCH\tINTERPRETER\tFLAGS\tENABLED")
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\n", e.Name, binfmtEntryArch(e), e.Interpreter, binfmtFlags(e.Flags), e.Enabled)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "PLATFORM\tARCH\tROUTE\tINTERPRETER")
	for _, p := range binfmt.Supported() {
		route := p.Route.String()
		if p.Note != "" {
			route += " (" + p.Note + ")"
		}
		interp := p.Interpreter
		if interp == "" {
			interp = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Platform, p.Arch.Name, route, interp)
	}
	return w.Flush()
}

// binfmtEntryArch names the architecture an entry's magic selects, or "-".
func binfmtEntryArch(e *binfmt.Entry) string {
	if e.Extension != "" {
		return "." + e.Extension
	}
	for i := range binfmt.Arches {
		a := &binfmt.Arches[i]
		magic, _ := a.BinfmtMagic()
		head := make([]byte, 256)
		copy(head, magic)
		m := *e
		m.Enabled = true
		if m.Matches("", head) {
			return a.Name
		}
	}
	return "-"
}

func binfmtFlags(f string) string {
	if f == "" {
		return "-"
	}
	return f
}

func binfmtArgs(ctx *cli.Context) ([]string, error) {
	if ctx.NArg() == 0 {
		return nil, fmt.Errorf("%q needs architectures or \"all\" (known: %s)", ctx.Command.Name, strings.Join(binfmt.ArchNames(), ", "))
	}
	return ctx.Args().Slice(), nil
}

func binfmtInstall(ctx *cli.Context) error {
	arches, err := binfmtArgs(ctx)
	if err != nil {
		return err
	}
	if err := binfmt.Install(arches); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("binfmt install: %w; run as root", err)
		}
		return fmt.Errorf("binfmt install: %w", err)
	}
	logrus.Debugf("binfmt: installed handlers for %s", strings.Join(arches, " "))
	return nil
}

func binfmtUninstall(ctx *cli.Context) error {
	arches, err := binfmtArgs(ctx)
	if err != nil {
		return err
	}
	if err := binfmt.Uninstall(arches); err != nil {
		return fmt.Errorf("binfmt uninstall: %w", err)
	}
	return nil
}
