package neo4j

import (
	"context"
	"fmt"
	"math"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
)

// Near returns, for each point, the nodes of the class within q.Meters,
// nearest first (ties by ID). One query serves every point: UNWIND the
// points, and for each a CALL subquery that seeks the point index, keeps
// the nodes within the radius (graph/geo's distance) that match the
// filter, sorts them and returns the count and the first page.
func (s *Store) Near(ctx context.Context, q graph.NearQuery) ([]*graph.Page, error) {
	sc, err := s.scopeFor(q.Class)
	if err != nil {
		return nil, fmt.Errorf("neo4j: near: %w", err)
	}
	if q.First <= 0 {
		return nil, fmt.Errorf("neo4j: near: %w: first must be positive", graph.ErrInvalid)
	}
	if math.IsNaN(q.Meters) || q.Meters < 0 || math.IsInf(q.Meters, 0) {
		return nil, fmt.Errorf("neo4j: near: %w: bad distance %v", graph.ErrInvalid, q.Meters)
	}
	pages := make([]*graph.Page, len(q.Points))
	for i := range pages {
		pages[i] = &graph.Page{}
	}
	if len(q.Points) == 0 {
		return pages, nil
	}
	nears := make([]graph.Near, len(q.Points))
	for i, pt := range q.Points {
		if !validPoint(pt.Lat, pt.Lon) {
			return nil, fmt.Errorf("neo4j: near: %w: bad point (%v, %v)", graph.ErrInvalid, pt.Lat, pt.Lon)
		}
		nears[i] = graph.Near{Center: pt, Meters: q.Meters}
	}
	p, err := s.prepare(sc, q.Filter, nil, "")
	if err != nil {
		return nil, fmt.Errorf("neo4j: near: %w", err)
	}
	if len(sc.classes) == 0 {
		for _, pg := range pages {
			pg.Cursors = []string{}
		}
		return pages, nil
	}
	_, err = s.read(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		g, err := s.geo(ctx, tx, p, nil)
		if err != nil {
			return nil, err
		}
		if alwaysFalse(p.f, g) {
			// nothing can match; the compiled literal false would also make
			// Neo4j refuse the point-index hint
			for _, pg := range pages {
				pg.Cursors = []string{}
			}
			return nil, nil
		}
		bands := make([]*nearBand, len(nears))
		for i := range bands {
			bands[i] = &nearBand{incl: []any{}, excl: []any{}}
		}
		// The query reports the points within a hair of the radius with
		// Cypher's verdict; when Go disagrees on one, it runs again with
		// Go's verdicts as parameters (rare: the last bit of a distance).
		for attempt := 0; ; attempt++ {
			c, err := s.nearCypher(p, nears, bands, q.First, g)
			if err != nil {
				return nil, err
			}
			agree, err := s.runNear(ctx, tx, c, nears, bands, q.First, pages)
			if err != nil || agree || attempt > 0 {
				return nil, err
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("neo4j: near: %w", err)
	}
	for _, pg := range pages {
		pg.Cursors = make([]string, len(pg.Nodes))
		for i, n := range pg.Nodes {
			pg.Cursors[i] = graph.EncodeCursor(nil, nil, n.ID)
		}
	}
	return pages, nil
}

// runNear runs a Near statement into pages. It reports whether Go agrees
// with Cypher on every point of the radius bands; when it does not, bands
// hold Go's verdicts for the next run.
func (s *Store) runNear(ctx context.Context, tx neo4jdrv.ManagedTransaction, c *cypher, nears []graph.Near, bands []*nearBand, first int, pages []*graph.Page) (bool, error) {
	res, err := tx.Run(ctx, c.String(), c.params)
	if err != nil {
		return false, err
	}
	agree := true
	for res.Next(ctx) {
		v := res.Record().Values
		i, _ := v[0].(int64)
		if i < 0 || int(i) >= len(pages) {
			return false, fmt.Errorf("point index %d out of range", i)
		}
		total, _ := v[1].(int64)
		rows, _ := v[2].([]any)
		pg := &graph.Page{Total: int(total)}
		for _, r := range rows {
			pair, ok := r.([]any)
			if !ok || len(pair) != 2 {
				return false, fmt.Errorf("near row is %T", r)
			}
			if len(pg.Nodes) == first {
				pg.HasNext = true
				break
			}
			n, err := s.decodeNode(pair[0])
			if err != nil {
				return false, err
			}
			d, _ := pair[1].(float64)
			pg.Nodes = append(pg.Nodes, n)
			pg.Distances = append(pg.Distances, d)
		}
		pages[i] = pg
		n, b := nears[i], bands[i]
		for _, e := range asList(v[3]) {
			row := asList(e)
			if len(row) != 3 {
				continue
			}
			id, _ := row[0].(string)
			loc, _ := row[1].(dbtype.Point2D)
			hit, _ := row[2].(bool)
			in := geo.Distance(n.Center.Lat, n.Center.Lon, loc.Y, loc.X) <= n.Meters
			if in {
				b.incl = append(b.incl, id)
			} else {
				b.excl = append(b.excl, id)
			}
			if in != hit {
				agree = false
			}
		}
	}
	return agree, res.Err()
}

// nearCypher builds the Near statement:
//
//	UNWIND $pts AS q
//	CALL { WITH q MATCH (n:Labels) USING INDEX … WHERE point.distance(n.location, q.c) <= q.pre
//	       WITH n, haversine(q, n) AS d, q WHERE d <= q.hi AND filter
//	       WITH n, d, q, (d <= radius, or Go's verdict in the band) AS hit ORDER BY d, n.id
//	       WITH collect(CASE WHEN d >= q.lo THEN [n.id, n.location, hit] END) AS band,
//	            collect(CASE WHEN hit THEN {n: n, d: d} END) AS hits
//	       RETURN size(hits) AS total, [h IN hits[0..first+1] | [properties(h.n), h.d]] AS rows, band }
//	RETURN q.i, total, rows, band
func (m *model) nearCypher(p *prepared, nears []graph.Near, bands []*nearBand, first int, g *geoInputs) (*cypher, error) {
	c := newCypher()
	where, err := m.where(c, p.sc, p.f, g)
	if err != nil {
		return nil, err
	}
	pts := make([]any, len(nears))
	for i, n := range nears {
		lo, hi := bandOf(n.Meters)
		pts[i] = map[string]any{"i": int64(i), "c": point2D(n.Center), "lat": n.Center.Lat, "lon": n.Center.Lon,
			"pre": prefilter(n.Meters), "lo": lo, "hi": hi, "incl": orEmpty(bands[i].incl), "excl": orEmpty(bands[i].excl)}
	}
	c.w("UNWIND ", c.named("pts", pts), " AS q CALL { WITH q ", m.spatialMatch(p.sc),
		" WHERE point.distance(n.location, q.c) <= q.pre WITH n, ", havExpr(c, "q.lat", "q.lon", "n"), " AS d, q WHERE d <= q.hi")
	if where != "" {
		c.w(" AND ", where)
	}
	c.w(" WITH n, d, q, CASE WHEN n.id IN q.incl THEN true WHEN n.id IN q.excl THEN false ELSE d <= ", c.named("meters", nears[0].Meters),
		" END AS hit ORDER BY d, n.id WITH collect(CASE WHEN d >= q.lo THEN [n.id, n.location, hit] END) AS band,",
		" collect(CASE WHEN hit THEN {n: n, d: d} END) AS hits RETURN size(hits) AS total, [h IN hits[0..",
		c.named("limit", int64(first)+1), "] | [properties(h.n), h.d]] AS rows, band } RETURN q.i, total, rows, band")
	return c, nil
}
