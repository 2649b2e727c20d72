// Command archhello is the foreign-architecture image's entrypoint for the
// CRI tests: it prints the architecture it was built for and the machine
// uname(2) reports (qemu-user reports the emulated one), then exits 0.
package main

import (
	"fmt"
	"runtime"
	"syscall"
)

func main() {
	var u syscall.Utsname
	machine := "unknown"
	if err := syscall.Uname(&u); err == nil {
		b := make([]byte, 0, len(u.Machine))
		for _, c := range u.Machine {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		machine = string(b)
	}
	fmt.Printf("hello from %s/%s, uname machine %s\n", runtime.GOOS, runtime.GOARCH, machine)
}
