package security

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crossrun/crossrun/integration/harness"
)

// cleanupWith deletes id with bin when the test ends: the binary under
// attack may be broken by then.
func cleanupWith(t *testing.T, bin, id string) {
	t.Cleanup(func() {
		exec.Command(bin, "--root", harness.StateRoot, "delete", "--force", id).Run()
	})
}

// copyLoader copies the shared libraries and ELF interpreter bin needs into
// rootfs, so that the container can run bin (crossrun is built with cgo).
func copyLoader(t *testing.T, bin, rootfs string) {
	t.Helper()
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return
		}
		t.Skipf("skipped: ldd %s: %v (needs libc-bin)", bin, err)
	}
	for _, p := range regexp.MustCompile(`(/[^ \t\n]+)`).FindAllString(string(out), -1) {
		copyFile(t, p, filepath.Join(rootfs, p), 0o755)
	}
}

// TestCVE2019_5736 lets a container run the crossrun binary and take a
// handle on its executable through /proc/PID/exe (CVE-2019-5736: runc's
// /proc/self/exe overwrite), then, once the runtime process has exited,
// reopen the handle for writing and overwrite the file. The runtime under
// attack is a copy of crossrun, so a successful attack harms only it.
//
// Each case makes a process in the container execute the runtime: a
// process.args[0] that is a symlink to /proc/self/exe, or a script whose
// interpreter is /proc/self/exe, run by "crossrun exec" (the exec'd
// process execs it), or as the init of a second container that joins the
// first one's pid namespace. The runtime binary, run with --log on a FIFO,
// blocks in open(2) until the attacker reads the FIFO: a deterministic
// window. The attacker matches the target by its whole command line: the
// host's "crossrun exec", forked into the container's pid namespace, shows
// the same arguments for a moment before it execs. The control case runs a
// writable copy of crossrun the same way; there the attack must succeed, or
// the attack itself is broken.
func TestCVE2019_5736(t *testing.T) {
	orig := harness.Bin
	rt := copyRuntime(t)
	before := fileHash(t, rt)
	useBinary(t, rt)

	a := newAttackBundle(t, "/attacker", "pause")
	rootfs := filepath.Join(a.Dir, "rootfs")
	copyLoader(t, rt, rootfs)
	if err := os.Symlink("/proc/self/exe", filepath.Join(rootfs, "bin/rt")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(rootfs, "bin/evil"), []byte("#!/proc/self/exe --log=/out/block\n"), 0o755)
	decoy := filepath.Join(t.TempDir(), "decoy")
	copyFile(t, rt, decoy, 0o755)
	decoyBefore := fileHash(t, decoy)
	a.Spec.Mounts = append(a.Spec.Mounts, specs.Mount{Destination: "/victim", Type: "bind", Source: decoy, Options: []string{"bind", "rw"}})
	a.Save(t)
	fifo := filepath.Join(a.Out, "block")
	if err := unix.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}

	id := "sec-5736"
	cleanupWith(t, orig, id)
	harness.MustRun(t, "run", "-d", "--bundle", a.Dir, id)
	initPid := int(harness.State(t, id)["pid"].(float64))

	// A second container in the first one's pid namespace, whose init is
	// the runtime binary.
	joiner := func(args ...string) *harness.Bundle {
		j := harness.NewBundle(t, args...)
		jroot := filepath.Join(j.Dir, "rootfs")
		copyLoader(t, rt, jroot)
		must(t, os.Symlink("/proc/self/exe", filepath.Join(jroot, "bin/rt")))
		must(t, os.WriteFile(filepath.Join(jroot, "bin/evil"), []byte("#!/proc/self/exe --log=/out/block\n"), 0o755))
		for i, ns := range j.Spec.Linux.Namespaces {
			if ns.Type == specs.PIDNamespace {
				j.Spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/pid", initPid)
			}
		}
		j.Spec.Mounts = append(j.Spec.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: a.Out, Options: []string{"rbind", "rw"}})
		j.Save(t)
		return j
	}
	// runJoiner starts the joining container; init has exec'd the runtime
	// binary when "run -d" returns. crossrun may refuse such an entrypoint.
	runJoiner := func(j *harness.Bundle, jid string) func(t *testing.T) bool {
		return func(t *testing.T) bool {
			cleanupWith(t, orig, jid)
			r := harness.Run(t, "run", "-d", "--bundle", j.Dir, jid)
			if r.Code != 0 {
				t.Logf("refused: %s", oneLineError(t, r))
				return false
			}
			return true
		}
	}
	stopJoiner := func(jid string) func(t *testing.T) {
		return func(t *testing.T) {
			harness.WaitStatus(t, jid, "stopped")
			harness.Run(t, "delete", "--force", jid)
		}
	}
	initLink := joiner("/bin/rt", "--log", "/out/block", "state", "sec-target-init")
	initScript := joiner("/bin/evil", "state", "sec-target-init-script")

	cases := []struct {
		name  string
		token string
		// start, when set, starts the runtime binary before the attacker
		// runs; false means crossrun refused to.
		start   func(t *testing.T) bool
		trigger func(t *testing.T)
		control bool
	}{
		{name: "exec symlink to /proc/self/exe", token: "^/bin/rt --log /out/block state sec-target-exec", trigger: func(t *testing.T) {
			harness.Run(t, "exec", id, "/bin/rt", "--log", "/out/block", "state", "sec-target-exec")
		}},
		{name: "exec #!/proc/self/exe script", token: "^/proc/self/exe --log=/out/block /bin/evil state sec-target-script", trigger: func(t *testing.T) {
			harness.Run(t, "exec", id, "/bin/evil", "state", "sec-target-script")
		}},
		{name: "init symlink to /proc/self/exe", token: "^/bin/rt --log /out/block state sec-target-init",
			start: runJoiner(initLink, "sec-5736-init"), trigger: stopJoiner("sec-5736-init")},
		{name: "init #!/proc/self/exe script", token: "^/proc/self/exe --log=/out/block /bin/evil state sec-target-init-script",
			start: runJoiner(initScript, "sec-5736-init-script"), trigger: stopJoiner("sec-5736-init-script")},
		{name: "control: writable copy", token: "^/victim --log /out/block state sec-target-control", control: true, trigger: func(t *testing.T) {
			harness.Run(t, "exec", id, "/victim", "--log", "/out/block", "state", "sec-target-control")
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.start != nil && !tc.start(t) {
				return
			}
			out := fmt.Sprintf("report-%d", i)
			goFile := fmt.Sprintf("go-%d", i)
			harness.MustRun(t, "exec", "-d", id, "/attacker", "exe", tc.token, "/out/"+out, "/out/block", "/out/"+goFile)
			tc.trigger(t)
			// Every crossrun that ran the binary has exited: the attacker
			// may reopen it (a running executable gives ETXTBSY).
			must(t, os.WriteFile(filepath.Join(a.Out, goFile), nil, 0o644))
			r := waitReport(t, filepath.Join(a.Out, out))
			if r.first("found") == "no" || r.first("open-path") != "ok" {
				t.Fatalf("the attacker got no handle on the runtime's executable; the attack did not run")
			}
			if r.first("exited") != "true" {
				t.Fatalf("the runtime process did not exit; the attack did not run to the end")
			}
			if tc.control {
				if r.first("open-write-exited") != "ok" || !strings.HasPrefix(r.first("write"), "6 ok") {
					t.Fatalf("control: the attack could not overwrite a writable binary; it proves nothing")
				}
				if fileHash(t, decoy) == decoyBefore {
					t.Fatalf("control: the writable binary is unchanged after a reported write")
				}
				return
			}
			if w := r.first("open-write-exited"); w == "ok" {
				t.Errorf("the container reopened the runtime's executable for writing (write: %s)", r.first("write"))
			}
			if fileHash(t, rt) != before {
				t.Fatalf("the host crossrun binary was modified")
			}
		})
	}
	if fileHash(t, rt) != before {
		t.Fatalf("the host crossrun binary was modified")
	}
}

// TestCVE2019_5736Race races for the same handle without the runtime's
// help: a container allowed to ptrace (CAP_SYS_PTRACE) keeps opening
// /proc/N/exe for the next pids of its pid namespace while crossrun starts
// processes in it ("crossrun exec", and the init of a container joining
// the namespace). A process forked there by crossrun is, until its execve,
// crossrun itself, running the host's file; every handle whose file is
// crossrun's is reopened for writing once the runs are over.
func TestCVE2019_5736Race(t *testing.T) {
	orig := harness.Bin
	rt := copyRuntime(t)
	before := fileHash(t, rt)
	useBinary(t, rt)
	var st syscall.Stat_t
	if err := syscall.Stat(rt, &st); err != nil {
		t.Fatal(err)
	}
	target := fmt.Sprintf("%d:%d", st.Dev, st.Ino)

	a := newAttackBundle(t, "/attacker", "exerace", "/out/report", "/out/stop", target)
	addCaps(a.Spec.Process, "CAP_SYS_PTRACE")
	a.Save(t)
	id := "sec-5736-race"
	cleanupWith(t, orig, id)
	harness.MustRun(t, "run", "-d", "--bundle", a.Dir, id)
	initPid := int(harness.State(t, id)["pid"].(float64))

	joiner := harness.NewBundle(t, "true")
	for i, ns := range joiner.Spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			joiner.Spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/pid", initPid)
		}
	}
	joiner.Save(t)
	for i := 0; i < 100; i++ {
		harness.MustRun(t, "exec", id, "true")
		if i%10 == 0 {
			jid := "sec-5736-race-join"
			cleanupWith(t, orig, jid)
			harness.MustRun(t, "run", "--bundle", joiner.Dir, jid)
		}
	}
	os.WriteFile(filepath.Join(a.Out, "stop"), nil, 0o644)
	r := waitReport(t, filepath.Join(a.Out, "report"))
	if r.first("handles") == "0" || r.first("handles") == "" {
		t.Fatalf("the attacker never caught a process running crossrun (%s attempts); the race tested nothing", r.first("attempts"))
	}
	for _, w := range r["open-write"] {
		if w == "ok" {
			t.Errorf("the container reopened crossrun's executable for writing (writes: %v)", r["write"])
			break
		}
	}
	if fileHash(t, rt) != before {
		t.Fatalf("the host crossrun binary was modified")
	}
}
