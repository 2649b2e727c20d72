package binfmt

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var (
	compatOnce   sync.Once
	compatArches []*Arch
)

// CompatArches returns the foreign architectures the host kernel runs
// without an interpreter: i386 on x86_64 when the kernel has IA32 emulation
// enabled, 32-bit arm on aarch64 when the CPU and kernel support AArch32 at
// EL0. The answer is computed once per process.
func CompatArches() []*Arch {
	compatOnce.Do(func() { compatArches = detectCompat(runtime.GOARCH) })
	return compatArches
}

// compatCandidate reports whether a could be a compat arch of host at all,
// to skip the detection for every other pair.
func compatCandidate(host, a *Arch) bool {
	return (host.Name == "x86_64" && a.Name == "i386") || (host.Name == "aarch64" && a.Name == "arm")
}

func detectCompat(goarch string) []*Arch {
	var out []*Arch
	add := func(name string) {
		if a, ok := ArchByName(name); ok {
			out = append(out, a)
		}
	}
	switch goarch {
	case "amd64":
		if ia32Enabled() {
			add("i386")
		}
	case "arm64":
		if aarch32EL0() {
			add("arm")
		}
	}
	return out
}

// ia32Enabled reports whether the x86_64 kernel can run i386 binaries. It
// reads the kernel configuration (IA32_EMULATION, and the 6.7+ default-off
// switch) and the ia32_emulation= boot parameter. Without a readable config
// it assumes the common distribution default, enabled.
func ia32Enabled() bool {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	bootParam := ""
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, "ia32_emulation="); ok {
			bootParam = v
		}
	}
	cfg := kernelConfig()
	if cfg != nil {
		if !cfg["CONFIG_IA32_EMULATION"] {
			return false
		}
		if bootParam == "" {
			return !cfg["CONFIG_IA32_EMULATION_DEFAULT_DISABLED"]
		}
	}
	switch bootParam {
	case "0", "false", "n", "no", "off":
		return false
	}
	return true
}

// Bounds for reading the kernel configuration. A real one is some 300 KB
// of text; inside a container the file can be anything.
const (
	maxConfigGz = 4 << 20
	maxConfig   = 16 << 20
)

// kernelConfig returns the set of =y options of the running kernel, or nil
// if no configuration is readable.
func kernelConfig() map[string]bool {
	var r io.Reader
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		zr, err := gzip.NewReader(io.LimitReader(f, maxConfigGz))
		if err != nil {
			return nil
		}
		r = io.LimitReader(zr, maxConfig)
	} else if f, err := os.Open("/boot/config-" + KernelRelease()); err == nil {
		defer f.Close()
		r = io.LimitReader(f, maxConfig)
	} else {
		return nil
	}
	cfg := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Bytes()
		if k, v, ok := bytes.Cut(line, []byte("=")); ok && string(v) == "y" {
			cfg[string(k)] = true
		}
	}
	if sc.Err() != nil {
		// A cut-off or damaged file: no answer rather than part of one.
		return nil
	}
	return cfg
}

// aarch32EL0 asks the arm64 kernel whether it can run AArch32 tasks: it
// refuses the PER_LINUX32 personality when the CPU has no 32-bit EL0.
func aarch32EL0() bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	if errno != 0 {
		return false
	}
	const perLinux32 = 0x0008
	if _, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, perLinux32, 0, 0); errno != 0 {
		return false
	}
	_, _, _ = unix.RawSyscall(unix.SYS_PERSONALITY, old, 0, 0)
	return true
}

// KernelRelease is uname -r of the running kernel.
func KernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
