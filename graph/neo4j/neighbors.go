package neo4j

import (
	"context"
	"fmt"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Neighbors returns, for each ID, one page of the nodes at the other end
// of the relation. One query serves every ID: UNWIND the parents, a COUNT
// subquery for each parent's total and a CALL subquery for its page
// (keyset, ordered, limited).
func (s *Store) Neighbors(ctx context.Context, q graph.NeighborQuery) ([]*graph.Page, error) {
	rel := s.ont.Relation(q.Rel)
	if rel == nil {
		return nil, fmt.Errorf("neo4j: neighbors: %w: unknown relation %q", graph.ErrInvalid, q.Rel)
	}
	if q.First <= 0 {
		return nil, fmt.Errorf("neo4j: neighbors: %w: first must be positive", graph.ErrInvalid)
	}
	if q.Dir != ontology.Out && q.Dir != ontology.In {
		return nil, fmt.Errorf("neo4j: neighbors: %w: bad direction %d", graph.ErrInvalid, q.Dir)
	}
	end := s.ends[endKey{rel.Name, q.Dir}]
	sc := end
	if q.Class != "" {
		var err error
		if sc, err = s.scopeFor(q.Class); err != nil {
			return nil, fmt.Errorf("neo4j: neighbors: %w", err)
		}
	}
	p, err := s.prepare(sc, q.Filter, q.Order, q.After)
	if err != nil {
		return nil, fmt.Errorf("neo4j: neighbors: %w", err)
	}
	pages := make([]*graph.Page, len(q.IDs))
	if len(q.IDs) == 0 {
		return pages, nil
	}
	// edges are checked against the relation's classes when written, so
	// the class test is only needed when q.Class narrows the far end
	narrow := !subset(end.classes, sc.classes)
	ids := dedupe(q.IDs)
	byID := make(map[string]*graph.Page, len(ids))
	_, err = s.read(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		clear(byID)
		g, err := s.geo(ctx, tx, p, nil)
		if err != nil {
			return nil, err
		}
		c, err := s.neighborsCypher(p, rel, q.Dir, narrow, ids, q.First, g)
		if err != nil {
			return nil, err
		}
		res, err := tx.Run(ctx, c.String(), c.params)
		if err != nil {
			return nil, err
		}
		for res.Next(ctx) {
			v := res.Record().Values
			pid, _ := v[0].(string)
			total, _ := v[1].(int64)
			rows, _ := v[2].([]any)
			pg := &graph.Page{Total: int(total), HasPrev: p.after}
			for _, r := range rows {
				pair, ok := r.([]any)
				if !ok || len(pair) != 2 {
					return nil, fmt.Errorf("neighbour row is %T", r)
				}
				if len(pg.Nodes) == q.First {
					pg.HasNext = true
					break
				}
				n, err := s.decodeNode(pair[0])
				if err != nil {
					return nil, err
				}
				pg.Nodes = append(pg.Nodes, n)
				pg.EdgeProps = append(pg.EdgeProps, s.edgeProps(rel.Name, pair[1]))
			}
			byID[pid] = pg
		}
		return nil, res.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("neo4j: neighbors: %w", err)
	}
	for i, id := range q.IDs {
		pg := byID[id]
		if pg == nil {
			pages[i] = &graph.Page{HasPrev: p.after, Cursors: []string{}}
			continue
		}
		cp := *pg
		cp.Cursors = cursors(q.Order, p.ofs, pg.Nodes)
		pages[i] = &cp
	}
	return pages, nil
}

// neighborsCypher builds the Neighbors statement:
//
//	UNWIND $ids AS pid MATCH (p:Root {id: pid})
//	WITH p, pid, COUNT { MATCH (p)-[r:REL]->(n) WHERE class AND filter } AS total
//	CALL { WITH p MATCH (p)-[r:REL]->(n) WHERE class AND filter AND keyset
//	       WITH r, n ORDER BY keys, n.id LIMIT first+1
//	       RETURN collect([properties(n), r {.props}]) AS rows }
//	RETURN pid, total, rows
func (m *model) neighborsCypher(p *prepared, rel *ontology.Relation, dir ontology.Direction, narrow bool, ids []string, first int, g *geoInputs) (*cypher, error) {
	c := newCypher()
	where, err := m.where(c, p.sc, p.f, g)
	if err != nil {
		return nil, err
	}
	pattern := "(p)-[r:" + rel.Name + "]->(n)"
	if dir == ontology.In {
		pattern = "(p)<-[r:" + rel.Name + "]-(n)"
	}
	var conds []string
	if narrow {
		ct := c.sub()
		classTest(ct, p.sc)
		conds = append(conds, ct.String())
	}
	if where != "" {
		conds = append(conds, where)
	}
	c.w("UNWIND ", c.named("ids", anyList(ids)), " AS pid MATCH (p:", m.root, " {id: pid}) WITH p, pid, COUNT { MATCH ", pattern)
	writeWhere(c, conds)
	c.w(" } AS total CALL { WITH p MATCH ", pattern)
	if p.after {
		ks := c.sub()
		keyset(ks, p.ofs, p.cur, p.curID)
		conds = append(conds, ks.String())
	}
	writeWhere(c, conds)
	c.w(" WITH r, n ORDER BY ")
	orderBy(c, p.ofs)
	c.w(" LIMIT ", c.named("limit", int64(first)+1), " RETURN collect([properties(n), ")
	if len(rel.Props) == 0 {
		c.w("null")
	} else {
		c.w("r {")
		for i, pr := range rel.Props {
			if i > 0 {
				c.w(", ")
			}
			c.w(".", pr.Name)
		}
		c.w("}")
	}
	c.w("]) AS rows } RETURN pid, total, rows")
	return c, nil
}
