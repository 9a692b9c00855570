package sqlite_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/graphtest"
	"github.com/cityhub/cityhub/graph/sqlite"
)

// A city-like mix of located classes over about 3.3 × 3.3 km, shaped after
// the Cambridge demo: many incidents and street lights, few cameras (as
// the demo has few bike stations), 100 districts with polygons. The suite's
// benchmarks (graphtest.Bench) hold street lights only, where a class
// restriction changes nothing; these measure a lookup of a rare class
// among common ones.
const (
	mixLat, mixLon = 42.36, -71.11
	mixSpan        = 0.03 // degrees
	mixIncidents   = 10000
	mixLights      = 6000
	mixCameras     = 200
	mixGrid        = 10 // districts per side
)

func mixDistrictID(i int) string { return fmt.Sprintf("urn:city:District:mix:%03d", i) }

// seedMixed stores the mixed data set in a fresh store.
func seedMixed(b *testing.B) *sqlite.Store {
	b.Helper()
	s := mustOpen(b, b.TempDir()+"/graph.db")
	r := rand.New(rand.NewPCG(21, 22))
	pos := func() *graph.Geometry {
		return graph.PointGeometry(mixLat+r.Float64()*mixSpan, mixLon+r.Float64()*mixSpan)
	}
	var batch graph.Batch
	flush := func() {
		graphtest.MustApply(b, s, batch)
		batch = graph.Batch{}
	}
	cell := mixSpan / mixGrid
	for i := range mixGrid * mixGrid {
		lat := mixLat + (float64(i/mixGrid)+0.5)*cell
		lon := mixLon + (float64(i%mixGrid)+0.5)*cell
		d := cell / 2
		gj := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`,
			lon-d, lat-d, lon+d, lat-d, lon+d, lat+d, lon-d, lat+d, lon-d, lat-d)
		batch.Nodes = append(batch.Nodes, graph.Node{ID: mixDistrictID(i), Class: "District",
			Props:    map[string]any{"name": fmt.Sprintf("District %d", i), "officialCode": fmt.Sprint(i)},
			Geometry: &graph.Geometry{Point: graph.Point{Lat: lat, Lon: lon}, Kind: "Polygon", GeoJSON: gj, BBox: graph.BBox{MinLat: lat - d, MinLon: lon - d, MaxLat: lat + d, MaxLon: lon + d}}})
	}
	flush()
	add := func(class string, n int, props func(i int) map[string]any) {
		for i := range n {
			batch.Nodes = append(batch.Nodes, graph.Node{ID: fmt.Sprintf("urn:city:%s:mix:%05d", class, i), Class: class, Props: props(i), Geometry: pos()})
			if len(batch.Nodes) == 500 {
				flush()
			}
		}
		flush()
	}
	status := []string{"OK", "OK", "FAULTY"}
	add("Incident", mixIncidents, func(i int) map[string]any {
		return map[string]any{"name": fmt.Sprintf("Crash %d", i), "reportedAt": time.Date(2024, 1, 1, 0, i, 0, 0, time.UTC)}
	})
	add("StreetLight", mixLights, func(i int) map[string]any {
		return map[string]any{"name": fmt.Sprintf("Light %d", i), "status": status[i%3]}
	})
	add("Camera", mixCameras, func(i int) map[string]any {
		return map[string]any{"name": fmt.Sprintf("Camera %d", i), "status": status[i%3]}
	})
	return s
}

// mixPoints are five points inside the area, away from its edges.
func mixPoints() []graph.Point {
	r := rand.New(rand.NewPCG(23, 24))
	var pts []graph.Point
	for range 5 {
		pts = append(pts, graph.Point{Lat: mixLat + (0.25+r.Float64()/2)*mixSpan, Lon: mixLon + (0.25+r.Float64()/2)*mixSpan})
	}
	return pts
}

// BenchmarkNearMixed: Near for five points (a rare class in a wide
// radius, a common class in a small one) and a Find with a Near filter.
func BenchmarkNearMixed(b *testing.B) {
	s := seedMixed(b)
	pts := mixPoints()
	for _, tc := range []struct {
		name   string
		class  string
		meters float64
		first  int
	}{
		{"Camera1000m", "Camera", 1000, 3},
		{"StreetLight300m", "StreetLight", 300, 2},
		{"Asset500m", "Asset", 500, 5},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := graph.NearQuery{Points: pts, Class: tc.class, Meters: tc.meters, First: tc.first}
			b.ReportAllocs()
			for b.Loop() {
				ps, err := s.Near(b.Context(), q)
				if err != nil || len(ps) != len(pts) || len(ps[0].Nodes) == 0 {
					b.Fatalf("Near: %v", err)
				}
			}
		})
	}
	b.Run("FindCamera1000m", func(b *testing.B) {
		q := graph.FindQuery{Class: "Camera", Filter: graph.Near{Center: pts[0], Meters: 1000}, Order: []graph.Order{{Field: "name"}}, First: 20, Count: true}
		b.ReportAllocs()
		for b.Loop() {
			p, err := s.Find(b.Context(), q)
			if err != nil || len(p.Nodes) == 0 {
				b.Fatalf("Find: %v", err)
			}
		}
	})
}

// BenchmarkWithinMixed: Find cameras in a box and in a district, and
// count them per status in the box.
func BenchmarkWithinMixed(b *testing.B) {
	s := seedMixed(b)
	c := mixPoints()[0]
	box := graph.BBox{MinLat: c.Lat - 0.008, MinLon: c.Lon - 0.008, MaxLat: c.Lat + 0.008, MaxLon: c.Lon + 0.008}
	for _, tc := range []struct {
		name string
		q    graph.FindQuery
	}{
		{"FindCameraBox", graph.FindQuery{Class: "Camera", Filter: graph.Within{Box: box}, First: 20, Count: true}},
		{"FindCameraArea", graph.FindQuery{Class: "Camera", Filter: graph.WithinArea{AreaID: mixDistrictID(44)}, First: 20, Count: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := s.Find(b.Context(), tc.q)
				if err != nil || len(p.Nodes) == 0 {
					b.Fatalf("Find: %v", err)
				}
			}
		})
	}
	b.Run("AggregateCameraBox", func(b *testing.B) {
		q := graph.AggregateQuery{Class: "Camera", Filter: graph.Within{Box: box}, GroupBy: "status"}
		b.ReportAllocs()
		for b.Loop() {
			gs, err := s.Aggregate(b.Context(), q)
			if err != nil || len(gs) == 0 {
				b.Fatalf("Aggregate: %v", err)
			}
		}
	})
}
