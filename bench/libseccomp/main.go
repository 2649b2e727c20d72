// Command libseccomp prints the length, in BPF instructions, of the filter
// libseccomp (the library runc uses) exports for a linux.seccomp profile,
// once with libseccomp's default layout and once with its binary-tree
// optimisation (SCMP_FLTATR_CTL_OPTIMIZE=2, libseccomp 2.5+):
//
//	default <n>
//	binary-tree <n>
//
// runc loads the default layout and then prepends its own -ENOSYS stub,
// so its filter is a little longer still. Needs cgo and libseccomp-dev.
// A separate module so that the main one builds without cgo.
package main

/*
#cgo LDFLAGS: -lseccomp
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <seccomp.h>

static uint32_t act_errno(uint32_t e) { return SCMP_ACT_ERRNO(e); }
static uint32_t act_trace(uint32_t e) { return SCMP_ACT_TRACE(e); }
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"
)

type arg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo"`
	Op       string `json:"op"`
}

type rule struct {
	Names    []string `json:"names"`
	Action   string   `json:"action"`
	ErrnoRet *uint    `json:"errnoRet"`
	Args     []arg    `json:"args"`
}

type profile struct {
	DefaultAction   string   `json:"defaultAction"`
	DefaultErrnoRet *uint    `json:"defaultErrnoRet"`
	Architectures   []string `json:"architectures"`
	Syscalls        []rule   `json:"syscalls"`
}

func action(a string, errno *uint) C.uint32_t {
	e := C.uint32_t(C.EPERM)
	if errno != nil {
		e = C.uint32_t(*errno)
	}
	switch a {
	case "SCMP_ACT_ALLOW":
		return C.SCMP_ACT_ALLOW
	case "SCMP_ACT_ERRNO":
		return C.act_errno(e)
	case "SCMP_ACT_TRACE":
		return C.act_trace(e)
	case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD":
		return C.SCMP_ACT_KILL
	case "SCMP_ACT_KILL_PROCESS":
		return C.SCMP_ACT_KILL_PROCESS
	case "SCMP_ACT_TRAP":
		return C.SCMP_ACT_TRAP
	case "SCMP_ACT_LOG":
		return C.SCMP_ACT_LOG
	case "SCMP_ACT_NOTIFY":
		return C.SCMP_ACT_NOTIFY
	}
	fatal("unknown action " + a)
	return 0
}

var ops = map[string]C.enum_scmp_compare{
	"SCMP_CMP_NE": C.SCMP_CMP_NE, "SCMP_CMP_LT": C.SCMP_CMP_LT, "SCMP_CMP_LE": C.SCMP_CMP_LE,
	"SCMP_CMP_EQ": C.SCMP_CMP_EQ, "SCMP_CMP_GE": C.SCMP_CMP_GE, "SCMP_CMP_GT": C.SCMP_CMP_GT,
	"SCMP_CMP_MASKED_EQ": C.SCMP_CMP_MASKED_EQ,
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "libseccomp:", msg)
	os.Exit(1)
}

func build(p *profile, optimize int) int {
	ctx := C.seccomp_init(action(p.DefaultAction, p.DefaultErrnoRet))
	if ctx == nil {
		fatal("seccomp_init failed")
	}
	defer C.seccomp_release(ctx)
	if optimize > 0 {
		if r := C.seccomp_attr_set(ctx, C.SCMP_FLTATR_CTL_OPTIMIZE, C.uint32_t(optimize)); r != 0 {
			fatal(fmt.Sprintf("SCMP_FLTATR_CTL_OPTIMIZE: %d", r))
		}
	}
	for _, a := range p.Architectures {
		cs := C.CString(strings.ToLower(strings.TrimPrefix(a, "SCMP_ARCH_")))
		tok := C.seccomp_arch_resolve_name(cs)
		C.free(unsafe.Pointer(cs))
		if tok == 0 {
			fatal("unknown arch " + a)
		}
		if r := C.seccomp_arch_add(ctx, tok); r != 0 && r != -C.EEXIST {
			fatal(fmt.Sprintf("arch %s: %d", a, r))
		}
	}
	for _, r := range p.Syscalls {
		act := action(r.Action, r.ErrnoRet)
		var cmps []C.struct_scmp_arg_cmp
		for _, a := range r.Args {
			op, ok := ops[a.Op]
			if !ok {
				fatal("unknown operator " + a.Op)
			}
			cmps = append(cmps, C.struct_scmp_arg_cmp{arg: C.uint(a.Index), op: op, datum_a: C.scmp_datum_t(a.Value), datum_b: C.scmp_datum_t(a.ValueTwo)})
		}
		for _, n := range r.Names {
			cs := C.CString(n)
			nr := C.seccomp_syscall_resolve_name(cs)
			C.free(unsafe.Pointer(cs))
			if nr == C.__NR_SCMP_ERROR {
				continue // not known to this libseccomp on any listed arch, as runc does
			}
			var rc C.int
			if len(cmps) == 0 {
				rc = C.seccomp_rule_add_array(ctx, act, nr, 0, nil)
			} else {
				rc = C.seccomp_rule_add_array(ctx, act, nr, C.uint(len(cmps)), &cmps[0])
			}
			if rc != 0 && rc != -C.EACCES {
				fatal(fmt.Sprintf("rule %s: %d", n, rc))
			}
		}
	}
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		fatal(err.Error())
	}
	done := make(chan int)
	go func() {
		n := 0
		buf := make([]byte, 65536)
		for {
			k, err := syscall.Read(fds[0], buf)
			if k <= 0 || err != nil {
				break
			}
			n += k
		}
		syscall.Close(fds[0])
		done <- n
	}()
	if r := C.seccomp_export_bpf(ctx, C.int(fds[1])); r != 0 {
		fatal(fmt.Sprintf("seccomp_export_bpf: %d", r))
	}
	syscall.Close(fds[1])
	return <-done / 8 // sizeof(struct sock_filter)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: libseccomp profile.json")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fatal(err.Error())
	}
	var p profile
	if err := json.Unmarshal(data, &p); err != nil {
		fatal(err.Error())
	}
	fmt.Println("default", build(&p, 0))
	fmt.Println("binary-tree", build(&p, 2))
}
