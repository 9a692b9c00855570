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

// Geometry in Neo4j: a node's representative point is the WGS-84 point
// property location (point index per located class); lines and polygons
// keep their GeoJSON text in _geojson and their box in _bbox.
//
// Distances are the great-circle distances of graph/geo, computed in
// Cypher with the same haversine formula and Earth radius (Neo4j's own
// point.distance uses another radius, so it only drives the point index,
// with a margin). Java's and Go's sine and arc sine may differ in the last
// bit, so a point within a hair of a radius is decided in Go: a first query
// fetches those few points (the band), and the main query takes Go's
// verdict for them as parameters. Points exactly on the radius therefore
// match as graph/geo says, and paging and counting stay in the database.
//
// WithinArea fetches the area's GeoJSON first and passes its polygons as
// a parameter: a bounding-box test (point.withinBBox, index-backed) and an
// even-odd ray-casting test written in Cypher with the arithmetic of
// geo.Shape.Contains, so the verdict is the same bit for bit.

const (
	srid4326 = 4326
	degToRad = math.Pi / 180
	// bandRel and bandAbs define the band around a radius where the Go
	// distance decides.
	bandRel = 1e-9
	bandAbs = 1e-9
	// prefilterRel and prefilterAbs widen a radius for point.distance,
	// whose Earth radius differs from graph/geo's by about 0.1 %.
	prefilterRel = 1.01
	prefilterAbs = 1.0
)

func validPoint(lat, lon float64) bool { return geo.ValidPoint(lat, lon) }

func parseShape(gj string) (*geo.Shape, error) { return geo.ParseGeoJSON([]byte(gj)) }

// point2D is the driver's value for a WGS-84 point.
func point2D(p graph.Point) dbtype.Point2D {
	return dbtype.Point2D{X: p.Lon, Y: p.Lat, SpatialRefId: srid4326}
}

// havExpr is the Cypher expression of geo.Distance from (lat, lon) to the
// location of node variable v, operation for operation.
func havExpr(c *cypher, lat, lon, v string) string {
	rad := c.named("rad", degToRad)
	twoR := c.named("twoR", 2*geo.EarthRadiusM)
	nlat, nlon := v+".location.latitude", v+".location.longitude"
	dlat := "((" + nlat + " - " + lat + ") * " + rad + ")"
	dlon := "((" + nlon + " - " + lon + ") * " + rad + ")"
	a := "sin(" + dlat + " / 2) * sin(" + dlat + " / 2) + cos(" + lat + " * " + rad + ") * cos(" + nlat + " * " + rad +
		") * sin(" + dlon + " / 2) * sin(" + dlon + " / 2)"
	return twoR + " * asin(CASE WHEN sqrt(" + a + ") < 1.0 THEN sqrt(" + a + ") ELSE 1.0 END)"
}

// nearBand is Go's verdict on the points within a hair of a radius.
type nearBand struct {
	incl, excl []any // node IDs
}

// geoInputs holds what the database had to tell before a filter could be
// compiled: the polygons of the areas it names and the verdicts on the
// points near its radii.
type geoInputs struct {
	areas map[string]*areaPoly
	bands map[graph.Near]*nearBand
}

// areaPoly is an area's polygons as a Cypher parameter: polygons, rings,
// and per ring its edges [x_i, y_i, x_j, y_j] (x longitude, y latitude,
// j the vertex before i), plus its bounding box.
type areaPoly struct {
	polys  []any
	ll, ur dbtype.Point2D
}

func newAreaPoly(s *geo.Shape) *areaPoly {
	a := &areaPoly{
		ll: point2D(graph.Point{Lat: s.MinLat, Lon: s.MinLon}),
		ur: point2D(graph.Point{Lat: s.MaxLat, Lon: s.MaxLon}),
	}
	for _, p := range s.Polygons {
		rings := make([]any, len(p))
		for ri, r := range p {
			edges := make([]any, len(r))
			for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
				edges[i] = []any{r[i][0], r[i][1], r[j][0], r[j][1]}
			}
			rings[ri] = edges
		}
		a.polys = append(a.polys, rings)
	}
	return a
}

// geoNeeds walks a filter for the areas and radii it names.
func geoNeeds(f graph.Filter) (areas []string, nears []graph.Near) {
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
			areas = append(areas, x.AreaID)
		case graph.Near:
			nears = append(nears, x)
		}
	}
	walk(f)
	return areas, nears
}

// checkNear validates a radius query.
func checkNear(p graph.Point, meters float64) error {
	if !validPoint(p.Lat, p.Lon) || math.IsNaN(meters) || meters < 0 || math.IsInf(meters, 0) {
		return fmt.Errorf("%w: near: bad centre (%v, %v) or distance %v", graph.ErrInvalid, p.Lat, p.Lon, meters)
	}
	return nil
}

// resolveGeo asks the database, inside the caller's transaction, for the
// polygons of the areas and the points in the bands of the radii. match
// is the MATCH clause of the nodes the radii apply to.
func resolveGeo(ctx context.Context, tx neo4jdrv.ManagedTransaction, root, match string, areas []string, nears []graph.Near) (*geoInputs, error) {
	in := &geoInputs{areas: map[string]*areaPoly{}, bands: map[graph.Near]*nearBand{}}
	if len(areas) > 0 {
		ids := make([]any, 0, len(areas))
		for _, a := range areas {
			ids = append(ids, a)
		}
		res, err := tx.Run(ctx, "UNWIND $ids AS aid MATCH (a:"+root+" {id: aid}) WHERE a."+keyGeoJSON+" IS NOT NULL RETURN aid, a."+keyGeoJSON,
			map[string]any{"ids": ids})
		if err != nil {
			return nil, err
		}
		for res.Next(ctx) {
			id, _ := res.Record().Values[0].(string)
			gj, _ := res.Record().Values[1].(string)
			shape, err := parseShape(gj)
			if err != nil || len(shape.Polygons) == 0 {
				continue
			}
			in.areas[id] = newAreaPoly(shape)
		}
		if err := res.Err(); err != nil {
			return nil, err
		}
	}
	if len(nears) > 0 {
		c := newCypher()
		rows := make([]any, 0, len(nears))
		for i, n := range nears {
			if _, ok := in.bands[n]; ok {
				continue
			}
			in.bands[n] = &nearBand{}
			lo, hi := bandOf(n.Meters)
			rows = append(rows, map[string]any{"i": int64(i), "c": point2D(n.Center), "lat": n.Center.Lat, "lon": n.Center.Lon,
				"pre": prefilter(n.Meters), "lo": lo, "hi": hi})
		}
		c.named("nears", rows)
		c.w("UNWIND $nears AS q ", match, " WHERE point.distance(n.location, q.c) <= q.pre WITH q, n, ",
			havExpr(c, "q.lat", "q.lon", "n"), " AS d WHERE d >= q.lo AND d <= q.hi RETURN q.i, n.id, n.location")
		res, err := tx.Run(ctx, c.String(), c.params)
		if err != nil {
			return nil, err
		}
		for res.Next(ctx) {
			v := res.Record().Values
			i, _ := v[0].(int64)
			id, _ := v[1].(string)
			loc, ok := v[2].(dbtype.Point2D)
			if !ok || i < 0 || int(i) >= len(nears) {
				continue
			}
			n := nears[i]
			b := in.bands[n]
			if geo.Distance(n.Center.Lat, n.Center.Lon, loc.Y, loc.X) <= n.Meters {
				b.incl = append(b.incl, id)
			} else {
				b.excl = append(b.excl, id)
			}
		}
		if err := res.Err(); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// bandOf returns the band around a radius where Go decides.
func bandOf(m float64) (lo, hi float64) {
	tol := m*bandRel + bandAbs
	return m - tol, m + tol
}

// prefilter is the radius handed to point.distance.
func prefilter(m float64) float64 { return m*prefilterRel + prefilterAbs }
