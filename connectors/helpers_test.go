package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// memoryConfig is the config of the test-only "memory" kind: records given
// inline in the connector file.
type memoryConfig struct {
	Records []map[string]any `yaml:"records"`
	// FailAfter makes Read return an error after that many records (0: never).
	FailAfter int `yaml:"fail_after"`
}

type memorySource struct{ cfg memoryConfig }

func (s *memorySource) Read(ctx context.Context, emit func(Record) error) error {
	for i, r := range s.cfg.Records {
		if s.cfg.FailAfter > 0 && i == s.cfg.FailAfter {
			return errors.New("memory: source broke")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := Record{Fields: map[string]any{}, Pos: Position{File: "memory", Line: i + 2, Index: i}}
		for k, v := range r {
			switch k {
			case "_geometry":
				b, _ := json.Marshal(v)
				rec.Geometry = b
			case "_err":
				rec.Err = errors.New(fmt.Sprint(v))
			default:
				if n, ok := v.(int); ok {
					v = int64(n)
				}
				rec.Fields[k] = v
			}
		}
		rec.Raw, _ = json.Marshal(r)
		if err := emit(rec); err != nil {
			return err
		}
	}
	return nil
}

func memoryKind() Kind {
	return Kind{
		Name:    "memory",
		Summary: "Records given inline (tests).",
		Config:  memoryConfig{},
		New: func(raw RawConfig) (Source, error) {
			var cfg memoryConfig
			if err := raw.Decode(&cfg); err != nil {
				return nil, err
			}
			return &memorySource{cfg}, nil
		},
	}
}

func mustOntology(t testing.TB) *ontology.Ontology {
	t.Helper()
	o, err := ontology.LoadFile("testdata/ontology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func testRegistry() *Registry {
	r := NewRegistry()
	r.Register(memoryKind())
	return r
}

func mustParse(t testing.TB, src string) []*Connector {
	t.Helper()
	conns, err := Parse("testdata/test.yaml", []byte(src), mustOntology(t), testRegistry())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return conns
}

// fakeStore is an in-memory Applier and Finder.
type fakeStore struct {
	mu      sync.Mutex
	ont     *ontology.Ontology
	nodes   map[string]graph.Node
	edges   map[graph.EdgeKey]graph.Edge
	applies int
	// reject makes Apply fail with graph.ErrInvalid for batches holding a
	// node with this ID.
	reject string
	// fail makes every Apply fail with this error.
	fail error
}

func newFakeStore(ont *ontology.Ontology) *fakeStore {
	return &fakeStore{ont: ont, nodes: map[string]graph.Node{}, edges: map[graph.EdgeKey]graph.Edge{}}
}

func (s *fakeStore) Apply(_ context.Context, b graph.Batch) ([]graph.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applies++
	if s.fail != nil {
		return nil, s.fail
	}
	for _, n := range b.Nodes {
		if n.ID == s.reject {
			return nil, fmt.Errorf("fake: node %s: %w", n.ID, graph.ErrInvalid)
		}
	}
	var ch []graph.Change
	for _, n := range b.Nodes {
		s.nodes[n.ID] = n
		ch = append(ch, graph.Change{Op: graph.OpCreate, ID: n.ID, Class: n.Class})
	}
	for _, e := range b.Edges {
		s.edges[e.Key()] = e
		ch = append(ch, graph.Change{Op: graph.OpEdgeAdd, ID: e.From})
	}
	return ch, nil
}

func (s *fakeStore) Find(_ context.Context, q graph.FindQuery) (*graph.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.ont.Class(q.Class)
	if c == nil {
		return nil, fmt.Errorf("fake: class %q: %w", q.Class, graph.ErrInvalid)
	}
	var ids []string
	for id, n := range s.nodes {
		if nc := s.ont.Class(n.Class); nc != nil && nc.IsA(c) && id > q.After {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	p := &graph.Page{Total: -1}
	for i, id := range ids {
		if i == q.First {
			p.HasNext = true
			break
		}
		n := s.nodes[id]
		p.Nodes = append(p.Nodes, &n)
		p.Cursors = append(p.Cursors, id)
	}
	return p, nil
}

func (s *fakeStore) count(class string) int {
	n := 0
	for _, x := range s.nodes {
		if x.Class == class {
			n++
		}
	}
	return n
}

// memSink collects dead letters.
type memSink struct{ letters []DeadLetter }

func (m *memSink) Put(_ context.Context, d DeadLetter) error {
	m.letters = append(m.letters, d)
	return nil
}
