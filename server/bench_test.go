package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/all"
	"github.com/cityhub/cityhub/demo"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/resolvers/core"
)

var demoOnce struct {
	sync.Once
	store graph.Store
	err   error
}

// demoStore loads the Cambridge demo city into an embedded store once per
// test binary.
func demoStore(b *testing.B) graph.Store {
	b.Helper()
	demoOnce.Do(func() {
		ctx := context.Background()
		dir, err := mkdirTemp()
		if err != nil {
			demoOnce.err = err
			return
		}
		cfg := sqlite.DefaultConfig()
		cfg.Path = filepath.Join(dir, "demo.db")
		ont := ontology.Default()
		store, err := sqlite.Open(ctx, cfg, ont)
		if err != nil {
			demoOnce.err = err
			return
		}
		reg := connectors.NewRegistry()
		all.Register(reg)
		conns, err := connectors.LoadFile("../demo/cambridge/connectors.yaml", ont, reg)
		if err != nil {
			demoOnce.err = err
			return
		}
		_, demoOnce.err = connectors.NewRunner(connectors.RunnerConfig{}).RunAll(ctx, conns, store)
		demoOnce.store = store
	})
	if demoOnce.err != nil {
		b.Fatal(demoOnce.err)
	}
	return demoOnce.store
}

// BenchmarkCrossDomainHTTP runs the demo's cross-domain query (crashes in a
// neighbourhood, five nearby lookups each, the traffic count's datastream)
// over HTTP on loopback: parsing, validation, execution, dataloaders, JSON.
func BenchmarkCrossDomainHTTP(b *testing.B) {
	store := demoStore(b)
	engine := core.NewEngine(store, ontology.Default(), core.DefaultConfig(), nil)
	srv := httptest.NewServer(New(DefaultConfig(), engine, nil, nil, nil))
	defer srv.Close()
	body, _ := json.Marshal(map[string]any{"query": demo.CrossDomainQuery})
	client := srv.Client()
	run := func() {
		resp, err := client.Post(srv.URL+"/graphql", "application/json", bytes.NewReader(body))
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

// BenchmarkCrossDomainStore issues the store calls the cross-domain query
// needs, directly: the baseline the GraphQL layer is measured against.
func BenchmarkCrossDomainStore(b *testing.B) {
	store := demoStore(b)
	ctx := context.Background()
	run := func() {
		hoods, err := store.Find(ctx, graph.FindQuery{Class: "Neighbourhood", Filter: graph.Cmp{Field: "name", Op: graph.OpEq, Value: "Cambridgeport"}, First: 1})
		if err != nil || len(hoods.Nodes) != 1 {
			b.Fatalf("find: %v", err)
		}
		crashes, err := store.Neighbors(ctx, graph.NeighborQuery{IDs: []string{hoods.Nodes[0].ID}, Rel: "LOCATED_IN", Dir: ontology.In, Class: "Incident", First: 5})
		if err != nil {
			b.Fatal(err)
		}
		var points []graph.Point
		for _, n := range crashes[0].Nodes {
			points = append(points, n.Geometry.Point)
		}
		var sensors []string
		for _, nq := range []struct {
			class  string
			meters float64
			first  int
		}{{"TrafficSignal", 500, 1}, {"StreetLight", 300, 1}, {"ParkingSpot", 200, 3}, {"BikeShareStation", 1000, 2}, {"Sensor", 1000, 1}} {
			pages, err := store.Near(ctx, graph.NearQuery{Points: points, Class: nq.class, Meters: nq.meters, First: nq.first + 1})
			if err != nil {
				b.Fatal(err)
			}
			if nq.class == "Sensor" {
				for _, p := range pages {
					for _, n := range p.Nodes {
						sensors = append(sensors, n.ID)
					}
				}
			}
		}
		if _, err := store.Neighbors(ctx, graph.NeighborQuery{IDs: sensors, Rel: "OBSERVED_BY", Dir: ontology.In, Class: "Datastream", First: 1}); err != nil {
			b.Fatal(err)
		}
	}
	run()
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

func mkdirTemp() (string, error) {
	return os.MkdirTemp("", "cityhub-bench-"+time.Now().Format("150405"))
}
