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
	return out
}

// The state.json codec writes what json.Marshal writes and reads back what
// json.Unmarshal reads, for every field of State.
func TestStateCodecMatchesEncodingJSON(t *testing.T) {
	for name, s := range testSpecs(t) {
		for _, st := range []*State{
			{ID: "c1", Config: s},
			{
				ID: "c2", InitPid: 4242, InitStartTime: 1 << 40, Created: time.Date(2026, 11, 23, 14, 0, 0, 123456789, time.UTC),
				Bundle: "/b <&>", Rootfs: "/b/rootfs", Owner: "o", Annotations: map[string]string{"b": "2", "a": "1"},
				CgroupPaths: map[string]string{"memory": "/sys/fs/cgroup/memory/c2"}, NamespacePaths: map[string]string{"net": "/proc/1/ns/net"},
				Ready: true, Config: s, SystemdCgroup: true, Rootless: true,
			},
		} {
			want, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeState(st)
			if err != nil {
				t.Fatalf("%s: encodeState: %v", name, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: encodeState wrote\n%s\njson.Marshal writes\n%s", name, got, want)
			}
			var back State
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatal(err)
			}
			dec, err := decodeState(want)
			if err != nil {
				t.Fatalf("%s: decodeState: %v", name, err)
			}
			if !reflect.DeepEqual(*dec, back) {
				t.Fatalf("%s: decodeState read %+v, json.Unmarshal reads %+v", name, *dec, back)
			}
		}
	}
}

func TestBootstrapCodecMatchesEncodingJSON(t *testing.T) {
	for name, s := range testSpecs(t) {
		b := &bootstrap{ID: "c", Bundle: "/b", Rootfs: "/b/rootfs", Spec: s, NoPivot: true, PreserveFDs: 2, HostPid: 77, HasConsole: true, Debug: true}
		want, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeBootstrap(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: encodeBootstrap wrote\n%s\njson.Marshal writes\n%s", name, got, want)
		}
		var back bootstrap
		if err := json.Unmarshal(want, &back); err != nil {
			t.Fatal(err)
		}
		dec, err := decodeBootstrap(want)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(*dec, back) {
			t.Fatalf("%s: decodeBootstrap read %+v, json.Unmarshal reads %+v", name, *dec, back)
		}
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
