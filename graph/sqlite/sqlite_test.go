package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/graphtest"
	"github.com/cityhub/cityhub/graph/sqlite"
)

// open returns a fresh store in a temporary directory, closed at cleanup.
func open(t testing.TB) graph.Store {
	t.Helper()
	return mustOpen(t, filepath.Join(t.TempDir(), "graph.db"))
}

func mustOpen(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	cfg := sqlite.DefaultConfig()
	cfg.Path = path
	s, err := sqlite.Open(t.Context(), cfg, graphtest.Ontology())
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) { graphtest.Run(t, open) }

func BenchmarkStore(b *testing.B) { graphtest.Bench(b, open) }
