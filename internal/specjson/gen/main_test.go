package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type WithStringOpt struct {
	N int `json:"n,string"`
}

type WithOmitZero struct {
	N int `json:"n,omitzero"`
}

type WithUnmarshaler struct {
	T time.Time `json:"t"`
}

type WithChan struct {
	C chan int
}

type WithFunc struct {
	F func()
}

type WithArray struct {
	A [4]int
}

type WithBytes struct {
	B []byte
}

type WithIntKeys struct {
	M map[int]string
}

type Inner struct{ X int }

type WithEmbeddedPointer struct {
	*Inner
}

type recursive struct {
	Next *recursive
}

type Recursive struct {
	Next *Recursive
}

type WithMethodInterface struct {
	S interface{ String() string }
}

type hidden string

type WithUnexportedType struct {
	H hidden
}

type Shadowed struct{ Y int }

type WithConflict struct {
	Shadowed
	Y int
}

type WithUnnamedStruct struct {
	S struct{ A int }
}

type WithComplex struct {
	C complex128
}

type WithPtrPtr struct {
	P **int
}

type Named string

type Tagged struct {
	Inner `json:"inner"`
	A     int `json:"a,omitempty"`
	B     Named
	C     map[Named][]*Inner `json:",omitempty"`
	D     any                `json:"d"`
	E     float32
	skip  int
	F     int `json:"-"`
	G     int `json:"-,"`
}

func TestRefuses(t *testing.T) {
	tests := []struct {
		root reflect.Type
		want string
	}{
		{reflect.TypeFor[WithStringOpt](), `json tag option "string"`},
		{reflect.TypeFor[WithOmitZero](), `json tag option "omitzero"`},
		{reflect.TypeFor[WithUnmarshaler](), "implements"},
		{reflect.TypeFor[WithChan](), "kind chan"},
		{reflect.TypeFor[WithFunc](), "kind func"},
		{reflect.TypeFor[WithArray](), "kind array"},
		{reflect.TypeFor[WithBytes](), "byte slice"},
		{reflect.TypeFor[WithIntKeys](), "only string keys"},
		{reflect.TypeFor[WithEmbeddedPointer](), "embedded pointer"},
		{reflect.TypeFor[Recursive](), "recursive type"},
		{reflect.TypeFor[WithMethodInterface](), "interface type"},
		{reflect.TypeFor[WithUnexportedType](), "unexported type"},
		{reflect.TypeFor[WithConflict](), "two fields named"},
		{reflect.TypeFor[WithUnnamedStruct](), "unnamed struct"},
		{reflect.TypeFor[WithComplex](), "kind complex128"},
		{reflect.TypeFor[WithPtrPtr](), "pointer to pointer"},
		{reflect.TypeFor[int](), "not a named struct"},
	}
	for _, tc := range tests {
		_, err := generate([]reflect.Type{tc.root})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.root, err, tc.want)
		}
	}
}

func TestAccepts(t *testing.T) {
	src, err := generate([]reflect.Type{reflect.TypeFor[Tagged]()})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`var namesTagged = []string{"inner", "a", "B", "C", "d", "E", "-"}`,
		"err = decInner(d, &v.Inner)",
		"err = decString(d, &v.B)",
		"err = decMap(d, &v.C, func(d *Decoder, v *[]*gen.Inner) error {",
		"return decSlice(d, v, func(d *Decoder, v **gen.Inner) error {",
		"return decPtr(d, v, decInner)",
		"err = decAny(d, &v.D)",
		"err = decFloat(d, &v.E)",
		"if v.A != 0 {",
		"if len(v.C) != 0 {",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("generated code lacks %q:\n%s", want, src)
		}
	}
	if strings.Contains(string(src), "skip") || strings.Contains(string(src), "v.F") {
		t.Errorf("generated code has ignored fields:\n%s", src)
	}
}
