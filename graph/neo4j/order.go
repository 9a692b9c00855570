package neo4j

import (
	"fmt"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// orderField is one resolved sort key.
type orderField struct {
	field
	desc bool
}

// orderFields resolves an ordering. Lists and JSON properties cannot be
// ordered by.
func orderFields(sc *scope, order []graph.Order) ([]orderField, error) {
	out := make([]orderField, 0, len(order))
	for _, o := range order {
		f, err := sc.resolve(o.Field)
		if err != nil {
			return nil, err
		}
		if f.list || f.kind == kJSON {
			return nil, fmt.Errorf("%w: cannot order by %q (list or JSON)", graph.ErrInvalid, o.Field)
		}
		out = append(out, orderField{f, o.Desc})
	}
	return out, nil
}

// orderBy writes the ORDER BY terms: each field with nulls last (Cypher
// sorts nulls last ascending but first descending), then the node ID.
func orderBy(c *cypher, ofs []orderField) {
	for _, o := range ofs {
		if o.desc {
			c.w(o.expr, " IS NULL, ", o.expr, " DESC, ")
		} else {
			c.w(o.expr, ", ")
		}
	}
	c.w("n.id")
}

// keyset writes the predicate "node comes after the cursor" for the
// ordering: for each field in turn, a greater value (smaller when
// descending), or null after a non-null value, or an equal value and the
// rest of the keys after; finally a greater node ID.
func keyset(c *cypher, ofs []orderField, vals []any, id string) {
	if len(ofs) == 0 {
		expr, v := builtinFields[graph.FieldID].ordered(id)
		c.w(expr, " > ").p(v)
		return
	}
	o, v := ofs[0], vals[0]
	if v == nil {
		c.w("(", o.expr, " IS NULL AND ")
		keyset(c, ofs[1:], vals[1:], id)
		c.w(")")
		return
	}
	op := " > "
	if o.desc {
		op = " < "
	}
	pv := c.param(v)
	ord, ov := o.ordered(v)
	pov := pv
	if ord != o.expr {
		pov = c.param(ov)
	}
	c.w("(", ord, op, pov, " OR ", o.expr, " IS NULL OR (", o.expr, " = ", pv, " AND ")
	keyset(c, ofs[1:], vals[1:], id)
	c.w("))")
}

// decodeCursor parses a cursor for the ordering and converts its values to
// parameters: strings for text, numbers, booleans, instants for times.
func decodeCursor(order []graph.Order, ofs []orderField, after string) ([]any, string, error) {
	vals, id, err := graph.DecodeCursor(order, after)
	if err != nil {
		return nil, "", err
	}
	bad := fmt.Errorf("%w: malformed cursor", graph.ErrInvalid)
	out := make([]any, len(vals))
	for i, v := range vals {
		if v == nil {
			continue
		}
		switch ofs[i].kind {
		case kString:
			s, ok := v.(string)
			if !ok {
				return nil, "", bad
			}
			out[i] = s
		case kTime:
			s, ok := v.(string)
			if !ok {
				return nil, "", bad
			}
			t, err := graph.ParseTime(s)
			if err != nil {
				return nil, "", bad
			}
			out[i] = normTime(t)
		case kNumber:
			switch x := v.(type) {
			case float64, int64:
				out[i] = x
			default:
				return nil, "", bad
			}
		case kBool:
			switch x := v.(type) {
			case bool:
				out[i] = x
			case float64: // the embedded store's form
				out[i] = x != 0
			case int64:
				out[i] = x != 0
			default:
				return nil, "", bad
			}
		default:
			return nil, "", bad
		}
	}
	return out, id, nil
}

// sortValue returns a node's value for an order field, as stored in
// cursors (times as graph.FormatTime text).
func sortValue(o orderField, n *graph.Node) any {
	tm := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return graph.FormatTime(t)
	}
	switch o.name {
	case graph.FieldID:
		return n.ID
	case graph.FieldClass:
		return n.Class
	case graph.FieldSource:
		if n.Prov.Source == "" {
			return nil
		}
		return n.Prov.Source
	case graph.FieldFetchedAt:
		return tm(n.Prov.FetchedAt)
	case graph.FieldIngestedAt:
		return tm(n.Prov.IngestedAt)
	case graph.FieldValidFrom:
		return tm(n.Prov.ValidFrom)
	case graph.FieldValidTo:
		return tm(n.Prov.ValidTo)
	}
	switch v := n.Props[o.name].(type) {
	case string, int64, float64, bool:
		return v
	case time.Time:
		return tm(v)
	}
	return nil
}

// cursors renders the cursor of each node.
func cursors(order []graph.Order, ofs []orderField, nodes []*graph.Node) []string {
	out := make([]string, len(nodes))
	vals := make([]any, len(ofs))
	for i, n := range nodes {
		for j, o := range ofs {
			vals[j] = sortValue(o, n)
		}
		out[i] = graph.EncodeCursor(order, vals, n.ID)
	}
	return out
}
