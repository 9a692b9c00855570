package neo4j

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// field is a resolved filter or order field of the node variable n.
type field struct {
	name string
	expr string // Cypher expression of the value (the whole list for lists)
	// lower is the expression of the lower-cased shadow ("" when the
	// values are always ASCII: class names, enum values).
	lower string
	// ord is the expression of the code-point-ordered shadow ("" when the
	// values are always ASCII); see keyOrd.
	ord  string
	kind kind
	list bool
	prop *ontology.Property // nil for the built-in fields
}

var builtinFields = map[string]field{
	graph.FieldID:         {name: graph.FieldID, expr: "n." + keyID, lower: "n." + keyLower + keyID, ord: "n." + keyOrd + keyID, kind: kString},
	graph.FieldClass:      {name: graph.FieldClass, expr: "n." + keyClass, kind: kString},
	graph.FieldSource:     {name: graph.FieldSource, expr: "n." + keySource, lower: "n." + keyLower + keySource, ord: "n." + keyOrd + keySource, kind: kString},
	graph.FieldFetchedAt:  {name: graph.FieldFetchedAt, expr: "n." + keyFetched, kind: kTime},
	graph.FieldIngestedAt: {name: graph.FieldIngestedAt, expr: "n." + keyIngested, kind: kTime},
	graph.FieldValidFrom:  {name: graph.FieldValidFrom, expr: "n." + keyValidFrom, kind: kTime},
	graph.FieldValidTo:    {name: graph.FieldValidTo, expr: "n." + keyValidTo, kind: kTime},
}

// resolve finds a field in the scope: a built-in field or a property of
// one of the scope's classes. Only names that pass this check reach Cypher.
func (sc *scope) resolve(name string) (field, error) {
	if f, ok := builtinFields[name]; ok {
		return f, nil
	}
	p := sc.props[name]
	if p == nil || !nameRE.MatchString(name) {
		return field{}, fmt.Errorf("%w: unknown field %q on class %s", graph.ErrInvalid, name, sc.name)
	}
	if sc.ambiguous[name] {
		return field{}, fmt.Errorf("%w: field %q has different types in the subclasses of %s", graph.ErrInvalid, name, sc.name)
	}
	f := field{name: name, expr: prop("n", name), kind: kindOf(p), list: p.List, prop: p}
	if f.kind == kString && p.Enum == nil {
		f.lower = prop("n", keyLower+name)
		f.ord = prop("n", keyOrd+name)
	}
	return f, nil
}

// ordered returns the expression and parameter of an order comparison
// (<, <=, >, >=) of f with v: the value itself, or, when v has a
// character whose UTF-16 and code-point orders differ, the ordered shadow
// and v in shadow form (see keyOrd).
func (f field) ordered(v any) (string, any) {
	s, ok := v.(string)
	if !ok || f.ord == "" || !ordParamNeeded(s) {
		return f.expr, v
	}
	return "coalesce(" + f.ord + ", " + f.expr + ")", ordShadowString(s)
}

// value converts a filter value for field f into its parameter form.
func (f field) value(v any) (any, error) {
	bad := func() (any, error) {
		return nil, fmt.Errorf("%w: field %q: value %v (%T) does not fit the field", graph.ErrInvalid, f.name, v, v)
	}
	switch f.kind {
	case kString:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		return s, nil
	case kNumber:
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			if math.IsNaN(x) {
				return bad()
			}
			return x, nil
		}
		return bad()
	case kBool:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		return b, nil
	case kTime:
		t, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		return normTime(t), nil
	}
	return bad()
}

// filterCompiler compiles the filter AST into a Cypher predicate over the
// node variable n. The predicate is true for matching nodes and false or
// null otherwise; null only arises from comparisons with a missing
// property and counts as no match (Not coalesces its operand, so Not{x}
// matches exactly the nodes x does not).
type filterCompiler struct {
	c   *cypher
	sc  *scope
	geo *geoInputs
}

func (fc *filterCompiler) compile(f graph.Filter) error {
	c := fc.c
	switch x := f.(type) {
	case nil:
		c.w("true")
	case graph.And:
		if len(x) == 0 {
			c.w("true")
			return nil
		}
		c.w("(")
		for i, e := range x {
			if i > 0 {
				c.w(" AND ")
			}
			if err := fc.compile(e); err != nil {
				return err
			}
		}
		c.w(")")
	case graph.Or:
		if len(x) == 0 {
			c.w("false")
			return nil
		}
		c.w("(")
		for i, e := range x {
			if i > 0 {
				c.w(" OR ")
			}
			if err := fc.compile(e); err != nil {
				return err
			}
		}
		c.w(")")
	case graph.Not:
		c.w("NOT coalesce(")
		if err := fc.compile(x.F); err != nil {
			return err
		}
		c.w(", false)")
	case graph.Cmp:
		return fc.cmp(x)
	case graph.Near:
		if err := checkNear(x.Center, x.Meters); err != nil {
			return err
		}
		band := fc.geo.band(x)
		c.w("(point.distance(n.location, ").p(point2D(x.Center)).w(") <= ").p(prefilter(x.Meters))
		c.w(" AND CASE WHEN n.id IN ").p(band.incl).w(" THEN true WHEN n.id IN ").p(band.excl).w(" THEN false ELSE ")
		lat, lon := c.param(x.Center.Lat), c.param(x.Center.Lon)
		c.w(havExpr(c, lat, lon, "n"), " <= ").p(x.Meters).w(" END)")
	case graph.Within:
		bx := x.Box
		for _, v := range []float64{bx.MinLat, bx.MinLon, bx.MaxLat, bx.MaxLon} {
			if math.IsNaN(v) {
				return fmt.Errorf("%w: within: bad box", graph.ErrInvalid)
			}
		}
		ll, ur, ok := clampBox(bx)
		if !ok {
			c.w("false")
			return nil
		}
		c.w("point.withinBBox(n.location, ").p(point2D(ll)).w(", ").p(point2D(ur)).w(")")
	case graph.WithinArea:
		a := fc.geo.area(x.AreaID)
		if a == nil {
			c.w("false")
			return nil
		}
		c.w("(point.withinBBox(n.location, ").p(a.ll).w(", ").p(a.ur).w(") AND any(pg IN ").p(a.polys).w(" WHERE ")
		ringTest(c, "pg[0]")
		c.w(" AND none(hl IN pg[1..] WHERE ")
		ringTest(c, "hl")
		c.w(")))")
	case graph.Search:
		words := strings.Fields(strings.ToLower(x.Text))
		if len(words) == 0 {
			c.w("true")
			return nil
		}
		c.w("(")
		for i, word := range words {
			if i > 0 {
				c.w(" AND ")
			}
			c.w("n.", keySearch, " CONTAINS ").p(word)
		}
		c.w(")")
	default:
		return fmt.Errorf("%w: unsupported filter %T", graph.ErrInvalid, f)
	}
	return nil
}

// clampBox returns the corners of a box clamped to WGS84 (so that they are
// valid points); false for a box that holds no point.
func clampBox(bx graph.BBox) (ll, ur graph.Point, ok bool) {
	for _, v := range []float64{bx.MinLat, bx.MinLon, bx.MaxLat, bx.MaxLon} {
		if math.IsNaN(v) {
			return ll, ur, false
		}
	}
	ll = graph.Point{Lat: max(bx.MinLat, -90), Lon: max(bx.MinLon, -180)}
	ur = graph.Point{Lat: min(bx.MaxLat, 90), Lon: min(bx.MaxLon, 180)}
	return ll, ur, ll.Lat <= ur.Lat && ll.Lon <= ur.Lon
}

// ringTest writes the even-odd test of geo.Shape.Contains for the ring
// (a list of edges [x_i, y_i, x_j, y_j]) named by ring.
func ringTest(c *cypher, ring string) {
	const lat, lon = "n.location.latitude", "n.location.longitude"
	c.w("reduce(ins = false, eg IN ", ring, " | CASE WHEN (eg[1] > ", lat, ") <> (eg[3] > ", lat, ") AND ", lon,
		" < (eg[2] - eg[0]) * (", lat, " - eg[1]) / (eg[3] - eg[1]) + eg[0] THEN NOT ins ELSE ins END)")
}

func (g *geoInputs) band(n graph.Near) *nearBand {
	if g != nil {
		if b := g.bands[n]; b != nil {
			return &nearBand{incl: orEmpty(b.incl), excl: orEmpty(b.excl)}
		}
	}
	return &nearBand{incl: []any{}, excl: []any{}}
}

// orEmpty turns a nil list into an empty one, so Cypher sees [] not null.
func orEmpty(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

func (g *geoInputs) area(id string) *areaPoly {
	if g == nil {
		return nil
	}
	return g.areas[id]
}

var cmpOps = map[graph.CmpOp]string{graph.OpEq: " = ", graph.OpLt: " < ", graph.OpLte: " <= ", graph.OpGt: " > ", graph.OpGte: " >= "}

// cmp compiles a comparison. For a list property the comparison holds when
// some element satisfies it (ne: when no element equals the value).
func (fc *filterCompiler) cmp(x graph.Cmp) error {
	c := fc.c
	f, err := fc.sc.resolve(x.Field)
	if err != nil {
		return err
	}
	if x.Op == graph.OpIsNull {
		want, ok := x.Value.(bool)
		if !ok {
			return fmt.Errorf("%w: field %q: isNull takes a bool", graph.ErrInvalid, x.Field)
		}
		if want {
			c.w(f.expr, " IS NULL")
		} else {
			c.w(f.expr, " IS NOT NULL")
		}
		return nil
	}
	if f.kind == kJSON {
		return fmt.Errorf("%w: field %q: JSON properties only support isNull", graph.ErrInvalid, x.Field)
	}
	// elem is the expression compared: the property itself, or the element
	// x of a list inside any().
	elem, open, closeFn := f.expr, func() {}, func() {}
	if f.list {
		elem = "x"
		open = func() { c.w("any(x IN ", f.expr, " WHERE ") }
		closeFn = func() { c.w(")") }
	}
	switch x.Op {
	case graph.OpEq, graph.OpLt, graph.OpLte, graph.OpGt, graph.OpGte:
		if f.kind == kBool && x.Op != graph.OpEq {
			return fmt.Errorf("%w: field %q: booleans only support eq, ne, in and isNull", graph.ErrInvalid, x.Field)
		}
		v, err := f.value(x.Value)
		if err != nil {
			return err
		}
		if x.Op != graph.OpEq {
			var expr string
			expr, v = f.ordered(v)
			if expr != f.expr {
				if f.list {
					c.w("any(x IN ", expr, " WHERE x", cmpOps[x.Op]).p(v).w(")")
				} else {
					c.w(expr, cmpOps[x.Op]).p(v)
				}
				return nil
			}
		}
		open()
		c.w(elem, cmpOps[x.Op]).p(v)
		closeFn()
	case graph.OpNe:
		v, err := f.value(x.Value)
		if err != nil {
			return err
		}
		if f.list {
			c.w("(", f.expr, " IS NOT NULL AND none(x IN ", f.expr, " WHERE x = ").p(v).w("))")
			return nil
		}
		c.w(elem, " <> ").p(v)
	case graph.OpIn:
		list, ok := x.Value.([]any)
		if !ok {
			return fmt.Errorf("%w: field %q: in takes a list ([]any), got %T", graph.ErrInvalid, x.Field, x.Value)
		}
		if len(list) == 0 {
			c.w("false")
			return nil
		}
		vals := make([]any, len(list))
		for i, e := range list {
			if vals[i], err = f.value(e); err != nil {
				return err
			}
		}
		open()
		c.w(elem, " IN ").p(vals)
		closeFn()
	case graph.OpContains, graph.OpStartsWith:
		if f.kind != kString {
			return fmt.Errorf("%w: field %q: %s only applies to strings", graph.ErrInvalid, x.Field, x.Op)
		}
		v, ok := x.Value.(string)
		if !ok {
			return fmt.Errorf("%w: field %q: %s takes a string, got %T", graph.ErrInvalid, x.Field, x.Op, x.Value)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: field %q: value is not valid UTF-8", graph.ErrInvalid, x.Field)
		}
		if x.Op == graph.OpStartsWith {
			open()
			c.w(elem, " STARTS WITH ").p(v)
			closeFn()
			return nil
		}
		// Go lower-cases both sides: the shadow when there is one, else
		// toLower of ASCII text, where Java and Go agree
		lv := strings.ToLower(v)
		switch {
		case f.lower == "" && f.list:
			c.w("any(x IN ", f.expr, " WHERE toLower(x) CONTAINS ").p(lv).w(")")
		case f.lower == "":
			c.w("toLower(", f.expr, ") CONTAINS ").p(lv)
		case f.list:
			c.w("any(x IN coalesce(", f.lower, ", [y IN ", f.expr, " | toLower(y)]) WHERE x CONTAINS ").p(lv).w(")")
		default:
			c.w("coalesce(", f.lower, ", toLower(", f.expr, ")) CONTAINS ").p(lv)
		}
	default:
		return fmt.Errorf("%w: field %q: unknown operator %q", graph.ErrInvalid, x.Field, x.Op)
	}
	return nil
}

// matchLabels returns the label expression that selects a class scope's
// nodes: the class label, plus the labels of indexes that can serve the
// filter's top-level conjuncts (ancestors of the class, which every node
// of the scope carries anyway, so the planner may pick their indexes): the
// point index of the top located class, the range index of an indexed
// property, the text index on the root's _search.
func (m *model) matchLabels(sc *scope, f graph.Filter) string {
	if sc.class == nil {
		return m.root
	}
	labels := []string{sc.class.Name}
	add := func(l string) {
		for _, x := range labels {
			if x == l {
				return
			}
		}
		labels = append(labels, l)
	}
	var conj []graph.Filter
	switch x := f.(type) {
	case graph.And:
		conj = x
	case nil:
	default:
		conj = []graph.Filter{x}
	}
	for _, e := range conj {
		switch x := e.(type) {
		case graph.Near, graph.Within, graph.WithinArea:
			if top := topLocated(sc.class); top != nil {
				add(top.Name)
			}
		case graph.Search:
			add(m.root) // the text index on _search
		case graph.Cmp:
			switch x.Op {
			case graph.OpEq, graph.OpIn, graph.OpLt, graph.OpLte, graph.OpGt, graph.OpGte, graph.OpStartsWith:
			default:
				continue
			}
			if p := sc.props[x.Field]; p != nil && p.Indexed && !p.List {
				if owner := m.ont.Class(p.Owner); owner != nil && sc.class.IsA(owner) {
					add(owner.Name)
				}
			}
		}
	}
	return strings.Join(labels, ":")
}

// classTest writes the predicate that a node belongs to a scope, for
// nodes reached through a relationship.
func classTest(c *cypher, sc *scope) {
	if sc.class != nil {
		c.w("n:", sc.class.Name)
		return
	}
	if len(sc.classes) == 0 {
		c.w("false")
		return
	}
	c.w("(")
	for i, cl := range sc.classes {
		if i > 0 {
			c.w(" OR ")
		}
		c.w("n:", cl)
	}
	c.w(")")
}
