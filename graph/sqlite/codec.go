package sqlite

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Property values are stored in one JSONB object per node (the props
// column), keys sorted, in a form SQLite compares correctly:
//
//	String, enum  text
//	Int           integer
//	Float         real (always written with a fraction or exponent)
//	Boolean       true / false (json_extract yields 1 / 0)
//	DateTime      text in graph.TimeLayout (UTC, fixed width: text order is time order)
//	JSON          the JSON value itself
//	[T]           array of T; an empty list is not stored (it reads as null)
//
// A nil value is not stored either: absent and null are the same.

// propSet is the properties of a class (own and inherited) or a relation.
type propSet struct {
	owner  string // "class X" or "relation Y"
	all    []*ontology.Property
	byName map[string]*ontology.Property
}

func newPropSet(owner string, props []*ontology.Property) *propSet {
	ps := &propSet{owner: owner, all: props, byName: make(map[string]*ontology.Property, len(props))}
	for _, p := range props {
		ps.byName[p.Name] = p
	}
	return ps
}

// encodeProps validates props against a class or relation and returns the
// JSONB object and the lower-cased searchable text.
func encodeProps(ps *propSet, props map[string]any) ([]byte, string, error) {
	keys := make([]string, 0, len(props))
	for k, v := range props {
		if v == nil {
			continue
		}
		if ps.byName[k] == nil {
			return nil, "", fmt.Errorf("unknown property %q on %s", k, ps.owner)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf, mark := jbOpen(make([]byte, 0, 64+40*len(keys)))
	var search strings.Builder
	for _, k := range keys {
		p := ps.byName[k]
		v := props[k]
		if p.List {
			list, ok := v.([]any)
			if !ok {
				return nil, "", fmt.Errorf("property %q: want a list ([]any) of %s, got %T", k, p.Type, v)
			}
			if len(list) == 0 {
				continue
			}
		}
		buf = appendJBString(buf, k)
		var err error
		if buf, err = appendValue(buf, p, v); err != nil {
			return nil, "", fmt.Errorf("property %q: %w", k, err)
		}
		if p.Searchable {
			addSearch(&search, v)
		}
	}
	buf = jbClose(buf, mark, jbObject)
	for _, p := range ps.all {
		if !p.Required {
			continue
		}
		if v := props[p.Name]; v == nil {
			return nil, "", fmt.Errorf("required property %q is missing", p.Name)
		} else if l, ok := v.([]any); ok && len(l) == 0 {
			return nil, "", fmt.Errorf("required property %q is empty", p.Name)
		}
	}
	return buf, search.String(), nil
}

func addSearch(b *strings.Builder, v any) {
	switch x := v.(type) {
	case string:
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(strings.ToLower(x))
	case []any:
		for _, e := range x {
			addSearch(b, e)
		}
	}
}

// appendValue validates v (a whole property value, list or scalar) and
// appends its storage form.
func appendValue(buf []byte, p *ontology.Property, v any) ([]byte, error) {
	if !p.List {
		return appendScalar(buf, p, v)
	}
	buf, mark := jbOpen(buf)
	for i, e := range v.([]any) {
		var err error
		if buf, err = appendScalar(buf, p, e); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
	}
	return jbClose(buf, mark, jbArray), nil
}

func appendScalar(buf []byte, p *ontology.Property, v any) ([]byte, error) {
	wrong := func() error {
		return fmt.Errorf("want %s (%s), got %T", p.Type, goType(p), v)
	}
	if p.Enum != nil {
		s, ok := v.(string)
		if !ok {
			return nil, wrong()
		}
		if !slices.Contains(p.Enum.Values, s) {
			return nil, fmt.Errorf("%q is not a value of enum %s", s, p.Enum.Name)
		}
		return appendJBString(buf, s), nil
	}
	switch p.Type {
	case ontology.TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, wrong()
		}
		if !utf8.ValidString(s) {
			return nil, errors.New("string is not valid UTF-8")
		}
		return appendJBString(buf, s), nil
	case ontology.TypeInt:
		i, ok := v.(int64)
		if !ok {
			return nil, wrong()
		}
		return appendJBInt(buf, i), nil
	case ontology.TypeFloat:
		f, ok := v.(float64)
		if !ok {
			return nil, wrong()
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("float %v is not finite", f)
		}
		return appendJBFloat(buf, f), nil
	case ontology.TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, wrong()
		}
		return appendJBBool(buf, b), nil
	case ontology.TypeDateTime:
		t, ok := v.(time.Time)
		if !ok {
			return nil, wrong()
		}
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return nil, fmt.Errorf("time %v is out of range", t)
		}
		return appendJBString(buf, graph.FormatTime(t)), nil
	case ontology.TypeJSON:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, wrong()
		}
		out, err := appendJBAny(buf, m, 0)
		if err != nil {
			return nil, fmt.Errorf("JSON value: %v", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported type %s", p.Type)
}

func goType(p *ontology.Property) string {
	if p.Enum != nil {
		return "string"
	}
	switch p.Type {
	case ontology.TypeString:
		return "string"
	case ontology.TypeInt:
		return "int64"
	case ontology.TypeFloat:
		return "float64"
	case ontology.TypeBoolean:
		return "bool"
	case ontology.TypeDateTime:
		return "time.Time"
	case ontology.TypeJSON:
		return "map[string]any"
	}
	return "?"
}

// decodeProps reads a props object written by encodeProps into typed Go
// values. Keys the class does not declare (left by an older ontology) are
// skipped; a value that no longer fits its property's type is dropped.
// Strings share memory with s.
func decodeProps(ps *propSet, s string) (map[string]any, error) {
	root, err := jbAt(s, 0)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, 8)
	err = jbFields(s, root, func(k string, e jbElem) error {
		var p *ontology.Property
		if ps != nil {
			p = ps.byName[k]
		}
		if p == nil {
			return nil
		}
		v, err := decodeValue(s, e, p)
		if err != nil {
			return err
		}
		if v != nil {
			out[k] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeValue reads the value of property p (a list when p.List).
func decodeValue(s string, e jbElem, p *ontology.Property) (any, error) {
	if !p.List {
		return decodeScalar(s, e, p)
	}
	if e.typ != jbArray {
		// not a list: keep a single value as a one-element list
		v, err := decodeScalar(s, e, p)
		if err != nil || v == nil {
			return nil, err
		}
		return []any{v}, nil
	}
	var out []any
	for i := e.start; i < e.end; {
		c, err := jbAt(s, i)
		if err != nil {
			return nil, err
		}
		v, err := decodeScalar(s, c, p)
		if err != nil {
			return nil, err
		}
		if v != nil {
			out = append(out, v)
		}
		i = c.end
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func decodeScalar(s string, e jbElem, p *ontology.Property) (any, error) {
	if p.Type == ontology.TypeJSON {
		return jbAny(s, e, 0)
	}
	switch e.typ {
	case jbText, jbTextJ, jbText5, jbTextRaw:
		str, err := jbString(s, e)
		if err != nil {
			return nil, err
		}
		switch {
		case p.Enum != nil, p.Type == ontology.TypeString:
			return str, nil
		case p.Type == ontology.TypeDateTime:
			if t, err := graph.ParseTime(str); err == nil {
				return t, nil
			}
		}
	case jbTrue, jbFalse:
		if p.Type == ontology.TypeBoolean {
			return e.typ == jbTrue, nil
		}
	case jbInt, jbInt5, jbFloat, jbFloat5:
		text := jbNumber(s, e)
		switch p.Type {
		case ontology.TypeInt:
			if i, ok := parseJBInt(e, text); ok {
				return i, nil
			}
		case ontology.TypeFloat:
			if f, ok := parseJBFloat(e, text); ok {
				return f, nil
			}
		}
	case jbNull, jbArray, jbObject:
	default:
		return nil, errJSONB
	}
	return nil, nil
}

// rawFields splits a JSONB object into its keys and raw value elements.
func rawFields(s string) (map[string]string, error) {
	root, err := jbAt(s, 0)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	err = jbFields(s, root, func(k string, e jbElem) error {
		out[k] = s[e.start:e.end] + string(rune(e.typ))
		return nil
	})
	return out, err
}
