package graphtest

import (
	"math"
	"slices"
	"testing"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
)

// Geo fixture: a district d-1, a square of ±0.01° around (42.0, -71.0)
// with a hole of ±0.002°; district d-2 without polygon; lights around.
const cLat, cLon = 42.0, -71.0

func seedGeo(t testing.TB, s graph.Store) {
	t.Helper()
	d1 := node("District", "d-1", "name", "Square", "officialCode", "D1")
	d1.Geometry = square(cLat, cLon, 0.01, 0.002)
	d2 := node("District", "d-2", "name", "Point only", "officialCode", "D2")
	d2.Geometry = graph.PointGeometry(cLat, cLon)
	MustApply(t, s, graph.Batch{Nodes: []graph.Node{
		d1, d2,
		at(node("StreetLight", "g-centre", "status", "OK"), cLat, cLon),           // in the hole
		at(node("StreetLight", "g-in", "status", "OK"), cLat+0.005, cLon+0.005),   // inside, outside the hole
		at(node("StreetLight", "g-in2", "status", "FAULTY"), cLat-0.008, cLon),    // inside
		at(node("StreetLight", "g-out", "status", "OK"), cLat+0.02, cLon),         // outside the square
		at(node("StreetLight", "g-far", "status", "OK"), cLat+1, cLon+1),          // far away
		at(node("Camera", "g-cam", "status", "OK"), cLat+0.004, cLon-0.004),       // inside, a camera
		at(node("StreetLight", "g-edge", "status", "OK"), cLat+0.015, cLon+0.003), // outside the square, on the box edge
		node("StreetLight", "g-nowhere", "status", "OK"),                          // no geometry
		at(node("StreetLight", "g-antimeridian", "status", "OK"), 10, 179.9999),   // near the date line
		at(node("StreetLight", "g-antimeridian2", "status", "OK"), 10, -179.9999), // across it
	}})
}

func geoCases() []testCase {
	return []testCase{
		{"Geo/AlwaysFalseWithGeo", func(t *testing.T, s graph.Store) {
			// a geo predicate AND-ed with a filter that can never match
			// (empty or, empty in, unknown area) matches nothing, in Find
			// and in Near alike, rather than failing
			seedGeo(t, s)
			near := graph.Near{Center: graph.Point{Lat: cLat, Lon: cLon}, Meters: 5000}
			for _, f := range []graph.Filter{
				graph.And{graph.Or{}, near},
				graph.And{near, graph.Cmp{Field: "id", Op: graph.OpIn, Value: []any{}}},
				graph.And{graph.WithinArea{AreaID: "no-such-area"}, graph.WithinArea{AreaID: "d-1"}},
				graph.And{graph.Or{}, graph.Within{Box: graph.BBox{MinLat: 41, MinLon: -72, MaxLat: 43, MaxLon: -70}}},
			} {
				for _, class := range []string{"StreetLight", "Asset"} {
					if got := findIDs(t, s, class, f); len(got) != 0 {
						t.Errorf("find %s where %s = %q, want nothing", class, f.Key(), got)
					}
				}
				pages, err := s.Near(t.Context(), graph.NearQuery{Points: []graph.Point{{Lat: cLat, Lon: cLon}}, Class: "StreetLight", Meters: 5000, Filter: f, First: 5})
				if err != nil || len(pages) != 1 || len(pages[0].Nodes) != 0 {
					t.Errorf("near where %s: %v, %v; want one empty page", f.Key(), pages, err)
				}
			}
		}},
		{"Geo/NearFilter", func(t *testing.T, s graph.Store) {
			seedGeo(t, s)
			// radius exactly the distance to g-in2: it is included, the
			// next smaller radius excludes it
			d := geo.Distance(cLat, cLon, cLat-0.008, cLon)
			got := findIDs(t, s, "StreetLight", graph.Near{Center: graph.Point{Lat: cLat, Lon: cLon}, Meters: d})
			if want := []string{"g-centre", "g-in", "g-in2"}; !slices.Equal(got, want) {
				t.Errorf("near within %v m = %q, want %q", d, got, want)
			}
			got = findIDs(t, s, "StreetLight", graph.Near{Center: graph.Point{Lat: cLat, Lon: cLon}, Meters: math.Nextafter(d, 0)})
			if want := []string{"g-centre", "g-in"}; !slices.Equal(got, want) {
				t.Errorf("near within just under %v m = %q, want %q", d, got, want)
			}
			got = findIDs(t, s, "StreetLight", graph.Near{Center: graph.Point{Lat: cLat, Lon: cLon}, Meters: 0})
			if want := []string{"g-centre"}; !slices.Equal(got, want) {
				t.Errorf("near within 0 m = %q, want %q", got, want)
			}
			got = findIDs(t, s, "StreetLight", graph.Not{F: graph.Near{Center: graph.Point{Lat: cLat, Lon: cLon}, Meters: 2000}})
			if want := []string{"g-antimeridian", "g-antimeridian2", "g-far", "g-nowhere", "g-out"}; !slices.Equal(got, want) {
				t.Errorf("not near = %q, want %q", got, want)
			}
			got = findIDs(t, s, "StreetLight", graph.Near{Center: graph.Point{Lat: 10, Lon: 180}, Meters: 100})
			if want := []string{"g-antimeridian", "g-antimeridian2"}; !slices.Equal(got, want) {
				t.Errorf("near the antimeridian = %q, want %q", got, want)
			}
			got = findIDs(t, s, "Asset", graph.And{graph.Near{Center: graph.Point{Lat: cLat, Lon: cLon}, Meters: 1000}, cmp("status", graph.OpEq, "OK")})
			if want := []string{"g-cam", "g-centre", "g-in"}; !slices.Equal(got, want) {
				t.Errorf("near and ok = %q, want %q", got, want)
			}
			_, err := s.Find(t.Context(), graph.FindQuery{Class: "StreetLight", First: 1, Filter: graph.Near{Center: graph.Point{Lat: 91, Lon: 0}, Meters: 1}})
			MustFail(t, "near a bad point", err, graph.ErrInvalid)
		}},
		{"Geo/PolesAndAntimeridian", func(t *testing.T, s graph.Store) {
			// circles that hold a pole or cross ±180°: a bounding-box
			// prefilter must not wrap or cut them (found by the
			// differential fuzz test)
			MustApply(t, s, graph.Batch{Nodes: []graph.Node{
				at(node("StreetLight", "pole-n", "status", "OK"), 89.9, 170),
				at(node("StreetLight", "pole-far", "status", "OK"), 60, 170),
				at(node("StreetLight", "am-east", "status", "OK"), -10, 179.9),
				at(node("StreetLight", "am-west", "status", "OK"), -10, -179.9),
				at(node("StreetLight", "am-far", "status", "OK"), -10, 170),
			}})
			cases := []struct {
				name        string
				lat, lon, m float64
				want        []string
			}{
				{"over the north pole", 80, -10, 2e6, []string{"pole-n"}},
				{"across the antimeridian from the east", -10, 179.95, 2e4, []string{"am-east", "am-west"}},
				{"across the antimeridian from the west", -10, -179.99, 2e4, []string{"am-east", "am-west"}},
				{"half the Earth", 0, 0, 2.2e7, []string{"am-east", "am-far", "am-west", "pole-far", "pole-n"}},
			}
			only := graph.Cmp{Field: "id", Op: graph.OpIn, Value: []any{"pole-n", "pole-far", "am-east", "am-west", "am-far"}}
			for _, c := range cases {
				for _, n := range c.want {
					if d := geo.Distance(c.lat, c.lon, MustNode(t, s, n).Geometry.Point.Lat, MustNode(t, s, n).Geometry.Point.Lon); d > c.m {
						t.Fatalf("%s: fixture point %s is %.0f m away", c.name, n, d)
					}
				}
				f := graph.And{only, graph.Near{Center: graph.Point{Lat: c.lat, Lon: c.lon}, Meters: c.m}}
				if got := findIDs(t, s, "StreetLight", f); !slices.Equal(got, c.want) {
					t.Errorf("%s: Find near = %q, want %q", c.name, got, c.want)
				}
				pages := MustNear(t, s, graph.NearQuery{Points: []graph.Point{{Lat: c.lat, Lon: c.lon}}, Class: "StreetLight", Meters: c.m, Filter: only, First: 10})
				got := ids(pages[0].Nodes)
				slices.Sort(got)
				if !slices.Equal(got, c.want) {
					t.Errorf("%s: Near = %q, want %q", c.name, got, c.want)
				}
			}
		}},
		{"Geo/WithinBox", func(t *testing.T, s graph.Store) {
			seedGeo(t, s)
			box := graph.BBox{MinLat: cLat - 0.01, MinLon: cLon - 0.01, MaxLat: cLat + 0.015, MaxLon: cLon + 0.003}
			got := findIDs(t, s, "StreetLight", graph.Within{Box: box})
			if want := []string{"g-centre", "g-edge", "g-in2"}; !slices.Equal(got, want) {
				t.Errorf("within %+v = %q, want %q", box, got, want)
			}
			got = findIDs(t, s, "Entity", graph.Within{Box: graph.BBox{MinLat: cLat, MinLon: cLon, MaxLat: cLat, MaxLon: cLon}})
			if want := []string{"d-1", "d-2", "g-centre"}; !slices.Equal(got, want) {
				t.Errorf("within a point box = %q, want %q", got, want)
			}
			gs := MustAggregate(t, s, graph.AggregateQuery{Class: "StreetLight", Filter: graph.Within{Box: box}, GroupBy: "status"})
			if got := groupString(gs); got != "[FAULTY(string):1 -/-/-/-][OK(string):2 -/-/-/-]" {
				t.Errorf("aggregate within the box: %s", got)
			}
			got = findIDs(t, s, "StreetLight", graph.Not{F: graph.Within{Box: box}})
			if slices.Contains(got, "g-edge") || !slices.Contains(got, "g-nowhere") {
				t.Errorf("not within = %q: want g-nowhere and not g-edge", got)
			}
		}},
		{"Geo/WithinArea", func(t *testing.T, s graph.Store) {
			seedGeo(t, s)
			got := findIDs(t, s, "Asset", graph.WithinArea{AreaID: "d-1"})
			if want := []string{"g-cam", "g-in", "g-in2"}; !slices.Equal(got, want) {
				t.Errorf("within d-1 = %q, want %q (the centre is in the hole)", got, want)
			}
			p := MustFind(t, s, graph.FindQuery{Class: "Asset", Filter: graph.WithinArea{AreaID: "d-1"}, First: 2, Count: true})
			if p.Total != 3 || !p.HasNext || len(p.Nodes) != 2 {
				t.Errorf("within d-1 first 2: Total %d HasNext %v nodes %q", p.Total, p.HasNext, ids(p.Nodes))
			}
			got = findIDs(t, s, "StreetLight", graph.And{graph.WithinArea{AreaID: "d-1"}, cmp("status", graph.OpEq, "OK")})
			if want := []string{"g-in"}; !slices.Equal(got, want) {
				t.Errorf("within d-1 and ok = %q, want %q", got, want)
			}
			for _, area := range []string{"d-2", "nope", "g-in"} {
				if got := findIDs(t, s, "Asset", graph.WithinArea{AreaID: area}); len(got) != 0 {
					t.Errorf("within %s = %q, want nothing", area, got)
				}
				if got := findIDs(t, s, "StreetLight", graph.Not{F: graph.WithinArea{AreaID: area}}); len(got) != 9 {
					t.Errorf("not within %s = %q, want every light", area, got)
				}
			}
			got = findIDs(t, s, "StreetLight", graph.Or{graph.WithinArea{AreaID: "d-1"}, graph.WithinArea{AreaID: "nope"}, cmp("id", graph.OpEq, "g-far")})
			if want := []string{"g-far", "g-in", "g-in2"}; !slices.Equal(got, want) {
				t.Errorf("within d-1 or nope or g-far = %q, want %q", got, want)
			}
		}},
		{"Geo/Near", func(t *testing.T, s graph.Store) {
			seedGeo(t, s)
			d := geo.Distance(cLat, cLon, cLat-0.008, cLon)
			pts := []graph.Point{{Lat: cLat, Lon: cLon}, {Lat: cLat + 0.02, Lon: cLon}, {Lat: -40, Lon: 20}}
			ps := MustNear(t, s, graph.NearQuery{Points: pts, Class: "StreetLight", Meters: d, First: 10})
			sameIDs(t, "near the centre", ps[0].Nodes, "g-centre", "g-in", "g-in2")
			sameIDs(t, "near g-out", ps[1].Nodes, "g-out", "g-edge")
			sameIDs(t, "near nothing", ps[2].Nodes)
			for i, pg := range ps {
				if pg.Total != len(pg.Nodes) || pg.HasNext {
					t.Errorf("page %d: Total %d HasNext %v for %d nodes", i, pg.Total, pg.HasNext, len(pg.Nodes))
				}
				for j, n := range pg.Nodes {
					want := geo.Distance(pts[i].Lat, pts[i].Lon, n.Geometry.Point.Lat, n.Geometry.Point.Lon)
					if math.Abs(pg.Distances[j]-want) > 1e-6 {
						t.Errorf("distance to %s = %v, want %v", n.ID, pg.Distances[j], want)
					}
					if j > 0 && pg.Distances[j] < pg.Distances[j-1] {
						t.Errorf("page %d not nearest first: %v", i, pg.Distances)
					}
				}
			}
			ps = MustNear(t, s, graph.NearQuery{Points: pts[:1], Class: "Asset", Meters: 5000, First: 2,
				Filter: cmp("status", graph.OpEq, "OK")})
			sameIDs(t, "first 2 OK assets near the centre", ps[0].Nodes, "g-centre", "g-cam")
			if !ps[0].HasNext || ps[0].Total != 5 {
				t.Errorf("HasNext %v Total %d, want true 5", ps[0].HasNext, ps[0].Total)
			}
			// an area filter inside a near query
			ps = MustNear(t, s, graph.NearQuery{Points: pts[:1], Class: "Asset", Meters: 5000, First: 10,
				Filter: graph.WithinArea{AreaID: "d-1"}})
			sameIDs(t, "near the centre within d-1", ps[0].Nodes, "g-cam", "g-in", "g-in2")
			// equal distances: ties by ID
			MustApply(t, s, graph.Batch{Nodes: []graph.Node{
				at(node("StreetLight", "t-b"), 30, 30.5), at(node("StreetLight", "t-a"), 30, 29.5),
			}})
			ps = MustNear(t, s, graph.NearQuery{Points: []graph.Point{{Lat: 30, Lon: 30}}, Class: "StreetLight", Meters: 100000, First: 5})
			sameIDs(t, "equidistant", ps[0].Nodes, "t-a", "t-b")
			ps = MustNear(t, s, graph.NearQuery{Class: "StreetLight", Meters: 1000, First: 5})
			if len(ps) != 0 {
				t.Errorf("no points: %d pages", len(ps))
			}
			_, err := s.Near(t.Context(), graph.NearQuery{Points: pts, Class: "Nope", Meters: 1, First: 1})
			MustFail(t, "near an unknown class", err, graph.ErrInvalid)
			_, err = s.Near(t.Context(), graph.NearQuery{Points: pts, Class: "StreetLight", Meters: -1, First: 1})
			MustFail(t, "near a negative distance", err, graph.ErrInvalid)
		}},
	}
}
