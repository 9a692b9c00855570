package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/graphtest"
	"github.com/cityhub/cityhub/graph/sqlite"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cityhub")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(dir, "graph.db")
	s, err := sqlite.Open(ctx, cfg, graphtest.Ontology())
	if err != nil {
		panic(err)
	}
	defer s.Close()

	changes, err := s.Apply(ctx, graph.Batch{Nodes: []graph.Node{{
		ID:       "urn:city:StreetLight:gis:1",
		Class:    "StreetLight",
		Props:    map[string]any{"name": "Main Street 1", "status": "OK"},
		Geometry: graph.PointGeometry(42.37, -71.11),
	}}})
	if err != nil {
		panic(err)
	}
	fmt.Println(changes[0].Op, changes[0].ID, changes[0].Changed)

	page, err := s.Find(ctx, graph.FindQuery{
		Class:  "Asset",
		Filter: graph.Cmp{Field: "name", Op: graph.OpContains, Value: "MAIN"},
		First:  10,
	})
	if err != nil {
		panic(err)
	}
	for _, n := range page.Nodes {
		fmt.Println(n.ID, n.Props["status"])
	}
	// Output:
	// CREATE urn:city:StreetLight:gis:1 [name status location]
	// urn:city:StreetLight:gis:1 OK
}
