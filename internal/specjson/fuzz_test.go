package specjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeSpec checks that DecodeSpec agrees with json.Unmarshal on any
// input (value and error), and that EncodeSpec agrees with json.Marshal
// on what was decoded.
func FuzzDecodeSpec(f *testing.F) {
	for _, data := range testdataFiles(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeEncode(t, "input", data)
	})
}

// checkDecodeEncode checks DecodeSpec against json.Unmarshal on data
// (checkDecode) and, when data decodes, EncodeSpec against json.Marshal
// on the result.
func checkDecodeEncode(t *testing.T, name string, data []byte) {
	t.Helper()
	got, err, _ := checkDecode(t, name, data)
	if t.Failed() || err != nil {
		return
	}
	enc, err := EncodeSpec(got)
	wantEnc, wantErr := json.Marshal(got) // got equals json.Unmarshal's value
	if !reflect.DeepEqual(err, wantErr) || !bytes.Equal(enc, wantEnc) {
		t.Errorf("%s: encoding differs\n got: %s, %v\nwant: %s, %v", name, enc, err, wantEnc, wantErr)
	}
}

// fragmentTemplates place a fuzzed fragment where the fast path reads
// strings, keys, numbers and unknown values, so that most inputs are
// well-formed around it.
var fragmentTemplates = []string{
	`{"hostname":%s}`,
	`{"ociVersion":"1","process":{"args":[%s],"cwd":"/"}}`,
	`{"annotations":{%s:"v"}}`,
	`{"annotations":{"k":%s}}`,
	`{%s:"1.3.0"}`,
	`{"process":{%s:"x","user":{"uid":%s}}}`,
	`{"process":{"oomScoreAdj":%s,"scheduler":{"nice":%s}}}`,
	`{"process":{"rlimits":[{"hard":%s,"soft":1}]}}`,
	`{"linux":{"resources":{"blockIO":{"weight":%s,"weightDevice":[{"major":%s}]}}}}`,
	`{"x":%s,"hostname":"h"}`,
	`{"windows":{"credentialSpec":%s}}`,
	`{"linux":{"namespaces":[{"type":%s}],"timeOffsets":{%s:{"secs":1}}}}`,
	`%s`,
}

// FuzzDecodeFragment checks DecodeSpec against json.Unmarshal on
// configurations built by placing a fragment into fixed templates.
func FuzzDecodeFragment(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\ud800"`, `1`, `-0`, `1e3`, `18446744073709551615`, `null`, `true`, `[1,{"a":[]}]`,
		`{"a":1}`, `"OCIVERSION"`, `"ociVersion"`, `"\u0063wd"`, `" "`, `""`, `-9223372036854775808`, `65535`, `"é"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frag string) {
		for _, tmpl := range fragmentTemplates {
			data := []byte(strings.ReplaceAll(tmpl, "%s", frag))
			if checkDecodeEncode(t, string(data), data); t.Failed() {
				return
			}
		}
	})
}
