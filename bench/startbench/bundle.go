package main

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// makeBundles writes the busybox rootfs and the bundles that share it: one
// whose process is `true` (run, rss, batch) and one whose process is
// `sleep 1000` (cycle).
func (b *bench) makeBundles() error {
	rootfs := filepath.Join(b.work, "rootfs")
	if err := checkStatic(*busyboxFlag); err != nil {
		return fmt.Errorf("-busybox: %w (apt-get install busybox-static)", err)
	}
	if err := makeRootfs(rootfs); err != nil {
		return err
	}
	if err := copyFile(*busyboxFlag, filepath.Join(rootfs, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	for _, applet := range []string{"sh", "true", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			return err
		}
	}
	b.trueBundle = filepath.Join(b.work, "bundle-true")
	b.sleepBundle = filepath.Join(b.work, "bundle-sleep")
	if err := b.writeBundle(b.trueBundle, rootfs, "true"); err != nil {
		return err
	}
	return b.writeBundle(b.sleepBundle, rootfs, "sleep", "1000")
}

// makeRootfs creates an empty rootfs with the directories the runtimes
// mount on, so that none of them has to create one.
func makeRootfs(rootfs string) error {
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// writeBundle writes dir/config.json from `crossrun spec`, with terminal
// false, ociVersion 1.0.2 (crun 1.8.1 refuses newer ones), the given
// process args and root.path pointing at the shared rootfs.
func (b *bench) writeBundle(dir, rootfs string, args ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	crossrun := b.peers[0].bin
	if out, err := exec.Command(crossrun, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("crossrun spec: %v: %s", err, out)
	}
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("crossrun spec: %w", err)
	}
	process, ok1 := spec["process"].(map[string]any)
	root, ok2 := spec["root"].(map[string]any)
	if !ok1 || !ok2 {
		return fmt.Errorf("crossrun spec: no process or root in %s", path)
	}
	spec["ociVersion"] = "1.0.2"
	process["terminal"] = false
	process["args"] = args
	root["path"] = rootfs
	data, err = json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// checkStatic fails unless path is an ELF executable without a dynamic
// loader.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}

// makeForeignBundle cross-compiles integration/testdata/hello for goarch
// (static) into a rootfs of its own and writes a bundle running it.
func (b *bench) makeForeignBundle(goarch string) (string, error) {
	rootfs := filepath.Join(b.work, "rootfs-"+goarch)
	if err := makeRootfs(rootfs); err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(rootfs, "hello"), "./integration/testdata/hello")
	cmd.Dir = b.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build hello for %s: %v: %s", goarch, err, out)
	}
	bundle := filepath.Join(b.work, "bundle-"+goarch)
	return bundle, b.writeBundle(bundle, rootfs, "/hello")
}
