package main

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crossrun/crossrun/seccomp"
)

// applyAnnotations turns crossrun's config.json annotations into
// configuration, so that containerd and podman users, who cannot pass
// crossrun flags, reach the same features.
func applyAnnotations(s *specs.Spec) error {
	v, ok := s.Annotations[seccomp.KernelABIAnnotation]
	if !ok {
		return nil
	}
	prof, err := seccomp.KernelABIProfile(v, s.Linux.Seccomp)
	if err != nil {
		return fmt.Errorf("annotation %s: %w", seccomp.KernelABIAnnotation, err)
	}
	s.Linux.Seccomp = prof
	return nil
}
