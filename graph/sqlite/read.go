package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
	"github.com/cityhub/cityhub/ontology"
)

// jsonList renders strings as a JSON array, bound as one parameter and
// read with json_each: one statement text whatever the number of IDs.
func jsonList(ids []string) string {
	buf := make([]byte, 0, 2+24*len(ids))
	buf = append(buf, '[')
	for i, id := range ids {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, id)
	}
	return string(append(buf, ']'))
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// Nodes returns the nodes with the given IDs in order, nil for missing.
func (s *Store) Nodes(ctx context.Context, ids []string) ([]*graph.Node, error) {
	out := make([]*graph.Node, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.query(ctx, nil, `SELECT `+nodeCols+` FROM nodes n WHERE n.id IN (SELECT value FROM json_each(?))`, jsonList(ids))
	if err != nil {
		return nil, fmt.Errorf("sqlite: nodes: %w", err)
	}
	byID := make(map[string]*graph.Node, len(ids))
	if err := s.scanNodes(rows, nil, func(n *graph.Node) error { byID[n.ID] = n; return nil }); err != nil {
		return nil, fmt.Errorf("sqlite: nodes: %w", err)
	}
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out, nil
}

// readTx starts a read transaction when a call needs several statements
// to see one snapshot.
func (s *Store) readTx(ctx context.Context) (*sql.Tx, error) {
	return s.r.BeginTx(ctx, nil)
}

// Find returns one page of the class's nodes matching the filter.
func (s *Store) Find(ctx context.Context, q graph.FindQuery) (*graph.Page, error) {
	sc, err := s.scopeFor(q.Class)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find: %w", err)
	}
	if q.First <= 0 {
		return nil, fmt.Errorf("sqlite: find: %w: first must be positive", graph.ErrInvalid)
	}
	ofs, err := orderFields(sc, q.Order)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find: %w", err)
	}
	var curVals []any
	var curID string
	if q.After != "" {
		if curVals, curID, err = graph.DecodeCursor(q.Order, q.After); err == nil {
			err = cursorValues(ofs, curVals)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: find: %w", err)
		}
	}
	var tx *sql.Tx
	if q.Count || hasArea(q.Filter) {
		if tx, err = s.readTx(ctx); err != nil {
			return nil, fmt.Errorf("sqlite: find: %w", err)
		}
		defer tx.Rollback()
	}
	areas, err := s.loadAreas(ctx, tx, q.Filter)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find: %w", err)
	}
	var where builder
	if spatial(q.Filter) {
		// let the R*Tree drive: keep the class test off the class indexes
		where.w("+")
	}
	classes(&where, sc)
	where.w(" AND ")
	if err := s.filter(&where, sc, areas, graph.Simplify(q.Filter)); err != nil {
		return nil, fmt.Errorf("sqlite: find: %w", err)
	}

	page := &graph.Page{Total: -1, HasPrev: q.After != ""}
	if q.Count {
		var cb builder
		cb.w("SELECT count(*) FROM nodes n WHERE ").w(where.sb.String())
		cb.args = where.args
		rows, err := s.query(ctx, tx, cb.sb.String(), cb.args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: find: count: %w", err)
		}
		if rows.Next() {
			err = rows.Scan(&page.Total)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: find: count: %w", err)
		}
	}

	var b builder
	b.w("SELECT ").w(nodeCols).w(" FROM nodes n WHERE ").w(where.sb.String())
	b.args = append(b.args, where.args...)
	if q.After != "" {
		b.w(" AND ")
		keyset(&b, ofs, curVals, curID)
	}
	b.w(" ORDER BY ")
	orderBy(&b, ofs, "n.id")
	b.w(" LIMIT ").p(int64(q.First) + 1)
	rows, err := s.query(ctx, tx, b.sb.String(), b.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find: %w", err)
	}
	err = s.scanNodes(rows, nil, func(n *graph.Node) error {
		page.Nodes = append(page.Nodes, n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: find: %w", err)
	}
	if len(page.Nodes) > q.First {
		page.Nodes = page.Nodes[:q.First]
		page.HasNext = true
	}
	page.Cursors = cursors(q.Order, ofs, page.Nodes)
	return page, nil
}

// spatial reports whether a top-level conjunct of f is a geo filter, which
// is then the most selective index to start from.
func spatial(f graph.Filter) bool {
	switch x := graph.Simplify(f).(type) {
	case graph.Near, graph.Within, graph.WithinArea:
		return true
	case graph.And:
		for _, c := range x {
			switch c.(type) {
			case graph.Near, graph.Within, graph.WithinArea:
				return true
			}
		}
	}
	return false
}

func hasArea(f graph.Filter) bool {
	switch x := f.(type) {
	case graph.And:
		for _, c := range x {
			if hasArea(c) {
				return true
			}
		}
	case graph.Or:
		for _, c := range x {
			if hasArea(c) {
				return true
			}
		}
	case graph.Not:
		return hasArea(x.F)
	case graph.WithinArea:
		return true
	}
	return false
}

// dedupe returns the distinct IDs in first-seen order.
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

// Neighbors returns, for each ID, one page of the nodes at the other end
// of the relation. One statement serves every ID: window functions number
// the rows and count them per parent.
func (s *Store) Neighbors(ctx context.Context, q graph.NeighborQuery) ([]*graph.Page, error) {
	rel := s.ont.Relation(q.Rel)
	if rel == nil {
		return nil, fmt.Errorf("sqlite: neighbors: %w: unknown relation %q", graph.ErrInvalid, q.Rel)
	}
	if q.First <= 0 {
		return nil, fmt.Errorf("sqlite: neighbors: %w: first must be positive", graph.ErrInvalid)
	}
	if q.Dir != ontology.Out && q.Dir != ontology.In {
		return nil, fmt.Errorf("sqlite: neighbors: %w: bad direction %d", graph.ErrInvalid, q.Dir)
	}
	var sc *scope
	if q.Class != "" {
		var err error
		if sc, err = s.scopeFor(q.Class); err != nil {
			return nil, fmt.Errorf("sqlite: neighbors: %w", err)
		}
	} else {
		sc = s.endScope(rel, q.Dir)
	}
	ofs, err := orderFields(sc, q.Order)
	if err != nil {
		return nil, fmt.Errorf("sqlite: neighbors: %w", err)
	}
	var curVals []any
	var curID string
	if q.After != "" {
		if curVals, curID, err = graph.DecodeCursor(q.Order, q.After); err == nil {
			err = cursorValues(ofs, curVals)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: neighbors: %w", err)
		}
	}
	pages := make([]*graph.Page, len(q.IDs))
	for i := range pages {
		pages[i] = &graph.Page{Total: 0, HasPrev: q.After != ""}
	}
	if len(q.IDs) == 0 {
		return pages, nil
	}
	var tx *sql.Tx
	if hasArea(q.Filter) {
		if tx, err = s.readTx(ctx); err != nil {
			return nil, fmt.Errorf("sqlite: neighbors: %w", err)
		}
		defer tx.Rollback()
	}
	areas, err := s.loadAreas(ctx, tx, q.Filter)
	if err != nil {
		return nil, fmt.Errorf("sqlite: neighbors: %w", err)
	}
	ids := dedupe(q.IDs)
	near, far := "from", "to" // column prefixes
	if q.Dir == ontology.In {
		near, far = far, near
	}
	// One statement: p holds each parent with its total; for each parent
	// a correlated subquery picks the page (ordered, limited), the outer
	// query reads those nodes and their edge properties. A parent with an
	// empty page still yields one row (LEFT JOIN) that carries its total.
	// Inside the subqueries e and n name the inner edge and node.
	// Edges are checked against the relation's classes when written, so
	// the class test is only needed when q.Class narrows the far end.
	end := s.endScope(rel, q.Dir)
	narrow := !subset(end.classes, sc.classes)
	f := graph.Simplify(q.Filter)
	match := func(b *builder, parent string) error {
		b.w("FROM edges e CROSS JOIN nodes n ON n.rid = e.").w(far).w("_rid WHERE e.").w(near).w("_id = ").w(parent).w(" AND e.rel = ").p(rel.Name)
		if narrow {
			b.w(" AND ")
			classes(b, sc)
		}
		b.w(" AND ")
		return s.filter(b, sc, areas, f)
	}
	var b builder
	b.w("WITH p AS MATERIALIZED (SELECT j.value AS pid, (SELECT count(*) ")
	if !narrow && f == nil { // count edges only
		b.w("FROM edges e WHERE e.").w(near).w("_id = j.value AND e.rel = ").p(rel.Name)
	} else if err := match(&b, "j.value"); err != nil {
		return nil, fmt.Errorf("sqlite: neighbors: %w", err)
	}
	b.w(") AS total FROM json_each(").p(jsonList(ids)).w(") AS j) SELECT ").w(nodeCols)
	b.w(", p.pid, p.total, (SELECT e.props FROM edges e WHERE e.").w(near).w("_id = p.pid AND e.rel = ").p(rel.Name).w(" AND e.").w(far).w("_id = n.id)")
	b.w(" FROM p LEFT JOIN nodes n ON n.rid IN (SELECT n.rid ")
	if err := match(&b, "p.pid"); err != nil {
		return nil, fmt.Errorf("sqlite: neighbors: %w", err)
	}
	if q.After != "" {
		b.w(" AND ")
		keyset(&b, ofs, curVals, curID)
	}
	// the far end's ID equals n.id; ordering by it lets the edge index
	// deliver the default order without sorting
	b.w(" ORDER BY ")
	orderBy(&b, ofs, "e."+far+"_id")
	b.w(" LIMIT ").p(int64(q.First) + 1).w(") ORDER BY p.pid, ")
	orderBy(&b, ofs, "n.id")

	rows, err := s.query(ctx, tx, b.sb.String(), b.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: neighbors: %w", err)
	}
	byID := make(map[string]*graph.Page, len(ids))
	var pid string
	var total int
	var eprops sql.NullString
	relPS := s.relProps[rel.Name]
	err = s.scanNodes(rows, func() []any { return []any{&pid, &total, &eprops} }, func(n *graph.Node) error {
		pg := byID[pid]
		if pg == nil {
			pg = &graph.Page{HasPrev: q.After != ""}
			byID[pid] = pg
		}
		pg.Total = total
		if n == nil { // no node on this page
			return nil
		}
		if len(pg.Nodes) == q.First {
			pg.HasNext = true
			return nil
		}
		var ep map[string]any
		if eprops.Valid {
			m, err := decodeProps(relPS, eprops.String)
			if err != nil {
				return err
			}
			if len(m) > 0 {
				ep = m
			}
		}
		pg.Nodes = append(pg.Nodes, n)
		pg.EdgeProps = append(pg.EdgeProps, ep)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: neighbors: %w", err)
	}
	for i, id := range q.IDs {
		if pg := byID[id]; pg != nil {
			cp := *pg
			cp.Cursors = cursors(q.Order, ofs, pg.Nodes)
			pages[i] = &cp
		}
	}
	return pages, nil
}

// subset reports whether every element of a (sorted) is in b (sorted).
func subset(a, b []string) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return false
		}
	}
	return true
}

// endScope is the scope of the nodes at the far end of a relation.
func (s *Store) endScope(rel *ontology.Relation, dir ontology.Direction) *scope {
	if sc := s.ends[endKey{rel.Name, dir}]; sc != nil {
		return sc
	}
	return s.newEndScope(rel, dir)
}

func (s *Store) newEndScope(rel *ontology.Relation, dir ontology.Direction) *scope {
	if dir == ontology.Out {
		return s.scopes[rel.To.Name]
	}
	if len(rel.From) == 1 {
		return s.scopes[rel.From[0].Name]
	}
	var names []string
	seen := map[string]bool{}
	for _, c := range rel.From {
		for _, d := range c.ConcreteDescendants() {
			if !seen[d] {
				seen[d] = true
				names = append(names, d)
			}
		}
	}
	slices.Sort(names)
	sc := s.newScope(rel.Name+" sources", names)
	sc.all = len(names) == len(s.ont.Concrete())
	return sc
}

// Near returns, for each point, the nodes of the class within q.Meters,
// nearest first (ties by ID). One statement serves every point.
func (s *Store) Near(ctx context.Context, q graph.NearQuery) ([]*graph.Page, error) {
	sc, err := s.scopeFor(q.Class)
	if err != nil {
		return nil, fmt.Errorf("sqlite: near: %w", err)
	}
	if q.First <= 0 {
		return nil, fmt.Errorf("sqlite: near: %w: first must be positive", graph.ErrInvalid)
	}
	if math.IsNaN(q.Meters) || q.Meters < 0 || math.IsInf(q.Meters, 0) {
		return nil, fmt.Errorf("sqlite: near: %w: bad distance %v", graph.ErrInvalid, q.Meters)
	}
	pages := make([]*graph.Page, len(q.Points))
	for i := range pages {
		pages[i] = &graph.Page{}
	}
	if len(q.Points) == 0 {
		return pages, nil
	}
	// each point with its search box: [lat, lon, minLat, maxLat, minLon, maxLon]
	pts := make([][6]float64, len(q.Points))
	for i, p := range q.Points {
		if !geo.ValidPoint(p.Lat, p.Lon) {
			return nil, fmt.Errorf("sqlite: near: %w: bad point (%v, %v)", graph.ErrInvalid, p.Lat, p.Lon)
		}
		minLat, minLon, maxLat, maxLon := geo.RadiusBox(p.Lat, p.Lon, q.Meters)
		pts[i] = [6]float64{p.Lat, p.Lon, minLat, maxLat, minLon, maxLon}
	}
	rawPts, _ := json.Marshal(pts)
	var tx *sql.Tx
	if hasArea(q.Filter) {
		if tx, err = s.readTx(ctx); err != nil {
			return nil, fmt.Errorf("sqlite: near: %w", err)
		}
		defer tx.Rollback()
	}
	areas, err := s.loadAreas(ctx, tx, q.Filter)
	if err != nil {
		return nil, fmt.Errorf("sqlite: near: %w", err)
	}
	if len(sc.ranges) == 0 { // no class to look for
		for _, pg := range pages {
			pg.Cursors = []string{}
		}
		return pages, nil
	}
	// One statement serves every point. For each point (pts, materialised
	// so that the coordinates are parsed once) a correlated subquery reads
	// the R*Tree restricted to the scope's ordinals (a class scope is one
	// range) and the point's box,
	// joins the candidates' rows for the class test, the filter and the
	// exact point, and feeds them to cityhub_nearest, which counts those
	// within the distance and keeps the First+1 nearest (ties by ID): no
	// sort over every candidate, one Go call per candidate. t is
	// materialised so each point's aggregate runs once; the outer query
	// reads only the kept nodes, in rank order.
	lo, hi := sc.ranges[0].lo, sc.ranges[len(sc.ranges)-1].hi
	var b builder
	b.w(`WITH pts AS MATERIALIZED (SELECT CAST(key AS INTEGER) AS ord, value ->> 0 AS lat, value ->> 1 AS lon,
		value ->> 2 AS min_lat, value ->> 3 AS max_lat, value ->> 4 AS min_lon, value ->> 5 AS max_lon
		FROM json_each(`).p(string(rawPts)).w(`)),
	t AS MATERIALIZED (SELECT pts.ord AS ord, pts.lat AS lat, pts.lon AS lon,
		(SELECT cityhub_nearest(`).p(int64(q.First) + 1).w(`, `).p(q.Meters).w(`, pts.lat, pts.lon, n.lat, n.lon, n.rid, n.id)
		FROM nodes_rtree r CROSS JOIN nodes n ON n.rid = r.rid
		WHERE r.min_cls <= `).p(int64(hi)).w(` AND r.max_cls >= `).p(int64(lo)).w(`
			AND r.max_lat >= pts.min_lat AND r.min_lat <= pts.max_lat
			AND r.max_lon >= pts.min_lon AND r.min_lon <= pts.max_lon AND `)
	classes(&b, sc)
	b.w(" AND ")
	if err := s.filter(&b, sc, areas, graph.Simplify(q.Filter)); err != nil {
		return nil, fmt.Errorf("sqlite: near: %w", err)
	}
	b.w(`) AS top FROM pts)
	SELECT `).w(nodeCols).w(`, t.ord, t.top ->> 0, cityhub_distance(t.lat, t.lon, n.lat, n.lon)
	FROM t CROSS JOIN json_each(t.top) AS j CROSS JOIN nodes n ON n.rid = j.value
	WHERE j.key > 0 ORDER BY t.ord, j.key`)
	rows, err := s.query(ctx, tx, b.sb.String(), b.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: near: %w", err)
	}
	var ord, total int
	var dist float64
	err = s.scanNodes(rows, func() []any { return []any{&ord, &total, &dist} }, func(n *graph.Node) error {
		if ord < 0 || ord >= len(pages) {
			return fmt.Errorf("point index %d out of range", ord)
		}
		pg := pages[ord]
		pg.Total = total
		if len(pg.Nodes) == q.First {
			pg.HasNext = true
			return nil
		}
		pg.Nodes = append(pg.Nodes, n)
		pg.Distances = append(pg.Distances, dist)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: near: %w", err)
	}
	for _, pg := range pages {
		pg.Cursors = make([]string, len(pg.Nodes))
		for i, n := range pg.Nodes {
			pg.Cursors[i] = graph.EncodeCursor(nil, nil, n.ID)
		}
	}
	return pages, nil
}
