package graphtest

import (
	"maps"
	"slices"
	"testing"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// seedNeighbors stores two districts, lights, a camera, incidents and an
// organisation with edges of every relation.
func seedNeighbors(t testing.TB, s graph.Store) {
	t.Helper()
	nd1 := node("District", "nd-1", "name", "North", "officialCode", "N")
	nd1.Geometry = square(42, -71, 0.01, 0)
	nd2 := at(node("District", "nd-2", "name", "South", "officialCode", "S"), 41, -71)
	MustApply(t, s, graph.Batch{
		Nodes: []graph.Node{
			nd1, nd2,
			at(node("StreetLight", "n-1", "name", "Alpha", "status", "OK"), 42.001, -71),
			at(node("StreetLight", "n-2", "name", "Bravo", "status", "FAULTY"), 42.002, -71),
			at(node("StreetLight", "n-3", "name", "Charlie", "status", "OK"), 42.003, -71),
			at(node("StreetLight", "n-4", "name", "Delta"), 42.004, -71),
			at(node("StreetLight", "n-5", "name", "Echo", "status", "OK"), 41.001, -71),
			at(node("Camera", "nc-1", "name", "Cam", "status", "OK"), 42.005, -71),
			at(node("Incident", "ni-1", "name", "Crash", "severity", "HIGH", "reportedAt", ts("2024-01-01T00:00:00Z")), 42.006, -71),
			at(node("Incident", "ni-2", "name", "Outage", "severity", "LOW", "reportedAt", ts("2024-01-02T00:00:00Z")), 42.007, -71),
			node("Organization", "no-1", "name", "Lights Ltd"),
		},
		Edges: []graph.Edge{
			edge("n-1", "LOCATED_IN", "nd-1"), edge("n-2", "LOCATED_IN", "nd-1"), edge("n-3", "LOCATED_IN", "nd-1"),
			edge("n-4", "LOCATED_IN", "nd-1"), edge("nc-1", "LOCATED_IN", "nd-1"), edge("ni-1", "LOCATED_IN", "nd-1"),
			edge("n-5", "LOCATED_IN", "nd-2"),
			edge("ni-1", "AFFECTS", "n-1", "impact", "high", "weight", 0.9),
			edge("ni-1", "AFFECTS", "n-2"),
			edge("ni-1", "AFFECTS", "nc-1", "impact", "low"),
			edge("ni-2", "AFFECTS", "n-1", "impact", "low"),
			edge("no-1", "MAINTAINS", "n-1", "since", ts("2019-05-01T00:00:00Z")),
			edge("no-1", "MAINTAINS", "n-3"),
		},
	})
}

func neighborCases() []testCase {
	return []testCase{
		{"Neighbors/Out", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			q := graph.NeighborQuery{IDs: []string{"n-1", "n-5", "nc-1", "missing", "n-1"}, Rel: "LOCATED_IN", Dir: ontology.Out, First: 10}
			ps := MustNeighbors(t, s, q)
			want := [][]string{{"nd-1"}, {"nd-2"}, {"nd-1"}, {}, {"nd-1"}}
			for i, p := range ps {
				sameIDs(t, "neighbours of "+q.IDs[i], p.Nodes, want[i]...)
				if p.Total != len(want[i]) || p.HasNext || p.HasPrev {
					t.Errorf("%s: Total %d HasNext %v HasPrev %v", q.IDs[i], p.Total, p.HasNext, p.HasPrev)
				}
			}
			if ps := MustNeighbors(t, s, graph.NeighborQuery{Rel: "LOCATED_IN", First: 1}); len(ps) != 0 {
				t.Errorf("no IDs: %d pages", len(ps))
			}
		}},
		{"Neighbors/In", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			ps := MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"nd-1", "nd-2"}, Rel: "LOCATED_IN", Dir: ontology.In, First: 10})
			sameIDs(t, "contains nd-1", ps[0].Nodes, "n-1", "n-2", "n-3", "n-4", "nc-1", "ni-1")
			sameIDs(t, "contains nd-2", ps[1].Nodes, "n-5")
			if ps[0].Total != 6 || ps[1].Total != 1 {
				t.Errorf("totals %d, %d; want 6, 1", ps[0].Total, ps[1].Total)
			}
			ps = MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"nd-1"}, Rel: "LOCATED_IN", Dir: ontology.In, Class: "StreetLight", First: 10})
			sameIDs(t, "street lights in nd-1", ps[0].Nodes, "n-1", "n-2", "n-3", "n-4")
			ps = MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"nd-1"}, Rel: "LOCATED_IN", Dir: ontology.In, Class: "Asset",
				Filter: cmp("status", graph.OpEq, "OK"), First: 10})
			sameIDs(t, "OK assets in nd-1", ps[0].Nodes, "n-1", "n-3", "nc-1")
			if ps[0].Total != 3 {
				t.Errorf("OK assets total %d, want 3", ps[0].Total)
			}
			// a property of one of the relation's source classes, without Class
			ps = MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"nd-1"}, Rel: "LOCATED_IN", Dir: ontology.In,
				Filter: cmp("severity", graph.OpEq, "HIGH"), First: 10})
			sameIDs(t, "high incidents in nd-1", ps[0].Nodes, "ni-1")
			ps = MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"n-1", "n-3", "n-2"}, Rel: "MAINTAINS", Dir: ontology.In, First: 10})
			sameIDs(t, "maintainers of n-1", ps[0].Nodes, "no-1")
			sameIDs(t, "maintainers of n-3", ps[1].Nodes, "no-1")
			sameIDs(t, "maintainers of n-2", ps[2].Nodes)
		}},
		{"Neighbors/OrderAndPages", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			order := byField("name", true)
			q := graph.NeighborQuery{IDs: []string{"nd-1", "nd-2"}, Rel: "LOCATED_IN", Dir: ontology.In, Class: "StreetLight", Order: order, First: 2}
			ps := MustNeighbors(t, s, q)
			sameIDs(t, "nd-1 page 1", ps[0].Nodes, "n-4", "n-3")
			sameIDs(t, "nd-2 page 1", ps[1].Nodes, "n-5")
			if !ps[0].HasNext || ps[0].Total != 4 || ps[0].HasPrev || ps[1].HasNext || ps[1].Total != 1 {
				t.Errorf("page 1 flags: nd-1 HasNext %v Total %d HasPrev %v; nd-2 HasNext %v Total %d",
					ps[0].HasNext, ps[0].Total, ps[0].HasPrev, ps[1].HasNext, ps[1].Total)
			}
			q.After = ps[0].Cursors[1]
			ps = MustNeighbors(t, s, q)
			sameIDs(t, "nd-1 page 2", ps[0].Nodes, "n-2", "n-1")
			// Echo sorts before the cursor (Charlie) in descending order
			sameIDs(t, "nd-2 page 2", ps[1].Nodes)
			if ps[0].HasNext || !ps[0].HasPrev || ps[0].Total != 4 || ps[1].Total != 1 || !ps[1].HasPrev {
				t.Errorf("page 2 flags: nd-1 HasNext %v HasPrev %v Total %d; nd-2 Total %d HasPrev %v",
					ps[0].HasNext, ps[0].HasPrev, ps[0].Total, ps[1].Total, ps[1].HasPrev)
			}
			// page one node at a time through everything located in nd-1
			var got []string
			q = graph.NeighborQuery{IDs: []string{"nd-1"}, Rel: "LOCATED_IN", Dir: ontology.In, Order: byField("status", false), First: 1}
			for range 10 {
				p := MustNeighbors(t, s, q)[0]
				got = append(got, ids(p.Nodes)...)
				if !p.HasNext {
					break
				}
				q.After = p.Cursors[0]
			}
			// FAULTY, OK, OK, then nulls (n-4; ni-1 has no status property)
			if want := []string{"n-2", "n-1", "n-3", "nc-1", "n-4", "ni-1"}; !slices.Equal(got, want) {
				t.Errorf("paged one by one: %q, want %q", got, want)
			}
		}},
		{"Neighbors/EdgeProps", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			ps := MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"ni-1", "ni-2"}, Rel: "AFFECTS", Dir: ontology.Out, First: 10})
			sameIDs(t, "affected by ni-1", ps[0].Nodes, "n-1", "n-2", "nc-1")
			wantProps := []map[string]any{{"impact": "high", "weight": 0.9}, nil, {"impact": "low"}}
			for i, want := range wantProps {
				if got := ps[0].EdgeProps[i]; !maps.Equal(got, want) {
					t.Errorf("edge props %d = %v, want %v", i, got, want)
				}
			}
			ps = MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"n-1"}, Rel: "AFFECTS", Dir: ontology.In, First: 10,
				Order: byField("name", true)})
			sameIDs(t, "affecting n-1", ps[0].Nodes, "ni-2", "ni-1")
			if got := ps[0].EdgeProps[0]["impact"]; got != "low" {
				t.Errorf("impact of ni-2 = %v, want low", got)
			}
			ps = MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"no-1"}, Rel: "MAINTAINS", First: 10})
			if got, _ := ps[0].EdgeProps[0]["since"].(interface{ Year() int }); got == nil || got.Year() != 2019 {
				t.Errorf("since = %v, want a 2019 time", ps[0].EdgeProps[0]["since"])
			}
		}},
		{"Neighbors/Invalid", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			for name, q := range map[string]graph.NeighborQuery{
				"unknown-relation": {IDs: []string{"n-1"}, Rel: "NOPE", First: 1},
				"unknown-class":    {IDs: []string{"n-1"}, Rel: "LOCATED_IN", Class: "Nope", First: 1},
				"unknown-field":    {IDs: []string{"n-1"}, Rel: "LOCATED_IN", Filter: cmp("nope", graph.OpEq, "x"), First: 1},
				"bad-cursor":       {IDs: []string{"n-1"}, Rel: "LOCATED_IN", After: "zzz", First: 1},
				"first-zero":       {IDs: []string{"n-1"}, Rel: "LOCATED_IN"},
			} {
				_, err := s.Neighbors(t.Context(), q)
				MustFail(t, "Neighbors "+name, err, graph.ErrInvalid)
			}
		}},
	}
}
