package specjson

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// coldEnv selects what TestColdHelper measures in a child process.
const coldEnv = "SPECJSON_COLD_MODE"

// coldModes are the operations measured once in a fresh process each.
var coldModes = []string{"decode/specjson", "decode/encoding-json", "encode/specjson", "encode/encoding-json"}

// TestColdHelper is run as a child process by BenchmarkColdStart: it performs
// one operation on testdata/default.json, the first such operation in the
// process, and prints how long it took.
func TestColdHelper(t *testing.T) {
	mode := os.Getenv(coldEnv)
	if mode == "" {
		t.Skip("run as a child process by BenchmarkColdStart")
	}
	data, err := os.ReadFile(os.Getenv(coldEnv + "_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	var d time.Duration
	switch mode {
	case "decode/specjson":
		start := time.Now()
		_, err = DecodeSpec(data)
		d = time.Since(start)
	case "decode/encoding-json":
		var s specs.Spec
		start := time.Now()
		err = json.Unmarshal(data, &s)
		d = time.Since(start)
	case "encode/specjson", "encode/encoding-json":
		// DecodeSpec leaves encoding/json's caches cold.
		s, derr := DecodeSpec(data)
		if derr != nil {
			t.Fatal(derr)
		}
		start := time.Now()
		if mode == "encode/specjson" {
			_, err = EncodeSpec(s)
		} else {
			_, err = json.Marshal(s)
		}
		d = time.Since(start)
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("cold-ns=%d\n", d.Nanoseconds())
}

// BenchmarkColdStart measures the first decode and encode of a
// configuration in a process, where encoding/json builds its type caches,
// by running each operation in fresh child processes (TestColdHelper). It
// reports the median of 9 children per operation as a metric
// (go test -run '^$' -bench ColdStart ./internal/specjson/).
func BenchmarkColdStart(b *testing.B) {
	const runs = 9
	for _, file := range []string{"testdata/default.json", "testdata/full.json"} {
		for _, mode := range coldModes {
			b.Run(strings.TrimSuffix(strings.TrimPrefix(file, "testdata/"), ".json")+"/"+mode, func(b *testing.B) {
				var times []time.Duration
				for range b.N {
					for range runs {
						cmd := exec.Command(os.Args[0], "-test.run=^TestColdHelper$", "-test.count=1")
						cmd.Env = append(os.Environ(), coldEnv+"="+mode, coldEnv+"_FILE="+file)
						out, err := cmd.CombinedOutput()
						if err != nil {
							b.Fatalf("%s: %v\n%s", mode, err, out)
						}
						_, rest, ok := strings.Cut(string(out), "cold-ns=")
						if !ok {
							b.Fatalf("%s: no timing in output:\n%s", mode, out)
						}
						ns, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
						if err != nil {
							b.Fatalf("%s: %v", mode, err)
						}
						times = append(times, time.Duration(ns))
					}
				}
				slices.Sort(times)
				b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "ns/first-call")
			})
		}
	}
}

func benchFiles(b *testing.B) map[string][]byte {
	return map[string][]byte{
		"default": mustRead(b, "testdata/default.json"),
		"full":    mustRead(b, "testdata/full.json"),
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{"default", "full"} {
		data := benchFiles(b)[name]
		b.Run(name+"/specjson", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeSpec(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var s specs.Spec
				if err := json.Unmarshal(data, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"default", "full"} {
		s, err := DecodeSpec(benchFiles(b)[name])
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/specjson", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodeSpec(s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
