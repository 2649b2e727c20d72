//go:build !linux || !cgo

package nsenter

// Available reports whether the constructor is linked in: not in a build
// without cgo, which then cannot join user or mount namespaces by path.
const Available = false
