// Package rootfs builds a container's root filesystem from an OCI spec.
//
// It runs inside the container's init process, which is already in the
// container's new mount namespace (and user namespace, if any). The work is
// split in two phases so that code which needs the host filesystem (the
// foreign-arch router) can run between them:
//
//   - [Mount] prepares everything under the rootfs: the rootfs bind mount,
//     every spec mount in order, and /dev (devices, symlinks, console).
//   - [Pivot] switches the root (pivot_root or MS_MOVE+chroot), then applies
//     readonlyPaths, maskedPaths, root.readonly and rootfsPropagation.
//
// Every mount destination is resolved inside the rootfs without following
// symlinks out of it, and every mount is attached to a file descriptor opened
// on that resolved destination rather than to a path that is looked up again.
//
// [WriteSysctl] and [WriteProcSelf] write to procfs through an instance that
// is verified to be a real procfs, never through whatever a container mounted
// on /proc.
package rootfs
