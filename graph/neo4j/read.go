package neo4j

import (
	"context"
	"fmt"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/cityhub/cityhub/graph"
)

// Nodes returns the nodes with the given IDs in order, nil for missing.
// One query: UNWIND the distinct IDs, match each by the unique id.
func (s *Store) Nodes(ctx context.Context, ids []string) ([]*graph.Node, error) {
	out := make([]*graph.Node, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	c := s.nodesCypher(ids)
	byID := make(map[string]*graph.Node, len(ids))
	_, err := s.read(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		clear(byID)
		res, err := tx.Run(ctx, c.String(), c.params)
		if err != nil {
			return nil, err
		}
		for res.Next(ctx) {
			n, err := s.decodeNode(res.Record().Values[0])
			if err != nil {
				return nil, err
			}
			byID[n.ID] = n
		}
		return nil, res.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("neo4j: nodes: %w", err)
	}
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out, nil
}

func (m *model) nodesCypher(ids []string) *cypher {
	c := newCypher()
	c.w("UNWIND ", c.named("ids", anyList(dedupe(ids))), " AS id MATCH (n:", m.root, " {id: id}) RETURN properties(n)")
	return c
}

// anyList converts strings to a parameter list.
func anyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// dedupe returns the distinct strings in first-seen order.
func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// prepared is a read whose filter has been checked: what the query
// compilers need besides the geo inputs.
type prepared struct {
	sc     *scope
	f      graph.Filter // simplified
	ofs    []orderField
	cur    []any // cursor values as parameters; nil without a cursor
	curID  string
	after  bool
	areas  []string
	nears  []graph.Near
	labels string // MATCH labels of the scope
}

// prepare resolves the scope's ordering and cursor and checks the filter
// by compiling it once without the database.
func (m *model) prepare(sc *scope, f graph.Filter, order []graph.Order, after string) (*prepared, error) {
	p := &prepared{sc: sc, f: graph.Simplify(f)}
	var err error
	if p.ofs, err = orderFields(sc, order); err != nil {
		return nil, err
	}
	if after != "" {
		p.after = true
		if p.cur, p.curID, err = decodeCursor(order, p.ofs, after); err != nil {
			return nil, err
		}
	}
	if _, err := m.where(newCypher(), sc, p.f, nil); err != nil {
		return nil, err
	}
	p.areas, p.nears = geoNeeds(p.f)
	p.labels = m.matchLabels(sc, p.f)
	return p, nil
}

// geo resolves the prepared filter's areas and radii (plus extra radii)
// inside the transaction; nil when there are none.
func (m *model) geo(ctx context.Context, tx neo4jdrv.ManagedTransaction, p *prepared, extra []graph.Near) (*geoInputs, error) {
	nears := append(p.nears[:len(p.nears):len(p.nears)], extra...)
	if len(p.areas) == 0 && len(nears) == 0 {
		return nil, nil
	}
	return resolveGeo(ctx, tx, m.root, m.spatialMatch(p.sc), p.areas, nears)
}

// spatialMatch is the MATCH clause that selects a scope's nodes for a
// spatial lookup: the scope's class and its top located ancestor, whose
// point index applies, with the hint to use that index (the planner could otherwise keep a plan made
// when the database was small, and compute distances for every node).
func (m *model) spatialMatch(sc *scope) string {
	if sc.class == nil {
		return "MATCH (n:" + m.root + ")"
	}
	top := topLocated(sc.class)
	if top == nil {
		return "MATCH (n:" + sc.class.Name + ")"
	}
	labels := sc.class.Name
	if top != sc.class {
		labels += ":" + top.Name
	}
	return "MATCH (n:" + labels + ") USING INDEX n:" + top.Name + "(" + keyLocation + ")"
}

// spatialHint returns the point index hint for a filter whose top-level
// conjuncts include a spatial predicate the index can serve.
func (m *model) spatialHint(sc *scope, f graph.Filter, g *geoInputs) string {
	if sc.class == nil {
		return ""
	}
	top := topLocated(sc.class)
	if top == nil {
		return ""
	}
	var conj []graph.Filter
	switch x := f.(type) {
	case graph.And:
		conj = x
	case nil:
	default:
		conj = []graph.Filter{x}
	}
	// A conjunct that is always false compiles to the literal false; Neo4j
	// then refuses the index hint ("predicates must include the label").
	for _, e := range conj {
		if alwaysFalse(e, g) {
			return ""
		}
	}
	for _, e := range conj {
		ok := false
		switch x := e.(type) {
		case graph.Near:
			ok = checkNear(x.Center, x.Meters) == nil
		case graph.Within:
			_, _, ok = clampBox(x.Box)
		case graph.WithinArea:
			ok = g.area(x.AreaID) != nil
		}
		if ok {
			return " USING INDEX n:" + top.Name + "(" + keyLocation + ")"
		}
	}
	return ""
}

// alwaysFalse reports filters the compiler turns into the literal false:
// an empty Or, an `in` with an empty list, an unknown area, an empty box,
// an And holding one of those, or the negation of a filter that matches all.
func alwaysFalse(f graph.Filter, g *geoInputs) bool {
	switch x := f.(type) {
	case graph.Or:
		for _, c := range x {
			if !alwaysFalse(c, g) {
				return false
			}
		}
		return true
	case graph.And:
		for _, c := range x {
			if alwaysFalse(c, g) {
				return true
			}
		}
	case graph.WithinArea:
		return g.area(x.AreaID) == nil
	case graph.Within:
		_, _, ok := clampBox(x.Box)
		return !ok
	case graph.Cmp:
		if x.Op == graph.OpIn {
			if l, ok := x.Value.([]any); ok && len(l) == 0 {
				return true
			}
		}
	case graph.Not:
		return graph.Simplify(x.F) == nil
	}
	return false
}

// where compiles a filter into a fragment whose parameters join c's; ""
// for a filter that matches all.
func (m *model) where(c *cypher, sc *scope, f graph.Filter, g *geoInputs) (string, error) {
	if f == nil {
		return "", nil
	}
	sub := c.sub()
	if err := (&filterCompiler{c: sub, sc: sc, geo: g}).compile(f); err != nil {
		return "", err
	}
	return sub.String(), nil
}

// Find returns one page of the class's nodes matching the filter. One
// query: the page (keyset, ordered, limited to First+1) and, when asked,
// the count in a subquery of the same statement.
func (s *Store) Find(ctx context.Context, q graph.FindQuery) (*graph.Page, error) {
	sc, err := s.scopeFor(q.Class)
	if err != nil {
		return nil, fmt.Errorf("neo4j: find: %w", err)
	}
	if q.First <= 0 {
		return nil, fmt.Errorf("neo4j: find: %w: first must be positive", graph.ErrInvalid)
	}
	p, err := s.prepare(sc, q.Filter, q.Order, q.After)
	if err != nil {
		return nil, fmt.Errorf("neo4j: find: %w", err)
	}
	var page *graph.Page
	_, err = s.read(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		g, err := s.geo(ctx, tx, p, nil)
		if err != nil {
			return nil, err
		}
		c, err := s.findCypher(p, q.First, q.Count, g)
		if err != nil {
			return nil, err
		}
		res, err := tx.Run(ctx, c.String(), c.params)
		if err != nil {
			return nil, err
		}
		page = &graph.Page{Total: -1, HasPrev: p.after}
		for res.Next(ctx) {
			v := res.Record().Values
			rows := v
			if q.Count {
				total, _ := v[0].(int64)
				page.Total = int(total)
				rows, _ = v[1].([]any)
			}
			for _, r := range rows {
				n, err := s.decodeNode(r)
				if err != nil {
					return nil, err
				}
				page.Nodes = append(page.Nodes, n)
			}
		}
		return nil, res.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("neo4j: find: %w", err)
	}
	if len(page.Nodes) > q.First {
		page.Nodes = page.Nodes[:q.First]
		page.HasNext = true
	}
	page.Cursors = cursors(q.Order, p.ofs, page.Nodes)
	return page, nil
}

// findCypher builds the Find statement:
//
//	MATCH (n:Labels) WHERE filter WITH count(n) AS total      (when counting)
//	CALL { MATCH (n:Labels) WHERE filter AND keyset
//	       WITH n ORDER BY keys, n.id LIMIT first+1
//	       RETURN collect(properties(n)) AS rows }
//	RETURN total, rows
//
// or, without the count, the page query alone returning one row per node.
func (m *model) findCypher(p *prepared, first int, count bool, g *geoInputs) (*cypher, error) {
	c := newCypher()
	where, err := m.where(c, p.sc, p.f, g)
	if err != nil {
		return nil, err
	}
	hint := m.spatialHint(p.sc, p.f, g)
	page := c.sub()
	page.w("MATCH (n:", p.labels, ")", hint)
	conds := []string{}
	if where != "" {
		conds = append(conds, where)
	}
	if p.after {
		ks := c.sub()
		keyset(ks, p.ofs, p.cur, p.curID)
		conds = append(conds, ks.String())
	}
	writeWhere(page, conds)
	page.w(" WITH n ORDER BY ")
	orderBy(page, p.ofs)
	page.w(" LIMIT ", c.named("limit", int64(first)+1))
	if !count {
		c.w(page.String(), " RETURN properties(n)")
		return c, nil
	}
	c.w("MATCH (n:", p.labels, ")", hint)
	if where != "" {
		c.w(" WHERE ", where)
	}
	c.w(" WITH count(n) AS total CALL { ", page.String(), " RETURN collect(properties(n)) AS rows } RETURN total, rows")
	return c, nil
}

// writeWhere writes a WHERE clause joining conditions with AND.
func writeWhere(c *cypher, conds []string) {
	for i, cond := range conds {
		if i == 0 {
			c.w(" WHERE ")
		} else {
			c.w(" AND ")
		}
		c.w(cond)
	}
}
