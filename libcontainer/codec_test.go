package libcontainer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crossrun/crossrun/internal/specjson"
)

// testSpecs are the configurations of specjson's test data: a default one
// and edge cases (nulls, escapes, odd numbers, mixed-case keys).
func testSpecs(t *testing.T) map[string]*specs.Spec {
	t.Helper()
	files, err := filepath.Glob("../internal/specjson/testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test configurations: %v", err)
	}
	out := map[string]*specs.Spec{"nil": nil}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s specs.Spec
		if json.Unmarshal(data, &s) != nil {
			continue // the fallback cases that encoding/json refuses
		}
		out[filepath.Base(f)] = &s
	}
	// default, full, process, rootless, platforms, kernel-abi, the edge
	// cases and the fallback cases encoding/json accepts: a glob that
	// found only a few would leave the codecs barely tested.
	if len(out) < 15 {
		t.Fatalf("only %d test configurations decode; want the %d files of specjson's testdata", len(out), len(files))
	}
	return out
}

// checkCodec checks that enc writes what json.Marshal writes for v, and
// that dec reads back what json.Unmarshal reads from it.
func checkCodec[T any](t *testing.T, name string, v *T, enc func(*T) ([]byte, error), dec func([]byte) (*T, error)) {
	t.Helper()
	// Output of json.Marshal is the plainest input there is: the codec
	// must handle it itself, not leave it to encoding/json (which would
	// hide a wrong case behind an equal result).
	defer specjson.SetFallbackHook(func(why string) {
		t.Errorf("%s: fell back to encoding/json: %s", name, why)
	})()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := enc(v)
	if err != nil {
		t.Fatalf("%s: encode: %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: encoded\n%s\njson.Marshal writes\n%s", name, got, want)
	}
	back := new(T)
	if err := json.Unmarshal(want, back); err != nil {
		t.Fatal(err)
	}
	decoded, err := dec(want)
	if err != nil {
		t.Fatalf("%s: decode: %v", name, err)
	}
	if !reflect.DeepEqual(decoded, back) {
		t.Fatalf("%s: decoded %+v, json.Unmarshal reads %+v", name, *decoded, *back)
	}
}

// The state.json codec writes what json.Marshal writes and reads back what
// json.Unmarshal reads, for every field of State.
func TestStateCodecMatchesEncodingJSON(t *testing.T) {
	for name, s := range testSpecs(t) {
		checkCodec(t, name, &State{ID: "c1", Config: s}, encodeState, decodeState)
		checkCodec(t, name, &State{
			ID: "c2", InitPid: 4242, InitStartTime: 1 << 40, Created: time.Date(2026, 11, 23, 14, 0, 0, 123456789, time.UTC),
			Bundle: "/b <&>", Rootfs: "/b/rootfs", Owner: "o", Annotations: map[string]string{"b": "2", "a": "1"},
			CgroupPaths: map[string]string{"memory": "/sys/fs/cgroup/memory/c2"}, NamespacePaths: map[string]string{"net": "/proc/1/ns/net"},
			Ready: true, Config: s, SystemdCgroup: true, Rootless: true,
		}, encodeState, decodeState)
	}
}

func TestBootstrapCodecMatchesEncodingJSON(t *testing.T) {
	for name, s := range testSpecs(t) {
		b := &bootstrap{ID: "c", Bundle: "/b", Rootfs: "/b/rootfs", Spec: s, NoPivot: true, PreserveFDs: 2, HostPid: 77, HasConsole: true, Debug: true}
		checkCodec(t, name, b, encodeBootstrap, decodeBootstrap)
	}
}

// Keys in other cases, unknown keys and a state.json from an older
// crossrun without the newer fields decode as encoding/json decodes them.
func TestStateCodecOddInput(t *testing.T) {
	for _, in := range []string{
		`{"ID":"x","Init_Process_Pid":3,"config":{"ociVersion":"1.0.2"},"extra":{"a":[1,2,{"b":null}]}}`,
		`{"id":"x","init_process_pid":3,"created":"2026-11-23T14:00:00Z","config":null}`,
		`{"id":"x","id":"y"}`,
		`{"id":"x","ready":"yes"}`,
		`null`,
	} {
		var want State
		werr := json.Unmarshal([]byte(in), &want)
		got, gerr := decodeState([]byte(in))
		if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
			t.Fatalf("%s: decodeState error %v, json.Unmarshal %v", in, gerr, werr)
		}
		if werr == nil && !reflect.DeepEqual(*got, want) {
			t.Fatalf("%s: decodeState read %+v, json.Unmarshal reads %+v", in, *got, want)
		}
	}
}
