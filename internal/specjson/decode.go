package specjson

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxDepth is the deepest nesting of objects and arrays the decoder
// follows before it gives up (encoding/json's own limit is 10000).
const maxDepth = 500

// errGiveUp is what the decoder returns when the input is to be decoded by
// encoding/json instead.
var errGiveUp = errors.New("specjson: input left to encoding/json")

// testHookFallback, when set (by tests), is called each time Unmarshal or
// Marshal falls back to encoding/json, with the reason.
var testHookFallback func(why string)

// SetFallbackHook makes every later Unmarshal or Marshal that falls back
// to encoding/json call f with the reason, until restore is called. It is
// for tests, also of the packages that write codecs on this one, which
// check that their input takes the fast path; it is not safe to use while
// other goroutines encode or decode.
func SetFallbackHook(f func(why string)) (restore func()) {
	old := testHookFallback
	testHookFallback = f
	return func() { testHookFallback = old }
}

// A Decoder reads one JSON value from a byte slice. It is used by the
// generated decoders and by hand-written decode functions run by
// Unmarshal.
//
// Every method expects the decoder to be positioned at the first byte of
// a value (Unmarshal and Object skip the white space before values) and
// leaves it just after that value. Methods return a non-nil error when the
// input is not what they can decode exactly as encoding/json would; the
// error carries no detail, since Unmarshal then hands the whole input to
// encoding/json. A hand-written decode function should return such errors
// as they are.
type Decoder struct {
	data  []byte
	pos   int
	depth int
	why   string // why the decoder gave up, for tests
}

// Unmarshal decodes data into a new T with decode, which must decode
// exactly one JSON value (white space around it is skipped). If decode
// returns an error, or data holds more than one value, the whole input is
// decoded again into a new T by encoding/json.Unmarshal, and its result is
// returned, error included.
func Unmarshal[T any](data []byte, decode func(d *Decoder, v *T) error) (*T, error) {
	d := &Decoder{data: data}
	v := new(T)
	d.ws()
	err := decode(d, v)
	if err == nil {
		d.ws()
		if d.pos == len(d.data) {
			return v, nil
		}
		err = d.giveUp("data after the top-level value")
	}
	if testHookFallback != nil {
		why := d.why
		if why == "" {
			why = err.Error()
		}
		testHookFallback(why)
	}
	v = new(T)
	err = json.Unmarshal(data, v)
	return v, err
}

func (d *Decoder) giveUp(why string) error {
	if d.why == "" {
		d.why = why
	}
	return errGiveUp
}

// ws skips JSON white space.
func (d *Decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// Null consumes a JSON null and reports whether there was one.
func (d *Decoder) Null() bool { return d.literal("null") }

// Object decodes a JSON object into a struct whose JSON field names are
// names, in declaration order. For each member whose key is one of names
// (matched exactly, else ASCII case-insensitively with the first matching
// name, as encoding/json does), it calls f with the index of that name,
// the decoder positioned at the member's value; f must decode the value
// into the field. Members with other keys are checked and skipped. A null
// leaves the struct alone. Object gives up when a field is set twice and
// when names has more than 64 entries.
func (d *Decoder) Object(names []string, f func(field int) error) error {
	if d.Null() {
		return nil
	}
	if len(names) > 64 {
		return d.giveUp("struct with more than 64 fields")
	}
	if err := d.objectStart(); err != nil {
		return err
	}
	var st objectState
	for {
		i, err := d.objectField(&st, names)
		if err != nil || i < 0 {
			return err
		}
		if err := f(i); err != nil {
			return err
		}
	}
}

// objectState is what objectField keeps between the members of an object.
type objectState struct {
	n    int    // members read
	seen uint64 // fields set
}

func (d *Decoder) objectStart() error { return d.open('{', "not an object") }

// open consumes the opening bracket c of an object or array, one level
// deeper, or gives up with notWhat when the value is something else.
func (d *Decoder) open(c byte, notWhat string) error {
	if d.pos >= len(d.data) || d.data[d.pos] != c {
		return d.giveUp(notWhat)
	}
	d.pos++
	d.depth++
	if d.depth > maxDepth {
		return d.giveUp("nesting too deep")
	}
	return nil
}

// next reads what follows the n-th member of an object (end '}') or
// element of an array (end ']'): the end of the container, or for n > 0 a
// comma. It reports whether a member or element follows, and leaves the
// decoder at it.
func (d *Decoder) next(n int, end byte) (bool, error) {
	d.ws()
	if d.pos >= len(d.data) {
		return false, d.giveUp("unexpected end of input")
	}
	c := d.data[d.pos]
	if c == end {
		d.pos++
		d.depth--
		return false, nil
	}
	if n > 0 {
		if c != ',' {
			return false, d.giveUp("missing comma")
		}
		d.pos++
		d.ws()
	}
	return true, nil
}

// colon reads the colon after an object key and the white space around it.
func (d *Decoder) colon() error {
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != ':' {
		return d.giveUp("missing colon")
	}
	d.pos++
	d.ws()
	return nil
}

// objectField reads the next member of an object decoded into a struct
// whose JSON field names are names. It returns the index of the field the
// member's key selects, the decoder positioned at its value, or -1 at the
// end of the object. Members with unknown keys are skipped.
func (d *Decoder) objectField(st *objectState, names []string) (int, error) {
	for {
		more, err := d.next(st.n, '}')
		if err != nil || !more {
			return -1, err
		}
		st.n++
		key, err := d.plainKey()
		if err != nil {
			return -1, err
		}
		if err := d.colon(); err != nil {
			return -1, err
		}
		i := matchName(key, names)
		if i < 0 {
			if err := d.Skip(); err != nil {
				return -1, err
			}
			continue
		}
		bit := uint64(1) << uint(i)
		if st.seen&bit != 0 {
			return -1, d.giveUp("struct field set twice")
		}
		st.seen |= bit
		return i, nil
	}
}

// plainKey reads an object key made of printable ASCII characters other
// than the backslash, and returns it without its quotes.
func (d *Decoder) plainKey() ([]byte, error) {
	data := d.data
	if d.pos >= len(data) || data[d.pos] != '"' {
		return nil, d.giveUp("expected a key")
	}
	start := d.pos + 1
	for i := start; i < len(data); i++ {
		c := data[i]
		if c == '"' {
			d.pos = i + 1
			return data[start:i], nil
		}
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return nil, d.giveUp("key is not plain ASCII")
		}
	}
	return nil, d.giveUp("unterminated key")
}

// matchName returns the index of the name key selects: the name equal to
// key, else the first that equals it ignoring ASCII case; -1 if none.
func matchName(key []byte, names []string) int {
	for i, n := range names {
		if string(key) == n {
			return i
		}
	}
	for i, n := range names {
		if foldEqual(key, n) {
			return i
		}
	}
	return -1
}

func foldEqual(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := 0; i < len(key); i++ {
		a, b := key[i], name[i]
		if a == b {
			continue
		}
		if 'a' <= a && a <= 'z' {
			a -= 'a' - 'A'
		}
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

func (d *Decoder) arrayStart() error { return d.open('[', "not an array") }

// str reads a JSON string (not null) and returns its value.
func (d *Decoder) str() (string, error) {
	data := d.data
	if d.pos >= len(data) || data[d.pos] != '"' {
		return "", d.giveUp("not a string")
	}
	start := d.pos + 1
	for i := start; i < len(data); i++ {
		c := data[i]
		if c == '"' {
			d.pos = i + 1
			return string(data[start:i]), nil
		}
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return d.slowStr(start)
		}
	}
	return "", d.giveUp("unterminated string")
}

// slowStr reads a string that has escapes, non-ASCII bytes or errors,
// starting after its opening quote.
func (d *Decoder) slowStr(start int) (string, error) {
	end, escaped, err := d.scanString(start)
	if err != nil {
		return "", err
	}
	d.pos = end + 1
	raw := d.data[start:end]
	if !escaped && utf8.Valid(raw) {
		return string(raw), nil
	}
	return unquote(raw), nil
}

// unquote returns the value of the contents of a string literal checked
// by scanString, as encoding/json unquotes it: escapes replaced, and
// invalid UTF-8 and unpaired surrogates turned into U+FFFD.
func unquote(raw []byte) string {
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				b = append(b, c)
				i++
				continue
			}
			r, size := utf8.DecodeRune(raw[i:])
			b = utf8.AppendRune(b, r) // RuneError for invalid bytes
			i += size
			continue
		}
		switch e := raw[i+1]; e {
		case 'u':
			r := hex4(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2 : i+6])
				}
				if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
					r = dec
					i += 6
				} else {
					r = unicode.ReplacementChar
				}
			}
			b = utf8.AppendRune(b, r)
			continue
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		default: // " \ /
			c = e
		}
		b = append(b, c)
		i += 2
	}
	return string(b)
}

// hex4 returns the value of four hex digits, or -1.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// scanString checks the string whose contents start at start and returns
// the index of its closing quote and whether it has escapes.
func (d *Decoder) scanString(start int) (end int, escaped bool, err error) {
	data := d.data
	for i := start; i < len(data); {
		c := data[i]
		switch {
		case c == '"':
			return i, escaped, nil
		case c < 0x20:
			return 0, false, d.giveUp("control character in string")
		case c == '\\':
			escaped = true
			if i+1 >= len(data) {
				return 0, false, d.giveUp("unterminated string")
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) {
					return 0, false, d.giveUp("unterminated string")
				}
				if hex4(data[i+2:i+6]) < 0 {
					return 0, false, d.giveUp("invalid \\u escape")
				}
				i += 6
			default:
				return 0, false, d.giveUp("invalid escape")
			}
		default:
			i++
		}
	}
	return 0, false, d.giveUp("unterminated string")
}

// literal consumes lit if the input continues with it.
func (d *Decoder) literal(lit string) bool {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return true
	}
	return false
}

// boolean reads true or false.
func (d *Decoder) boolean() (bool, error) {
	if d.literal("true") {
		return true, nil
	}
	if d.literal("false") {
		return false, nil
	}
	return false, d.giveUp("not a boolean")
}

// digits reads an optionally negative integer without fraction or
// exponent and returns its absolute value (it gives up beyond 2^64-1).
func (d *Decoder) digits() (neg bool, u uint64, err error) {
	data := d.data
	i := d.pos
	if i < len(data) && data[i] == '-' {
		neg = true
		i++
	}
	if i >= len(data) {
		return false, 0, d.giveUp("not a number")
	}
	switch c := data[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		for ; i < len(data); i++ {
			c := data[i]
			if c < '0' || c > '9' {
				break
			}
			dig := uint64(c - '0')
			if u > (math.MaxUint64-dig)/10 {
				return false, 0, d.giveUp("number out of range")
			}
			u = u*10 + dig
		}
	default:
		return false, 0, d.giveUp("not a number")
	}
	if i < len(data) {
		switch data[i] {
		case '.', 'e', 'E':
			return false, 0, d.giveUp("not an integer")
		}
	}
	d.pos = i
	return neg, u, nil
}

// intBits reads an integer that fits a signed integer of the given size.
func (d *Decoder) intBits(bits int) (int64, error) {
	neg, u, err := d.digits()
	if err != nil {
		return 0, err
	}
	limit := uint64(1) << uint(bits-1)
	if neg && u > limit || !neg && u >= limit {
		return 0, d.giveUp("number out of range")
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// uintBits reads an integer that fits an unsigned integer of the given
// size.
func (d *Decoder) uintBits(bits int) (uint64, error) {
	neg, u, err := d.digits()
	if err != nil {
		return 0, err
	}
	if neg {
		// strconv.ParseUint rejects a sign, even on "-0".
		return 0, d.giveUp("negative number for unsigned field")
	}
	if bits < 64 && u >= uint64(1)<<uint(bits) {
		return 0, d.giveUp("number out of range")
	}
	return u, nil
}

// number checks a number against the JSON grammar and returns its text.
func (d *Decoder) number() ([]byte, error) {
	data := d.data
	i := d.pos
	if i < len(data) && data[i] == '-' {
		i++
	}
	digitsFrom := func(i int) int {
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		return i
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = digitsFrom(i + 1)
	default:
		return nil, d.giveUp("not a number")
	}
	if i < len(data) && data[i] == '.' {
		j := digitsFrom(i + 1)
		if j == i+1 {
			return nil, d.giveUp("not a number")
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digitsFrom(i)
		if j == i {
			return nil, d.giveUp("not a number")
		}
		i = j
	}
	lit := data[d.pos:i]
	d.pos = i
	return lit, nil
}

// float reads a number that strconv.ParseFloat takes for the given size.
func (d *Decoder) float(bits int) (float64, error) {
	lit, err := d.number()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(lit), bits)
	if err != nil {
		return 0, d.giveUp("number out of range")
	}
	return f, nil
}

// Skip checks and skips one JSON value.
func (d *Decoder) Skip() error {
	if d.pos >= len(d.data) {
		return d.giveUp("unexpected end of input")
	}
	switch c := d.data[d.pos]; c {
	case '"':
		end, _, err := d.scanString(d.pos + 1)
		if err != nil {
			return err
		}
		d.pos = end + 1
		return nil
	case '{':
		if err := d.objectStart(); err != nil {
			return err
		}
		for n := 0; ; n++ {
			more, err := d.next(n, '}')
			if err != nil || !more {
				return err
			}
			if d.pos >= len(d.data) || d.data[d.pos] != '"' {
				return d.giveUp("expected a key")
			}
			end, _, err := d.scanString(d.pos + 1)
			if err != nil {
				return err
			}
			d.pos = end + 1
			if err := d.colon(); err != nil {
				return err
			}
			if err := d.Skip(); err != nil {
				return err
			}
		}
	case '[':
		if err := d.arrayStart(); err != nil {
			return err
		}
		for n := 0; ; n++ {
			more, err := d.next(n, ']')
			if err != nil || !more {
				return err
			}
			if err := d.Skip(); err != nil {
				return err
			}
		}
	case 't', 'f':
		_, err := d.boolean()
		return err
	case 'n':
		if !d.Null() {
			return d.giveUp("invalid literal")
		}
		return nil
	default:
		_, err := d.number()
		return err
	}
}

// String decodes a JSON string into *v; null leaves *v alone.
func (d *Decoder) String(v *string) error { return decString(d, v) }

// Bool decodes a JSON boolean into *v; null leaves *v alone.
func (d *Decoder) Bool(v *bool) error { return decBool(d, v) }

// Int decodes a JSON integer that fits an int into *v; null leaves *v
// alone.
func (d *Decoder) Int(v *int) error { return decInt(d, v) }

// Int64 decodes a JSON integer that fits an int64 into *v; null leaves *v
// alone.
func (d *Decoder) Int64(v *int64) error { return decInt(d, v) }

// Uint64 decodes a JSON integer that fits a uint64 into *v; null leaves
// *v alone.
func (d *Decoder) Uint64(v *uint64) error { return decUint(d, v) }

// StringSlice decodes a JSON array of strings into *v; null sets *v to
// nil.
func (d *Decoder) StringSlice(v *[]string) error { return decSlice(d, v, decString[string]) }

// StringMap decodes a JSON object with string values into *v, a new map
// if *v is nil; null sets *v to nil.
func (d *Decoder) StringMap(v *map[string]string) error {
	return decMap(d, v, decString[string])
}

// Time decodes any JSON value with time.Time's UnmarshalJSON method, as
// encoding/json does (so null leaves *v alone).
func (d *Decoder) Time(v *time.Time) error {
	start := d.pos
	if err := d.Skip(); err != nil {
		return err
	}
	if err := v.UnmarshalJSON(d.data[start:d.pos]); err != nil {
		return d.giveUp("time.Time.UnmarshalJSON failed")
	}
	return nil
}

// Spec decodes a configuration into *v, allocating it if nil; null sets
// *v to nil.
func (d *Decoder) Spec(v **specs.Spec) error { return decPtr(d, v, decSpec) }

// Process decodes a process into *v, allocating it if nil; null sets *v to
// nil.
func (d *Decoder) Process(v **specs.Process) error { return decPtr(d, v, decProcess) }
