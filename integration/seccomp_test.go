package integration

import (
	"encoding/json"
	"fmt"
	"github.com/crossrun/crossrun/integration/harness"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// qemuArch maps a GOARCH to the name qemu-user and `crossrun binfmt` use.
var qemuArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

var (
	pidfdMu   sync.Mutex
	pidfdBins = map[string]string{}
)

// pidfdBinary builds testdata/pidfd (static, CGO_ENABLED=0) for goarch once
// per test binary.
func pidfdBinary(t *testing.T, goarch string) string {
	t.Helper()
	pidfdMu.Lock()
	defer pidfdMu.Unlock()
	if p, ok := pidfdBins[goarch]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "crossrun-pidfd-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pidfd-"+goarch)
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = "testdata/pidfd"
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/pidfd for %s: %v\n%s", goarch, err, b)
	}
	pidfdBins[goarch] = out
	return out
}

// ensureBinfmt makes sure the host has a binfmt_misc handler for goarch's
// binaries when goarch is not the host's, registering qemu with
// `crossrun binfmt install` if needed and removing it again at cleanup.
func ensureBinfmt(t *testing.T, goarch string) {
	t.Helper()
	if goarch == runtime.GOARCH {
		return
	}
	qa := qemuArch[goarch]
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-" + qa); err == nil {
		return
	}
	if _, err := exec.LookPath("qemu-" + qa + "-static"); err != nil {
		t.Skipf("skipped: needs qemu-%s-static (apt-get install -y qemu-user-static)", qa)
	}
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/register"); err != nil {
		t.Skip("skipped: binfmt_misc is not mounted")
	}
	mustRun(t, "binfmt", "install", qa)
	t.Cleanup(func() {
		if r := crossrun(t, "binfmt", "uninstall", qa); r.Code != 0 {
			t.Errorf("binfmt uninstall %s: exit %d: %s", qa, r.Code, r.Stderr)
		}
	})
}

// specBundle is newBundle with extra `crossrun spec` arguments.
func specBundle(t *testing.T, specArgs []string, args ...string) *bundle {
	t.Helper()
	return harness.NewBundleSpec(t, specArgs, args...)
}

// copyInto copies the host file src to path in b's rootfs.
func copyInto(t *testing.T, b *bundle, src, path string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "rootfs", path), data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// runResult runs the bundle to completion and returns crossrun's result,
// whatever the exit code.
func runResult(t *testing.T, b *bundle, id string) result {
	t.Helper()
	cleanupContainer(t, id)
	return crossrun(t, "run", "--bundle", b.Dir, id)
}

// TestKernelABIPidfd runs the pidfd_open program (syscall 434, Linux 5.3)
// under kernel-ABI profiles, given as `crossrun spec --kernel-abi` and as
// the run.crossrun.kernel-abi annotation, natively and (for the other
// architecture) through qemu-user via the host's binfmt_misc handler.
func TestKernelABIPidfd(t *testing.T) {
	requireRoot(t)
	const (
		ok     = "succeed pidfd_open"
		enosys = "failed pidfd_open: Function not implemented"
	)
	cases := []struct {
		how, version, want string
	}{
		{"none", "", ok},
		{"flag", "5.2", enosys},
		{"flag", "5.3", ok},
		{"annotation", "5.2", enosys},
		{"annotation", "5.3", ok},
	}
	n := 0
	for _, goarch := range []string{runtime.GOARCH, map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]} {
		if goarch == "" {
			continue
		}
		t.Run(goarch, func(t *testing.T) {
			bin := pidfdBinary(t, goarch)
			ensureBinfmt(t, goarch)
			for _, tc := range cases {
				t.Run(tc.how+tc.version, func(t *testing.T) {
					var b *bundle
					switch tc.how {
					case "flag":
						b = specBundle(t, []string{"--kernel-abi", tc.version}, "/pidfd")
						if b.Spec.Linux.Seccomp == nil || len(b.Spec.Linux.Seccomp.Syscalls) == 0 {
							t.Fatalf("spec --kernel-abi %s wrote no seccomp profile", tc.version)
						}
					case "annotation":
						b = newBundle(t, "/pidfd")
						if b.Spec.Annotations == nil {
							b.Spec.Annotations = map[string]string{}
						}
						b.Spec.Annotations["run.crossrun.kernel-abi"] = tc.version
						b.Spec.Linux.Seccomp = nil
						b.Save(t)
					default:
						b = newBundle(t, "/pidfd")
					}
					copyInto(t, b, bin, "pidfd")
					n++
					id := fmt.Sprintf("kabi-%s-%s%s-%d", goarch, tc.how, strings.ReplaceAll(tc.version, ".", ""), n)
					r := runResult(t, b, id)
					got := strings.TrimSpace(r.Stdout)
					t.Logf("%s: %q (exit %d)", id, got, r.Code)
					if got != tc.want {
						t.Fatalf("output %q, want %q; exit %d; stderr: %s", got, tc.want, r.Code, r.Stderr)
					}
					wantCode := 0
					if tc.want != ok {
						wantCode = 1
					}
					if r.Code != wantCode {
						t.Errorf("exit %d, want %d", r.Code, wantCode)
					}
				})
			}
		})
	}
}

// oneLine checks a crossrun error message: exactly one line, mentioning
// every string of want.
func oneLine(t *testing.T, stderr string, want ...string) {
	t.Helper()
	msg := strings.TrimRight(stderr, "\n")
	if msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", stderr)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
}

func TestKernelABIBadVersion(t *testing.T) {
	requireRoot(t)
	for _, v := range []string{"2.6", "9.9", "abc", "5", "5.2.1", ""} {
		t.Run("spec "+v, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(crossrunBin, "spec", "--bundle", dir, "--kernel-abi", v)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			if err == nil {
				t.Fatalf("spec --kernel-abi %q succeeded", v)
			}
			oneLine(t, stderr.String(), "--kernel-abi", v)
			t.Logf("spec --kernel-abi %q: %s", v, strings.TrimSpace(stderr.String()))
			if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
				t.Errorf("config.json written despite the error")
			}
		})
	}
	for i, v := range []string{"2.6", "9.9", "abc"} {
		t.Run("annotation "+v, func(t *testing.T) {
			b := newBundle(t, "true")
			b.Spec.Annotations = map[string]string{"run.crossrun.kernel-abi": v}
			b.Save(t)
			id := fmt.Sprintf("kabi-bad-%d", i)
			cleanupContainer(t, id)
			r := crossrun(t, "create", "--bundle", b.Dir, id)
			if r.Code == 0 {
				t.Fatalf("create with kernel-abi %q succeeded", v)
			}
			oneLine(t, r.Stderr, "run.crossrun.kernel-abi", v)
			t.Logf("create, annotation %q: %s", v, strings.TrimSpace(r.Stderr))
			if r := crossrun(t, "state", id); r.Code == 0 {
				t.Errorf("container %s exists after the failed create", id)
			}
		})
	}
}

// TestKernelABIFeatures checks that the range `crossrun features` states for
// the annotation is the one spec accepts.
func TestKernelABIFeatures(t *testing.T) {
	requireRoot(t)
	r := mustRun(t, "features")
	var f struct {
		Annotations map[string]string `json:"annotations"`
		Linux       struct {
			Seccomp struct {
				Enabled *bool    `json:"enabled"`
				Actions []string `json:"actions"`
			} `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &f); err != nil {
		t.Fatal(err)
	}
	if f.Linux.Seccomp.Enabled == nil || !*f.Linux.Seccomp.Enabled || len(f.Linux.Seccomp.Actions) == 0 {
		t.Errorf("features: seccomp section %+v", f.Linux.Seccomp)
	}
	v := f.Annotations["run.crossrun.kernel-abi"]
	t.Logf("run.crossrun.kernel-abi: %s", v)
	var lo, hi string
	if _, err := fmt.Sscanf(v, "X.Y from %s to %s", &lo, &hi); err != nil {
		t.Fatalf("annotation value %q: %v", v, err)
	}
	for _, ver := range []string{lo, hi} {
		if out, err := exec.Command(crossrunBin, "spec", "--bundle", t.TempDir(), "--kernel-abi", ver).CombinedOutput(); err != nil {
			t.Errorf("features says %s is valid, spec says: %s", ver, out)
		}
	}
}

// dockerProfile is Docker's default seccomp profile (for amd64, without
// CAP_SYS_ADMIN), the linux.seccomp the seccomp package tests compile.
func dockerProfile(t *testing.T) *specs.LinuxSeccomp {
	t.Helper()
	data, err := os.ReadFile("../seccomp/testdata/docker-default.json")
	if err != nil {
		t.Fatal(err)
	}
	var p specs.LinuxSeccomp
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func TestSeccompDockerDefault(t *testing.T) {
	requireRoot(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("skipped: the stored Docker profile lists the x86 architectures")
	}
	t.Run("shell works", func(t *testing.T) {
		b := newBundle(t, "sh", "-c", "echo ok; ls / >/dev/null; cat /proc/self/status | grep Seccomp:")
		b.Spec.Linux.Seccomp = dockerProfile(t)
		b.Save(t)
		out := runOut(t, b, "seccomp-docker-sh")
		t.Logf("output: %q", out)
		if !strings.HasPrefix(out, "ok\n") {
			t.Errorf("output %q does not start with ok", out)
		}
		if !strings.Contains(out, "Seccomp:\t2") {
			t.Errorf("output %q: no filter mode (Seccomp: 2)", out)
		}
	})
	t.Run("denied syscall", func(t *testing.T) {
		// The stored profile is Docker's for a container without
		// CAP_SYS_ADMIN: unshare(2) is not in it and the default action
		// answers EPERM (defaultErrnoRet 1). The container gets
		// CAP_SYS_ADMIN anyway, so the EPERM can only come from the filter.
		b := newBundle(t, "unshare", "-m", "true")
		b.Spec.Linux.Seccomp = dockerProfile(t)
		addSysAdmin(b)
		b.Save(t)
		r := runResult(t, b, "seccomp-docker-unshare")
		t.Logf("exit %d, stderr %q", r.Code, r.Stdout+r.Stderr)
		if r.Code == 0 {
			t.Fatal("unshare succeeded under the Docker profile")
		}
		if !strings.Contains(r.Stdout+r.Stderr, "Operation not permitted") {
			t.Errorf("output %q lacks Operation not permitted", r.Stdout+r.Stderr)
		}
	})
	t.Run("without profile", func(t *testing.T) {
		// The same command, with the same capabilities, runs without
		// seccomp.
		b := newBundle(t, "sh", "-c", "unshare -m true && echo unshared; grep Seccomp: /proc/self/status")
		addSysAdmin(b)
		b.Save(t)
		out := runOut(t, b, "seccomp-none-unshare")
		if !strings.Contains(out, "unshared") || !strings.Contains(out, "Seccomp:\t0") {
			t.Errorf("output %q", out)
		}
	})
}

func addSysAdmin(b *bundle) {
	c := b.Spec.Process.Capabilities
	c.Bounding = append(c.Bounding, "CAP_SYS_ADMIN")
	c.Effective = append(c.Effective, "CAP_SYS_ADMIN")
	c.Permitted = append(c.Permitted, "CAP_SYS_ADMIN")
}

// TestSeccompArgs uses a defaultAction ERRNO profile where kill(2) is
// allowed only for signal 0: Docker's allow list without kill, plus a rule
// with an argument condition.
func TestSeccompArgs(t *testing.T) {
	requireRoot(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("skipped: the stored Docker profile lists the x86 architectures")
	}
	p := dockerProfile(t)
	for i := range p.Syscalls {
		var keep []string
		for _, n := range p.Syscalls[i].Names {
			if n != "kill" {
				keep = append(keep, n)
			}
		}
		p.Syscalls[i].Names = keep
	}
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
		Names:  []string{"kill"},
		Action: specs.ActAllow,
		Args:   []specs.LinuxSeccompArg{{Index: 1, Value: 0, Op: specs.OpEqualTo}},
	})
	b := newBundle(t, "sh", "-c", "kill -0 $$ && echo signal0 ok; kill -HUP $$ 2>&1; echo after")
	b.Spec.Linux.Seccomp = p
	b.Save(t)
	out := runOut(t, b, "seccomp-args")
	t.Logf("output: %q", out)
	for _, w := range []string{"signal0 ok", "Operation not permitted", "after"} {
		if !strings.Contains(out, w) {
			t.Errorf("output %q lacks %q", out, w)
		}
	}
}
