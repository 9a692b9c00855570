package connectors

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	// Time zones of mappings must resolve on hosts without zoneinfo.
	_ "time/tzdata"

	"github.com/cityhub/cityhub/ontology"
	"gopkg.in/yaml.v3"
)

// valueSpec says where one value comes from and how it is converted to
// the type of its target property. In a connector file it is either a
// scalar (a template string, or a number/boolean constant) or a mapping:
//
//	field: Latitude          the value of a record field (dotted paths reach into objects)
//	template: "{A} {B}"      a template (see template.go)
//	value: OK                a constant
//	fields: [Object 1, Object 2]  several fields: list properties collect the present
//	                         values, others take the first present one
//	last_of: '^(\d{4})$'     the last non-empty field whose name matches, in natural
//	                         name order; $1.., $field and $value are set for template
//	layout: "1/2/06 15:04"   DateTime: Go layout(s) (a list is tried in order), unix or unixms
//	timezone: America/New_York  zone for layouts without one; required for such layouts
//	map: {In Service: OK}    value map, matched exactly then case-insensitively
//	default: UNKNOWN         used when the value is missing or not in map
//	split: ","               list properties: split text into elements
//	extract: '^\$?([0-9.]+)$'  regex applied to the text first; its first group (or
//	                         the whole match) is the value; no match rejects the record
//	trim: false              keep surrounding spaces (default: trimmed)
//	scale: 0.001             Float: multiply (unit conversion)
//	required: true           a missing value rejects the record
//
// Exactly one of field, fields, template, value and last_of is given (last_of may
// be combined with template). Values that are null or blank text are
// missing: the property is not set, unless default or required says
// otherwise.
type valueSpec struct {
	where    string // e.g. StreetLight.poleNumber, for messages
	desc     string // e.g. field "PoleID", for messages
	field    string
	path     []string
	multi    []fieldRef
	extract  *regexp.Regexp
	tmpl     *template
	konst    any
	isConst  bool
	lastOf   *regexp.Regexp
	layouts  []string
	loc      *time.Location
	vmap     map[string]any
	vmapFold map[string]any
	def      any
	hasDef   bool
	split    string
	trim     bool
	scale    float64
	required bool
	typ      valueType
	rawProp  string // property that keeps the raw value when map is used
}

// valueType is the target type of a value.
type valueType struct {
	name string // ontology scalar type name, or enum name
	enum *ontology.Enum
	list bool
}

func propType(p *ontology.Property) valueType {
	return valueType{name: p.Type, enum: p.Enum, list: p.List}
}

var dateTimeType = valueType{name: ontology.TypeDateTime}

var valueKeys = []string{"field", "fields", "extract", "template", "value", "last_of", "layout", "timezone", "map", "default", "split", "trim", "scale", "required"}

// scope is what references in a template may use.
type scope struct {
	iter   *regexp.Regexp  // regex of the enclosing repeat/last_of, nil if none
	props  map[string]bool // @props allowed (nil: none)
	fields map[string]bool // declared record fields (nil: any)
}

// checkRefs verifies that a template's references are usable in scope.
func (sc scope) checkRefs(t *template) error {
	for _, r := range t.refs() {
		switch r.kind {
		case refCapture:
			if sc.iter == nil {
				return fmt.Errorf("%s used outside repeat or last_of", r.text)
			}
			if n := sc.iter.NumSubexp(); r.capture > n {
				return fmt.Errorf("%s: regex %q has %d capture group(s)", r.text, sc.iter.String(), n)
			}
		case refIterField, refIterValue:
			if sc.iter == nil {
				return fmt.Errorf("%s used outside repeat or last_of", r.text)
			}
		case refProp:
			if sc.props == nil {
				return fmt.Errorf("%s: property references are allowed in key, name and edges only", r.text)
			}
			if !sc.props[r.name] {
				return fmt.Errorf("%s: property %q is not mapped on this node", r.text, r.name)
			}
		case refField:
			if sc.fields != nil {
				head := r.name
				if r.path != nil && !sc.fields[head] {
					head = r.path[0]
				}
				if !sc.fields[head] {
					return fmt.Errorf("%s: unknown field %q (not in mapping.fields)", r.text, r.name)
				}
			}
		}
	}
	return nil
}

// compileValue decodes a value spec for a target of type typ.
func (w *walker) compileValue(n *yaml.Node, path, where string, typ valueType, sc scope) *valueSpec {
	v := &valueSpec{where: where, trim: true, scale: 1, typ: typ, loc: time.UTC}
	n = deref(n)
	errs := len(w.errs)
	if n == nil {
		w.errorf(n, path, "expected a value")
		return nil
	}
	var tz *yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		c, _ := scalar(n)
		if s, ok := c.(string); ok {
			t, err := parseTemplate(s)
			if err != nil {
				w.errorf(n, path, "%v", err)
				return nil
			}
			v.tmpl, v.desc = t, "template "+strconv.Quote(s)
		} else {
			v.konst, v.isConst, v.desc = c, true, "value"
		}
	case yaml.MappingNode:
		var sources []string
		w.mapping(n, path, valueKeys, func(key string, k, fv *yaml.Node) {
			p := path + "." + key
			switch key {
			case "field":
				v.field = w.str(fv, p)
				if strings.Contains(v.field, ".") {
					v.path = strings.Split(v.field, ".")
				}
				v.desc = "field " + strconv.Quote(v.field)
				if sc.fields != nil && !sc.fields[v.field] && (v.path == nil || !sc.fields[v.path[0]]) {
					w.errorf(fv, p, "unknown field %q (not in mapping.fields)", v.field)
				}
				sources = append(sources, key)
			case "fields":
				for _, f := range w.strList(fv, p) {
					if sc.fields != nil && !sc.fields[f] {
						w.errorf(fv, p, "unknown field %q (not in mapping.fields)", f)
					}
					v.multi = append(v.multi, newFieldRef(f))
				}
				v.desc = fmt.Sprintf("fields %q", w.strList(fv, p))
				sources = append(sources, key)
			case "extract":
				re, err := regexp.Compile(w.str(fv, p))
				if err != nil {
					w.errorf(fv, p, "bad regex: %v", err)
					return
				}
				v.extract = re
			case "template":
				s := w.str(fv, p)
				t, err := parseTemplate(s)
				if err != nil {
					w.errorf(fv, p, "%v", err)
					return
				}
				v.tmpl = t
				if v.desc == "" {
					v.desc = "template " + strconv.Quote(s)
				}
				sources = append(sources, key)
			case "value":
				c, ok := scalar(fv)
				if !ok {
					if fv.Kind == yaml.SequenceNode && typ.list {
						var list []any
						for _, e := range fv.Content {
							x, _ := scalar(e)
							list = append(list, x)
						}
						c = list
					} else {
						w.errorf(fv, p, "expected a scalar")
						return
					}
				}
				v.konst, v.isConst, v.desc = c, true, "value"
				sources = append(sources, key)
			case "last_of":
				re, err := regexp.Compile(w.str(fv, p))
				if err != nil {
					w.errorf(fv, p, "bad regex: %v", err)
					return
				}
				v.lastOf = re
				v.desc = "last_of " + strconv.Quote(re.String())
				sources = append(sources, key)
			case "layout":
				if typ.name != ontology.TypeDateTime {
					w.errorf(k, p, "layout applies to DateTime values, not %s", typ.name)
				}
				v.layouts = w.strList(fv, p)
			case "timezone":
				tz = fv
				name := w.str(fv, p)
				loc, err := time.LoadLocation(name)
				if err != nil {
					w.errorf(fv, p, "unknown timezone %q", name)
					return
				}
				v.loc = loc
			case "map":
				v.vmap, v.vmapFold = map[string]any{}, map[string]any{}
				w.mapping(fv, p, nil, func(raw string, mk, mv *yaml.Node) {
					c, ok := scalar(mv)
					if !ok {
						w.errorf(mv, p+"."+raw, "expected a scalar")
						return
					}
					if c != nil {
						cv, err := convertScalar(c, typ, nil, time.UTC, "")
						if err != nil {
							w.errorf(mv, p+"."+raw, "%v", err)
							return
						}
						c = cv
					}
					v.vmap[raw] = c
					v.vmapFold[strings.ToLower(strings.TrimSpace(raw))] = c
				})
			case "default":
				c, ok := scalar(fv)
				if !ok {
					w.errorf(fv, p, "expected a scalar")
					return
				}
				v.def, v.hasDef = c, true
			case "split":
				if !typ.list {
					w.errorf(k, p, "split applies to list properties")
				}
				v.split = w.str(fv, p)
			case "trim":
				v.trim = w.boolean(fv, p)
			case "scale":
				if typ.name != ontology.TypeFloat {
					w.errorf(k, p, "scale applies to Float values, not %s", typ.name)
				}
				v.scale = w.float(fv, p)
			case "required":
				v.required = w.boolean(fv, p)
			}
		})
		others := 0
		for _, src := range sources {
			if src != "last_of" && !(v.lastOf != nil && src == "template") {
				others++
			}
		}
		switch {
		case len(sources) == 0:
			w.errorf(n, path, "one of field, template, value or last_of is required")
		case v.lastOf != nil && others > 0, v.lastOf == nil && len(sources) > 1:
			w.errorf(n, path, "only one of field, template, value and last_of may be given (last_of combines with template)")
		}
	default:
		w.errorf(n, path, "expected a template string, a constant or a mapping")
		return nil
	}
	if len(w.errs) > errs {
		return nil
	}
	// scope checks of the template
	if v.tmpl != nil {
		tsc := sc
		if v.lastOf != nil {
			tsc.iter = v.lastOf
		}
		if err := tsc.checkRefs(v.tmpl); err != nil {
			w.errorf(n, path, "%v", err)
			return nil
		}
		if v.tmpl.constant() && v.lastOf == nil {
			v.konst, v.isConst, v.tmpl = v.tmpl.src, true, nil
		}
	}
	if typ.name == ontology.TypeDateTime {
		for _, l := range v.layouts {
			if !layoutHasZone(l) && tz == nil {
				w.errorf(n, path, "layout %q has no zone: set timezone (for example America/New_York or UTC)", l)
				return nil
			}
		}
	}
	// constants and defaults are checked now, against the target type
	if v.isConst && v.konst != nil {
		c, err := v.convert(v.konst)
		if err != nil {
			w.errorf(n, path, "%v", err)
			return nil
		}
		v.konst = c
	}
	if v.hasDef && v.def != nil {
		c, err := v.convert(v.def)
		if err != nil {
			w.errorf(n, path, "default: %v", err)
			return nil
		}
		v.def = c
	}
	return v
}

// eval computes the value for one record. ok is false when the value is
// missing and has no default. raw is the source text when a value map was
// consulted (for the ...Raw property).
func (v *valueSpec) eval(ec *evalCtx) (val any, ok bool, raw string, err error) {
	if v.isConst {
		return v.konst, v.konst != nil, "", nil
	}
	var x any
	switch {
	case v.lastOf != nil:
		name, fv, caps := lastOf(ec.rec.Fields, v.lastOf, ec)
		if name == "" {
			x = nil
			break
		}
		if v.tmpl == nil {
			x = fv
			break
		}
		sub := *ec
		sub.caps, sub.value, sub.iter = caps, fv, true
		x, _, _, err = v.tmpl.eval(&sub, false)
	case v.tmpl != nil:
		x, _, _, err = v.tmpl.eval(ec, false)
	case v.multi != nil:
		var list []any
		for _, f := range v.multi {
			fx := lookupField(ec.rec.Fields, f.name, f.path)
			if missing(fx) {
				continue
			}
			if !v.typ.list {
				x = fx
				break
			}
			list = append(list, fx)
		}
		if v.typ.list && list != nil {
			x = list
		}
	default:
		x = lookupField(ec.rec.Fields, v.field, v.path)
	}
	if err != nil {
		return nil, false, "", mapErrf(v.where, "%s: %v", v.desc, err)
	}
	if s, isStr := x.(string); isStr && v.trim {
		if t := strings.TrimSpace(s); len(t) != len(s) {
			x = t // boxed anew only when something was trimmed
		}
	}
	if missing(x) {
		if v.hasDef {
			return v.def, v.def != nil, "", nil
		}
		if v.required {
			return nil, false, "", mapErrf(v.where, "%s is missing", v.desc)
		}
		return nil, false, "", nil
	}
	if v.extract != nil && !v.typ.list {
		if x, err = v.extractValue(x); err != nil {
			return nil, false, "", mapErrf(v.where, "%s: %v", v.desc, err)
		}
	}
	if v.vmap != nil && !v.typ.list {
		s, serr := toString(x)
		if serr == nil {
			if m, hit := v.lookupMap(s); hit {
				return m, m != nil, s, nil
			}
			if v.hasDef {
				return v.def, v.def != nil, s, nil
			}
			raw = s
		}
	}
	c, err := v.convert(x)
	if err != nil {
		return nil, false, "", mapErrf(v.where, "%s: %v", v.desc, err)
	}
	return c, true, raw, nil
}

// extractValue applies the extract regex to the text of x.
func (v *valueSpec) extractValue(x any) (any, error) {
	s, err := toString(x)
	if err != nil {
		return nil, err
	}
	m := v.extract.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("%s does not match %q", describe(x), v.extract.String())
	}
	if len(m) > 1 {
		return m[1], nil
	}
	return m[0], nil
}

func (v *valueSpec) lookupMap(s string) (any, bool) {
	if m, ok := v.vmap[s]; ok {
		return m, true
	}
	m, ok := v.vmapFold[strings.ToLower(strings.TrimSpace(s))]
	return m, ok
}

// convert turns a present source value into the target type.
func (v *valueSpec) convert(x any) (any, error) {
	if !v.typ.list {
		return convertScalar(x, v.typ, v.layouts, v.loc, "", v.scale)
	}
	var elems []any
	switch y := x.(type) {
	case []any:
		elems = y
	case string:
		if v.split == "" {
			elems = []any{y}
		} else {
			for _, p := range strings.Split(y, v.split) {
				elems = append(elems, p)
			}
		}
	default:
		elems = []any{x}
	}
	out := make([]any, 0, len(elems))
	for _, e := range elems {
		if s, ok := e.(string); ok && v.trim {
			e = strings.TrimSpace(s)
		}
		if missing(e) {
			continue
		}
		if v.extract != nil {
			var err error
			if e, err = v.extractValue(e); err != nil {
				return nil, err
			}
		}
		if v.vmap != nil {
			if s, err := toString(e); err == nil {
				if m, hit := v.lookupMap(s); hit {
					if m != nil {
						out = append(out, m)
					}
					continue
				}
			}
		}
		c, err := convertScalar(e, v.typ, v.layouts, v.loc, "", v.scale)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// convertScalar converts one value to a scalar type. scale (optional)
// multiplies Float values.
func convertScalar(x any, typ valueType, layouts []string, loc *time.Location, _ string, scale ...float64) (any, error) {
	if typ.enum != nil {
		s, err := toString(x)
		if err != nil {
			return nil, err
		}
		if e := enumValue(typ.enum, s); e != "" {
			return e, nil
		}
		return nil, fmt.Errorf("%s is not a value of enum %s (%s)", describe(x), typ.enum.Name, strings.Join(typ.enum.Values, ", "))
	}
	switch typ.name {
	case ontology.TypeString:
		return toString(x)
	case ontology.TypeInt:
		return toInt(x)
	case ontology.TypeFloat:
		f, err := toFloat(x)
		if err == nil && len(scale) > 0 && scale[0] != 1 && scale[0] != 0 {
			f *= scale[0]
		}
		return f, err
	case ontology.TypeBoolean:
		return toBool(x)
	case ontology.TypeDateTime:
		if loc == nil {
			loc = time.UTC
		}
		return toTime(x, layouts, loc)
	case ontology.TypeJSON:
		switch y := x.(type) {
		case map[string]any, []any:
			return y, nil
		case string:
			var out any
			if err := json.Unmarshal([]byte(y), &out); err != nil {
				return nil, fmt.Errorf("%s is not JSON", describe(x))
			}
			return normalizeJSON(out), nil
		}
		return nil, fmt.Errorf("%s is not a JSON object or list", describe(x))
	}
	return nil, fmt.Errorf("unsupported type %s", typ.name)
}

// enumValue returns the enum value s names: exactly, or after
// upper-casing and turning spaces and hyphens into underscores; "" if none.
func enumValue(e *ontology.Enum, s string) string {
	s = strings.TrimSpace(s)
	for _, v := range e.Values {
		if v == s {
			return v
		}
	}
	norm := strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToUpper(s))
	for _, v := range e.Values {
		if v == norm {
			return v
		}
	}
	return ""
}

// normalizeJSON converts json.Unmarshal output to the graph's value types
// (whole numbers become int64).
func normalizeJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeJSON(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeJSON(e)
		}
		return x
	case float64:
		if x == float64(int64(x)) && x < 1<<53 && x > -(1<<53) {
			return int64(x)
		}
	}
	return v
}
