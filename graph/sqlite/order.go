package sqlite

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

// orderBy writes the ORDER BY terms: each field with nulls last, then the
// node ID.
func orderBy(b *builder, ofs []orderField, idExpr string) {
	for _, o := range ofs {
		b.w(o.expr)
		if o.desc {
			b.w(" DESC NULLS LAST, ")
		} else {
			b.w(" ASC NULLS LAST, ")
		}
	}
	b.w(idExpr)
}

// keyset writes the predicate "row comes after the cursor" for the
// ordering: for each field in turn, a greater value (smaller when
// descending), or null after a non-null value, or an equal value and the
// rest of the keys after; finally a greater node ID.
func keyset(b *builder, ofs []orderField, vals []any, id string) {
	if len(ofs) == 0 {
		b.w("n.id > ").p(id)
		return
	}
	o, v := ofs[0], vals[0]
	if v == nil {
		b.w("(").w(o.expr).w(" IS NULL AND ")
		keyset(b, ofs[1:], vals[1:], id)
		b.w(")")
		return
	}
	op := " > "
	if o.desc {
		op = " < "
	}
	b.w("(").w(o.expr).w(op).p(v).w(" OR ").w(o.expr).w(" IS NULL OR (").w(o.expr).w(" = ").p(v).w(" AND ")
	keyset(b, ofs[1:], vals[1:], id)
	b.w("))")
}

// cursorValues checks decoded cursor values against the ordering: a
// string field needs a string, a numeric or boolean one a number.
func cursorValues(ofs []orderField, vals []any) error {
	for i, v := range vals {
		if v == nil {
			continue
		}
		ok := false
		switch ofs[i].kind {
		case kString, kTime:
			_, ok = v.(string)
		case kNumber, kBool:
			switch v.(type) {
			case float64, int64:
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("%w: malformed cursor", graph.ErrInvalid)
		}
	}
	return nil
}

// sortValue returns the comparable form of a node's value for an order
// field, as stored in cursors.
func sortValue(o orderField, n *graph.Node) any {
	switch o.name {
	case graph.FieldID:
		return n.ID
	case graph.FieldClass:
		return n.Class
	case graph.FieldSource:
		return nullable(n.Prov.Source)
	case graph.FieldFetchedAt:
		return nullable(nullTime(n.Prov.FetchedAt).String)
	case graph.FieldIngestedAt:
		return nullable(nullTime(n.Prov.IngestedAt).String)
	case graph.FieldValidFrom:
		return nullable(nullTime(n.Prov.ValidFrom).String)
	case graph.FieldValidTo:
		return nullable(nullTime(n.Prov.ValidTo).String)
	}
	switch v := n.Props[o.name].(type) {
	case nil:
		return nil
	case string, int64, float64:
		return v
	case bool:
		if v {
			return int64(1)
		}
		return int64(0)
	case time.Time:
		return graph.FormatTime(v)
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
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
