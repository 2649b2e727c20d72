// Package specjson decodes and encodes runtime-spec configurations
// (specs.Spec, specs.Process, specs.State) without reflection.
//
// encoding/json builds its per-type tables (field lists, name indexes,
// encoder functions) by reflection the first time a process decodes or
// encodes a type. For specs.Spec that costs far more than the decode
// itself, and every crossrun process pays it again: create decodes
// config.json, the container's init decodes the same configuration from
// its bootstrap message, and start, kill, delete and state decode
// state.json. This package replaces those decodes and encodes with
// functions generated ahead of time for a fixed list of types.
//
// # Results are those of encoding/json
//
// DecodeSpec and DecodeProcess return what encoding/json.Unmarshal gives
// for the same input, error included. The generated decoders handle
// well-formed input of the expected shape in a single pass. Whenever they
// meet something they cannot be sure to decode exactly as encoding/json
// would, they give up, and the whole input is decoded again with
// encoding/json, whose value and error are returned unchanged. They give up
// on:
//
//   - any syntax error, and any data after the top-level value;
//   - a JSON value of the wrong type for its Go field, and a number that is
//     not an integer or does not fit the field's type;
//   - a struct field set twice in one object (also by keys that differ in
//     case only), since encoding/json then merges the values;
//   - an object key that is not plain printable ASCII, or that contains an
//     escape;
//   - nesting deeper than 500 levels;
//   - an interface value (Windows.CredentialSpec) that encoding/json does
//     not decode without error (interface values are checked, then decoded
//     by json.Unmarshal on their own, which needs no type tables).
//
// Strings with escapes, invalid UTF-8 or unpaired surrogates are decoded
// as encoding/json decodes them (invalid sequences become U+FFFD).
//
// Errors are therefore always encoding/json's own (*json.SyntaxError,
// *json.UnmarshalTypeError, ...). On error, the returned value is the one
// encoding/json filled in before it gave up, as with json.Unmarshal.
//
// The decoders follow encoding/json's rules: keys match the field's JSON
// name exactly, else ASCII case-insensitively (the first such field in
// declaration order); unknown keys are skipped; null sets pointers, slices,
// maps and interfaces to nil and leaves other values alone; [] gives an
// empty, non-nil slice and {} an empty, non-nil map; the fields of
// embedded structs are promoted.
//
// EncodeSpec and EncodeProcess return the same bytes as json.Marshal:
// fields in declaration order, omitempty, map keys sorted, HTML-safe string
// escaping. Interface values are encoded by json.Marshal. If anything fails,
// the whole value is encoded again with json.Marshal so that the error is
// its own.
//
// # Hand-written codecs
//
// Decoder, Encoder, Unmarshal and Marshal let other packages write codecs
// for small structs that contain a configuration (a bootstrap message, a
// state file) under the same rule: any error returned by the hand-written
// decode function sends the whole input to encoding/json.
//
// # Regenerating
//
// zz_generated.go is written by the program in ./gen, which walks the root
// types by reflection and refuses what it does not support (",string" tag
// options, types with their own JSON or text methods, channels, functions,
// arrays, []byte, non-string map keys, embedded pointers, ...). After
// changing the runtime-spec version or the list of roots, run
//
//	go generate ./internal/specjson/
//
// TestGeneratedUpToDate fails when the committed file differs from what the
// generator writes.
package specjson

//go:generate go run ./gen
