package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/all"
	"github.com/cityhub/cityhub/demo"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/neo4j"
	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/resolvers/core"
)

var neo4jDemo struct {
	sync.Once
	store graph.Store
	err   error
}

// neo4jDemoStore loads the demo city into the Neo4j at CITYHUB_NEO4J_URI
// (idempotently: a loaded database changes nothing). It skips without one.
func neo4jDemoStore(b *testing.B) (graph.Store, string) {
	b.Helper()
	uri := os.Getenv("CITYHUB_NEO4J_URI")
	if uri == "" {
		b.Skip("CITYHUB_NEO4J_URI not set")
	}
	neo4jDemo.Do(func() {
		ctx := context.Background()
		cfg := neo4j.DefaultConfig()
		cfg.URI = uri
		ont := ontology.Default()
		s, err := neo4j.Open(ctx, cfg, ont)
		if err != nil {
			neo4jDemo.err = err
			return
		}
		if neo4jDemo.err = s.Migrate(ctx); neo4jDemo.err != nil {
			return
		}
		reg := connectors.NewRegistry()
		all.Register(reg)
		conns, err := connectors.LoadFile("../demo/cambridge/connectors.yaml", ont, reg)
		if err != nil {
			neo4jDemo.err = err
			return
		}
		_, neo4jDemo.err = connectors.NewRunner(connectors.RunnerConfig{}).RunAll(ctx, conns, s)
		neo4jDemo.store = s
	})
	if neo4jDemo.err != nil {
		b.Fatal(neo4jDemo.err)
	}
	return neo4jDemo.store, uri
}

// BenchmarkCrossDomainHTTPNeo4j is BenchmarkCrossDomainHTTP on Neo4j.
func BenchmarkCrossDomainHTTPNeo4j(b *testing.B) {
	store, _ := neo4jDemoStore(b)
	engine := core.NewEngine(store, ontology.Default(), core.DefaultConfig(), nil)
	srv := httptest.NewServer(New(DefaultConfig(), engine, nil, nil, nil))
	defer srv.Close()
	body, _ := json.Marshal(map[string]any{"query": demo.CrossDomainQuery})
	run := func() {
		resp, err := srv.Client().Post(srv.URL+"/graphql", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"errors"`)) {
			b.Fatalf("status %d: %s", resp.StatusCode, out)
		}
	}
	run()
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

// crossDomainCypher is the best single Cypher query we could write for the
// cross-domain query's result: the baseline of BenchmarkCrossDomainCypher.
const crossDomainCypher = `
MATCH (h:Neighbourhood {name: $name})
CALL { WITH h MATCH (c:Incident)-[:LOCATED_IN]->(h) RETURN count(c) AS total }
CALL { WITH h MATCH (c:Incident)-[:LOCATED_IN]->(h) WITH c ORDER BY c.id LIMIT 5 RETURN collect(c) AS crashes }
UNWIND crashes AS c
RETURN h.id AS id, h.name AS name, total, c {
  .name, .reportedAt, .objects, .street, .location,
  signal: COLLECT { MATCH (s:TrafficSignal) WHERE point.distance(s.location, c.location) <= 500
    WITH s, point.distance(s.location, c.location) AS d ORDER BY d, s.id LIMIT 1 RETURN s {.id, .name, d} },
  light: COLLECT { MATCH (s:StreetLight) WHERE point.distance(s.location, c.location) <= 300
    WITH s, point.distance(s.location, c.location) AS d ORDER BY d, s.id LIMIT 1 RETURN s {.id, .poleNumber, .status, d} },
  parking: COLLECT { MATCH (s:ParkingSpot) WHERE point.distance(s.location, c.location) <= 200
    WITH s, point.distance(s.location, c.location) AS d ORDER BY d, s.id LIMIT 3 RETURN s {.spaceId, .rate, .maxTime, .status, d} },
  bikes: COLLECT { MATCH (s:BikeShareStation) WHERE point.distance(s.location, c.location) <= 1000
    WITH s, point.distance(s.location, c.location) AS d ORDER BY d, s.id LIMIT 2 RETURN s {.name, .availableBikes, .availableDocks, d} },
  count: COLLECT { MATCH (s:Sensor) WHERE point.distance(s.location, c.location) <= 1000
    WITH s, point.distance(s.location, c.location) AS d ORDER BY d, s.id LIMIT 1
    RETURN s {.name, d, streams: COLLECT { MATCH (ds:Datastream)-[:OBSERVED_BY]->(s) WITH ds ORDER BY ds.id LIMIT 1 RETURN ds {.lastValue, .lastObservedAt, .unitUcum} }} }
} AS crash`

// BenchmarkCrossDomainCypher runs the single best Cypher query for the
// cross-domain result through the raw driver.
func BenchmarkCrossDomainCypher(b *testing.B) {
	_, uri := neo4jDemoStore(b)
	ctx := context.Background()
	d, err := neo4jdrv.NewDriverWithContext(uri, neo4jdrv.NoAuth())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close(ctx)
	run := func() {
		res, err := neo4jdrv.ExecuteQuery(ctx, d, crossDomainCypher, map[string]any{"name": "Cambridgeport"}, neo4jdrv.EagerResultTransformer)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Records) != 5 {
			b.Fatalf("%d rows, want 5", len(res.Records))
		}
	}
	run()
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}
