package neo4j

import (
	"context"
	"fmt"
	"time"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Aggregate groups the matching nodes by one field and reports counts and
// statistics of a numeric field, in one query. Groups are sorted by key
// with the null group last. Without GroupBy there is exactly one group
// (Count 0 when nothing matches); grouping by a list or JSON property is
// ErrInvalid, as is a Field that is not a scalar Int or Float.
func (s *Store) Aggregate(ctx context.Context, q graph.AggregateQuery) ([]graph.Group, error) {
	sc, err := s.scopeFor(q.Class)
	if err != nil {
		return nil, fmt.Errorf("neo4j: aggregate: %w", err)
	}
	var group, stat *field
	if q.GroupBy != "" {
		f, err := sc.resolve(q.GroupBy)
		if err != nil {
			return nil, fmt.Errorf("neo4j: aggregate: %w", err)
		}
		if f.list || f.kind == kJSON {
			return nil, fmt.Errorf("neo4j: aggregate: %w: cannot group by %q (list or JSON)", graph.ErrInvalid, q.GroupBy)
		}
		group = &f
	}
	if q.Field != "" {
		f, err := sc.resolve(q.Field)
		if err != nil {
			return nil, fmt.Errorf("neo4j: aggregate: %w", err)
		}
		if f.list || f.kind != kNumber {
			return nil, fmt.Errorf("neo4j: aggregate: %w: %q is not a numeric property", graph.ErrInvalid, q.Field)
		}
		stat = &f
	}
	p, err := s.prepare(sc, q.Filter, nil, "")
	if err != nil {
		return nil, fmt.Errorf("neo4j: aggregate: %w", err)
	}
	var out []graph.Group
	_, err = s.read(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		out = out[:0]
		g, err := s.geo(ctx, tx, p, nil)
		if err != nil {
			return nil, err
		}
		c, err := s.aggregateCypher(p, group, stat, g)
		if err != nil {
			return nil, err
		}
		res, err := tx.Run(ctx, c.String(), c.params)
		if err != nil {
			return nil, err
		}
		for res.Next(ctx) {
			v := res.Record().Values
			var gr graph.Group
			if group != nil {
				gr.Key = groupKey(group, v[0])
				v = v[1:]
			}
			n, _ := v[0].(int64)
			gr.Count = int(n)
			gr.Min, gr.Max, gr.Avg, gr.Sum = number(v[1]), number(v[2]), number(v[3]), number(v[4])
			out = append(out, gr)
		}
		return nil, res.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("neo4j: aggregate: %w", err)
	}
	return out, nil
}

// aggregateCypher builds the Aggregate statement:
//
//	MATCH (n:Labels) WHERE filter WITH n.group AS k, n.field AS v
//	RETURN k, count(*), min(v), max(v), avg(v), sum(v) ORDER BY k
//
// (sum is null when no value is, as in SQL; without a group, no k).
func (m *model) aggregateCypher(p *prepared, group, stat *field, g *geoInputs) (*cypher, error) {
	c := newCypher()
	where, err := m.where(c, p.sc, p.f, g)
	if err != nil {
		return nil, err
	}
	c.w("MATCH (n:", p.labels, ")", m.spatialHint(p.sc, p.f, g))
	if where != "" {
		c.w(" WHERE ", where)
	}
	k, v := "null", "null"
	if group != nil {
		k = group.expr
	}
	if stat != nil {
		v = stat.expr
	}
	c.w(" WITH ", k, " AS k, ", v, " AS v RETURN ")
	if group != nil {
		c.w("k, ")
	}
	c.w("count(*), min(v), max(v), avg(v), CASE WHEN count(v) = 0 THEN null ELSE sum(v) END")
	if group != nil {
		c.w(" ORDER BY k")
	}
	return c, nil
}

func number(v any) *float64 {
	var f float64
	switch x := v.(type) {
	case int64:
		f = float64(x)
	case float64:
		f = x
	default:
		return nil
	}
	return &f
}

// groupKey converts a group value to the field's Go type.
func groupKey(f *field, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		return normTime(x)
	case int64:
		if f.prop != nil && f.prop.Type == ontology.TypeFloat {
			return float64(x)
		}
	case float64:
		if f.prop != nil && f.prop.Type == ontology.TypeInt {
			return int64(x)
		}
	}
	return v
}
