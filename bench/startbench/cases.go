package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// caseRun times `run` of the true container.
func (b *bench) caseRun() error {
	errf, err := b.errFile("stderr-run")
	if err != nil {
		return err
	}
	defer errf.Close()
	res, err := b.interleave(b.peers, *warmup, *rounds, func(p *peer) (float64, error) {
		d, err := invoke(p, errf, "run", "--bundle", b.trueBundle, b.newID("run"))
		return ms(d), err
	})
	if err != nil {
		return err
	}
	b.printf("\n## run: `run` of busybox true, wall ms\n")
	b.table("run", res, "%.1f", 0.60, 1.00)
	return nil
}

// caseCycle times create + start + delete --force of the detached sleep
// container, as one sequence. create gets /dev/null as stdin and stdout,
// so the container keeps no pipe to the bench; delete --force kills it
// (SIGKILL) and waits for it, in every runtime.
func (b *bench) caseCycle() error {
	errf, err := b.errFile("stderr-cycle")
	if err != nil {
		return err
	}
	defer errf.Close()
	res, err := b.interleave(b.peers, *warmup, *rounds, func(p *peer) (float64, error) {
		id := b.newID("cycle")
		t0 := time.Now()
		if _, err := invoke(p, errf, "create", "--bundle", b.sleepBundle, id); err != nil {
			return 0, err
		}
		if _, err := invoke(p, errf, "start", id); err != nil {
			return 0, err
		}
		if _, err := invoke(p, errf, "delete", "--force", id); err != nil {
			return 0, err
		}
		return ms(time.Since(t0)), nil
	})
	if err != nil {
		return err
	}
	b.printf("\n## cycle: create + start + delete --force of a detached busybox sleep 1000, wall ms\n")
	b.table("create+start+delete", res, "%.1f", 0.60, 1.00)
	return nil
}

// caseRSS measures the peak RSS of a `run` of the true container: GNU
// time's %M, which is ru_maxrss from wait4, the largest resident set of
// any process of the tree that was waited for (not a sum). Without
// /usr/bin/time it reads the same figure from the rusage of the runtime.
func (b *bench) caseRSS() error {
	errf, err := b.errFile("stderr-rss")
	if err != nil {
		return err
	}
	defer errf.Close()
	_, statErr := os.Stat(gnuTime)
	useTime := statErr == nil
	rssOut := filepath.Join(b.work, "rss")
	res, err := b.interleave(b.peers, 0, *rssRounds, func(p *peer) (float64, error) {
		args := []string{"--root", p.root, "run", "--bundle", b.trueBundle, b.newID("rss")}
		if !useTime {
			cmd := exec.Command(p.bin, args...)
			if _, err := invokeCmd(p, errf, cmd); err != nil {
				return 0, err
			}
			return float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss), nil
		}
		cmd := exec.Command(gnuTime, append([]string{"-f", "%M", "-o", rssOut, p.bin}, args...)...)
		if _, err := invokeCmd(p, errf, cmd); err != nil {
			return 0, err
		}
		data, err := os.ReadFile(rssOut)
		if err != nil {
			return 0, err
		}
		lines := strings.Fields(string(data))
		if len(lines) == 0 {
			return 0, fmt.Errorf("%s: empty", gnuTime)
		}
		return strconv.ParseFloat(lines[len(lines)-1], 64)
	})
	if err != nil {
		return err
	}
	method := gnuTime + " -f %M"
	if !useTime {
		method = "wait4 ru_maxrss (" + gnuTime + " not found)"
	}
	b.printf("\n## rss: peak RSS of a `run` of busybox true, KB (%s: largest process of the tree)\n", method)
	b.table("peak RSS", res, "%.0f", 0.70, 0)
	var mb []string
	for _, p := range b.peers {
		mb = append(mb, fmt.Sprintf("%s %.1f", p.name, summarize(res[p.name]).med/1024))
	}
	b.printf("median in MB (KB/1024): %s\n", strings.Join(mb, ", "))
	return nil
}

// caseBatch times 50 `run`s of true, two at a time: two workers each run
// 25 containers one after the other; the figure is the wall time until both
// are done.
func (b *bench) caseBatch() error {
	var errfs []*os.File
	for w := 0; w < batchWorkers; w++ {
		f, err := b.errFile(fmt.Sprintf("stderr-batch-%d", w))
		if err != nil {
			return err
		}
		defer f.Close()
		errfs = append(errfs, f)
	}
	res, err := b.interleave(b.peers, 0, *batchRounds, func(p *peer) (float64, error) {
		errs := make([]error, batchWorkers)
		var wg sync.WaitGroup
		t0 := time.Now()
		for w := 0; w < batchWorkers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < batchSize/batchWorkers; i++ {
					if stopping.Load() {
						errs[w] = errInterrupted
						return
					}
					if _, err := invoke(p, errfs[w], "run", "--bundle", b.trueBundle, b.newID("batch")); err != nil {
						errs[w] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		d := time.Since(t0)
		for _, err := range errs {
			if err != nil {
				return 0, err
			}
		}
		return ms(d), nil
	})
	if err != nil {
		return err
	}
	b.printf("\n## batch: %d `run`s of busybox true, %d at a time, total wall ms\n", batchSize, batchWorkers)
	b.table("batch of 50", res, "%.0f", 0, 0)
	return nil
}

// caseForeign times `run` of a static Go hello built for another
// architecture (arm64 on x86_64), which the host's qemu binfmt_misc
// handler runs. crossrun checks the binary's architecture before the exec
// and takes the host-handler route; runc and crun just exec it.
func (b *bench) caseForeign() error {
	b.printf("\n## foreign: `run` of a static Go hello for another architecture, wall ms\n")
	goarch, handler := foreignTarget()
	if goarch == "" {
		b.skipCase("foreign", "no foreign architecture chosen for a "+runtime.GOARCH+" host")
		return nil
	}
	interp, flags, reason := binfmtHandler(handler)
	if reason != "" {
		b.skipCase("foreign", reason+"; this bench does not register handlers")
		return nil
	}
	if b.repo == "" {
		b.skipCase("foreign", "run it from the crossrun repository: it builds integration/testdata/hello")
		return nil
	}
	if lookPath("go") == "" {
		b.skipCase("foreign", "no go in PATH to build integration/testdata/hello")
		return nil
	}
	b.printf("hello built for %s, run by the host's %s handler (interpreter %s, flags %s)\n", goarch, handler, interp, flags)
	peers := b.peers
	if !strings.Contains(flags, "F") {
		b.printf("the handler has no flag F: runc and crun would look for %s inside the rootfs, so only crossrun is measured\n", interp)
		peers = peers[:1]
	}
	bundle, err := b.makeForeignBundle(goarch)
	if err != nil {
		return err
	}
	errf, err := b.errFile("stderr-foreign")
	if err != nil {
		return err
	}
	defer errf.Close()
	fr := &foreignRunner{b: b, handler: handler, bundle: bundle, errf: errf}
	// Once each, checking that the container printed its architecture.
	for _, p := range peers {
		var stdout bytes.Buffer
		if _, err := fr.run(p, &stdout); err != nil {
			return fr.skipOr("foreign", err)
		}
		if got := strings.TrimSpace(stdout.String()); got != goarch {
			return fmt.Errorf("%s: the %s hello printed %q, want %q", p.name, goarch, got, goarch)
		}
	}
	res, err := b.interleave(peers, *warmup, *rounds, func(p *peer) (float64, error) {
		d, err := fr.run(p, nil)
		return ms(d), err
	})
	if err != nil {
		return fr.skipOr("foreign", err)
	}
	if fr.redone > 0 {
		b.printf("%d runs redone: the %s handler was disabled or removed while they ran (another process changes binfmt_misc)\n", fr.redone, handler)
	}
	b.table("foreign-arch run", res, "%.1f", 1.05, 0)
	return nil
}

// foreignRunner runs the foreign hello. The host's handler is not the
// bench's: another process (the foreign-arch integration tests, for one)
// may disable, remove or re-register it at any time. Before each run it
// waits for the handler to be enabled, and a run that fails while the
// handler is gone is redone, not blamed on the runtime.
type foreignRunner struct {
	b       *bench
	handler string
	bundle  string
	errf    *os.File
	redone  int
}

const (
	handlerWait = 2 * time.Minute
	maxRedo     = 20
)

// errHandlerGone means the handler stayed unusable for handlerWait.
var errHandlerGone = errors.New("handler gone")

func (fr *foreignRunner) run(p *peer, stdout io.Writer) (time.Duration, error) {
	for {
		if err := fr.waitHandler(); err != nil {
			return 0, err
		}
		cmd := exec.Command(p.bin, "--root", p.root, "run", "--bundle", fr.bundle, fr.b.newID("foreign"))
		cmd.Stdout = stdout
		d, err := invokeCmd(p, fr.errf, cmd)
		if err == nil || errors.Is(err, errInterrupted) {
			return d, err
		}
		if _, _, reason := binfmtHandler(fr.handler); reason == "" || fr.redone >= maxRedo {
			return 0, fmt.Errorf("%w\n(if another process toggles the host's binfmt_misc handlers, rerun when it is done)", err)
		}
		fr.redone++
	}
}

// waitHandler returns when the handler is enabled, errHandlerGone when it
// was not for handlerWait, or errInterrupted.
func (fr *foreignRunner) waitHandler() error {
	deadline := time.Now().Add(handlerWait)
	for said := false; ; said = true {
		_, _, reason := binfmtHandler(fr.handler)
		if reason == "" {
			return nil
		}
		if stopping.Load() {
			return errInterrupted
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s for %v", errHandlerGone, reason, handlerWait)
		}
		if !said {
			fr.b.printf("waiting up to %v: %s\n", handlerWait, reason)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// skipOr turns errHandlerGone into a skipped case.
func (fr *foreignRunner) skipOr(name string, err error) error {
	if errors.Is(err, errHandlerGone) {
		fr.b.skipCase(name, strings.TrimPrefix(err.Error(), errHandlerGone.Error()+": "))
		return nil
	}
	return err
}

func (b *bench) skipCase(name, reason string) {
	b.printf("skipped: %s\n", reason)
	b.summary = append(b.summary, fmt.Sprintf("%s: not measured (%s)", name, reason))
}
