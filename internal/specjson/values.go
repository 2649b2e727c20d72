package specjson

import (
	"encoding/json"
	"slices"
	"unsafe"
)

// This file holds the decode and encode functions for the kinds of values
// the generated code composes: every decode function is
// func(*Decoder, *T) error and every encode function is func(*Encoder, *T).

type signed interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64
}

type unsigned interface {
	~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

type float interface {
	~float32 | ~float64
}

func decString[T ~string](d *Decoder, v *T) error {
	if d.Null() {
		return nil
	}
	s, err := d.str()
	if err != nil {
		return err
	}
	*v = T(s)
	return nil
}

func decBool[T ~bool](d *Decoder, v *T) error {
	if d.Null() {
		return nil
	}
	b, err := d.boolean()
	if err != nil {
		return err
	}
	*v = T(b)
	return nil
}

func decInt[T signed](d *Decoder, v *T) error {
	if d.Null() {
		return nil
	}
	n, err := d.intBits(int(unsafe.Sizeof(*v)) * 8)
	if err != nil {
		return err
	}
	*v = T(n)
	return nil
}

func decUint[T unsigned](d *Decoder, v *T) error {
	if d.Null() {
		return nil
	}
	n, err := d.uintBits(int(unsafe.Sizeof(*v)) * 8)
	if err != nil {
		return err
	}
	*v = T(n)
	return nil
}

func decFloat[T float](d *Decoder, v *T) error {
	if d.Null() {
		return nil
	}
	f, err := d.float(int(unsafe.Sizeof(*v)) * 8)
	if err != nil {
		return err
	}
	*v = T(f)
	return nil
}

// decAny decodes into an empty interface: the value is checked and handed
// to encoding/json, which has no type tables to build for it.
func decAny(d *Decoder, v *any) error {
	if d.Null() {
		*v = nil
		return nil
	}
	start := d.pos
	if err := d.Skip(); err != nil {
		return err
	}
	var x any
	if err := json.Unmarshal(d.data[start:d.pos], &x); err != nil {
		return d.giveUp("interface value does not decode")
	}
	*v = x
	return nil
}

func decPtr[T any](d *Decoder, v **T, elem func(*Decoder, *T) error) error {
	if d.Null() {
		*v = nil
		return nil
	}
	if *v == nil {
		*v = new(T)
	}
	return elem(d, *v)
}

func decSlice[S ~[]E, E any](d *Decoder, v *S, elem func(*Decoder, *E) error) error {
	if d.Null() {
		*v = nil
		return nil
	}
	if err := d.arrayStart(); err != nil {
		return err
	}
	var s S
	for {
		more, err := d.next(len(s), ']')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		var zero E
		s = append(s, zero)
		if err := elem(d, &s[len(s)-1]); err != nil {
			return err
		}
	}
	if s == nil {
		s = S{}
	}
	*v = s
	return nil
}

func decMap[M ~map[K]V, K ~string, V any](d *Decoder, v *M, elem func(*Decoder, *V) error) error {
	if d.Null() {
		*v = nil
		return nil
	}
	if err := d.objectStart(); err != nil {
		return err
	}
	m := *v
	if m == nil {
		m = make(M)
		*v = m
	}
	for n := 0; ; n++ {
		more, err := d.next(n, '}')
		if err != nil || !more {
			return err
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		if err := d.colon(); err != nil {
			return err
		}
		var val V
		if err := elem(d, &val); err != nil {
			return err
		}
		m[K(key)] = val
	}
}

func encString[T ~string](e *Encoder, v *T) { e.buf = appendQuoted(e.buf, string(*v)) }

func encBool[T ~bool](e *Encoder, v *T) { e.Bool(bool(*v)) }

func encInt[T signed](e *Encoder, v *T) { e.Int(int64(*v)) }

func encUint[T unsigned](e *Encoder, v *T) { e.Uint(uint64(*v)) }

func encFloat[T float](e *Encoder, v *T) { e.float(float64(*v), int(unsafe.Sizeof(*v))*8) }

// encAny encodes an interface value with json.Marshal.
func encAny(e *Encoder, v *any) {
	if *v == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	e.Value(*v)
}

func encPtr[T any](e *Encoder, v **T, elem func(*Encoder, *T)) {
	if *v == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	elem(e, *v)
}

func encSlice[S ~[]E, E any](e *Encoder, v *S, elem func(*Encoder, *E)) {
	s := *v
	if s == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	e.buf = append(e.buf, '[')
	for i := range s {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		elem(e, &s[i])
	}
	e.buf = append(e.buf, ']')
}

func encMap[M ~map[K]V, K ~string, V any](e *Encoder, v *M, elem func(*Encoder, *V)) {
	m := *v
	if m == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendQuoted(e.buf, k)
		e.buf = append(e.buf, ':')
		val := m[K(k)]
		elem(e, &val)
	}
	e.buf = append(e.buf, '}')
}
