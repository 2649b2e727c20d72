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

// coldEnv selects what coldHelper measures in a child process.
const coldEnv = "SPECJSON_COLD_MODE"

// coldModes are the operations measured once in a fresh process each.
var coldModes = []string{"decode/specjson", "decode/encoding-json", "encode/specjson", "encode/encoding-json"}

// TestMain runs coldHelper instead of the tests in the child processes of
// BenchmarkColdStart.
func TestMain(m *testing.M) {
	if mode := os.Getenv(coldEnv); mode != "" {
		if err := coldHelper(mode, os.Getenv(coldEnv+"_FILE")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// coldHelper performs one operation on the configuration in file, the
// first such operation in the process, and prints how long it took.
func coldHelper(mode, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
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
			return derr
		}
		start := time.Now()
		if mode == "encode/specjson" {
			_, err = EncodeSpec(s)
		} else {
			_, err = json.Marshal(s)
		}
		d = time.Since(start)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return err
	}
	fmt.Printf("cold-ns=%d\n", d.Nanoseconds())
	return nil
}

// BenchmarkColdStart measures the first decode and encode of a
// configuration in a process, where encoding/json builds its type caches,
// by running each operation in fresh child processes (coldHelper). It
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
						cmd := exec.Command(os.Args[0])
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
