// Package containerd runs crossrun under containerd (ctr and the runc v2
// shim) and under podman, end to end, as root. Each test starts its own
// containerd, or gives podman its own storage, and removes everything it
// made when it ends.
package containerd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossrun/crossrun/integration/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

const (
	nativeImage  = "docker.io/library/ctrd-busybox:latest"
	foreignImage = "docker.io/library/ctrd-hello-foreign:latest"
	// docBinary is the crossrun path the docs' examples use; tests
	// substitute the binary under test.
	docBinary = "/usr/local/sbin/crossrun"
)

// foreignArch is an architecture the host does not run natively.
func foreignArch() (goarch, qemu string) {
	if runtime.GOARCH == "arm64" {
		return "amd64", "qemu-x86_64-static"
	}
	return "arm64", "qemu-aarch64-static"
}

var (
	imagesOnce sync.Once
	imagesErr  error
	nativeTar  string
	foreignTar string
)

// images builds, once, the two OCI image tarballs the tests import: the
// busybox rootfs plus /pidfd for the host's architecture, and a one-file
// image for foreignArch whose entrypoint prints its GOARCH.
func images(t *testing.T) (native, foreign string) {
	t.Helper()
	harness.RequireRoot(t)
	imagesOnce.Do(func() {
		// Stays set if a build below ends the test that runs this.
		imagesErr = errors.New("building the test images failed in an earlier test")
		dir := filepath.Join(harness.Work, "images")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			imagesErr = err
			return
		}
		testdata := filepath.Join(harness.ModuleRoot(), "integration", "testdata")
		pidfd := filepath.Join(dir, "pidfd")
		harness.BuildStatic(t, filepath.Join(testdata, "pidfd"), runtime.GOARCH, "", pidfd)
		goarch, _ := foreignArch()
		hello := filepath.Join(dir, "hello-"+goarch)
		harness.BuildStatic(t, filepath.Join(testdata, "hello"), goarch, "", hello)
		native := filepath.Join(dir, "native.tar")
		err := harness.WriteOCIImage(harness.OCIImage{
			Name: nativeImage, Arch: runtime.GOARCH, Rootfs: harness.Rootfs,
			Files: map[string]string{"/pidfd": pidfd}, Cmd: []string{"sh"},
		}, native)
		if err != nil {
			imagesErr = err
			return
		}
		foreign := filepath.Join(dir, "foreign.tar")
		err = harness.WriteOCIImage(harness.OCIImage{
			Name: foreignImage, Arch: goarch,
			Files: map[string]string{"/hello": hello}, Entrypoint: []string{"/hello"},
		}, foreign)
		if err != nil {
			imagesErr = err
			return
		}
		nativeTar, foreignTar, imagesErr = native, foreign, nil
	})
	if imagesErr != nil {
		t.Fatalf("build test images: %v", imagesErr)
	}
	return nativeTar, foreignTar
}

// readExample returns docs/examples/name with the documented crossrun path
// replaced by the binary under test.
func readExample(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.ModuleRoot(), "docs", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), docBinary) {
		t.Fatalf("docs/examples/%s does not name %s", name, docBinary)
	}
	return strings.ReplaceAll(string(data), docBinary, harness.Bin)
}

// crossrunState is the part of crossrun's state.json (under the runtime
// root the shim passes) that runc's does not have.
type crossrunState struct {
	ID      string `json:"id"`
	InitPid int    `json:"init_process_pid"`
	Bundle  string `json:"bundle"`
	Ready   *bool  `json:"ready"`
}

// readCrossrunState reads <root>/<id>/state.json and checks it is
// crossrun's.
func readCrossrunState(t *testing.T, root, id string) crossrunState {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, id, "state.json"))
	if err != nil {
		t.Fatalf("no state of %s under %s: %v", id, root, err)
	}
	var st crossrunState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state of %s: %v", id, err)
	}
	if st.Ready == nil || st.ID != id {
		t.Fatalf("%s/%s/state.json is not crossrun's: %s", root, id, data)
	}
	return st
}

// waitFor polls cond until it holds or a minute passes; what is waited on
// is a state the system under test reports, never a duration.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s; last seen: %s", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitProcesses waits until "crossrun --root root ps --format json id"
// lists n processes.
func waitProcesses(t *testing.T, root, id string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d processes in %s", n, id), func() (bool, string) {
		out, err := exec.Command(harness.Bin, "--root", root, "ps", "--format", "json", id).Output()
		var pids []int
		if err != nil || json.Unmarshal(out, &pids) != nil {
			return false, fmt.Sprintf("crossrun ps: %v: %s", err, out)
		}
		return len(pids) == n, string(out)
	})
}
