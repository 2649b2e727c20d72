package specjson_test

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crossrun/crossrun/internal/specjson"
)

// message is a struct that carries a configuration.
type message struct {
	ID    string      `json:"id"`
	Spec  *specs.Spec `json:"spec"`
	Debug bool        `json:"debug,omitempty"`
}

var messageNames = []string{"id", "spec", "debug"}

func decodeMessage(data []byte) (*message, error) {
	return specjson.Unmarshal(data, func(d *specjson.Decoder, m *message) error {
		return d.Object(messageNames, func(i int) error {
			switch i {
			case 0:
				return d.String(&m.ID)
			case 1:
				return d.Spec(&m.Spec)
			default:
				return d.Bool(&m.Debug)
			}
		})
	})
}

func encodeMessage(m *message) ([]byte, error) {
	return specjson.Marshal(m, func(e *specjson.Encoder) {
		e.BeginObject()
		e.Key("id")
		e.String(m.ID)
		e.Key("spec")
		e.Spec(m.Spec)
		if m.Debug {
			e.Key("debug")
			e.Bool(m.Debug)
		}
		e.EndObject()
	})
}

func Example() {
	m, err := decodeMessage([]byte(`{"id":"c1","spec":{"ociVersion":"1.3.0","hostname":"h"}}`))
	fmt.Println(m.ID, m.Spec.Hostname, err)

	data, err := encodeMessage(m)
	fmt.Println(string(data), err)

	// Errors are encoding/json's.
	_, err = decodeMessage([]byte(`{"id":"c1","spec":{"hostname":1}}`))
	fmt.Println(err)
	// Output:
	// c1 h <nil>
	// {"id":"c1","spec":{"ociVersion":"1.3.0","hostname":"h"}} <nil>
	// json: cannot unmarshal number into Go struct field Spec.spec.hostname of type string
}
