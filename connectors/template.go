package connectors

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A template is text with references in braces, evaluated per record:
//
//	"{PoleID}"                  the value of field PoleID (typed, when alone)
//	"{ID}~adt"                  text: field ID followed by "~adt"
//	"{Date Time}"               field names may contain spaces
//	"{data.name}"               a dotted path into nested objects (JSON)
//	"{$1}" "{$2}"               capture groups of the repeat/last_of regex
//	"{$field}" "{$value}"       the field name and value of the repeat/last_of iteration
//	"{$index}" "{$line}"        the record's index and line in the source
//	"{@phenomenonTime|unixms}"  a property already mapped on the same node (key, name and edges only)
//	"{{" "}}"                   literal braces
//
// Filters follow a bar: lower, upper, trim, guid (strips surrounding
// braces from an ArcGIS GlobalID), unix and unixms (a DateTime as epoch
// seconds or milliseconds).
type template struct {
	src    string
	parts  []tmplPart
	single *refExpr // the whole template is one reference
}

type tmplPart struct {
	lit string
	ref *refExpr
}

type refKind int

const (
	refField refKind = iota
	refCapture
	refIterField
	refIterValue
	refIndex
	refLine
	refProp
)

type refExpr struct {
	text    string // as written, for messages
	kind    refKind
	name    string   // field or property name
	path    []string // dotted path, when the name contains dots
	capture int
	filters []filter
}

type filter struct {
	name string
	fn   func(any) (any, error)
}

var filters = map[string]func(any) (any, error){
	"lower": func(v any) (any, error) { s, err := toString(v); return strings.ToLower(s), err },
	"upper": func(v any) (any, error) { s, err := toString(v); return strings.ToUpper(s), err },
	"trim":  func(v any) (any, error) { s, err := toString(v); return strings.TrimSpace(s), err },
	"guid": func(v any) (any, error) {
		s, err := toString(v)
		return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "{"), "}"), err
	},
	"unix": func(v any) (any, error) {
		t, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("unix: %s is not a DateTime", describe(v))
		}
		return t.Unix(), nil
	},
	"unixms": func(v any) (any, error) {
		t, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("unixms: %s is not a DateTime", describe(v))
		}
		return t.UnixMilli(), nil
	},
}

func filterNames() string {
	return "lower, upper, trim, guid, unix, unixms"
}

// parseTemplate parses template text. It checks syntax, variables and
// filters; scope checks (captures, @props, declared fields) are done by the
// mapping compiler with refs().
func parseTemplate(s string) (*template, error) {
	t := &template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, tmplPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '{':
			if i+1 < len(s) && s[i+1] == '{' {
				lit.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return nil, fmt.Errorf("template %q: unclosed {", s)
			}
			body := s[i+1 : i+1+end]
			if strings.ContainsRune(body, '{') {
				return nil, fmt.Errorf("template %q: { inside a reference", s)
			}
			ref, err := parseRef(body)
			if err != nil {
				return nil, fmt.Errorf("template %q: %w", s, err)
			}
			flush()
			t.parts = append(t.parts, tmplPart{ref: ref})
			i += end + 1
		case '}':
			if i+1 < len(s) && s[i+1] == '}' {
				lit.WriteByte('}')
				i++
				continue
			}
			return nil, fmt.Errorf("template %q: unmatched } (write }} for a literal brace)", s)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	if len(t.parts) == 1 && t.parts[0].ref != nil {
		t.single = t.parts[0].ref
	}
	return t, nil
}

func parseRef(body string) (*refExpr, error) {
	segs := strings.Split(body, "|")
	name := strings.TrimSpace(segs[0])
	r := &refExpr{text: "{" + body + "}", name: name}
	if name == "" {
		return nil, fmt.Errorf("empty reference {}")
	}
	switch {
	case name == "$field":
		r.kind = refIterField
	case name == "$value":
		r.kind = refIterValue
	case name == "$index":
		r.kind = refIndex
	case name == "$line":
		r.kind = refLine
	case strings.HasPrefix(name, "$"):
		n, err := strconv.Atoi(name[1:])
		if err != nil || n < 1 || n > 9 {
			return nil, fmt.Errorf("unknown variable %q (want $1..$9, $field, $value, $index or $line)", name)
		}
		r.kind, r.capture = refCapture, n
	case strings.HasPrefix(name, "@"):
		r.kind, r.name = refProp, name[1:]
		if r.name == "" {
			return nil, fmt.Errorf("empty property reference {@}")
		}
	default:
		r.kind = refField
		if strings.Contains(name, ".") {
			r.path = strings.Split(name, ".")
		}
	}
	for _, f := range segs[1:] {
		f = strings.TrimSpace(f)
		fn, ok := filters[f]
		if !ok {
			return nil, fmt.Errorf("unknown filter %q (known: %s)", f, filterNames())
		}
		r.filters = append(r.filters, filter{f, fn})
	}
	return r, nil
}

// refs returns the template's references.
func (t *template) refs() []*refExpr {
	var out []*refExpr
	for _, p := range t.parts {
		if p.ref != nil {
			out = append(out, p.ref)
		}
	}
	return out
}

// constant reports whether the template has no references.
func (t *template) constant() bool { return len(t.refs()) == 0 }

// evalCtx is what a template can see while one node of one record is
// mapped.
type evalCtx struct {
	rec   *Record
	caps  []string // capture groups of the current iteration; caps[0] is the field name
	value any      // value of the current iteration's field
	iter  bool
	props map[string]any // the node's mapped properties, for @refs
	fc    *fieldCache    // field-name match cache of the run (may be nil)
}

// value resolves one reference. ok is false when the value is missing
// (absent, null or blank text).
func (r *refExpr) value(ec *evalCtx) (v any, ok bool, err error) {
	switch r.kind {
	case refField:
		v = lookupField(ec.rec.Fields, r.name, r.path)
	case refCapture:
		if r.capture < len(ec.caps) {
			v = ec.caps[r.capture]
		}
	case refIterField:
		if ec.iter {
			v = ec.caps[0]
		}
	case refIterValue:
		v = ec.value
	case refIndex:
		v = int64(ec.rec.Pos.Index)
	case refLine:
		if ec.rec.Pos.Line > 0 {
			v = int64(ec.rec.Pos.Line)
		}
	case refProp:
		v = ec.props[r.name]
	}
	if missing(v) {
		return nil, false, nil
	}
	for _, f := range r.filters {
		if v, err = f.fn(v); err != nil {
			return nil, false, fmt.Errorf("%s: %w", r.text, err)
		}
	}
	if missing(v) {
		return nil, false, nil
	}
	return v, true, nil
}

// eval renders the template. A template that is one reference yields the
// referenced value with its type; otherwise the result is a string. When a
// referenced value is missing, eval returns ok false and the reference in
// miss. escape percent-encodes every substituted value for URN keys.
func (t *template) eval(ec *evalCtx, escape bool) (v any, ok bool, miss string, err error) {
	if t.single != nil && !escape {
		v, ok, err := t.single.value(ec)
		if !ok && err == nil {
			miss = t.single.text
		}
		return v, ok, miss, err
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.ref == nil {
			b.WriteString(p.lit)
			continue
		}
		v, ok, err := p.ref.value(ec)
		if err != nil {
			return nil, false, "", err
		}
		if !ok {
			return nil, false, p.ref.text, nil
		}
		s, err := toString(v)
		if err != nil {
			return nil, false, "", fmt.Errorf("%s: %w", p.ref.text, err)
		}
		if escape {
			s = escapeKey(s)
		}
		b.WriteString(s)
	}
	return b.String(), true, "", nil
}

// lookupField finds a field by name, then (for dotted names absent as
// such) by walking nested objects.
func lookupField(fields map[string]any, name string, path []string) any {
	if v, ok := fields[name]; ok || path == nil {
		return v
	}
	var cur any = fields
	for _, seg := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[seg]
	}
	return cur
}

// missing reports whether a value counts as absent: nil or blank text.
func missing(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	}
	return false
}
