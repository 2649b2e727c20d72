package binfmt

import (
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// Diagnosis is a user-facing explanation of why a process cannot be
// exec'ed: what was attempted, why it fails, and how to fix it. Its Error is
// one line, "what: why; fix". Err is the errno the kernel would return
// (ENOEXEC, ENOENT, EACCES...), so errors.Is(d, unix.ENOEXEC) works.
type Diagnosis struct {
	What string
	Why  string
	Fix  string
	Err  error
}

func (d *Diagnosis) Error() string {
	var b strings.Builder
	b.WriteString(d.What)
	if d.Why != "" {
		b.WriteString(": ")
		b.WriteString(d.Why)
	}
	if d.Fix != "" {
		b.WriteString("; ")
		b.WriteString(d.Fix)
	}
	return b.String()
}

func (d *Diagnosis) Unwrap() error { return d.Err }

func secureJoin(root, unsafePath string) (string, error) {
	return securejoin.SecureJoin(root, unsafePath)
}
