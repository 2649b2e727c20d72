// Package integration runs the crossrun binary end to end. The tests need
// root; each says so when it skips. The shared machinery (binary, busybox
// rootfs, bundles, invocations) is in ./harness, which the subpackages use
// too; these are the short names this package's tests call it by.
package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/crossrun/crossrun/integration/harness"
)

var (
	crossrunBin string
	stateRoot   string
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(wrapped{m}))
}

// wrapped copies the harness's settings into this package's names before
// the tests run.
type wrapped struct{ m *testing.M }

func (w wrapped) Run() int {
	crossrunBin, stateRoot = harness.Bin, harness.StateRoot
	return w.m.Run()
}

type (
	bundle = harness.Bundle
	result = harness.Result
)

func requireRoot(t *testing.T) { t.Helper(); harness.RequireRoot(t) }
func newBundle(t *testing.T, args ...string) *bundle {
	t.Helper()
	return harness.NewBundle(t, args...)
}
func crossrun(t *testing.T, args ...string) result { t.Helper(); return harness.Run(t, args...) }
func mustRun(t *testing.T, args ...string) result  { t.Helper(); return harness.MustRun(t, args...) }
func state(t *testing.T, id string) map[string]any { t.Helper(); return harness.State(t, id) }
func cleanupContainer(t *testing.T, id string)     { harness.Cleanup(t, id) }
func waitStatus(t *testing.T, id, want string)     { t.Helper(); harness.WaitStatus(t, id, want) }
func crossrunCmd(args ...string) *exec.Cmd         { return harness.Cmd(args...) }
func crossrunIn(t *testing.T, dir string, stdin []byte, args ...string) result {
	t.Helper()
	return harness.RunIn(t, dir, stdin, args...)
}

// buildHello cross-compiles testdata/hello for goarch into dst.
func buildHello(t *testing.T, goarch, goarm, dst string) {
	t.Helper()
	harness.BuildStatic(t, filepath.Join("testdata", "hello"), goarch, goarm, dst)
}
