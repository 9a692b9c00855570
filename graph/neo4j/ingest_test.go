package neo4j_test

import (
	"fmt"
	"testing"
	"time"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/neo4j"
)

// ingestBatch returns batch i of 500 new street lights, each LOCATED_IN
// one of 100 districts: the shape of a connector run's batch.
func ingestBatch(i int) graph.Batch {
	var b graph.Batch
	for j := range 500 {
		k := i*500 + j
		n := graph.Node{ID: fmt.Sprintf("urn:city:StreetLight:ingest:%07d", k), Class: "StreetLight",
			Props: map[string]any{
				"name": fmt.Sprintf("Light %07d Main street", k), "status": []string{"OK", "FAULTY", "UNKNOWN"}[k%3],
				"poleNumber": fmt.Sprintf("P-%07d", k), "powerRatingW": float64(20 + k%200), "lampCount": int64(1 + k%4),
				"installedAt": time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, k%3000),
				"externalIds": []any{fmt.Sprintf("EXT-%d", k)},
			},
			Geometry: graph.PointGeometry(42.35+float64(k%1000)*1e-4, -71.15+float64(k/1000%1000)*1e-4),
			Prov: graph.Provenance{Source: "bench", SourceKey: fmt.Sprint(k), Connector: "bench", Run: "ingest",
				FetchedAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		}
		b.Nodes = append(b.Nodes, n)
		b.Edges = append(b.Edges, graph.Edge{From: n.ID, Rel: "LOCATED_IN", To: fmt.Sprintf("urn:city:District:ingest:%03d", k%100)})
	}
	return b
}

// rawRows renders a batch as the rows of the hand-written statement: the
// same properties, point and provenance the store writes.
func rawRows(b graph.Batch) []any {
	rows := make([]any, len(b.Nodes))
	for i, n := range b.Nodes {
		p := map[string]any{"_class": n.Class, "_source": n.Prov.Source, "_sourceKey": n.Prov.SourceKey,
			"_connector": n.Prov.Connector, "_run": n.Prov.Run, "_fetchedAt": n.Prov.FetchedAt, "_ingestedAt": time.Now().UTC(),
			"_search":  n.Props["name"],
			"location": dbtype.Point2D{X: n.Geometry.Point.Lon, Y: n.Geometry.Point.Lat, SpatialRefId: 4326},
			"_geoKind": "Point"}
		for k, v := range n.Props {
			p[k] = v
		}
		rows[i] = map[string]any{"id": n.ID, "p": p, "d": b.Edges[i].To}
	}
	return rows
}

// BenchmarkIntegrationIngest compares Apply with the hand-written
// UNWIND … MERGE of the same records through the raw driver (one managed
// write transaction per batch of 500 new nodes and their edges). The
// records/s metrics give the ratio the issue asks for.
func BenchmarkIntegrationIngest(b *testing.B) {
	config(b)
	districts := graph.Batch{}
	for i := range 100 {
		districts.Nodes = append(districts.Nodes, graph.Node{ID: fmt.Sprintf("urn:city:District:ingest:%03d", i), Class: "District",
			Props: map[string]any{"officialCode": fmt.Sprint(i)}, Geometry: graph.PointGeometry(42.35, -71.15)})
	}
	b.Run("Apply", func(b *testing.B) {
		s := open(b)
		if _, err := s.Apply(b.Context(), districts); err != nil {
			b.Fatal(err)
		}
		batches := make([]graph.Batch, 0, 64)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			for len(batches) <= i {
				batches = append(batches, ingestBatch(len(batches)))
			}
			b.StartTimer()
			ch, err := s.Apply(b.Context(), batches[i])
			if err != nil || len(ch) != 1000 {
				b.Fatalf("Apply: %d events, %v", len(ch), err)
			}
			i++
		}
		b.ReportMetric(float64(500*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("RawMerge", func(b *testing.B) {
		s := open(b).(*neo4j.Store)
		if _, err := s.Apply(b.Context(), districts); err != nil {
			b.Fatal(err)
		}
		drv := neo4j.Driver(s)
		const q = "UNWIND $rows AS row MERGE (n:Entity {id: row.id}) SET n += row.p SET n:Asset:StreetLight" +
			" WITH n, row MATCH (d:Entity {id: row.d}) MERGE (n)-[r:LOCATED_IN]->(d)"
		batches := make([]graph.Batch, 0, 64)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			for len(batches) <= i {
				batches = append(batches, ingestBatch(len(batches)))
			}
			b.StartTimer()
			// converting the records is part of a hand-written ingest too
			rows := rawRows(batches[i])
			_, err := neo4jdrv.ExecuteQuery(b.Context(), drv, q, map[string]any{"rows": rows}, neo4jdrv.EagerResultTransformer)
			if err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(500*b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
