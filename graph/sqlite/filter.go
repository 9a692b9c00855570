package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
	"github.com/cityhub/cityhub/ontology"
)

// kind is how a field's values compare.
type kind int

const (
	kString kind = iota // strings and enums: byte (code point) order
	kNumber             // Int and Float: numeric order
	kBool               // stored 1 / 0; only equality
	kTime               // graph.TimeLayout text: text order is time order
	kJSON               // only isNull
)

// field is a resolved filter or order field of the node aliased n.
type field struct {
	name string
	expr string // SQL expression of the scalar value (the JSON text for lists)
	kind kind
	list bool
	prop *ontology.Property // nil for the built-in fields
	// path is the JSON path of a property, for json_each over lists.
	path string
}

var builtinFields = map[string]field{
	graph.FieldID:         {name: graph.FieldID, expr: "n.id", kind: kString},
	graph.FieldClass:      {name: graph.FieldClass, expr: "n.class", kind: kString},
	graph.FieldSource:     {name: graph.FieldSource, expr: "n.source", kind: kString},
	graph.FieldFetchedAt:  {name: graph.FieldFetchedAt, expr: "n.fetched_at", kind: kTime},
	graph.FieldIngestedAt: {name: graph.FieldIngestedAt, expr: "n.ingested_at", kind: kTime},
	graph.FieldValidFrom:  {name: graph.FieldValidFrom, expr: "n.valid_from", kind: kTime},
	graph.FieldValidTo:    {name: graph.FieldValidTo, expr: "n.valid_to", kind: kTime},
}

// resolve finds a field in the scope: a built-in field or a property of
// one of the scope's classes. Only names that pass this check reach SQL.
func (sc *scope) resolve(name string) (field, error) {
	if f, ok := builtinFields[name]; ok {
		return f, nil
	}
	p := sc.props[name]
	if p == nil || !safeName(name) {
		what := "class " + sc.name
		if sc.name == "" {
			what = "any class"
		}
		return field{}, fmt.Errorf("%w: unknown field %q on %s", graph.ErrInvalid, name, what)
	}
	if sc.ambiguous[name] {
		return field{}, fmt.Errorf("%w: field %q has different types in the subclasses of %s", graph.ErrInvalid, name, sc.name)
	}
	return field{name: name, expr: propExpr("n", name), kind: kindOf(p), list: p.List, prop: p, path: "$." + name}, nil
}

// kindOf is how values of a property compare.
func kindOf(p *ontology.Property) kind {
	switch {
	case p.Enum != nil, p.Type == ontology.TypeString:
		return kString
	case p.Type == ontology.TypeInt, p.Type == ontology.TypeFloat:
		return kNumber
	case p.Type == ontology.TypeBoolean:
		return kBool
	case p.Type == ontology.TypeDateTime:
		return kTime
	}
	return kJSON
}

// sqlValue converts a filter value for field f into its bound form.
func (f field) sqlValue(v any) (any, error) {
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
		if b {
			return int64(1), nil
		}
		return int64(0), nil
	case kTime:
		t, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		return graph.FormatTime(t), nil
	}
	return bad()
}

// builder accumulates SQL text and its arguments.
type builder struct {
	sb   strings.Builder
	args []any
}

func (b *builder) w(s string) *builder { b.sb.WriteString(s); return b }

// p writes a placeholder bound to v.
func (b *builder) p(v any) *builder {
	b.args = append(b.args, v)
	b.sb.WriteByte('?')
	return b
}

// areaShapes holds the encoded polygons of the areas a filter names (nil
// for unknown areas or areas without polygons).
type areaShapes map[string]*areaShape

type areaShape struct {
	blob                           []byte
	minLat, minLon, maxLat, maxLon float64
}

// loadAreas fetches and encodes the polygons of every WithinArea in f.
func (s *Store) loadAreas(ctx context.Context, tx *sql.Tx, f graph.Filter) (areaShapes, error) {
	var ids []string
	var walk func(graph.Filter)
	walk = func(f graph.Filter) {
		switch x := f.(type) {
		case graph.And:
			for _, c := range x {
				walk(c)
			}
		case graph.Or:
			for _, c := range x {
				walk(c)
			}
		case graph.Not:
			walk(x.F)
		case graph.WithinArea:
			ids = append(ids, x.AreaID)
		}
	}
	walk(f)
	if len(ids) == 0 {
		return nil, nil
	}
	out := areaShapes{}
	list, _ := json.Marshal(ids)
	rows, err := s.query(ctx, tx, `SELECT id, geometry FROM nodes WHERE id IN (SELECT value FROM json_each(?)) AND geometry IS NOT NULL`, string(list))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, gj string
		if err := rows.Scan(&id, &gj); err != nil {
			return nil, err
		}
		shape, err := geo.ParseGeoJSON([]byte(gj))
		if err != nil || len(shape.Polygons) == 0 {
			continue
		}
		out[id] = &areaShape{blob: encodePolygons(shape), minLat: shape.MinLat, minLon: shape.MinLon, maxLat: shape.MaxLat, maxLon: shape.MaxLon}
	}
	return out, rows.Err()
}

// filter compiles f for the scope into b. The SQL is true for matching
// rows and false or NULL otherwise; NULL only arises from comparisons with
// a null property and counts as no match (Not coalesces its operand, so
// Not{x} matches exactly the rows x does not).
func (s *Store) filter(b *builder, sc *scope, areas areaShapes, f graph.Filter) error {
	switch x := f.(type) {
	case nil:
		b.w("1")
	case graph.And:
		if len(x) == 0 {
			b.w("1")
			return nil
		}
		b.w("(")
		for i, c := range x {
			if i > 0 {
				b.w(" AND ")
			}
			if err := s.filter(b, sc, areas, c); err != nil {
				return err
			}
		}
		b.w(")")
	case graph.Or:
		if len(x) == 0 {
			b.w("0")
			return nil
		}
		b.w("(")
		for i, c := range x {
			if i > 0 {
				b.w(" OR ")
			}
			if err := s.filter(b, sc, areas, c); err != nil {
				return err
			}
		}
		b.w(")")
	case graph.Not:
		b.w("NOT coalesce(")
		if err := s.filter(b, sc, areas, x.F); err != nil {
			return err
		}
		b.w(", 0)")
	case graph.Cmp:
		return s.cmp(b, sc, x)
	case graph.Near:
		if !geo.ValidPoint(x.Center.Lat, x.Center.Lon) || math.IsNaN(x.Meters) || math.IsInf(x.Meters, 0) || x.Meters < 0 {
			return fmt.Errorf("%w: near: bad centre or distance", graph.ErrInvalid)
		}
		minLat, minLon, maxLat, maxLon := geo.RadiusBox(x.Center.Lat, x.Center.Lon, x.Meters)
		rtreeBox(b, sc, minLat, minLon, maxLat, maxLon)
		b.w(" AND cityhub_distance(").p(x.Center.Lat).w(", ").p(x.Center.Lon).w(", n.lat, n.lon) <= ").p(x.Meters)
	case graph.Within:
		bx := x.Box
		for _, v := range []float64{bx.MinLat, bx.MinLon, bx.MaxLat, bx.MaxLon} {
			if math.IsNaN(v) {
				return fmt.Errorf("%w: within: bad box", graph.ErrInvalid)
			}
		}
		b.w("(")
		rtreeBox(b, sc, bx.MinLat, bx.MinLon, bx.MaxLat, bx.MaxLon)
		b.w(" AND n.lat BETWEEN ").p(bx.MinLat).w(" AND ").p(bx.MaxLat)
		b.w(" AND n.lon BETWEEN ").p(bx.MinLon).w(" AND ").p(bx.MaxLon).w(")")
	case graph.WithinArea:
		a := areas[x.AreaID]
		if a == nil {
			b.w("0")
			return nil
		}
		b.w("(")
		rtreeBox(b, sc, a.minLat, a.minLon, a.maxLat, a.maxLon)
		b.w(" AND cityhub_in_polygon(").p(a.blob).w(", n.lat, n.lon))")
	case graph.Search:
		words := strings.Fields(strings.ToLower(x.Text))
		if len(words) == 0 {
			b.w("1")
			return nil
		}
		b.w("(")
		for i, word := range words {
			if i > 0 {
				b.w(" AND ")
			}
			b.w("instr(n.search, ").p(word).w(") > 0")
		}
		b.w(")")
	default:
		return fmt.Errorf("%w: unsupported filter %T", graph.ErrInvalid, f)
	}
	return nil
}

// cmp compiles a comparison. For a list property the comparison holds when
// some element satisfies it (ne: when no element equals the value).
func (s *Store) cmp(b *builder, sc *scope, c graph.Cmp) error {
	f, err := sc.resolve(c.Field)
	if err != nil {
		return err
	}
	if c.Op == graph.OpIsNull {
		want, ok := c.Value.(bool)
		if !ok {
			return fmt.Errorf("%w: field %q: isNull takes a bool", graph.ErrInvalid, c.Field)
		}
		b.w(f.expr)
		if want {
			b.w(" IS NULL")
		} else {
			b.w(" IS NOT NULL")
		}
		return nil
	}
	if f.kind == kJSON {
		return fmt.Errorf("%w: field %q: JSON properties only support isNull", graph.ErrInvalid, c.Field)
	}
	// elem is the expression compared: the property itself, or the element
	// of a list inside EXISTS.
	elem := f.expr
	open := func() {}
	closeFn := func() {}
	if f.list {
		elem = "j.value"
		open = func() { b.w("EXISTS (SELECT 1 FROM json_each(n.props, '" + f.path + "') AS j WHERE ") }
		closeFn = func() { b.w(")") }
	}
	switch c.Op {
	case graph.OpEq, graph.OpLt, graph.OpLte, graph.OpGt, graph.OpGte:
		if f.kind == kBool && c.Op != graph.OpEq {
			return fmt.Errorf("%w: field %q: booleans only support eq, ne, in and isNull", graph.ErrInvalid, c.Field)
		}
		v, err := f.sqlValue(c.Value)
		if err != nil {
			return err
		}
		open()
		b.w(elem).w(map[graph.CmpOp]string{graph.OpEq: " = ", graph.OpLt: " < ", graph.OpLte: " <= ", graph.OpGt: " > ", graph.OpGte: " >= "}[c.Op]).p(v)
		closeFn()
	case graph.OpNe:
		v, err := f.sqlValue(c.Value)
		if err != nil {
			return err
		}
		if f.list {
			b.w("(").w(f.expr).w(" IS NOT NULL AND NOT ")
			open()
			b.w("j.value = ").p(v)
			closeFn()
			b.w(")")
			return nil
		}
		b.w(elem).w(" <> ").p(v)
	case graph.OpIn:
		list, ok := c.Value.([]any)
		if !ok {
			return fmt.Errorf("%w: field %q: in takes a list ([]any), got %T", graph.ErrInvalid, c.Field, c.Value)
		}
		if len(list) == 0 {
			b.w("0")
			return nil
		}
		vals := make([]any, len(list))
		for i, e := range list {
			if vals[i], err = f.sqlValue(e); err != nil {
				return err
			}
		}
		raw, err := json.Marshal(vals)
		if err != nil {
			return fmt.Errorf("%w: field %q: %v", graph.ErrInvalid, c.Field, err)
		}
		open()
		b.w(elem).w(" IN (SELECT value FROM json_each(").p(string(raw)).w("))")
		closeFn()
	case graph.OpContains, graph.OpStartsWith:
		if f.kind != kString {
			return fmt.Errorf("%w: field %q: %s only applies to strings", graph.ErrInvalid, c.Field, c.Op)
		}
		v, ok := c.Value.(string)
		if !ok {
			return fmt.Errorf("%w: field %q: %s takes a string, got %T", graph.ErrInvalid, c.Field, c.Op, c.Value)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: field %q: value is not valid UTF-8", graph.ErrInvalid, c.Field)
		}
		open()
		if c.Op == graph.OpContains {
			// ASCII text (as many characters as bytes, so no NUL either)
			// lower-cases natively and exactly; anything else goes through
			// Go, as bytes (text reaches Go functions cut at a NUL).
			lv := strings.ToLower(v)
			b.w("(CASE WHEN length(").w(elem).w(") = octet_length(").w(elem).w(") THEN instr(lower(").w(elem).w("), ").p(lv)
			b.w(") ELSE instr(cityhub_lower(CAST(").w(elem).w(" AS BLOB)), ").p([]byte(lv)).w(") END > 0)")
		} else {
			// every string with prefix v sorts in [v, v+"\xff"): 0xff never
			// occurs in UTF-8. The range can use an index.
			b.w("(").w(elem).w(" >= ").p(v).w(" AND ").w(elem).w(" < ").p(v + "\xff").w(")")
		}
		closeFn()
	default:
		return fmt.Errorf("%w: field %q: unknown operator %q", graph.ErrInvalid, c.Field, c.Op)
	}
	return nil
}

// classes writes the class restriction of a scope.
func classes(b *builder, sc *scope) {
	if sc.all {
		b.w("1")
		return
	}
	if len(sc.classes) == 0 {
		b.w("0")
		return
	}
	if len(sc.classes) == 1 {
		b.w("n.class = ").p(sc.classes[0])
		return
	}
	b.w("n.class IN (")
	for i, c := range sc.classes {
		if i > 0 {
			b.w(", ")
		}
		b.p(c)
	}
	b.w(")")
}
