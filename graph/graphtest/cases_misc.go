package graphtest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

func miscCases() []testCase {
	return []testCase{
		{"Ping", func(t *testing.T, s graph.Store) {
			p, ok := s.(graph.Pinger)
			if !ok {
				t.Skip("the store does not implement graph.Pinger")
			}
			if err := p.Ping(t.Context()); err != nil {
				t.Errorf("Ping: %v", err)
			}
		}},
		{"ChangeLog/Limit", func(t *testing.T, s graph.Store) {
			cl, ok := s.(graph.ChangeLog)
			if !ok {
				t.Skip("the store does not implement graph.ChangeLog")
			}
			MustApply(t, s, graph.Batch{Nodes: []graph.Node{node("StreetLight", "a"), node("StreetLight", "b"), node("StreetLight", "c")}})
			ch, err := cl.ChangesSince(t.Context(), 0, 2)
			if err != nil || len(ch) != 2 {
				t.Errorf("ChangesSince(0, 2) = %v, %v; want 2 changes", ops(ch), err)
			}
		}},
		{"Concurrency", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for w := range 4 {
				wg.Go(func() {
					for i := range 20 {
						if w == 0 {
							_, err := s.Apply(t.Context(), graph.Batch{
								Nodes: []graph.Node{at(node("StreetLight", fmt.Sprintf("c-%d", i), "name", "C", "status", "OK"), 42.001, -71)},
								Edges: []graph.Edge{edge(fmt.Sprintf("c-%d", i), "LOCATED_IN", "nd-1")},
							})
							if err != nil {
								errs <- err
							}
							continue
						}
						if _, err := s.Find(t.Context(), graph.FindQuery{Class: "Asset", Filter: cmp("status", graph.OpEq, "OK"), First: 5, Count: true}); err != nil {
							errs <- err
						}
						if _, err := s.Neighbors(t.Context(), graph.NeighborQuery{IDs: []string{"nd-1"}, Rel: "LOCATED_IN", Dir: ontology.In, First: 5}); err != nil {
							errs <- err
						}
						if _, err := s.Nodes(t.Context(), []string{"n-1", fmt.Sprintf("c-%d", i)}); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			p := MustFind(t, s, graph.FindQuery{Class: "StreetLight", Filter: cmp("name", graph.OpEq, "C"), First: 1, Count: true})
			if p.Total != 20 {
				t.Errorf("%d concurrent writes landed, want 20", p.Total)
			}
		}},
	}
}
