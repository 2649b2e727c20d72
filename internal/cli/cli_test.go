package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// seen records what an action observed.
type seen struct {
	root, bundle string
	detach, set  bool
	bundleSet    bool
	env          []string
	fds          int
	limit        int64
	interval     time.Duration
	args         []string
	cmd          string
}

func testApp(out *seen, w *bytes.Buffer) *App {
	action := func(ctx *Context) error {
		*out = seen{
			root:      ctx.String("root"),
			bundle:    ctx.String("bundle"),
			detach:    ctx.Bool("detach"),
			set:       ctx.IsSet("detach"),
			bundleSet: ctx.IsSet("bundle"),
			env:       ctx.StringSlice("env"),
			fds:       ctx.Int("preserve-fds"),
			limit:     ctx.Int64("pids-limit"),
			interval:  ctx.Duration("interval"),
			args:      ctx.Args().Slice(),
			cmd:       ctx.Command.Name,
		}
		return nil
	}
	flags := []Flag{
		&StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "bundle directory"},
		&BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach"},
		&StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "KEY=VALUE"},
		&IntFlag{Name: "preserve-fds", Usage: "extra fds"},
		&Int64Flag{Name: "pids-limit", Usage: "pids"},
		&DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "interval"},
	}
	return &App{
		Name:    "prog",
		Usage:   "a test program",
		Version: "1.2.3",
		Writer:  w,
		Flags:   []Flag{&StringFlag{Name: "root", Value: "/run/prog", Usage: "state root"}, &BoolFlag{Name: "debug"}},
		Commands: []*Command{
			{Name: "run", Usage: "run it", ArgsUsage: "<id>", Flags: flags, Action: action},
			{Name: "init", Hidden: true, Action: action},
			{Name: "binfmt", Usage: "handlers", Subcommands: []*Command{
				{Name: "ls", Aliases: []string{"list"}, Usage: "list", Action: action},
			}},
		},
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want seen
	}{
		{[]string{"run", "id"}, seen{root: "/run/prog", interval: 5 * time.Second, args: []string{"id"}, cmd: "run"}},
		{[]string{"--root", "/tmp/r", "run", "-b", "/bundle", "-d", "id"},
			seen{root: "/tmp/r", bundle: "/bundle", detach: true, set: true, bundleSet: true, interval: 5 * time.Second, args: []string{"id"}, cmd: "run"}},
		{[]string{"-root=/x", "run", "--bundle=/b", "--detach=false", "id"},
			seen{root: "/x", bundle: "/b", set: true, bundleSet: true, interval: 5 * time.Second, args: []string{"id"}, cmd: "run"}},
		// Repeated, and a value's commas are kept.
		{[]string{"run", "-e", "A=1,2", "--env", "B=3", "id"},
			seen{root: "/run/prog", env: []string{"A=1,2", "B=3"}, interval: 5 * time.Second, args: []string{"id"}, cmd: "run"}},
		{[]string{"run", "--preserve-fds", "2", "--pids-limit", "-1", "--interval", "250ms", "id"},
			seen{root: "/run/prog", fds: 2, limit: -1, interval: 250 * time.Millisecond, args: []string{"id"}, cmd: "run"}},
		// Flags end at the first argument: the rest belongs to the process.
		{[]string{"run", "id", "sh", "-c", "-d"},
			seen{root: "/run/prog", interval: 5 * time.Second, args: []string{"id", "sh", "-c", "-d"}, cmd: "run"}},
		{[]string{"run", "--", "-d"},
			seen{root: "/run/prog", interval: 5 * time.Second, args: []string{"-d"}, cmd: "run"}},
		{[]string{"binfmt", "list", "x"}, seen{root: "/run/prog", args: []string{"x"}, cmd: "ls"}},
	} {
		var got seen
		var w bytes.Buffer
		if err := testApp(&got, &w).Run(append([]string{"prog"}, tc.args...)); err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if strings.Join(got.args, "|") != strings.Join(tc.want.args, "|") || strings.Join(got.env, "|") != strings.Join(tc.want.env, "|") {
			t.Errorf("%v: args %q env %q, want %q %q", tc.args, got.args, got.env, tc.want.args, tc.want.env)
		}
		got.args, got.env, tc.want.args, tc.want.env = nil, nil, nil, nil
		if got.root != tc.want.root || got.bundle != tc.want.bundle || got.detach != tc.want.detach || got.set != tc.want.set ||
			got.bundleSet != tc.want.bundleSet || got.fds != tc.want.fds || got.limit != tc.want.limit ||
			got.interval != tc.want.interval || got.cmd != tc.want.cmd {
			t.Errorf("%v: got %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--bogus", "id"}, `run: flag provided but not defined: -bogus; see "prog run --help"`},
		{[]string{"--bogus"}, `flag provided but not defined: -bogus; see "prog --help"`},
		{[]string{"nosuch"}, `unknown command "nosuch"; see "prog --help"`},
		{[]string{"run", "--preserve-fds", "x", "id"}, `run: invalid value "x" for flag -preserve-fds`},
		{[]string{"binfmt", "nosuch"}, `unknown command "prog binfmt nosuch"`},
	} {
		var got seen
		var w bytes.Buffer
		err := testApp(&got, &w).Run(append([]string{"prog"}, tc.args...))
		if err == nil {
			t.Errorf("%v: no error", tc.args)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %q, want one line starting %q", tc.args, err, tc.want)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    []string
		notWant string
	}{
		{[]string{"--version"}, []string{"prog version 1.2.3"}, "USAGE"},
		{[]string{"-v"}, []string{"prog version 1.2.3"}, "USAGE"},
		{[]string{"--help"}, []string{"prog - a test program", "run", "binfmt", "--root value", `(default: "/run/prog")`}, "init"},
		{[]string{}, []string{"COMMANDS:"}, ""},
		{[]string{"help", "run"}, []string{"prog run - run it", "--bundle value, -b value", "--detach, -d", "<id>"}, "GLOBAL"},
		{[]string{"run", "-h"}, []string{"prog run - run it", "(default: 5s)"}, ""},
		{[]string{"binfmt"}, []string{"ls, list"}, ""},
	} {
		var got seen
		var w bytes.Buffer
		if err := testApp(&got, &w).Run(append([]string{"prog"}, tc.args...)); err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		for _, s := range tc.want {
			if !strings.Contains(w.String(), s) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, s, w.String())
			}
		}
		if tc.notWant != "" && strings.Contains(w.String(), tc.notWant) {
			t.Errorf("%v: output has %q:\n%s", tc.args, tc.notWant, w.String())
		}
		if got.cmd != "" {
			t.Errorf("%v: ran %s instead of printing", tc.args, got.cmd)
		}
	}
}

func TestBeforeRunsBeforeTheCommand(t *testing.T) {
	var order []string
	var w bytes.Buffer
	app := &App{Name: "p", Writer: &w,
		Before:   func(*Context) error { order = append(order, "before"); return nil },
		Commands: []*Command{{Name: "x", Action: func(*Context) error { order = append(order, "x"); return nil }}},
	}
	if err := app.Run([]string{"p", "x"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "before,x" {
		t.Errorf("order %v", order)
	}
}
