package graph

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Filter is a node of the filter AST. Every backend compiles this one
// model; GraphQL `where` inputs, subscription filters and connector lookups
// all produce it. The zero value of a Filter interface (nil) matches all.
type Filter interface {
	filter()
	// Key returns a canonical text form: equal filters have equal keys.
	Key() string
}

// And matches when every child matches. An empty And matches all.
type And []Filter

// Or matches when any child matches. An empty Or matches nothing.
type Or []Filter

// Not matches when its child does not.
type Not struct{ F Filter }

// CmpOp is a comparison operator.
type CmpOp string

// Comparison operators.
const (
	OpEq         CmpOp = "eq"
	OpNe         CmpOp = "ne"
	OpLt         CmpOp = "lt"
	OpLte        CmpOp = "lte"
	OpGt         CmpOp = "gt"
	OpGte        CmpOp = "gte"
	OpIn         CmpOp = "in"
	OpContains   CmpOp = "contains"   // case-insensitive substring (strings)
	OpStartsWith CmpOp = "startsWith" // case-sensitive prefix (strings)
	OpIsNull     CmpOp = "isNull"     // Value is bool: true = is null, false = is not null
)

// Field names the API exposes besides ontology properties.
const (
	FieldID    = "id"
	FieldClass = "class"
	// Provenance fields, filterable and orderable on every class.
	FieldSource     = "_source"
	FieldFetchedAt  = "_fetchedAt"
	FieldIngestedAt = "_ingestedAt"
	FieldValidFrom  = "_validFrom"
	FieldValidTo    = "_validTo"
)

// Cmp compares a property with a value. Values are string, int64, float64,
// bool or time.Time; for OpIn, Value is []any (possibly empty, which
// matches nothing). A property that is a list matches when any element
// matches (eq, in, contains, startsWith).
type Cmp struct {
	Field string
	Op    CmpOp
	Value any
}

// Near matches located nodes whose point lies within Meters of the centre
// (great-circle distance; a point exactly on the radius matches).
type Near struct {
	Center Point
	Meters float64
}

// Within matches located nodes whose point lies inside the box (edges included).
type Within struct{ Box BBox }

// WithinArea matches located nodes whose point lies inside the polygon
// geometry of the node AreaID (for example a District). An unknown area or
// an area without polygon geometry matches nothing.
type WithinArea struct{ AreaID string }

// Search matches nodes whose searchable text properties (the ontology marks
// them; name and description at least) contain every word of Text,
// case-insensitively.
type Search struct{ Text string }

func (And) filter()        {}
func (Or) filter()         {}
func (Not) filter()        {}
func (Cmp) filter()        {}
func (Near) filter()       {}
func (Within) filter()     {}
func (WithinArea) filter() {}
func (Search) filter()     {}

func keys(fs []Filter) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = KeyOf(f)
	}
	return strings.Join(parts, ",")
}

// Key implements Filter.
func (f And) Key() string { return "and(" + keys(f) + ")" }

// Key implements Filter.
func (f Or) Key() string { return "or(" + keys(f) + ")" }

// Key implements Filter.
func (f Not) Key() string { return "not(" + KeyOf(f.F) + ")" }

// Key implements Filter.
func (f Cmp) Key() string { return fmt.Sprintf("%s %s %s", f.Field, f.Op, valueKey(f.Value)) }

// Key implements Filter.
func (f Near) Key() string {
	return fmt.Sprintf("near(%g,%g,%g)", f.Center.Lat, f.Center.Lon, f.Meters)
}

// Key implements Filter.
func (f Within) Key() string {
	return fmt.Sprintf("within(%g,%g,%g,%g)", f.Box.MinLat, f.Box.MinLon, f.Box.MaxLat, f.Box.MaxLon)
}

// Key implements Filter.
func (f WithinArea) Key() string { return "withinArea(" + jsonString(f.AreaID) + ")" }

// Key implements Filter.
func (f Search) Key() string { return "search(" + jsonString(f.Text) + ")" }

// KeyOf returns f.Key(), or "" for a nil filter.
func KeyOf(f Filter) string {
	if f == nil {
		return ""
	}
	return f.Key()
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func valueKey(v any) string {
	switch x := v.(type) {
	case time.Time:
		return "t" + FormatTime(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = valueKey(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case string:
		return jsonString(x)
	default:
		return fmt.Sprintf("%T:%v", v, v)
	}
}

// Simplify flattens nested And/Or and drops empty Ands; it returns nil for a
// filter that matches everything.
func Simplify(f Filter) Filter {
	switch x := f.(type) {
	case nil:
		return nil
	case And:
		var out And
		for _, c := range x {
			c = Simplify(c)
			switch cc := c.(type) {
			case nil:
			case And:
				out = append(out, cc...)
			default:
				out = append(out, cc)
			}
		}
		switch len(out) {
		case 0:
			return nil
		case 1:
			return out[0]
		}
		return out
	case Or:
		var out Or
		for _, c := range x {
			c = Simplify(c)
			if c == nil {
				return nil // one branch matches all
			}
			if cc, ok := c.(Or); ok {
				out = append(out, cc...)
				continue
			}
			out = append(out, c)
		}
		if len(out) == 1 {
			return out[0]
		}
		return out
	case Not:
		return Not{Simplify(x.F)}
	}
	return f
}

// Fields returns the property names a filter refers to, sorted.
func Fields(f Filter) []string {
	set := map[string]bool{}
	var walk func(Filter)
	walk = func(f Filter) {
		switch x := f.(type) {
		case And:
			for _, c := range x {
				walk(c)
			}
		case Or:
			for _, c := range x {
				walk(c)
			}
		case Not:
			walk(x.F)
		case Cmp:
			set[x.Field] = true
		}
	}
	walk(f)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TimeLayout is the fixed-width text form backends use for instants, so
// that text order is time order.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTime renders t in UTC with TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime parses TimeLayout (or any RFC 3339 form).
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(TimeLayout, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("graph: parse time %q: %w", s, err)
	}
	return t.UTC(), nil
}
