package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Aggregate groups the matching nodes by one field and reports counts and
// statistics of a numeric field. Groups are sorted by key with the null
// group last. Without GroupBy there is exactly one group (Count 0 when
// nothing matches); grouping by a list or JSON property is ErrInvalid, as
// is a Field that is not a scalar Int or Float.
func (s *Store) Aggregate(ctx context.Context, q graph.AggregateQuery) ([]graph.Group, error) {
	sc, err := s.scopeFor(q.Class)
	if err != nil {
		return nil, fmt.Errorf("sqlite: aggregate: %w", err)
	}
	var group, stat *field
	if q.GroupBy != "" {
		f, err := sc.resolve(q.GroupBy)
		if err != nil {
			return nil, fmt.Errorf("sqlite: aggregate: %w", err)
		}
		if f.list || f.kind == kJSON {
			return nil, fmt.Errorf("sqlite: aggregate: %w: cannot group by %q (list or JSON)", graph.ErrInvalid, q.GroupBy)
		}
		group = &f
	}
	if q.Field != "" {
		f, err := sc.resolve(q.Field)
		if err != nil {
			return nil, fmt.Errorf("sqlite: aggregate: %w", err)
		}
		if f.list || f.kind != kNumber {
			return nil, fmt.Errorf("sqlite: aggregate: %w: %q is not a numeric property", graph.ErrInvalid, q.Field)
		}
		stat = &f
	}
	var tx *sql.Tx
	if hasArea(q.Filter) {
		if tx, err = s.readTx(ctx); err != nil {
			return nil, fmt.Errorf("sqlite: aggregate: %w", err)
		}
		defer tx.Rollback()
	}
	areas, err := s.loadAreas(ctx, tx, q.Filter)
	if err != nil {
		return nil, fmt.Errorf("sqlite: aggregate: %w", err)
	}
	var b builder
	b.w("SELECT ")
	if group != nil {
		b.w(group.expr)
	} else {
		b.w("NULL")
	}
	b.w(" AS k, count(*)")
	if stat != nil {
		e := stat.expr
		b.w(", min(" + e + "), max(" + e + "), avg(" + e + "), sum(" + e + ")")
	} else {
		b.w(", NULL, NULL, NULL, NULL")
	}
	b.w(" FROM nodes n WHERE ")
	if spatial(q.Filter) {
		b.w("+")
	}
	classes(&b, sc)
	b.w(" AND ")
	if err := s.filter(&b, sc, areas, graph.Simplify(q.Filter)); err != nil {
		return nil, fmt.Errorf("sqlite: aggregate: %w", err)
	}
	if group != nil {
		b.w(" GROUP BY k ORDER BY k IS NULL, k")
	}
	rows, err := s.query(ctx, tx, b.sb.String(), b.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: aggregate: %w", err)
	}
	defer rows.Close()
	var out []graph.Group
	for rows.Next() {
		var key any
		var count int
		var mn, mx, avg, sum sql.NullFloat64
		if err := rows.Scan(&key, &count, &mn, &mx, &avg, &sum); err != nil {
			return nil, fmt.Errorf("sqlite: aggregate: %w", err)
		}
		g := graph.Group{Count: count, Min: ptr(mn), Max: ptr(mx), Avg: ptr(avg), Sum: ptr(sum)}
		if group != nil {
			g.Key = groupKey(group, key)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: aggregate: %w", err)
	}
	return out, nil
}

func ptr(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	f := v.Float64
	return &f
}

// groupKey converts a SQL group value to the field's Go type.
func groupKey(f *field, v any) any {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	if v == nil {
		return nil
	}
	switch f.kind {
	case kBool:
		if i, ok := v.(int64); ok {
			return i != 0
		}
	case kTime:
		if s, ok := v.(string); ok {
			if t, err := graph.ParseTime(s); err == nil {
				return t
			}
		}
	case kNumber:
		if f.prop != nil && f.prop.Type == ontology.TypeFloat {
			switch x := v.(type) {
			case int64:
				return float64(x)
			}
		}
		if f.prop != nil && f.prop.Type == ontology.TypeInt {
			if x, ok := v.(float64); ok {
				return int64(x)
			}
		}
	}
	return v
}
