package cri

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/crossrun/crossrun/integration/harness"
)

// docs/kubernetes.md shows files from docs/examples; the tests use those
// files: the containerd snippet configures the test's containerd, the
// RuntimeClass gives the runtime handler, the pods give the CRI requests
// their names, images, commands and resources.

// qemuLabel is the node label kubernetes.md asks admins to put on nodes
// with qemu-user-static; foreign-arch pods select it.
const qemuLabel = "crossrun.io/qemu-user"

type runtimeClass struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Handler string `yaml:"handler"`
}

type podManifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		RuntimeClassName string            `yaml:"runtimeClassName"`
		NodeSelector     map[string]string `yaml:"nodeSelector"`
		RestartPolicy    string            `yaml:"restartPolicy"`
		Containers       []struct {
			Name      string   `yaml:"name"`
			Image     string   `yaml:"image"`
			Command   []string `yaml:"command"`
			Args      []string `yaml:"args"`
			Resources struct {
				Requests map[string]string `yaml:"requests"`
				Limits   map[string]string `yaml:"limits"`
			} `yaml:"resources"`
		} `yaml:"containers"`
	} `yaml:"spec"`
}

func examplePath(name string) string {
	return filepath.Join(harness.ModuleRoot(), "docs", "examples", name)
}

// readManifest parses docs/examples/<name> into v, refusing unknown fields
// so that the test notices what it would otherwise ignore.
func readManifest(t *testing.T, name string, v any) {
	t.Helper()
	f, err := os.Open(examplePath(name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("docs/examples/%s: %v", name, err)
	}
}

func readRuntimeClass(t *testing.T) runtimeClass {
	t.Helper()
	var rc runtimeClass
	readManifest(t, "kubernetes-runtimeclass.yaml", &rc)
	if rc.APIVersion != "node.k8s.io/v1" || rc.Kind != "RuntimeClass" || rc.Metadata.Name == "" || rc.Handler == "" {
		t.Fatalf("docs/examples/kubernetes-runtimeclass.yaml: want a node.k8s.io/v1 RuntimeClass with a name and a handler, got %+v", rc)
	}
	return rc
}

func readPod(t *testing.T, name string) podManifest {
	t.Helper()
	var p podManifest
	readManifest(t, name, &p)
	if p.APIVersion != "v1" || p.Kind != "Pod" || p.Metadata.Name == "" || len(p.Spec.Containers) != 1 {
		t.Fatalf("docs/examples/%s: want a v1 Pod with a name and one container, got %+v", name, p)
	}
	return p
}

// handlerFor is what the kubelet does with runtimeClassName: it looks up
// the RuntimeClass and passes its handler to RunPodSandbox.
func handlerFor(t *testing.T, p podManifest, rc runtimeClass) string {
	t.Helper()
	if p.Spec.RuntimeClassName != rc.Metadata.Name {
		t.Fatalf("pod %s: runtimeClassName %q, but the RuntimeClass in docs/examples is %q", p.Metadata.Name, p.Spec.RuntimeClassName, rc.Metadata.Name)
	}
	return rc.Handler
}

// TestDocsEmbedExamples: kubernetes.md shows every docs/examples/kubernetes-*
// file verbatim, as a whole fenced block.
func TestDocsEmbedExamples(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(harness.ModuleRoot(), "docs", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(examplePath("kubernetes-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("docs/examples has %d kubernetes-* files, want the containerd snippet, the RuntimeClass and two pods", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lang := map[string]string{".toml": "toml", ".yaml": "yaml"}[filepath.Ext(f)]
		block := "```" + lang + "\n" + string(data) + "```\n"
		if !strings.Contains(string(md), block) {
			t.Errorf("docs/kubernetes.md does not embed docs/examples/%s verbatim as a ```%s block", filepath.Base(f), lang)
		}
		if !strings.Contains(string(md), "docs/examples/"+filepath.Base(f)) && !strings.Contains(string(md), "examples/"+filepath.Base(f)) {
			t.Errorf("docs/kubernetes.md does not name examples/%s", filepath.Base(f))
		}
	}
}

// TestDocsManifests checks what ties the examples together: the pods use
// the RuntimeClass, whose handler is the runtime the containerd snippet
// defines, and the foreign-arch pod selects the qemu node label that
// kubernetes.md tells admins to set.
func TestDocsManifests(t *testing.T) {
	rc := readRuntimeClass(t)
	snippet := docsSnippet(t)
	table := fmt.Sprintf(`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%s]`, rc.Handler)
	if !strings.Contains(snippet, table) {
		t.Errorf("kubernetes-containerd.toml has no %s for the RuntimeClass handler %q", table, rc.Handler)
	}
	if !regexp.MustCompile(`(?m)^\s*restrict_oom_score_adj = true$`).MatchString(snippet) {
		t.Errorf("kubernetes-containerd.toml does not set restrict_oom_score_adj = true")
	}
	pod := readPod(t, "kubernetes-pod.yaml")
	handlerFor(t, pod, rc)
	if _, err := kubeletResources(pod.Spec.Containers[0].Resources.Requests, pod.Spec.Containers[0].Resources.Limits); err != nil {
		t.Errorf("kubernetes-pod.yaml: %v", err)
	}
	arm := readPod(t, "kubernetes-pod-arm64.yaml")
	handlerFor(t, arm, rc)
	if arm.Spec.NodeSelector[qemuLabel] != "true" {
		t.Errorf("kubernetes-pod-arm64.yaml: nodeSelector %v, want %s: \"true\"", arm.Spec.NodeSelector, qemuLabel)
	}
	md, err := os.ReadFile(filepath.Join(harness.ModuleRoot(), "docs", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "kubectl label node") || !strings.Contains(string(md), qemuLabel+"=true") {
		t.Errorf("docs/kubernetes.md does not show how to label a node %s=true", qemuLabel)
	}
}

// resources are a container's limits as the kubelet turns them into CRI
// values (cgroupfs driver, cgroup v1 units).
type resources struct {
	cpuShares, cpuQuota, cpuPeriod, memoryLimit, memoryRequest int64
}

const cpuPeriod = 100000 // the kubelet's CFS period, in microseconds

// kubeletResources converts requests and limits the way the kubelet does:
// shares from the CPU request (1024 per CPU, at least 2), quota from the
// CPU limit over a 100 ms period (at least 1 ms), the memory limit in bytes.
func kubeletResources(requests, limits map[string]string) (resources, error) {
	var r resources
	r.cpuPeriod = cpuPeriod
	cpuReq, cpuLim := requests["cpu"], limits["cpu"]
	if cpuReq == "" {
		cpuReq = cpuLim
	}
	if cpuReq == "" || cpuLim == "" || limits["memory"] == "" {
		return r, fmt.Errorf("want cpu and memory limits (and optionally requests), got requests %v limits %v", requests, limits)
	}
	req, err := milliCPU(cpuReq)
	if err != nil {
		return r, err
	}
	lim, err := milliCPU(cpuLim)
	if err != nil {
		return r, err
	}
	r.cpuShares = max(req*1024/1000, 2)
	r.cpuQuota = max(lim*cpuPeriod/1000, 1000)
	if r.memoryLimit, err = quantityBytes(limits["memory"]); err != nil {
		return r, err
	}
	r.memoryRequest = r.memoryLimit
	if m := requests["memory"]; m != "" {
		if r.memoryRequest, err = quantityBytes(m); err != nil {
			return r, err
		}
	}
	return r, nil
}

// milliCPU parses a CPU quantity: "250m", "0.5", "2".
func milliCPU(q string) (int64, error) {
	if s, ok := strings.CutSuffix(q, "m"); ok {
		return strconv.ParseInt(s, 10, 64)
	}
	f, err := strconv.ParseFloat(q, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("cpu quantity %q", q)
	}
	return int64(f * 1000), nil
}

// quantityBytes parses a memory quantity: "64Mi", "1Gi", "100M", "1024".
func quantityBytes(q string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"k", 1000}, {"M", 1000 * 1000}, {"G", 1000 * 1000 * 1000}}
	for _, u := range units {
		if s, ok := strings.CutSuffix(q, u.suffix); ok {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("memory quantity %q", q)
			}
			return n * u.mult, nil
		}
	}
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory quantity %q", q)
	}
	return n, nil
}
