// Package connectortest holds helpers shared by connector tests: an
// in-memory Applier/Finder that records what a run writes, and a check that
// a kind's sample.yaml loads against the ontology and runs. It is imported
// by tests only.
package connectortest

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Store is an in-memory connectors.Target: Apply upserts nodes and edges by
// key, Find pages through a class and its subclasses in ID order. It is
// safe for concurrent use.
type Store struct {
	mu    sync.Mutex
	ont   *ontology.Ontology
	Nodes map[string]graph.Node
	Edges map[graph.EdgeKey]graph.Edge
	// Applies counts Apply calls.
	Applies int
}

var _ connectors.Target = (*Store)(nil)

// NewStore returns an empty store for the ontology.
func NewStore(ont *ontology.Ontology) *Store {
	return &Store{ont: ont, Nodes: map[string]graph.Node{}, Edges: map[graph.EdgeKey]graph.Edge{}}
}

// Apply implements connectors.Applier. It checks what a real store would:
// known classes and relations, edges from existing nodes.
func (s *Store) Apply(_ context.Context, b graph.Batch) ([]graph.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Applies++
	for _, n := range b.Nodes {
		c := s.ont.Class(n.Class)
		if c == nil || c.Abstract {
			return nil, fmt.Errorf("connectortest: node %s: class %q: %w", n.ID, n.Class, graph.ErrInvalid)
		}
		if old, ok := s.Nodes[n.ID]; ok && old.Class != n.Class {
			return nil, fmt.Errorf("connectortest: node %s is a %s, not a %s: %w", n.ID, old.Class, n.Class, graph.ErrConflict)
		}
	}
	var changes []graph.Change
	for _, n := range b.Nodes {
		s.Nodes[n.ID] = n
		changes = append(changes, graph.Change{Op: graph.OpUpdate, ID: n.ID, Class: n.Class})
	}
	for _, e := range b.Edges {
		if s.ont.Relation(e.Rel) == nil {
			return nil, fmt.Errorf("connectortest: edge %s: %w", e.Rel, graph.ErrInvalid)
		}
		s.Edges[e.Key()] = e
		k := e.Key()
		changes = append(changes, graph.Change{Op: graph.OpEdgeAdd, ID: e.From, Edge: &k})
	}
	return changes, nil
}

// Find implements connectors.Finder (class and paging only; filters are
// not supported).
func (s *Store) Find(_ context.Context, q graph.FindQuery) (*graph.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.ont.Class(q.Class)
	if c == nil || q.First <= 0 || q.Filter != nil {
		return nil, fmt.Errorf("connectortest: find %+v: %w", q, graph.ErrInvalid)
	}
	var ids []string
	for id, n := range s.Nodes {
		if nc := s.ont.Class(n.Class); nc != nil && nc.IsA(c) && id > q.After {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	p := &graph.Page{Total: -1, HasPrev: q.After != ""}
	for i, id := range ids {
		if i == q.First {
			p.HasNext = true
			break
		}
		n := s.Nodes[id]
		p.Nodes = append(p.Nodes, &n)
		p.Cursors = append(p.Cursors, id)
	}
	return p, nil
}

// Count returns the number of nodes of a leaf class.
func (s *Store) Count(class string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, x := range s.Nodes {
		if x.Class == class {
			n++
		}
	}
	return n
}

// CountEdges returns the number of edges of a relation.
func (s *Store) CountEdges(rel string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.Edges {
		if k.Rel == rel {
			n++
		}
	}
	return n
}

// Neighbors returns the targets of the edges of rel leaving id, sorted.
func (s *Store) Neighbors(id, rel string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.Edges {
		if k.From == id && k.Rel == rel {
			out = append(out, k.To)
		}
	}
	sort.Strings(out)
	return out
}

// DeadLetters collects dead letters in memory; safe for concurrent use.
type DeadLetters struct {
	mu      sync.Mutex
	Letters []connectors.DeadLetter
}

// Put implements connectors.DeadLetterSink.
func (d *DeadLetters) Put(_ context.Context, l connectors.DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Letters = append(d.Letters, l)
	return nil
}

// Logger returns a logger writing to t.Log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// Now is a fixed clock for tests.
func Now() time.Time { return time.Date(2025, 1, 5, 2, 0, 0, 0, time.UTC) }

// CheckSample loads the kind's embedded sample (as if it were the file
// sample.yaml in the current directory, so its relative paths reach the
// package's testdata) against ont, runs every connector in it, and returns
// the store and the run stats. It fails the test on any load or run error
// and when a run loses records (read != written + rejected + skipped).
func CheckSample(t testing.TB, kind connectors.Kind, ont *ontology.Ontology) (*Store, []connectors.RunStats, *DeadLetters) {
	t.Helper()
	if len(kind.Sample) == 0 {
		t.Fatalf("kind %s has no sample", kind.Name)
	}
	reg := connectors.NewRegistry()
	reg.Register(kind)
	conns, err := connectors.Parse("sample.yaml", kind.Sample, ont, reg)
	if err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	store := NewStore(ont)
	dead := &DeadLetters{}
	r := connectors.NewRunner(connectors.RunnerConfig{Logger: Logger(t), Now: Now, DeadLetters: dead})
	stats, err := r.RunAll(context.Background(), conns, store)
	if err != nil {
		t.Fatalf("sample run: %v", err)
	}
	for _, st := range stats {
		if st.Read == 0 || st.Read != st.Written+st.Rejected+st.Skipped {
			t.Errorf("sample run %s: read %d, written %d, rejected %d, skipped %d", st.Connector, st.Read, st.Written, st.Rejected, st.Skipped)
		}
	}
	return store, stats, dead
}
