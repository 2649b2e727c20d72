package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// dataDir is shared/data beside the repository, seen from this directory.
const dataDir = "../../../../shared/data"

func TestGeneratedFileUpToDate(t *testing.T) {
	if _, err := os.Stat(filepath.Join(dataDir, "syscalls-kver-v6.16.csv")); err != nil {
		t.Skipf("syscall tables not found beside the repository (%v)", err)
	}
	want, err := generate(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../zsyscalls.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("seccomp/zsyscalls.go is stale: run go generate ./seccomp")
	}
	again, err := generate(dataDir)
	if err != nil || !bytes.Equal(again, want) {
		t.Fatalf("generator output is not deterministic (%v)", err)
	}
}
