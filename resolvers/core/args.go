package core

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/ontology/gen"
)

// InputError is an invalid argument value. Path names the argument, e.g.
// "where.near.lat" or "first".
type InputError struct {
	Path string
	Msg  string
}

func (e *InputError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Is makes input errors match graph.ErrInvalid.
func (e *InputError) Is(target error) bool { return target == graph.ErrInvalid }

func inputErr(path, format string, args ...any) error {
	return &InputError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Args converts GraphQL arguments into the graph query model, checking
// them against the ontology.
type Args struct {
	ont      *ontology.Ontology
	maxFirst int
	// orderFields maps class name → order enum value → graph field.
	orderFields map[string]map[string]string
	classes     map[string]*ontology.Class // ClassName enum value → class
}

// NewArgs builds an argument converter for an ontology.
func NewArgs(ont *ontology.Ontology, maxFirst int) *Args {
	a := &Args{ont: ont, maxFirst: maxFirst, orderFields: map[string]map[string]string{}, classes: map[string]*ontology.Class{}}
	var n gen.Names
	for _, c := range ont.Classes {
		a.classes[n.ClassValue(c)] = c
		m := map[string]string{"ID": graph.FieldID}
		for _, p := range c.Props {
			if gen.Orderable(p) {
				m[n.OrderValue(p.Name)] = p.Name
			}
		}
		for _, pf := range gen.ProvenanceOrderFields {
			m[pf.Value] = pf.Field
		}
		a.orderFields[c.Name] = m
	}
	return a
}

// First validates a page size argument.
func (a *Args) First(path string, first *int, def int) (int, error) {
	if first == nil {
		return def, nil
	}
	if *first < 0 {
		return 0, inputErr(path, "must not be negative (got %d)", *first)
	}
	if *first > a.maxFirst {
		return 0, inputErr(path, "must be at most %d (got %d)", a.maxFirst, *first)
	}
	return *first, nil
}

// Order converts an orderBy argument.
func (a *Args) Order(class *ontology.Class, role Role, path string, in []map[string]any) ([]graph.Order, error) {
	var out []graph.Order
	for i, o := range in {
		p := fmt.Sprintf("%s[%d]", path, i)
		fv, _ := o["field"].(string)
		if s, ok := o["field"].(fmt.Stringer); ok {
			fv = s.String()
		}
		field, ok := a.orderFields[class.Name][fv]
		if !ok {
			return nil, inputErr(p+".field", "unknown order field %q for %s", fv, class.Name)
		}
		if err := allowed(class, role, p+".field", field); err != nil {
			return nil, err
		}
		desc := false
		switch d := fmt.Sprint(o["direction"]); d {
		case "DESC":
			desc = true
		case "ASC", "<nil>":
		default:
			return nil, inputErr(p+".direction", "unknown direction %q", d)
		}
		out = append(out, graph.Order{Field: field, Desc: desc})
	}
	return out, nil
}

// OrderField converts one order-field enum value (groupBy, field).
func (a *Args) OrderField(class *ontology.Class, role Role, path string, v *string) (string, error) {
	if v == nil {
		return "", nil
	}
	f, ok := a.orderFields[class.Name][*v]
	if !ok {
		return "", inputErr(path, "unknown field %q for %s", *v, class.Name)
	}
	return f, allowed(class, role, path, f)
}

// allowed refuses filtering, ordering or grouping on a property the role
// may not read: otherwise a caller could probe its values.
func allowed(class *ontology.Class, role Role, path, field string) error {
	p := class.Property(field)
	if p == nil || p.Access == ontology.AccessPublic || role.Allows(Role(strings.ToUpper(p.Access))) {
		return nil
	}
	return &ForbiddenError{Need: Role(strings.ToUpper(p.Access)), Have: role, Path: path}
}

// Where converts a where argument into a filter (nil when empty) and the
// class it narrows to (class itself when the argument does not narrow).
func (a *Args) Where(class *ontology.Class, role Role, path string, in map[string]any) (graph.Filter, *ontology.Class, error) {
	if in == nil {
		return nil, class, nil
	}
	target := class
	if v := deref(in["class"]); v != nil {
		name := fmt.Sprint(v)
		c := a.classes[name]
		if c == nil || !c.IsA(class) {
			return nil, nil, inputErr(path+".class", "%s is not a subclass of %s", name, class.Name)
		}
		target = c
		rest := make(map[string]any, len(in))
		for k, v := range in {
			if k != "class" {
				rest[k] = v
			}
		}
		in = rest
	}
	f, err := a.where(target, role, path, in)
	if err != nil {
		return nil, nil, err
	}
	return graph.Simplify(f), target, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (a *Args) where(class *ontology.Class, role Role, path string, in map[string]any) (graph.Filter, error) {
	var and graph.And
	for _, k := range sortedKeys(in) {
		v := deref(in[k])
		p := path + "." + k
		if v == nil {
			continue
		}
		var f graph.Filter
		var err error
		switch k {
		case "and", "or":
			list, ok := anyList(v)
			if !ok {
				return nil, inputErr(p, "expected a list")
			}
			var fs []graph.Filter
			for i, item := range list {
				m, ok := item.(map[string]any)
				if !ok {
					return nil, inputErr(fmt.Sprintf("%s[%d]", p, i), "expected an object")
				}
				sub, err := a.where(class, role, fmt.Sprintf("%s[%d]", p, i), m)
				if err != nil {
					return nil, err
				}
				fs = append(fs, sub)
			}
			if k == "and" {
				f = graph.And(fs)
			} else {
				f = graph.Or(fs)
			}
		case "not":
			m, ok := v.(map[string]any)
			if !ok {
				return nil, inputErr(p, "expected an object")
			}
			sub, err := a.where(class, role, p, m)
			if err != nil {
				return nil, err
			}
			f = graph.Not{F: sub}
		case "near":
			f, err = near(p, v)
		case "within":
			f, err = within(p, v)
		case "withinArea":
			s, ok := v.(string)
			if !ok || s == "" {
				return nil, inputErr(p, "expected a non-empty node ID")
			}
			f = graph.WithinArea{AreaID: s}
		case "search":
			s, ok := v.(string)
			if !ok {
				return nil, inputErr(p, "expected a string")
			}
			if strings.TrimSpace(s) == "" {
				continue
			}
			if len(s) > 200 {
				return nil, inputErr(p, "search text longer than 200 bytes")
			}
			f = graph.Search{Text: s}
		case "class":
			return nil, inputErr(p, "class is allowed at the top level of a filter only")
		case "id":
			f, err = cmps(p, graph.FieldID, ontology.TypeString, nil, v)
		case "_provenance":
			m, ok := v.(map[string]any)
			if !ok {
				return nil, inputErr(p, "expected an object")
			}
			var pf graph.And
			for _, pk := range sortedKeys(m) {
				typ := ontology.TypeDateTime
				if pk == "source" {
					typ = ontology.TypeString
				}
				if deref(m[pk]) == nil {
					continue
				}
				sub, err := cmps(p+"."+pk, "_"+pk, typ, nil, deref(m[pk]))
				if err != nil {
					return nil, err
				}
				pf = append(pf, sub)
			}
			f = pf
		default:
			prop := class.Property(k)
			if prop == nil || !gen.Filterable(prop) {
				return nil, inputErr(p, "%s has no filterable property %q", class.Name, k)
			}
			if err := allowed(class, role, p, prop.Name); err != nil {
				return nil, err
			}
			f, err = cmps(p, prop.Name, prop.Type, prop.Enum, v)
		}
		if err != nil {
			return nil, err
		}
		if f != nil {
			and = append(and, f)
		}
	}
	return and, nil
}

// deref returns the value a pointer points to (gqlgen coerces nullable
// input fields to pointers), nil for a nil pointer, and v otherwise.
func deref(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return v
	}
	if rv.IsNil() {
		return nil
	}
	return rv.Elem().Interface()
}

// anyList returns the elements of any slice value (gqlgen coerces list
// arguments to typed slices).
func anyList(v any) ([]any, bool) {
	if l, ok := v.([]any); ok {
		return l, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

func num(path string, v any) (float64, error) {
	switch x := deref(v).(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case int:
		return float64(x), nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return 0, inputErr(path, "%q is not a number", x)
		}
		return f, nil
	}
	return 0, inputErr(path, "expected a number")
}

func coords(path string, m map[string]any, latKey, lonKey string) (lat, lon float64, err error) {
	if lat, err = num(path+"."+latKey, m[latKey]); err != nil {
		return
	}
	if lon, err = num(path+"."+lonKey, m[lonKey]); err != nil {
		return
	}
	if math.IsNaN(lat) || lat < -90 || lat > 90 {
		return 0, 0, inputErr(path+"."+latKey, "latitude %g is outside [-90, 90]", lat)
	}
	if math.IsNaN(lon) || lon < -180 || lon > 180 {
		return 0, 0, inputErr(path+"."+lonKey, "longitude %g is outside [-180, 180]", lon)
	}
	return lat, lon, nil
}

// MaxRadiusM bounds `near` and `nearby` distances.
const MaxRadiusM = 100_000

func near(path string, v any) (graph.Filter, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, inputErr(path, "expected an object")
	}
	lat, lon, err := coords(path, m, "lat", "lon")
	if err != nil {
		return nil, err
	}
	meters, err := num(path+".meters", m["meters"])
	if err != nil {
		return nil, err
	}
	if err := CheckRadius(path+".meters", meters); err != nil {
		return nil, err
	}
	return graph.Near{Center: graph.Point{Lat: lat, Lon: lon}, Meters: meters}, nil
}

// CheckRadius validates a distance argument.
func CheckRadius(path string, meters float64) error {
	if math.IsNaN(meters) || meters < 0 || meters > MaxRadiusM {
		return inputErr(path, "must be between 0 and %d metres (got %g)", MaxRadiusM, meters)
	}
	return nil
}

func within(path string, v any) (graph.Filter, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, inputErr(path, "expected an object")
	}
	minLat, minLon, err := coords(path, m, "minLat", "minLon")
	if err != nil {
		return nil, err
	}
	maxLat, maxLon, err := coords(path, m, "maxLat", "maxLon")
	if err != nil {
		return nil, err
	}
	if minLat > maxLat {
		return nil, inputErr(path, "minLat %g is greater than maxLat %g", minLat, maxLat)
	}
	if minLon > maxLon {
		return nil, inputErr(path, "minLon %g is greater than maxLon %g", minLon, maxLon)
	}
	return graph.Within{Box: graph.BBox{MinLat: minLat, MinLon: minLon, MaxLat: maxLat, MaxLon: maxLon}}, nil
}

var opNames = map[string]graph.CmpOp{
	"eq": graph.OpEq, "ne": graph.OpNe, "lt": graph.OpLt, "lte": graph.OpLte,
	"gt": graph.OpGt, "gte": graph.OpGte, "in": graph.OpIn, "contains": graph.OpContains,
	"startsWith": graph.OpStartsWith, "isNull": graph.OpIsNull,
}

// cmps converts one field's filter object ({eq: .., in: [..]}) into comparisons.
func cmps(path, field, typ string, enum *ontology.Enum, v any) (graph.Filter, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, inputErr(path, "expected a filter object")
	}
	var and graph.And
	for _, k := range sortedKeys(m) {
		raw := deref(m[k])
		p := path + "." + k
		op, ok := opNames[k]
		if !ok {
			return nil, inputErr(p, "unknown operator %q", k)
		}
		if raw == nil {
			continue
		}
		var val any
		var err error
		switch op {
		case graph.OpIsNull:
			b, ok := raw.(bool)
			if !ok {
				return nil, inputErr(p, "expected a boolean")
			}
			val = b
		case graph.OpIn:
			list, ok := anyList(raw)
			if !ok {
				return nil, inputErr(p, "expected a list")
			}
			vals := make([]any, 0, len(list))
			for i, item := range list {
				x, err := scalar(fmt.Sprintf("%s[%d]", p, i), typ, enum, item)
				if err != nil {
					return nil, err
				}
				vals = append(vals, x)
			}
			val = vals
		case graph.OpContains, graph.OpStartsWith:
			s, ok := raw.(string)
			if !ok {
				return nil, inputErr(p, "expected a string")
			}
			val = s
		default:
			if val, err = scalar(p, typ, enum, raw); err != nil {
				return nil, err
			}
		}
		and = append(and, graph.Cmp{Field: field, Op: op, Value: val})
	}
	return and, nil
}

// scalar converts one argument value to the graph value of a property type.
func scalar(path, typ string, enum *ontology.Enum, v any) (any, error) {
	v = deref(v)
	if s, ok := v.(fmt.Stringer); ok && enum != nil {
		v = s.String()
	}
	switch typ {
	case ontology.TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, inputErr(path, "expected a string")
		}
		return s, nil
	case ontology.TypeInt:
		f, err := num(path, v)
		if err != nil {
			return nil, err
		}
		if f != math.Trunc(f) {
			return nil, inputErr(path, "%g is not an integer", f)
		}
		return int64(f), nil
	case ontology.TypeFloat:
		return num(path, v)
	case ontology.TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, inputErr(path, "expected a boolean")
		}
		return b, nil
	case ontology.TypeDateTime:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		case string:
			t, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return nil, inputErr(path, "%q is not an RFC 3339 date-time", x)
			}
			return t.UTC(), nil
		}
		return nil, inputErr(path, "expected an RFC 3339 date-time string")
	}
	if enum != nil {
		s, ok := v.(string)
		if !ok {
			return nil, inputErr(path, "expected a %s value", enum.Name)
		}
		for _, ev := range enum.Values {
			if ev == s {
				return s, nil
			}
		}
		return nil, inputErr(path, "%q is not a %s value", s, enum.Name)
	}
	return nil, inputErr(path, "type %s cannot be filtered", typ)
}
