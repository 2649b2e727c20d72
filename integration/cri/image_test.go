package cri

import (
	"testing"

	"github.com/crossrun/crossrun/integration/harness"
)

// writeImage writes img as an OCI layout archive that "ctr images import"
// reads. The platform is left off the index entry (NoPlatform), so that
// the CRI plugin takes the arm64 image on this host too: kubelet would have
// pulled the arm64 manifest of a multi-platform image by its digest.
func writeImage(t *testing.T, img harness.OCIImage, dst string) {
	t.Helper()
	img.NoPlatform = true
	if err := harness.WriteOCIImage(img, dst); err != nil {
		t.Fatalf("image %s: %v", img.Name, err)
	}
}
