// Command hello prints the architecture it was built for. The foreign-arch
// integration tests cross-compile it for each GOARCH and run it in a
// container.
package main

import (
	"fmt"
	"runtime"
)

func main() {
	fmt.Println(runtime.GOARCH)
}
