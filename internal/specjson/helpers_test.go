package specjson

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// testState is shaped like a runtime's state file: it embeds a
// configuration and a time, and has a codec written with the exported
// helpers.
type testState struct {
	ID          string            `json:"id"`
	InitPid     int               `json:"init_process_pid"`
	InitStart   uint64            `json:"init_process_start"`
	Created     time.Time         `json:"created"`
	Offset      int64             `json:"offset,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Tasks       []string          `json:"tasks,omitempty"`
	Ready       bool              `json:"ready"`
	Config      *specs.Spec       `json:"config"`
	Process     *specs.Process    `json:"process,omitempty"`
}

var testStateNames = []string{"id", "init_process_pid", "init_process_start", "created", "offset", "annotations", "tasks", "ready", "config", "process"}

func decodeTestState(data []byte) (*testState, error) {
	return Unmarshal(data, func(d *Decoder, st *testState) error {
		return d.Object(testStateNames, func(i int) error {
			switch i {
			case 0:
				return d.String(&st.ID)
			case 1:
				return d.Int(&st.InitPid)
			case 2:
				return d.Uint64(&st.InitStart)
			case 3:
				return d.Time(&st.Created)
			case 4:
				return d.Int64(&st.Offset)
			case 5:
				return d.StringMap(&st.Annotations)
			case 6:
				return d.StringSlice(&st.Tasks)
			case 7:
				return d.Bool(&st.Ready)
			case 8:
				return d.Spec(&st.Config)
			case 9:
				return d.Process(&st.Process)
			}
			return d.Skip()
		})
	})
}

func encodeTestState(st *testState) ([]byte, error) {
	return Marshal(st, func(e *Encoder) {
		e.BeginObject()
		e.Key("id")
		e.String(st.ID)
		e.Key("init_process_pid")
		e.Int(int64(st.InitPid))
		e.Key("init_process_start")
		e.Uint(st.InitStart)
		e.Key("created")
		e.Time(st.Created)
		if st.Offset != 0 {
			e.Key("offset")
			e.Int(st.Offset)
		}
		if len(st.Annotations) != 0 {
			e.Key("annotations")
			e.StringMap(st.Annotations)
		}
		if len(st.Tasks) != 0 {
			e.Key("tasks")
			e.StringSlice(st.Tasks)
		}
		e.Key("ready")
		e.Bool(st.Ready)
		e.Key("config")
		e.Spec(st.Config)
		if st.Process != nil {
			e.Key("process")
			e.Process(st.Process)
		}
		e.EndObject()
	})
}

func TestHandWrittenCodec(t *testing.T) {
	cfg := string(mustRead(t, "testdata/full.json"))
	tests := []struct {
		in       string
		fallback bool
	}{
		{`{"id":"c1","init_process_pid":12,"init_process_start":99,"created":"2024-05-01T10:11:12.123456789+02:00","ready":true,"config":` + cfg + `}`, false},
		{`{"id":"c1","created":"0001-01-01T00:00:00Z","config":null,"annotations":{"a":"b"},"tasks":[],"offset":-5,"process":{"cwd":"/"}}`, false},
		{`{"created":null,"unknown":[1,{"x":null}],"Config":{"ociVersion":"1"}}`, false},
		{`null`, false},
		{`{"created":"yesterday"}`, true},
		{`{"created":5}`, true},
		{`{"created":"2024-05-01T10:11:12Z","config":{"process":{"user":{"uid":-1}}}}`, true},
		{`{"id":"a","ID":"b"}`, true},
		{`{"init_process_pid":1.5}`, true},
		{`{"init_process_start":-1}`, true},
		{`{"tasks":"a"}`, true},
		{`{"annotations":[]}`, true},
	}
	for _, tc := range tests {
		var got *testState
		var err error
		why := traceFallback(func() { got, err = decodeTestState([]byte(tc.in)) })
		want := new(testState)
		wantErr := json.Unmarshal([]byte(tc.in), want)
		if !reflect.DeepEqual(err, wantErr) {
			t.Errorf("%.80s: error %v, want %v", tc.in, err, wantErr)
		}
		// time.Time values compare by Equal, not by their representation.
		if got != nil && want != nil && got.Created.Equal(want.Created) {
			got.Created = want.Created
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%.80s: got %+v, want %+v", tc.in, got, want)
		}
		if tc.fallback != (why != "") {
			t.Errorf("%.80s: fallback %q, want fallback %v", tc.in, why, tc.fallback)
		}
		if err != nil {
			continue
		}
		enc, err := encodeTestState(got)
		wantEnc, wantErr := json.Marshal(got)
		if !reflect.DeepEqual(err, wantErr) || !bytes.Equal(enc, wantEnc) {
			t.Errorf("%.80s: encoding\n got %s, %v\nwant %s, %v", tc.in, enc, err, wantEnc, wantErr)
		}
	}

	// A time json.Marshal refuses: Marshal returns encoding/json's error.
	bad := &testState{Created: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	enc, err := encodeTestState(bad)
	wantEnc, wantErr := json.Marshal(bad)
	if wantErr == nil || !reflect.DeepEqual(err, wantErr) || enc != nil || wantEnc != nil {
		t.Errorf("year 10000: got %s, %v; want %s, %v", enc, err, wantEnc, wantErr)
	}
}

// TestObjectTooManyFields checks that Object refuses names it cannot track.
func TestObjectTooManyFields(t *testing.T) {
	names := make([]string, 65)
	for i := range names {
		names[i] = string(rune('A'+i%26)) + string(rune('a'+i/26))
	}
	called := false
	d := &Decoder{data: []byte(`{"Aa":1}`)}
	err := d.Object(names, func(int) error { called = true; return d.Skip() })
	if err == nil || called {
		t.Errorf("Object with 65 names: err %v, called %v", err, called)
	}
}

// TestFloats checks the float functions, which the generated code uses
// only if a float field appears in the roots.
func TestFloats(t *testing.T) {
	type floats struct {
		A float64
		B float32
	}
	names := []string{"A", "B"}
	decode := func(data []byte) (*floats, error) {
		return Unmarshal(data, func(d *Decoder, v *floats) error {
			return d.Object(names, func(i int) error {
				if i == 0 {
					return decFloat(d, &v.A)
				}
				return decFloat(d, &v.B)
			})
		})
	}
	encode := func(v *floats) ([]byte, error) {
		return Marshal(v, func(e *Encoder) {
			e.BeginObject()
			e.Key("A")
			encFloat(e, &v.A)
			e.Key("B")
			encFloat(e, &v.B)
			e.EndObject()
		})
	}
	inputs := []string{
		`{"A":0,"B":0}`, `{"A":-0.0,"B":-0}`, `{"A":1.5e300,"B":3.4e38}`, `{"A":1e-7,"B":1e-7}`,
		`{"A":123456789012345678901234567890,"B":1e21}`, `{"A":5e-324,"B":1.4e-45}`, `{"A":0.000001,"B":0.000001}`,
		`{"A":1e400}`, `{"B":3.5e38}`, `{"A":"1"}`, `{"A":1.}`, `{"A":null,"B":2.5}`, `{"A":1E+2,"B":-1e-2}`,
	}
	for _, in := range inputs {
		got, err := decode([]byte(in))
		want := new(floats)
		wantErr := json.Unmarshal([]byte(in), want)
		if !reflect.DeepEqual(err, wantErr) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", in, got, err, want, wantErr)
		}
	}
	values := []floats{
		{0, 0}, {math.Copysign(0, -1), 1}, {1e21, 1e21}, {1e20, 1e20}, {1e-6, 1e-6}, {1e-7, 1e-7},
		{math.MaxFloat64, math.MaxFloat32}, {math.SmallestNonzeroFloat64, math.SmallestNonzeroFloat32},
		{0.1, 0.1}, {1.0 / 3, 1.0 / 3}, {-123.456e-10, -123.456e-10}, {1e-9, 2e-9},
		{math.NaN(), 0}, {0, float32(math.Inf(1))},
	}
	for _, v := range values {
		got, err := encode(&v)
		want, wantErr := json.Marshal(&v)
		if !reflect.DeepEqual(err, wantErr) || !bytes.Equal(got, want) {
			t.Errorf("%v: got %s, %v; want %s, %v", v, got, err, want, wantErr)
		}
	}
}
