// Package cli is crossrun's command-line parser: an App of Commands with
// flags, in the shape of github.com/urfave/cli/v2 (the subset crossrun and
// runc use), built on the standard library's flag package.
//
// A general CLI framework brings text/template, regexp and their tables
// into every crossrun process, container init included; this package is a
// few hundred lines. The parsing rules are the flag package's, which are
// also those runc users know: "-f" and "--f" are the same flag, a value is
// given as "--f value" or "--f=value", flags come before positional
// arguments (the first argument that is not a flag, or "--", ends them),
// and global flags come before the command name.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// ActionFunc runs a command (or the App's Before hook).
type ActionFunc func(*Context) error

// App is the program: global flags and commands.
type App struct {
	Name    string
	Usage   string
	Version string
	Flags   []Flag
	// Before runs after the global flags are parsed, before the command.
	Before   ActionFunc
	Commands []*Command
	// CommandNotFound is called for an unknown command name; when it
	// returns, Run returns an error naming the command.
	CommandNotFound func(*Context, string)
	// ExitErrHandler is accepted for compatibility; errors are returned
	// by Run.
	ExitErrHandler func(*Context, error)
	// Writer receives help and version output (default os.Stdout).
	Writer io.Writer
}

// Command is one subcommand.
type Command struct {
	Name        string
	Aliases     []string
	Usage       string
	ArgsUsage   string
	Description string
	Flags       []Flag
	Action      ActionFunc
	Hidden      bool
	Subcommands []*Command
}

// Run parses arguments (arguments[0] is the program name) and runs the
// command they name.
func (a *App) Run(arguments []string) error {
	if a.Writer == nil {
		a.Writer = os.Stdout
	}
	fs, err := newFlagSet(a.Name, a.Flags, true)
	if err != nil {
		return err
	}
	ctx := &Context{App: a, fs: fs, flags: a.Flags}
	if err := parse(fs, arguments[1:]); err != nil {
		return fmt.Errorf("%v; see \"%s --help\"", err, a.Name)
	}
	if ctx.helpAsked() {
		a.printHelp()
		return nil
	}
	if ctx.versionAsked() {
		fmt.Fprintf(a.Writer, "%s version %s\n", a.Name, a.Version)
		return nil
	}
	args := fs.Args()
	if len(args) == 0 {
		a.printHelp()
		return nil
	}
	if a.Before != nil {
		if err := a.Before(ctx); err != nil {
			return err
		}
	}
	name := args[0]
	if name == "help" || name == "h" {
		if len(args) > 1 {
			if c := findCommand(a.Commands, args[1]); c != nil {
				c.printHelp(a.Writer, a.Name)
				return nil
			}
			return a.notFound(ctx, args[1])
		}
		a.printHelp()
		return nil
	}
	c := findCommand(a.Commands, name)
	if c == nil {
		return a.notFound(ctx, name)
	}
	return c.run(ctx, a.Name+" "+c.Name, args[1:])
}

func (a *App) notFound(ctx *Context, name string) error {
	if a.CommandNotFound != nil {
		a.CommandNotFound(ctx, name)
	}
	return fmt.Errorf("unknown command %q; see \"%s --help\"", name, a.Name)
}

func (c *Command) run(parent *Context, fullName string, args []string) error {
	fs, err := newFlagSet(fullName, c.Flags, false)
	if err != nil {
		return err
	}
	ctx := &Context{App: parent.App, Command: c, parent: parent, fs: fs, flags: c.Flags}
	if err := parse(fs, args); err != nil {
		return fmt.Errorf("%s: %v; see \"%s --help\"", c.Name, err, fullName)
	}
	if ctx.helpAsked() {
		c.printHelp(parent.App.Writer, strings.TrimSuffix(fullName, " "+c.Name))
		return nil
	}
	rest := fs.Args()
	if len(c.Subcommands) > 0 && len(rest) > 0 {
		if sub := findCommand(c.Subcommands, rest[0]); sub != nil {
			return sub.run(ctx, fullName+" "+sub.Name, rest[1:])
		}
		if c.Action == nil {
			return fmt.Errorf("unknown command %q; see \"%s --help\"", fullName+" "+rest[0], fullName)
		}
	}
	if c.Action == nil {
		c.printHelp(parent.App.Writer, strings.TrimSuffix(fullName, " "+c.Name))
		return nil
	}
	return c.Action(ctx)
}

func findCommand(cmds []*Command, name string) *Command {
	for _, c := range cmds {
		if c.Name == name {
			return c
		}
		for _, a := range c.Aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

// parse runs the flag package over args. Its own error output is
// discarded: the caller returns a one-line error instead.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// Names of the built-in flags.
const (
	helpFlag    = "help"
	versionFlag = "version"
)

func newFlagSet(name string, flags []Flag, global bool) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, f := range flags {
		for _, n := range f.Names() {
			if fs.Lookup(n) != nil {
				return nil, fmt.Errorf("cli: flag %q defined twice in %s", n, name)
			}
		}
		f.apply(fs)
	}
	help := new(bool)
	fs.BoolVar(help, helpFlag, false, "show help")
	fs.BoolVar(help, "h", false, "show help")
	if global {
		v := new(bool)
		fs.BoolVar(v, versionFlag, false, "print the version")
		fs.BoolVar(v, "v", false, "print the version")
	}
	return fs, nil
}

// Context is what an action sees: its flags, its arguments, and through
// its parent the global flags.
type Context struct {
	App     *App
	Command *Command
	parent  *Context
	fs      *flag.FlagSet
	flags   []Flag
}

func (c *Context) helpAsked() bool    { return c.getBool(helpFlag) }
func (c *Context) versionAsked() bool { return c.getBool(versionFlag) }

func (c *Context) getBool(name string) bool {
	if f := c.fs.Lookup(name); f != nil {
		b, _ := f.Value.(flag.Getter).Get().(bool)
		return b
	}
	return false
}

// lookup finds a flag by any of its names here or in an enclosing context.
func (c *Context) lookup(name string) (*flag.Flag, *Context) {
	for x := c; x != nil; x = x.parent {
		if f := x.fs.Lookup(name); f != nil {
			return f, x
		}
	}
	return nil, nil
}

func (c *Context) value(name string) any {
	f, _ := c.lookup(name)
	if f == nil {
		return nil
	}
	return f.Value.(flag.Getter).Get()
}

// String returns a string flag's value ("" for an unknown flag).
func (c *Context) String(name string) string { s, _ := c.value(name).(string); return s }

// Bool returns a bool flag's value.
func (c *Context) Bool(name string) bool { b, _ := c.value(name).(bool); return b }

// Int returns an int flag's value.
func (c *Context) Int(name string) int { i, _ := c.value(name).(int); return i }

// Int64 returns an int64 flag's value.
func (c *Context) Int64(name string) int64 { i, _ := c.value(name).(int64); return i }

// Duration returns a duration flag's value.
func (c *Context) Duration(name string) time.Duration {
	d, _ := c.value(name).(time.Duration)
	return d
}

// StringSlice returns every value a repeatable flag was given, in order.
func (c *Context) StringSlice(name string) []string {
	s, _ := c.value(name).([]string)
	return s
}

// IsSet reports whether the flag was given on the command line, under any
// of its names.
func (c *Context) IsSet(name string) bool {
	_, owner := c.lookup(name)
	if owner == nil {
		return false
	}
	names := map[string]bool{name: true}
	for _, f := range owner.flags {
		for _, n := range f.Names() {
			if n == name {
				for _, m := range f.Names() {
					names[m] = true
				}
			}
		}
	}
	set := false
	owner.fs.Visit(func(f *flag.Flag) {
		if names[f.Name] {
			set = true
		}
	})
	return set
}

// NArg is the number of positional arguments.
func (c *Context) NArg() int { return c.fs.NArg() }

// Args returns the positional arguments.
func (c *Context) Args() Args { return Args(c.fs.Args()) }

// Args are a command's positional arguments.
type Args []string

// First is the first argument, or "".
func (a Args) First() string { return a.Get(0) }

// Get is argument n, or "".
func (a Args) Get(n int) string {
	if n < 0 || n >= len(a) {
		return ""
	}
	return a[n]
}

// Tail is every argument but the first.
func (a Args) Tail() []string {
	if len(a) < 2 {
		return nil
	}
	return a[1:]
}

// Len is the number of arguments.
func (a Args) Len() int { return len(a) }

// Present reports whether there is any argument.
func (a Args) Present() bool { return len(a) > 0 }

// Slice is the arguments as a slice.
func (a Args) Slice() []string { return []string(a) }

// Flag is a command-line flag.
type Flag interface {
	// Names is the flag's name followed by its aliases.
	Names() []string
	apply(fs *flag.FlagSet)
	// help is the flag's line in a help listing, and whether it shows.
	help() (string, bool)
}

func names(name string, aliases []string) []string {
	return append([]string{name}, aliases...)
}

func helpLine(names []string, takesValue bool, usage, def string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		p := "-" + n
		if len(n) > 1 {
			p = "--" + n
		}
		if takesValue {
			p += " value"
		}
		parts[i] = p
	}
	line := strings.Join(parts, ", ") + "\t" + usage
	if def != "" {
		line += " (default: " + def + ")"
	}
	return line
}

func nonZero(v int64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatInt(v, 10)
}

// StringFlag is a flag with a string value.
type StringFlag struct {
	Name    string
	Aliases []string
	Usage   string
	Value   string
	Hidden  bool
}

func (f *StringFlag) Names() []string { return names(f.Name, f.Aliases) }
func (f *StringFlag) apply(fs *flag.FlagSet) {
	p := new(string)
	for _, n := range f.Names() {
		fs.StringVar(p, n, f.Value, f.Usage)
	}
}
func (f *StringFlag) help() (string, bool) {
	def := ""
	if f.Value != "" {
		def = strconv.Quote(f.Value)
	}
	return helpLine(f.Names(), true, f.Usage, def), !f.Hidden
}

// BoolFlag is a flag that is on when given ("--f" or "--f=true").
type BoolFlag struct {
	Name    string
	Aliases []string
	Usage   string
	Value   bool
	Hidden  bool
}

func (f *BoolFlag) Names() []string { return names(f.Name, f.Aliases) }
func (f *BoolFlag) apply(fs *flag.FlagSet) {
	p := new(bool)
	for _, n := range f.Names() {
		fs.BoolVar(p, n, f.Value, f.Usage)
	}
}
func (f *BoolFlag) help() (string, bool) {
	def := ""
	if f.Value {
		def = "true"
	}
	return helpLine(f.Names(), false, f.Usage, def), !f.Hidden
}

// IntFlag is a flag with an int value.
type IntFlag struct {
	Name    string
	Aliases []string
	Usage   string
	Value   int
	Hidden  bool
}

func (f *IntFlag) Names() []string { return names(f.Name, f.Aliases) }
func (f *IntFlag) apply(fs *flag.FlagSet) {
	p := new(int)
	for _, n := range f.Names() {
		fs.IntVar(p, n, f.Value, f.Usage)
	}
}
func (f *IntFlag) help() (string, bool) {
	return helpLine(f.Names(), true, f.Usage, nonZero(int64(f.Value))), !f.Hidden
}

// Int64Flag is a flag with an int64 value.
type Int64Flag struct {
	Name    string
	Aliases []string
	Usage   string
	Value   int64
	Hidden  bool
}

func (f *Int64Flag) Names() []string { return names(f.Name, f.Aliases) }
func (f *Int64Flag) apply(fs *flag.FlagSet) {
	p := new(int64)
	for _, n := range f.Names() {
		fs.Int64Var(p, n, f.Value, f.Usage)
	}
}
func (f *Int64Flag) help() (string, bool) {
	return helpLine(f.Names(), true, f.Usage, nonZero(f.Value)), !f.Hidden
}

// DurationFlag is a flag with a time.Duration value ("5s", "100ms").
type DurationFlag struct {
	Name    string
	Aliases []string
	Usage   string
	Value   time.Duration
	Hidden  bool
}

func (f *DurationFlag) Names() []string { return names(f.Name, f.Aliases) }
func (f *DurationFlag) apply(fs *flag.FlagSet) {
	p := new(time.Duration)
	for _, n := range f.Names() {
		fs.DurationVar(p, n, f.Value, f.Usage)
	}
}
func (f *DurationFlag) help() (string, bool) {
	def := ""
	if f.Value != 0 {
		def = f.Value.String()
	}
	return helpLine(f.Names(), true, f.Usage, def), !f.Hidden
}

// StringSliceFlag is a repeatable flag: each use adds a value. A value is
// taken whole, commas included (runc's --env A=1,2 sets A to "1,2").
type StringSliceFlag struct {
	Name    string
	Aliases []string
	Usage   string
	Hidden  bool
}

type sliceValue struct{ v *[]string }

func (s sliceValue) String() string {
	if s.v == nil {
		return ""
	}
	return strings.Join(*s.v, ",")
}
func (s sliceValue) Set(x string) error { *s.v = append(*s.v, x); return nil }
func (s sliceValue) Get() any           { return *s.v }

func (f *StringSliceFlag) Names() []string { return names(f.Name, f.Aliases) }
func (f *StringSliceFlag) apply(fs *flag.FlagSet) {
	v := sliceValue{new([]string)}
	for _, n := range f.Names() {
		fs.Var(v, n, f.Usage)
	}
}
func (f *StringSliceFlag) help() (string, bool) {
	return helpLine(f.Names(), true, f.Usage, ""), !f.Hidden
}

// Help output.

func (a *App) printHelp() {
	w := a.Writer
	fmt.Fprintf(w, "NAME:\n   %s - %s\n\n", a.Name, indent(a.Usage))
	fmt.Fprintf(w, "USAGE:\n   %s [global options] command [command options] [arguments...]\n\n", a.Name)
	if a.Version != "" {
		fmt.Fprintf(w, "VERSION:\n   %s\n\n", a.Version)
	}
	printCommands(w, a.Commands)
	fmt.Fprintf(w, "GLOBAL OPTIONS:\n")
	printFlags(w, a.Flags, true)
}

func (c *Command) printHelp(w io.Writer, prog string) {
	fmt.Fprintf(w, "NAME:\n   %s %s - %s\n\n", prog, c.Name, c.Usage)
	opts := ""
	if len(c.Flags) > 0 {
		opts = " [command options]"
	}
	sub := ""
	if len(c.Subcommands) > 0 {
		sub = " command"
	}
	fmt.Fprintf(w, "USAGE:\n   %s %s%s%s %s\n\n", prog, c.Name, sub, opts, c.ArgsUsage)
	if c.Description != "" {
		fmt.Fprintf(w, "DESCRIPTION:\n   %s\n\n", indent(c.Description))
	}
	if len(c.Subcommands) > 0 {
		printCommands(w, c.Subcommands)
	}
	fmt.Fprintf(w, "OPTIONS:\n")
	printFlags(w, c.Flags, false)
}

func printCommands(w io.Writer, cmds []*Command) {
	fmt.Fprintf(w, "COMMANDS:\n")
	var rows [][2]string
	for _, c := range cmds {
		if !c.Hidden {
			rows = append(rows, [2]string{strings.Join(names(c.Name, c.Aliases), ", "), c.Usage})
		}
	}
	rows = append(rows, [2]string{"help, h", "show the commands, or one command's help"})
	printRows(w, rows)
	fmt.Fprintln(w)
}

func printFlags(w io.Writer, flags []Flag, global bool) {
	var rows [][2]string
	for _, f := range flags {
		if line, show := f.help(); show {
			k, v, _ := strings.Cut(line, "\t")
			rows = append(rows, [2]string{k, v})
		}
	}
	rows = append(rows, [2]string{"--help, -h", "show help"})
	if global {
		rows = append(rows, [2]string{"--version, -v", "print the version"})
	}
	printRows(w, rows)
}

func printRows(w io.Writer, rows [][2]string) {
	width := 0
	for _, r := range rows {
		if len(r[0]) > width {
			width = len(r[0])
		}
	}
	for _, r := range rows {
		fmt.Fprintf(w, "   %-*s  %s\n", width, r[0], r[1])
	}
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n   ") }
