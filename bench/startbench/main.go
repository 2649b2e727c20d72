// Command startbench measures how fast crossrun starts containers next to
// runc and crun, on the same bundles, and checks crossrun's start-time
// targets. It is the start-time part of `make bench`:
//
//	go run ./bench/startbench -crossrun ./crossrun [-runc PATH] [-crun PATH] [-n 60]
//
// It must run as root (without root it says so and exits 0). It builds its
// bundles in a temporary directory (a busybox-static rootfs and a
// config.json from `crossrun spec`), gives every runtime its own --root
// state directory there, and measures, interleaved round by round with the
// starting runtime rotated each round:
//
//	run      wall time of `run` of a container whose process is busybox true
//	cycle    wall time of create + start + delete --force of a detached
//	         container whose process is busybox sleep 1000
//	rss      peak RSS of a `run` process tree, from GNU time's %M
//	batch    wall time of 50 `run`s of true, two at a time
//	foreign  wall time of `run` of a static arm64 Go hello through the
//	         host's qemu-aarch64 binfmt_misc handler
//
// A peer that is not installed is skipped with a line saying so. Missing
// a target never makes the exit status non-zero; a runtime that fails to
// run a container does (its stderr is printed). The output is also saved
// to bench/results/<date>-<host>.txt (-out, -no-save). See bench/README.md.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	crossrunFlag = flag.String("crossrun", "", "crossrun binary to measure (required; copied to the work directory first)")
	runcFlag     = flag.String("runc", lookPath("runc"), "runc binary (skipped when missing)")
	crunFlag     = flag.String("crun", lookPath("crun"), "crun binary (skipped when missing)")
	rounds       = flag.Int("n", 60, "measured rounds of the run, cycle and foreign cases")
	warmup       = flag.Int("warmup", 3, "unrecorded warm-up rounds before each timed case")
	rssRounds    = flag.Int("rss-n", 20, "measured rounds of the peak RSS case")
	batchRounds  = flag.Int("batch-rounds", 3, "rounds of the 50-container batch case")
	fixHugetlb   = flag.Bool("fix-crun-hugetlb", os.Geteuid() == 0, "on a hybrid cgroup host whose cgroup2 holds hugetlb, mount hugetlb as a v1 hierarchy so that crun can run")
	busyboxFlag  = flag.String("busybox", "/bin/busybox", "static busybox for the bundle rootfs")
	outFlag      = flag.String("out", "", "results file (default bench/results/<date>-<host>.txt in the repository)")
	noSave       = flag.Bool("no-save", false, "do not save the results file")
)

const (
	batchSize    = 50
	batchWorkers = 2
	gnuTime      = "/usr/bin/time"
)

// stopping is set by SIGINT, SIGTERM, SIGHUP or SIGPIPE (stdout closed); the case loops check it
// between commands and return errInterrupted, so that cleanup runs.
var (
	stopping       atomic.Bool
	errInterrupted = errors.New("interrupted")
)

func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

func main() {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./bench/startbench -crossrun PATH [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	os.Exit(run())
}

func run() int {
	if *crossrunFlag == "" {
		fmt.Fprintln(os.Stderr, "startbench: -crossrun PATH is required")
		flag.Usage()
		return 2
	}
	if *rounds < 1 || *rssRounds < 1 || *batchRounds < 1 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "startbench: -n, -rss-n and -batch-rounds must be at least 1, -warmup at least 0")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Println("startbench: skipped, it needs root: it creates containers with crossrun, runc and crun")
		return 0
	}

	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		for sig := range sigc {
			switch {
			case sig == syscall.SIGPIPE: // every write to a closed stdout repeats it
				stopping.Store(true)
			case stopping.Swap(true):
				os.Exit(130)
			default:
				fmt.Fprintln(os.Stderr, "startbench: interrupted, cleaning up (signal again to quit at once)")
			}
		}
	}()

	var out bytes.Buffer
	b := &bench{w: io.MultiWriter(os.Stdout, &out), start: time.Now()}
	err := b.run()
	b.cleanup()
	switch {
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(os.Stderr, "startbench: interrupted; nothing saved")
		return 130
	case err != nil:
		fmt.Fprintln(os.Stderr, "startbench:", err)
		return 1
	}
	if *noSave {
		return 0
	}
	path := *outFlag
	if path == "" {
		path = defaultResultsPath(b.repo)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		err = os.WriteFile(path, out.Bytes(), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "startbench: save results:", err)
		return 1
	}
	fmt.Println("results saved to", path)
	return 0
}

// peer is one runtime under test.
type peer struct {
	name string
	bin  string
	root string // its own --root state directory
}

type bench struct {
	w     io.Writer
	start time.Time
	repo  string // repository root ("" when not found)
	work  string // temporary directory holding everything below
	state string // the runtimes' --root directories, under /run like their defaults
	peers []*peer

	trueBundle, sleepBundle string

	nextID  atomic.Int64
	summary []string // target lines, printed again at the end
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(b.w, format, args...) }

func (b *bench) run() error {
	b.repo = repoRoot()
	work, err := os.MkdirTemp("", "crossrun-startbench-")
	if err != nil {
		return err
	}
	b.work = work
	// State under /run, where runc (/run/runc) and crun (/run/crun) keep
	// it by default: tmpfs on most hosts, a disk file system on some (the
	// header says which).
	if b.state, err = os.MkdirTemp("/run", "crossrun-startbench-"); err != nil {
		return err
	}

	// Copy crossrun so that a concurrent `make build` cannot swap it mid-run.
	crossrun := filepath.Join(work, "bin", "crossrun")
	if err := copyFile(*crossrunFlag, crossrun, 0o755); err != nil {
		return fmt.Errorf("-crossrun: %w", err)
	}
	b.addPeer("crossrun", crossrun)

	b.printf("# crossrun start-time benchmark, %s\n\n", b.start.Format("2006-01-02 15:04:05 MST"))
	b.printf("command: go run ./bench/startbench %s\n", strings.Join(os.Args[1:], " "))
	b.printMachine()
	b.printf("state:    %s (%s), each runtime's --root below it\n", b.state, fsName(b.state))
	b.printf("\n")

	if p, ok := checkPeer("runc", *runcFlag); ok {
		b.addPeer("runc", p)
	} else {
		b.printf("runc: skipped, %s\n", p)
	}
	if p, ok := checkPeer("crun", *crunFlag); !ok {
		b.printf("crun: skipped, %s\n", p)
	} else if reason := crunCgroupCheck(b, *fixHugetlb); reason != "" {
		b.printf("crun: skipped, %s\n", reason)
	} else {
		b.addPeer("crun", p)
	}
	for _, p := range b.peers {
		if err := os.MkdirAll(p.root, 0o700); err != nil {
			return err
		}
		b.printf("%-9s %s (%s)\n", p.name+":", version(p.bin), p.bin)
	}

	if err := b.makeBundles(); err != nil {
		return err
	}
	b.printf("\nbundle: busybox-static rootfs, config.json from `crossrun spec`, ociVersion 1.0.2, terminal false\n")
	b.printf("rounds: each runs every runtime once, the first one rotating; n = recorded rounds\n")
	b.printf("warm-up: %d unrecorded rounds before the run, cycle and foreign cases\n", *warmup)
	b.printf("times: wall clock from fork/exec of the runtime to its exit, ms; p10/p90 interpolated\n")

	cases := []func() error{b.caseRun, b.caseCycle, b.caseRSS, b.caseBatch, b.caseForeign}
	for _, c := range cases {
		if err := c(); err != nil {
			return err
		}
	}

	b.printf("\n## targets\n")
	for _, s := range b.summary {
		b.printf("%s\n", s)
	}
	b.printf("\nload average at the end: %s\n", loadavg())
	b.printf("whole bench took %.1f s\n", time.Since(b.start).Seconds())
	return nil
}

func (b *bench) addPeer(name, bin string) {
	b.peers = append(b.peers, &peer{name: name, bin: bin, root: filepath.Join(b.state, name)})
}

// checkPeer returns the binary's path and true, or why it is skipped.
func checkPeer(name, bin string) (string, bool) {
	if bin == "" {
		return "not found in PATH (-" + name + " PATH)", false
	}
	st, err := os.Stat(bin)
	if err != nil {
		return bin + " not found", false
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return bin + " is not an executable file", false
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err.Error(), false
	}
	return abs, true
}

// newID returns a container id unique to this run.
func (b *bench) newID(kind string) string {
	return fmt.Sprintf("sb%d-%s-%d", os.Getpid(), kind, b.nextID.Add(1))
}

// invoke runs the runtime with args, stdin and stdout on /dev/null and
// stderr on errf (truncated first), and returns its wall time. A failure
// carries the runtime's stderr.
func invoke(p *peer, errf *os.File, args ...string) (time.Duration, error) {
	return invokeCmd(p, errf, exec.Command(p.bin, append([]string{"--root", p.root}, args...)...))
}

func invokeCmd(p *peer, errf *os.File, cmd *exec.Cmd) (time.Duration, error) {
	if err := errf.Truncate(0); err != nil {
		return 0, err
	}
	cmd.Stderr = errf // a file, not a pipe: a detached container may keep it
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		if stopping.Load() {
			return 0, errInterrupted
		}
		msg, _ := os.ReadFile(errf.Name())
		return 0, fmt.Errorf("%s failed: %s: %v\n--- %s stderr ---\n%s", p.name,
			strings.Join(cmd.Args, " "), err, p.name, strings.TrimRight(string(msg), "\n"))
	}
	return d, nil
}

// errFile opens a scratch file for a runtime's stderr. O_APPEND makes every
// write land at the end, so truncating it between commands is enough.
func (b *bench) errFile(name string) (*os.File, error) {
	return os.OpenFile(filepath.Join(b.work, name), os.O_RDWR|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o600)
}

// interleave calls f warm+n times for every peer: in round r the peers go
// in order starting from peer r mod len(peers). Warm-up rounds are not
// recorded. It returns the samples by peer name.
func (b *bench) interleave(peers []*peer, warm, n int, f func(p *peer) (float64, error)) (map[string][]float64, error) {
	res := map[string][]float64{}
	for r := 0; r < warm+n; r++ {
		for k := range peers {
			if stopping.Load() {
				return nil, errInterrupted
			}
			p := peers[(r+k)%len(peers)]
			v, err := f(p)
			if err != nil {
				return nil, err
			}
			if r >= warm {
				res[p.name] = append(res[p.name], v)
			}
		}
	}
	return res, nil
}

// cleanup force-deletes whatever container is left in the state
// directories and removes the work directory.
func (b *bench) cleanup() {
	if b.work == "" {
		return
	}
	for _, p := range b.peers {
		entries, _ := os.ReadDir(p.root)
		for _, e := range entries {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), "sb") {
				continue
			}
			cmd := exec.Command(p.bin, "--root", p.root, "delete", "--force", e.Name())
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "startbench: cleanup: %s delete --force %s: %v: %s\n", p.name, e.Name(), err, bytes.TrimSpace(out))
			}
		}
	}
	for _, d := range []string{b.state, b.work} {
		if d == "" {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			fmt.Fprintln(os.Stderr, "startbench: cleanup:", err)
		}
	}
}

// repoRoot walks up from the working directory to crossrun's go.mod.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/crossrun/crossrun\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func defaultResultsPath(repo string) string {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, host)
	if host == "" {
		host = "host"
	}
	if repo == "" {
		repo = "."
	}
	return filepath.Join(repo, "bench", "results", time.Now().Format("2006-01-02")+"-"+host+".txt")
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
