package cambridge_test

import (
	"path/filepath"
	"testing"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

// TestDemoSQLite loads the whole demo into the embedded store.
func TestDemoSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the whole demo city into SQLite")
	}
	ont := ontology.Default()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "city.db")
	st, err := sqlite.Open(t.Context(), cfg, ont)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dead := &connectortest.DeadLetters{}
	r := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), Now: connectortest.Now, DeadLetters: dead})
	stats, err := r.RunAll(t.Context(), loadDemo(t), st)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Rejected != 0 || s.Read != s.Written {
			t.Errorf("%s: %+v", s.Connector, s)
		}
	}
	for class, want := range map[string]int{"Neighbourhood": 13, "StreetLight": 6117, "Incident": 10335, "Observation": 690, "Facility": 50 + 3 + 8 + 2 + 7 + 50 + 195} {
		p, err := st.Find(t.Context(), graph.FindQuery{Class: class, First: 1, Count: true})
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != want {
			t.Errorf("%s: %d nodes, want %d", class, p.Total, want)
		}
	}
	pages, err := st.Neighbors(t.Context(), graph.NeighborQuery{IDs: []string{"urn:city:incident:cambridge-police:30927"}, Rel: "LOCATED_IN", Dir: ontology.Out, First: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages[0].Nodes) != 1 || pages[0].Nodes[0].ID != "urn:city:neighbourhood:cambridge-gis:6" {
		t.Errorf("crash 30927 located in %+v", pages[0].Nodes)
	}
}
