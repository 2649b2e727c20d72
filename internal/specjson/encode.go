package specjson

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// An Encoder appends JSON to a buffer the way json.Marshal writes it. It is
// used by the generated encoders and by hand-written encode functions run
// by Marshal.
//
// Objects are written with BeginObject, then Key and a value for each
// member, then EndObject; Key writes the comma between members itself.
// Leaving out empty fields (omitempty) is the caller's business.
type Encoder struct {
	buf    []byte
	failed bool // a value could not be encoded; see Marshal
}

// Marshal encodes v with encode, which writes v to the Encoder (and must
// not keep it: Encoders are reused). If
// anything could not be encoded (a time.Time out of range, a value given
// to Value that json.Marshal rejects), it returns json.Marshal(v) instead,
// so that the error is encoding/json's own.
func Marshal(v any, encode func(e *Encoder)) ([]byte, error) {
	e, _ := encoders.Get().(*Encoder)
	if e == nil {
		e = &Encoder{buf: make([]byte, 0, 4096)}
	}
	encode(e)
	var out []byte
	if !e.failed {
		out = bytes.Clone(e.buf)
	}
	failed := e.failed
	if cap(e.buf) <= 1<<20 {
		e.buf, e.failed = e.buf[:0], false
		encoders.Put(e)
	}
	if failed {
		if testHookFallback != nil {
			testHookFallback("the encoder met a value it does not write as encoding/json does")
		}
		return json.Marshal(v)
	}
	return out, nil
}

// encoders holds Encoders whose buffers can be reused.
var encoders sync.Pool

// BeginObject writes the opening brace of an object.
func (e *Encoder) BeginObject() { e.buf = append(e.buf, '{') }

// EndObject writes the closing brace of an object.
func (e *Encoder) EndObject() { e.buf = append(e.buf, '}') }

// Key writes an object key and its colon, preceded by a comma unless it
// is the object's first key.
func (e *Encoder) Key(name string) {
	if n := len(e.buf); n > 0 && e.buf[n-1] != '{' {
		e.buf = append(e.buf, ',')
	}
	e.buf = appendQuoted(e.buf, name)
	e.buf = append(e.buf, ':')
}

// key writes a key already quoted and escaped, with its colon.
func (e *Encoder) key(quoted string) {
	if n := len(e.buf); n > 0 && e.buf[n-1] != '{' {
		e.buf = append(e.buf, ',')
	}
	e.buf = append(e.buf, quoted...)
}

// Null writes null.
func (e *Encoder) Null() { e.buf = append(e.buf, "null"...) }

// String writes s as a JSON string, escaped as json.Marshal does.
func (e *Encoder) String(s string) { e.buf = appendQuoted(e.buf, s) }

// Bool writes true or false.
func (e *Encoder) Bool(b bool) {
	if b {
		e.buf = append(e.buf, "true"...)
	} else {
		e.buf = append(e.buf, "false"...)
	}
}

// Int writes a signed integer.
func (e *Encoder) Int(n int64) { e.buf = strconv.AppendInt(e.buf, n, 10) }

// Uint writes an unsigned integer.
func (e *Encoder) Uint(n uint64) { e.buf = strconv.AppendUint(e.buf, n, 10) }

// StringSlice writes a slice of strings (null if nil).
func (e *Encoder) StringSlice(v []string) { encSlice(e, &v, encString[string]) }

// StringMap writes a map of strings with sorted keys (null if nil).
func (e *Encoder) StringMap(v map[string]string) { encMap(e, &v, encString[string]) }

// Time writes t with its MarshalJSON method.
func (e *Encoder) Time(t time.Time) {
	b, err := t.MarshalJSON()
	if err != nil {
		e.failed = true
		e.Null()
		return
	}
	// time.Time writes a quoted RFC 3339 string, which needs no escaping.
	e.buf = append(e.buf, b...)
}

// Spec writes a configuration (null if nil).
func (e *Encoder) Spec(s *specs.Spec) { encPtr(e, &s, encSpec) }

// Process writes a process (null if nil).
func (e *Encoder) Process(p *specs.Process) { encPtr(e, &p, encProcess) }

// Value writes v with json.Marshal.
func (e *Encoder) Value(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		e.failed = true
		e.Null()
		return
	}
	e.buf = append(e.buf, b...)
}

// float writes a float the way encoding/json does.
func (e *Encoder) float(f float64, bits int) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		e.failed = true
		e.Null()
		return
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	start := len(e.buf)
	e.buf = strconv.AppendFloat(e.buf, f, format, -1, bits)
	if format == 'e' {
		// Write e-07 as e-7.
		b := e.buf[start:]
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			e.buf = e.buf[:len(e.buf)-1]
		}
	}
}

const hexDigits = "0123456789abcdef"

// plain holds true for the bytes json.Marshal copies into a string as they
// are: printable ASCII other than the quote, the backslash, <, > and &.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\\<>&` {
		t[c] = false
	}
	return t
}()

// appendQuoted appends s as a JSON string the way json.Marshal writes it:
// quote, backslash and control characters escaped (\b \f \n \r \t or
// \u00XX), <, > and & as \u003c \u003e \u0026, U+2028 and U+2029 as
// \u2028 and \u2029, and each byte of invalid UTF-8 as \ufffd.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
