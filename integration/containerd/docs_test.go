package containerd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crossrun/crossrun/integration/harness"
)

// TestDocsEmbedExamples: the snippets the docs show are the files under
// docs/examples that the tests use, character for character.
func TestDocsEmbedExamples(t *testing.T) {
	for _, c := range []struct{ doc, example string }{
		{"containerd.md", "containerd-config.toml"},
		{"podman.md", "containers.conf"},
	} {
		t.Run(c.doc, func(t *testing.T) {
			docs := filepath.Join(harness.ModuleRoot(), "docs")
			doc, err := os.ReadFile(filepath.Join(docs, c.doc))
			if err != nil {
				t.Fatal(err)
			}
			example, err := os.ReadFile(filepath.Join(docs, "examples", c.example))
			if err != nil {
				t.Fatal(err)
			}
			if len(strings.TrimSpace(string(example))) == 0 {
				t.Fatalf("docs/examples/%s is empty", c.example)
			}
			if !strings.Contains(string(doc), "```toml\n"+string(example)+"```\n") {
				t.Fatalf("docs/%s does not show docs/examples/%s verbatim in a toml block", c.doc, c.example)
			}
		})
	}
}
