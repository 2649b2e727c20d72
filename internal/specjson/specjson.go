package specjson

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DecodeSpec decodes data into a new specs.Spec. The result equals what
// encoding/json.Unmarshal gives for the same input, error included (on
// error, the Spec is what encoding/json filled in before it stopped).
func DecodeSpec(data []byte) (*specs.Spec, error) {
	return Unmarshal(data, decSpec)
}

// DecodeProcess decodes data into a new specs.Process. The result equals
// what encoding/json.Unmarshal gives for the same input, error included.
func DecodeProcess(data []byte) (*specs.Process, error) {
	return Unmarshal(data, decProcess)
}

// EncodeSpec returns the same bytes as json.Marshal(s), and the same error.
func EncodeSpec(s *specs.Spec) ([]byte, error) {
	return Marshal(s, func(e *Encoder) { e.Spec(s) })
}

// EncodeProcess returns the same bytes as json.Marshal(p), and the same
// error.
func EncodeProcess(p *specs.Process) ([]byte, error) {
	return Marshal(p, func(e *Encoder) { e.Process(p) })
}

// EncodeState returns the same bytes as json.Marshal(s), and the same
// error: the state that hooks read on their stdin.
func EncodeState(s *specs.State) ([]byte, error) {
	return Marshal(s, func(e *Encoder) { encState(e, s) })
}
