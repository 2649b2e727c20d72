//go:build linux && cgo

// Package nsenter links in a C constructor that joins user and mount
// namespaces before the Go runtime starts its threads; a multi-threaded
// process cannot join them. Importing the package is enough; it acts only in
// processes crossrun starts with _CROSSRUN_NSENTER set.
package nsenter

import "C"

// Available reports whether the constructor is linked in.
const Available = true
