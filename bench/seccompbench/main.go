// Command seccompbench is the seccomp part of crossrun's benchmarks. It
// prints
//
//  1. the length in BPF instructions of the filter for Docker's default
//     profile (seccomp/testdata/docker-default.json), as crossrun compiles
//     it and as libseccomp (the library runc uses) exports it, when cgo and
//     libseccomp-dev are available;
//  2. the cost of a syscall in a loop inside a container with no profile
//     and with Docker's profile, under crossrun and under runc (skipped,
//     and said so, when runc is missing): getpid, which the profile allows
//     outright, and personality(0xffffffff), which it allows by an
//     argument check.
//
// Run it from the repository root, as root:
//
//	go run ./bench/seccompbench [-crossrun ./crossrun] [-runc /usr/sbin/runc] [-n 2000000]
//
// Each loop figure is the best of 5 rounds of n calls, in ns per call.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crossrun/crossrun/seccomp"
)

var (
	crossrunBin = flag.String("crossrun", "./crossrun", "crossrun binary (built with `go build -o crossrun .` when missing)")
	runcBin     = flag.String("runc", "/usr/sbin/runc", "runc binary; the runc rows are skipped when it is missing")
	profilePath = flag.String("profile", "seccomp/testdata/docker-default.json", "linux.seccomp profile to measure")
	iterations  = flag.Int("n", 2_000_000, "syscalls per round")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seccompbench:", err)
		os.Exit(1)
	}
}

func run() error {
	work, err := os.MkdirTemp("", "crossrun-seccompbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	data, err := os.ReadFile(*profilePath)
	if err != nil {
		return err
	}
	var prof specs.LinuxSeccomp
	if err := json.Unmarshal(data, &prof); err != nil {
		return fmt.Errorf("%s: %w", *profilePath, err)
	}

	fmt.Printf("# seccomp filter length, %s (%s)\n", *profilePath, runtime.GOARCH)
	prog, err := seccomp.Compile(&prof, runtime.GOARCH)
	if err != nil {
		return err
	}
	fmt.Printf("%-28s %5d instructions\n", "crossrun", len(prog))
	libseccompLength(work)

	fmt.Printf("\n# syscall cost in a container, ns/call (best of 5 x %d)\n", *iterations)
	if os.Geteuid() != 0 {
		fmt.Println("skipped: needs root (runs containers)")
		return nil
	}
	if _, err := os.Stat(*crossrunBin); err != nil {
		if out, err := exec.Command("go", "build", "-o", *crossrunBin, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("build crossrun: %v: %s", err, out)
		}
	}
	abs, err := filepath.Abs(*crossrunBin)
	if err != nil {
		return err
	}
	*crossrunBin = abs
	bundle := filepath.Join(work, "bundle")
	if err := makeBundle(bundle); err != nil {
		return err
	}
	runtimes := []struct{ name, bin string }{{"crossrun", *crossrunBin}}
	if _, err := os.Stat(*runcBin); err == nil {
		runtimes = append(runtimes, struct{ name, bin string }{"runc", *runcBin})
	} else {
		fmt.Printf("runc: skipped, %s not found\n", *runcBin)
	}
	loop := filepath.Join(bundle, "rootfs", "syscallloop")
	fmt.Printf("%-28s %10s %12s\n", "", "getpid", "personality")
	hostRow := []string{}
	for _, sc := range []string{"getpid", "personality"} {
		out, err := exec.Command(loop, sc, fmt.Sprint(*iterations)).Output()
		if err != nil {
			return fmt.Errorf("host %s: %v", sc, err)
		}
		hostRow = append(hostRow, strings.TrimSpace(string(out)))
	}
	fmt.Printf("%-28s %10s %12s\n", "host, no container", hostRow[0], hostRow[1])
	n := 0
	for _, rt := range runtimes {
		for _, p := range []struct {
			name string
			prof *specs.LinuxSeccomp
		}{{"no seccomp", nil}, {"docker default", &prof}} {
			var row []string
			for _, sc := range []string{"getpid", "personality"} {
				n++
				out, err := runIn(rt.bin, work, bundle, fmt.Sprintf("seccompbench-%d-%d", os.Getpid(), n), p.prof, sc)
				if err != nil {
					return fmt.Errorf("%s, %s, %s: %v", rt.name, p.name, sc, err)
				}
				row = append(row, out)
			}
			fmt.Printf("%-28s %10s %12s\n", rt.name+", "+p.name, row[0], row[1])
		}
	}
	return nil
}

// libseccompLength builds and runs bench/libseccomp (a separate, cgo,
// module) when it can.
func libseccompLength(work string) {
	if _, err := os.Stat("/usr/include/seccomp.h"); err != nil {
		fmt.Println("libseccomp: skipped, needs libseccomp-dev (apt-get install -y libseccomp-dev)")
		return
	}
	bin := filepath.Join(work, "libseccomp-len")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = "bench/libseccomp"
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Printf("libseccomp: skipped, cannot build bench/libseccomp: %v: %s\n", err, bytes.TrimSpace(out))
		return
	}
	out, err := exec.Command(bin, *profilePath).Output()
	if err != nil {
		fmt.Printf("libseccomp: failed: %v\n", err)
		return
	}
	if v, err := exec.Command("sh", "-c", "dpkg-query -W -f '${Version}' libseccomp2 2>/dev/null").Output(); err == nil && len(v) > 0 {
		fmt.Printf("(libseccomp %s)\n", v)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		layout, n, _ := strings.Cut(line, " ")
		fmt.Printf("%-28s %5s instructions\n", "libseccomp, "+layout, n)
	}
}

// makeBundle writes a bundle whose rootfs holds only the static
// syscallloop program.
func makeBundle(dir string) error {
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(rootfs, "syscallloop"), "./bench/syscallloop")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build syscallloop: %v: %s", err, out)
	}
	if out, err := exec.Command(*crossrunBin, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("crossrun spec: %v: %s", err, out)
	}
	return nil
}

// runIn runs syscallloop in the bundle under runtime bin with profile p and
// returns its output.
func runIn(bin, work, bundle, id string, p *specs.LinuxSeccomp, sc string) (string, error) {
	cfg := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(cfg)
	if err != nil {
		return "", err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return "", err
	}
	s.Process.Terminal = false
	s.Process.Args = []string{"/syscallloop", sc, fmt.Sprint(*iterations)}
	s.Linux.Seccomp = p
	if data, err = json.MarshalIndent(&s, "", "\t"); err != nil {
		return "", err
	}
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		return "", err
	}
	root := filepath.Join(work, "state-"+filepath.Base(bin))
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "--root", root, "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	exec.Command(bin, "--root", root, "delete", "--force", id).Run()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
