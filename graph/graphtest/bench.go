package graphtest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Benchmark data set: 100 districts (polygons on a 10×10 grid of cells of
// 0.01°) and 9,900 street lights spread over them, each LOCATED_IN its
// district: 10,000 nodes, 9,900 edges.
const (
	benchGrid      = 10
	benchDistricts = benchGrid * benchGrid
	benchLights    = 9900
	benchCell      = 0.01
	benchLat       = 42.35
	benchLon       = -71.15
)

var benchStatus = []string{"OK", "OK", "OK", "FAULTY", "UNKNOWN"}

func benchDistrictID(i int) string { return fmt.Sprintf("urn:city:District:bench:%03d", i) }
func benchLightID(i int) string    { return fmt.Sprintf("urn:city:StreetLight:bench:%05d", i) }

// benchLight returns light i: its position depends on i only, its other
// properties on r.
func benchLight(r *rand.Rand, i int, name string) graph.Node {
	d := i % benchDistricts
	row, col := d/benchGrid, d%benchGrid
	pos := rand.New(rand.NewPCG(uint64(i), 99))
	lat := benchLat + (float64(row)+pos.Float64())*benchCell
	lon := benchLon + (float64(col)+pos.Float64())*benchCell
	n := at(node("StreetLight", benchLightID(i),
		"name", name,
		"status", benchStatus[i%len(benchStatus)],
		"poleNumber", fmt.Sprintf("P-%05d", i),
		"powerRatingW", float64(20+r.IntN(200)),
		"lampCount", int64(1+r.IntN(4)),
		"installedAt", ts("2015-01-01T00:00:00Z").AddDate(0, 0, r.IntN(3000)),
		"externalIds", list(fmt.Sprintf("EXT-%d", i)),
	), lat, lon)
	n.Prov = graph.Provenance{Source: "bench", SourceKey: fmt.Sprint(i), Connector: "bench", Run: "seed"}
	return n
}

// seedBench stores the benchmark data set.
func seedBench(b testing.TB, s graph.Store) {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	var batch graph.Batch
	for i := range benchDistricts {
		row, col := i/benchGrid, i%benchGrid
		d := node("District", benchDistrictID(i), "name", fmt.Sprintf("District %d", i), "officialCode", fmt.Sprint(i), "population", int64(1000+i))
		half := benchCell / 2
		d.Geometry = square(benchLat+(float64(row)+0.5)*benchCell, benchLon+(float64(col)+0.5)*benchCell, half, 0)
		batch.Nodes = append(batch.Nodes, d)
	}
	MustApply(b, s, batch)
	for start := 0; start < benchLights; start += 500 {
		batch = graph.Batch{}
		for i := start; i < min(start+500, benchLights); i++ {
			batch.Nodes = append(batch.Nodes, benchLight(r, i, fmt.Sprintf("Light %05d %s street", i, []string{"Main", "Elm", "Oak", "Pine"}[i%4])))
			batch.Edges = append(batch.Edges, edge(benchLightID(i), "LOCATED_IN", benchDistrictID(i%benchDistricts)))
		}
		MustApply(b, s, batch)
	}
}

// Bench runs the backend benchmarks, each on a fresh store from open
// seeded with 10,000 nodes: reads by ID, neighbours of 100 parents,
// filtered and geo finds, and batches of 500 upserts.
func Bench(b *testing.B, open func(b testing.TB) graph.Store) {
	b.Run("NodesByID", func(b *testing.B) {
		s := open(b)
		seedBench(b, s)
		r := rand.New(rand.NewPCG(3, 4))
		idSets := make([][]string, 64)
		for i := range idSets {
			for range 100 {
				idSets[i] = append(idSets[i], benchLightID(r.IntN(benchLights)))
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ns, err := s.Nodes(b.Context(), idSets[i%len(idSets)])
			if err != nil || len(ns) != 100 || ns[0] == nil {
				b.Fatalf("Nodes: %d nodes, %v", len(ns), err)
			}
			i++
		}
	})
	b.Run("Neighbors", func(b *testing.B) {
		// 100 districts, the 20 first lights of each by name, with totals
		s := open(b)
		seedBench(b, s)
		parents := make([]string, benchDistricts)
		for i := range parents {
			parents[i] = benchDistrictID(i)
		}
		q := graph.NeighborQuery{IDs: parents, Rel: "LOCATED_IN", Dir: ontology.In, Order: byField("name", false), First: 20}
		b.ReportAllocs()
		for b.Loop() {
			ps, err := s.Neighbors(b.Context(), q)
			if err != nil || len(ps) != benchDistricts || len(ps[0].Nodes) != 20 || ps[0].Total != benchLights/benchDistricts {
				b.Fatalf("Neighbors: %d pages, %v", len(ps), err)
			}
		}
	})
	b.Run("NeighborsOut", func(b *testing.B) {
		// 100 lights, each to its district
		s := open(b)
		seedBench(b, s)
		parents := make([]string, 100)
		for i := range parents {
			parents[i] = benchLightID(i * 97)
		}
		q := graph.NeighborQuery{IDs: parents, Rel: "LOCATED_IN", Dir: ontology.Out, First: 1}
		b.ReportAllocs()
		for b.Loop() {
			ps, err := s.Neighbors(b.Context(), q)
			if err != nil || len(ps) != 100 || len(ps[0].Nodes) != 1 {
				b.Fatalf("Neighbors: %d pages, %v", len(ps), err)
			}
		}
	})
	b.Run("FindFiltered", func(b *testing.B) {
		s := open(b)
		seedBench(b, s)
		q := graph.FindQuery{
			Class:  "StreetLight",
			Filter: graph.And{cmp("status", graph.OpEq, "OK"), cmp("powerRatingW", graph.OpGte, 100.0)},
			Order:  byField("name", false),
			First:  20,
		}
		b.ReportAllocs()
		for b.Loop() {
			p, err := s.Find(b.Context(), q)
			if err != nil || len(p.Nodes) != 20 {
				b.Fatalf("Find: %v", err)
			}
		}
	})
	b.Run("FindFilteredCount", func(b *testing.B) {
		s := open(b)
		seedBench(b, s)
		q := graph.FindQuery{
			Class:  "Asset",
			Filter: graph.And{cmp("status", graph.OpIn, list("OK", "FAULTY")), cmp("name", graph.OpContains, "main")},
			Order:  []graph.Order{{Field: "installedAt", Desc: true}},
			First:  20,
			Count:  true,
		}
		b.ReportAllocs()
		for b.Loop() {
			p, err := s.Find(b.Context(), q)
			if err != nil || len(p.Nodes) != 20 {
				b.Fatalf("Find: %v", err)
			}
		}
	})
	b.Run("FindNear", func(b *testing.B) {
		// a Near filter of 300 m in the middle of the grid, ordered by name
		s := open(b)
		seedBench(b, s)
		centre := graph.Point{Lat: benchLat + benchGrid*benchCell/2, Lon: benchLon + benchGrid*benchCell/2}
		q := graph.FindQuery{Class: "StreetLight", Filter: graph.Near{Center: centre, Meters: 300}, Order: byField("name", false), First: 20}
		b.ReportAllocs()
		for b.Loop() {
			p, err := s.Find(b.Context(), q)
			if err != nil || len(p.Nodes) == 0 {
				b.Fatalf("Find near: %d nodes, %v", len(p.Nodes), err)
			}
		}
	})
	b.Run("Near", func(b *testing.B) {
		// ten points, the ten nearest lights within 500 m of each
		s := open(b)
		seedBench(b, s)
		r := rand.New(rand.NewPCG(5, 6))
		var pts []graph.Point
		for range 10 {
			pts = append(pts, graph.Point{Lat: benchLat + r.Float64()*benchGrid*benchCell, Lon: benchLon + r.Float64()*benchGrid*benchCell})
		}
		q := graph.NearQuery{Points: pts, Class: "StreetLight", Meters: 500, First: 10}
		b.ReportAllocs()
		for b.Loop() {
			ps, err := s.Near(b.Context(), q)
			if err != nil || len(ps) != 10 || len(ps[0].Nodes) == 0 {
				b.Fatalf("Near: %v", err)
			}
		}
	})
	b.Run("FindWithinArea", func(b *testing.B) {
		s := open(b)
		seedBench(b, s)
		q := graph.FindQuery{Class: "StreetLight", Filter: graph.WithinArea{AreaID: benchDistrictID(55)}, First: 20, Count: true}
		b.ReportAllocs()
		for b.Loop() {
			p, err := s.Find(b.Context(), q)
			if err != nil || len(p.Nodes) == 0 {
				b.Fatalf("Find within area: %v", err)
			}
		}
	})
	b.Run("Apply", func(b *testing.B) {
		// batches of 500 upserts of existing lights that change their
		// properties (lights do not move)
		s := open(b)
		seedBench(b, s)
		r := rand.New(rand.NewPCG(7, 8))
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			batch := graph.Batch{Nodes: make([]graph.Node, 0, 500)}
			for range 500 {
				j := r.IntN(benchLights)
				batch.Nodes = append(batch.Nodes, benchLight(r, j, fmt.Sprintf("Light %05d v%d", j, i)))
			}
			i++
			b.StartTimer()
			ch, err := s.Apply(b.Context(), batch)
			if err != nil || len(ch) == 0 {
				b.Fatalf("Apply: %d events, %v", len(ch), err)
			}
		}
	})
}
