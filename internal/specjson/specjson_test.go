package specjson

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// traceFallback runs f and returns why Unmarshal fell back to
// encoding/json, or "" if the fast path decoded the input.
func traceFallback(f func()) (why string) {
	fell := false
	testHookFallback = func(w string) {
		fell = true
		why = w
	}
	defer func() { testHookFallback = nil }()
	f()
	if fell && why == "" {
		why = "(no reason)"
	}
	return why
}

// checkDecode decodes data with DecodeSpec and with json.Unmarshal,
// reports any difference, and returns what DecodeSpec returned and the
// fallback reason ("" for the fast path).
func checkDecode(t *testing.T, name string, data []byte) (got *specs.Spec, err error, why string) {
	t.Helper()
	why = traceFallback(func() { got, err = DecodeSpec(data) })
	want := new(specs.Spec)
	wantErr := json.Unmarshal(data, want)
	if !reflect.DeepEqual(err, wantErr) {
		t.Errorf("%s: error\n got: %#v\nwant: %#v", name, err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s: value differs from encoding/json's (fallback: %q)\n got: %s\nwant: %s", name, why, g, w)
	}
	return got, err, why
}

func testdataFiles(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no testdata")
	}
	files := map[string][]byte{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = data
	}
	return files
}

// TestDecodeTestdata decodes every configuration in testdata. Files named
// fallback-*.json must be left to encoding/json; all others must take the
// fast path.
func TestDecodeTestdata(t *testing.T) {
	for name, data := range testdataFiles(t) {
		t.Run(name, func(t *testing.T) {
			_, _, why := checkDecode(t, name, data)
			wantFallback := strings.HasPrefix(name, "fallback-")
			if wantFallback && why == "" {
				t.Errorf("decoded by the fast path; want encoding/json")
			}
			if !wantFallback && why != "" {
				t.Errorf("fell back to encoding/json (%s); want the fast path", why)
			}
		})
	}
}

func TestDecodeCases(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	deepObj := func(n int) string { return strings.Repeat(`{"a":`, n) + "null" + strings.Repeat("}", n) }
	tests := []struct {
		in       string
		fallback bool
	}{
		{`null`, false},
		{` {} `, false},
		{"\t\r\n{}\r\n", false},
		{`{"process":null}`, false},
		{`{"process":{}}`, false},
		{`{"process":{"user":null,"consoleSize":{}}}`, false},
		{`{ "hostname" : "a" , "ociVersion" : "b" }`, false},
		{`{"OCIversion":"1"}`, false},
		{`{"annotations":{"a":"1","a":"2","A":"3"}}`, false},
		{`{"annotations":{"a":null}}`, false},
		{`{"process":{"oomScoreAdj":-0}}`, false},
		{`{"process":{"oomScoreAdj":0}}`, false},
		{`{"x":1e+5,"y":-0.0E-0,"z":[1,2,{"a":[true,false,null,""]}]}`, false},
		{`{"hostname":"a\u0000"}`, false},
		{`{"hostname":"a"}` + "  \n", false},
		{`{"windows":{"credentialSpec":{"a":[1,"b",null,true,{"c":-1.5e3}]}}}`, false},
		{`{"windows":{"credentialSpec":"\ud800"}}`, false},
		{`{"windows":{"credentialSpec":12}}`, false},
		{`{"linux":{"resources":{"blockIO":{"weightDevice":[{"major":1,"minor":2,"weight":3}]}}}}`, false},
		{`{"x":` + deep(499) + `}`, false},
		{`{"linux":{"resources":{"blockIO":{"weightDevice":[{"LinuxBlockIODevice":{"major":1},"minor":2}]}}}}`, false},
		{`{"linux":{"resources":{"blockIO":{"throttleReadBpsDevice":[{"MAJOR":1,"Rate":2}]}}}}`, false},

		{`{"x":` + deep(500) + `}`, true},
		{`{"x":` + deepObj(499) + `}`, false},
		{`{"x":` + deepObj(500) + `}`, true},
		{`{"x":[` + deepObj(499) + `]}`, true},
		{``, true},
		{`   `, true},
		{`[]`, true},
		{`"x"`, true},
		{`1`, true},
		{`true`, true},
		{`nul`, true},
		{`nullx`, true},
		{`{}x`, true},
		{`{} {}`, true},
		{`{"hostname":"a","HOSTNAME":"b"}`, true},
		{`{"ociVersion":"1","OciVersion":"2"}`, true},
		{`{"ociverſion":"1"}`, true},
		{`{"hostname":"a",}`, true},
		{`{,"hostname":"a"}`, true},
		{`{"hostname" "a"}`, true},
		{`{"hostname":"a"`, true},
		{`{"hostname":"a`, true},
		{`{"hostname":}`, true},
		{`{"hostname"}`, true},
		{`{hostname:"a"}`, true},
		{`{'hostname':"a"}`, true},
		{`{"mounts":[{"destination":"/"}],"mounts":null}`, true},
		{`{"mounts":[{"destination":"/","Destination":"/x"}]}`, true},
		{`{"linux":{"resources":{"blockIO":{"weightDevice":[{"major":1,"Major":2}]}}}}`, true},
		{`{"annotations":{"a":1}}`, true},
		{`{"annotations":{"a":"1",}}`, true},
		{`{"annotations":{"a" "1"}}`, true},
		{`{"annotations":{1:"1"}}`, true},
		{`{"annotations":["a"]}`, true},
		{`{"process":{"args":["a",]}}`, true},
		{`{"process":{"args":[,"a"]}}`, true},
		{`{"process":{"args":["a" "b"]}}`, true},
		{`{"process":{"args":["a"}}`, true},
		{`{"process":{"args":[1]}}`, true},
		{`{"process":{"args":{}}}`, true},
		{`{"process":{"terminal":tru}}`, true},
		{`{"process":{"terminal":nul}}`, true},
		{`{"process":{"terminal":"true"}}`, true},
		{`{"process":{"terminal":1}}`, true},
		{`{"process":{"terminal":truee}}`, true},
		{`{"process":{"user":{"uid":4294967296}}}`, true},
		{`{"process":{"user":{"uid":-0}}}`, true},
		{`{"process":{"user":{"uid":-1}}}`, true},
		{`{"process":{"user":{"uid":1.0}}}`, true},
		{`{"process":{"user":{"uid":1e0}}}`, true},
		{`{"process":{"user":{"uid":"1"}}}`, true},
		{`{"process":{"oomScoreAdj":9223372036854775808}}`, true},
		{`{"process":{"oomScoreAdj":-9223372036854775809}}`, true},
		{`{"process":{"oomScoreAdj":99999999999999999999999}}`, true},
		{`{"process":{"oomScoreAdj":1.5}}`, true},
		{`{"process":{"oomScoreAdj":-}}`, true},
		{`{"process":{"oomScoreAdj":+1}}`, true},
		{`{"process":{"oomScoreAdj":0x10}}`, true},
		{`{"process":{"oomScoreAdj":1e}}`, true},
		{`{"process":{"oomScoreAdj":01}}`, true},
		{`{"process":{"scheduler":{"nice":2147483648}}}`, true},
		{`{"linux":{"resources":{"blockIO":{"weight":65536}}}}`, true},
		{`{"x":1.}`, true},
		{`{"x":.5}`, true},
		{`{"x":-01}`, true},
		{`{"x":01}`, true},
		{`{"x":1e+}`, true},
		{`{"x":-}`, true},
		{`{"x":"\x"}`, true},
		{`{"x":"\'"}`, true},
		{`{"x":"\u12"}`, true},
		{`{"x":"\u12G4"}`, true},
		{"{\"x\":\"a\x01\"}", true},
		{`{"x":{"a" 1}}`, true},
		{`{"x":{"a":1,}}`, true},
		{`{"x":{1:2}}`, true},
		{`{"x":[1 2]}`, true},
		{`{"x":truex}`, true},
		{`{"x":nullnull}`, true},
		{`{"x":NaN}`, true},
		{"\ufeff{}", true},
		{"{}\f", true},
		{"{\f}", true},
		{`{"hostname":"\u00e9","ociVersion\u0000":"x"}`, true},
		{`{"windows":{"credentialSpec":1e999}}`, true},
		{`{"windows":{"credentialSpec":[1,]}}`, true},
		{`{"windows":"x"}`, true},
		{`{"linux":{"seccomp":{"syscalls":[{"args":[{"index":-1}]}]}}}`, true},
	}
	for _, tc := range tests {
		_, _, why := checkDecode(t, tc.in, []byte(tc.in))
		if tc.fallback && why == "" {
			t.Errorf("%q: decoded by the fast path; want encoding/json", tc.in)
		}
		if !tc.fallback && why != "" {
			t.Errorf("%q: fell back to encoding/json (%s); want the fast path", tc.in, why)
		}
	}
}

func TestDecodeProcess(t *testing.T) {
	inputs := []string{
		string(mustRead(t, "testdata/process.json")),
		`{"cwd":"/","args":["sh"],"user":{"uid":1}}`,
		`null`,
		`{"cwd":"/","CWD":"/x"}`,
		`{"user":{"uid":"x"}}`,
		`{"cwd":"/"`,
	}
	for i, in := range inputs {
		var got *specs.Process
		var err error
		why := traceFallback(func() { got, err = DecodeProcess([]byte(in)) })
		want := new(specs.Process)
		wantErr := json.Unmarshal([]byte(in), want)
		if !reflect.DeepEqual(err, wantErr) || !reflect.DeepEqual(got, want) {
			t.Errorf("input %d: got %+v, %v; want %+v, %v", i, got, err, want, wantErr)
		}
		if i < 3 && why != "" {
			t.Errorf("input %d: fell back to encoding/json (%s)", i, why)
		}
		if i >= 3 && why == "" {
			t.Errorf("input %d: decoded by the fast path", i)
		}
	}
}

func TestState(t *testing.T) {
	inputs := []string{
		`{"ociVersion":"1.3.0","id":"c1","status":"running","pid":42,"bundle":"/b","annotations":{"a":"b"}}`,
		`{"ociVersion":"1.3.0","id":"c1","status":"stopped","bundle":"/b"}`,
		`{"ociVersion":"1.3.0","id":"c1","status":"running","pid":-42,"bundle":"/b","annotations":{}}`,
	}
	for _, in := range inputs {
		got, err := Unmarshal([]byte(in), decState)
		want := new(specs.State)
		wantErr := json.Unmarshal([]byte(in), want)
		if !reflect.DeepEqual(err, wantErr) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", in, got, err, want, wantErr)
		}
		enc, err := EncodeState(got)
		wantEnc, wantErr := json.Marshal(got)
		if err != nil || wantErr != nil || !bytes.Equal(enc, wantEnc) {
			t.Errorf("encode %s:\n got %s, %v\nwant %s, %v", in, enc, err, wantEnc, wantErr)
		}
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func checkEncodeSpec(t *testing.T, name string, s *specs.Spec) {
	t.Helper()
	got, err := EncodeSpec(s)
	want, wantErr := json.Marshal(s)
	if !reflect.DeepEqual(err, wantErr) {
		t.Errorf("%s: error %v, want %v", name, err, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: encoding differs\n got: %s\nwant: %s", name, got, want)
	}
	var p *specs.Process
	if s != nil {
		p = s.Process
	}
	got, err = EncodeProcess(p)
	want, wantErr = json.Marshal(p)
	if !reflect.DeepEqual(err, wantErr) || !bytes.Equal(got, want) {
		t.Errorf("%s: process encoding differs\n got: %s, %v\nwant: %s, %v", name, got, err, want, wantErr)
	}
}

func TestEncodeTestdata(t *testing.T) {
	n := 0
	for name, data := range testdataFiles(t) {
		want := new(specs.Spec)
		if json.Unmarshal(data, want) != nil {
			continue
		}
		checkEncodeSpec(t, name, want)
		n++
	}
	if n < 10 {
		t.Errorf("only %d testdata files encoded", n)
	}
}

func ptr[T any](v T) *T { return &v }

func TestEncodeCases(t *testing.T) {
	weird := "<>&\u2028\u2029\x00\x1f\x7f\"\\\b\f\n\r\t\xff\xc3(\xed\xa0\x80é😀 /'"
	cases := map[string]*specs.Spec{
		"nil":  nil,
		"zero": {},
		"empty slices and maps are omitted": {
			Mounts:      []specs.Mount{},
			Annotations: map[string]string{},
			Process:     &specs.Process{Args: []string{}, Env: nil, Rlimits: []specs.POSIXRlimit{}},
			Linux:       &specs.Linux{Sysctl: map[string]string{}, Namespaces: []specs.LinuxNamespace{}, TimeOffsets: map[string]specs.LinuxTimeOffset{}},
		},
		"pointers to zero values are kept": {
			Process: &specs.Process{
				ConsoleSize: &specs.Box{},
				OOMScoreAdj: ptr(0),
				User:        specs.User{Umask: ptr(uint32(0))},
				Scheduler:   &specs.Scheduler{},
				IOPriority:  &specs.LinuxIOPriority{},
			},
			Root: &specs.Root{},
			Linux: &specs.Linux{
				Resources: &specs.LinuxResources{
					Memory: &specs.LinuxMemory{Limit: ptr(int64(0)), Swappiness: ptr(uint64(0)), DisableOOMKiller: ptr(false)},
					CPU:    &specs.LinuxCPU{},
					Pids:   &specs.LinuxPids{Limit: ptr(int64(0))},
				},
				Seccomp:     &specs.LinuxSeccomp{DefaultErrnoRet: ptr(uint(0)), Syscalls: []specs.LinuxSyscall{{}}},
				Personality: &specs.LinuxPersonality{},
			},
			Hooks: &specs.Hooks{},
		},
		"nil elements": {
			Mounts: []specs.Mount{{}, {Options: []string{""}}},
			Linux: &specs.Linux{
				NetDevices:  map[string]specs.LinuxNetDevice{"": {}},
				TimeOffsets: map[string]specs.LinuxTimeOffset{"a": {}},
				Resources:   &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"z": {}, "a": {HcaHandles: ptr(uint32(1))}}},
			},
		},
		"false and zero are omitted": {
			Process: &specs.Process{Terminal: false, NoNewPrivileges: false},
			Root:    &specs.Root{Readonly: false},
			Windows: &specs.Windows{Servicing: false, CredentialSpec: nil},
		},
		"limits": {
			Process: &specs.Process{
				OOMScoreAdj: ptr(math.MinInt), // int: 32 bits on some platforms
				User:        specs.User{UID: 4294967295, AdditionalGids: []uint32{0, 4294967295}},
				Rlimits:     []specs.POSIXRlimit{{Hard: 18446744073709551615}},
				Scheduler:   &specs.Scheduler{Nice: -2147483648, Priority: 2147483647},
			},
			Linux: &specs.Linux{
				Devices:     []specs.LinuxDevice{{Major: -9223372036854775808, Minor: 9223372036854775807, FileMode: ptr(os.FileMode(0xffffffff))}},
				Resources:   &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(65535))}},
				TimeOffsets: map[string]specs.LinuxTimeOffset{"boottime": {Secs: -1, Nanosecs: 1}},
			},
		},
		"strings": {
			Version:     weird,
			Hostname:    weird,
			Annotations: map[string]string{weird: weird, "": "", "b": "<", "a": ">", "é": "&", "\xff": "x", "\u2028": "y", "Z": "z"},
			Process:     &specs.Process{Args: []string{weird, "", "plain"}, Env: []string{"A=\u2029"}},
			Mounts:      []specs.Mount{{Destination: weird}},
		},
		"credential spec": {
			Windows: &specs.Windows{CredentialSpec: map[string]any{"z": 1, "a": []any{"<", 1.5, nil, true}, "m": map[string]any{}}},
		},
		"credential spec raw message": {
			Windows: &specs.Windows{CredentialSpec: json.RawMessage(` { "a" : [ 1 , "<" ] } `)},
		},
		"credential spec nil pointer": {
			Windows: &specs.Windows{CredentialSpec: (*int)(nil)},
		},
		"credential spec unsupported": {
			Windows: &specs.Windows{CredentialSpec: func() {}},
		},
		"credential spec bad raw message": {
			Windows: &specs.Windows{CredentialSpec: json.RawMessage(`{`)},
		},
		"structs without omitempty are kept": {
			VM: &specs.VM{},
		},
		"all platforms": {
			Solaris: &specs.Solaris{Anet: []specs.SolarisAnet{{}}},
			ZOS:     &specs.ZOS{Namespaces: []specs.ZOSNamespace{{}}},
			FreeBSD: &specs.FreeBSD{Jail: &specs.FreeBSDJail{Allow: &specs.FreeBSDJailAllow{}}, Devices: []specs.FreeBSDDevice{{Mode: ptr(os.FileMode(0))}}},
		},
	}
	for name, s := range cases {
		checkEncodeSpec(t, name, s)
	}
}

// TestAppendQuoted compares string escaping with encoding/json's on every
// single byte, every rune of a few ranges and some invalid sequences.
func TestAppendQuoted(t *testing.T) {
	var inputs []string
	for b := 0; b < 256; b++ {
		inputs = append(inputs, string([]byte{byte(b)}), "a"+string([]byte{byte(b)})+"z")
	}
	for r := rune(0); r < 0x3000; r++ {
		inputs = append(inputs, string(r))
	}
	inputs = append(inputs, "\U0010ffff", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x80", "\xe2\x80\xa8\xe2\x80\xa9x", "")
	for _, s := range inputs {
		got := appendQuoted(nil, s)
		want, _ := json.Marshal(s)
		if !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

// TestUnquote compares string decoding with encoding/json's on escapes,
// surrogates and invalid UTF-8.
func TestUnquote(t *testing.T) {
	pieces := []string{
		`a`, `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u0000`, `\u001F`, `\u0041`, `\u00e9`, `\u00E9`,
		`\u2028`, `\uFFFD`, `\uffff`, `\ud800`, `\udbff`, `\udc00`, `\udfff`, `\ud83d\ude00`, `\uD83D\uDE00`,
		`\ud83d\u0041`, `\ud83d\ud83d`, `\udc00\ud800`, `é`, `😀`, "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80",
		"\xf4\x90\x80\x80", "\xef\xbf\xbd", "\x7f", " ", `\ud800x`, `\ud800\`,
	}
	for _, a := range pieces {
		for _, b := range pieces {
			for _, c := range []string{"", `\ud800`, "\xff", "z"} {
				lit := `"` + a + b + c + `"`
				var want string
				wantErr := json.Unmarshal([]byte(lit), &want)
				d := &Decoder{data: []byte(lit)}
				got, err := d.str()
				if err == nil && d.pos != len(lit) {
					err = errGiveUp // the literal ended early
				}
				if (err != nil) != (wantErr != nil) || err == nil && got != want {
					t.Errorf("%s: got %q, %v; want %q, %v", lit, got, err, want, wantErr)
				}
			}
		}
	}
}
