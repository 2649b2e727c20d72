// Package seccomp turns the OCI runtime-spec seccomp configuration
// (specs.LinuxSeccomp) into a classic BPF program and loads it, in pure Go
// (no cgo, no libseccomp).
//
// Compile builds the program for one architecture: an arch check first
// (the target ABI plus the compatible ABIs listed in the config, such as
// x86 and x32 on x86_64; any other ABI gets BadArchAction), then per ABI a
// binary search over ranges of syscall numbers, then per-syscall argument
// checks. All runtime-spec v1.3 actions and operators are supported.
// Syscall numbers above the newest one known for the arch return ENOSYS
// when the default action denies, so programs fall back to older syscalls
// instead of failing with EPERM. Far jumps are relayed so every
// conditional jump fits BPF's 8-bit offsets; programs over 4096
// instructions are refused.
//
// Install compiles for the host and loads the filter on all threads of
// the process; under qemu-user emulation the kernel still sees host
// syscalls, so the host arch is always the right target. When a rule uses
// SCMP_ACT_NOTIFY, Install returns the listener fd and SendListenerFd hands
// it to the seccomp agent at linux.seccomp.listenerPath, with the same
// message runc sends.
//
// KernelABIProfile makes a container see an older kernel: syscalls
// introduced after the given release fail with ENOSYS (see also
// KernelABIAnnotation). The syscall numbers and release data come from
// libseccomp's tables, turned into zsyscalls.go by internal/gen
// (go generate).
package seccomp
