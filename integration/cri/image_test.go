package cri

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// ociImage is an image the tests build offline: one uncompressed layer made
// from a directory, packed as an OCI image layout archive that "ctr images
// import" reads.
type ociImage struct {
	ref        string // full reference, e.g. docker.io/library/busybox:1.36
	arch       string // GOARCH spelling, which the OCI image spec uses too
	layer      string // directory that becomes the layer
	entrypoint []string
	cmd        []string
	env        []string
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// epoch is every file's mtime in a layer: the archives are reproducible.
var epoch = time.Unix(0, 0).UTC()

// writeArchive writes the image as an OCI layout tar at dst and returns the
// manifest's digest.
func (img ociImage) writeArchive(t *testing.T, dst string) string {
	t.Helper()
	blobs := map[string][]byte{}
	add := func(mediaType string, data []byte) descriptor {
		sum := sha256.Sum256(data)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = data
		return descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
	}
	layer, err := tarDir(img.layer)
	if err != nil {
		t.Fatalf("layer from %s: %v", img.layer, err)
	}
	layerDesc := add("application/vnd.oci.image.layer.v1.tar", layer)
	config := map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": img.arch,
		"os":           "linux",
		"config": map[string]any{
			"Env":        img.env,
			"Entrypoint": img.entrypoint,
			"Cmd":        img.cmd,
		},
		// Uncompressed layer: its diff id is its digest.
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
	}
	configDesc := add("application/vnd.oci.image.config.v1+json", mustJSON(t, config))
	manifest := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        configDesc,
		"layers":        []descriptor{layerDesc},
	}
	manifestDesc := add("application/vnd.oci.image.manifest.v1+json", mustJSON(t, manifest))
	// No platform on the descriptor: the image is the manifest itself, as
	// a single-platform image (or a multi-platform one pinned by the
	// digest of one of its manifests) is once pulled.
	manifestDesc.Annotations = map[string]string{
		"io.containerd.image.name":          img.ref,
		"org.opencontainers.image.ref.name": img.ref[strings.LastIndex(img.ref, ":")+1:],
	}
	index := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{manifestDesc},
	}

	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	file := func(name string, data []byte) {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	dir := func(name string) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
			t.Fatal(err)
		}
	}
	file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	file("index.json", mustJSON(t, index))
	dir("blobs/")
	dir("blobs/sha256/")
	digests := make([]string, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		file("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), blobs[d])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return manifestDesc.Digest
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// tarDir returns an uncompressed tar of the tree under root, in name order,
// owned by root, with fixed times.
func tarDir(root string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = epoch, time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
