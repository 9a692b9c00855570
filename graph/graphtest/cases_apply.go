package graphtest

import (
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

func ops(ch []graph.Change) []string {
	out := make([]string, len(ch))
	for i, c := range ch {
		out[i] = string(c.Op) + " " + c.ID
		if c.Edge != nil {
			out[i] += " " + c.Edge.Rel + " " + c.Edge.To
		}
	}
	return out
}

func sameOps(t testing.TB, what string, ch []graph.Change, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := ops(ch); !slices.Equal(got, want) {
		t.Errorf("%s: events %q, want %q", what, got, want)
	}
}

func checkSeq(t testing.TB, after uint64, ch []graph.Change) uint64 {
	t.Helper()
	for _, c := range ch {
		if c.Seq <= after {
			t.Errorf("sequence %d does not follow %d", c.Seq, after)
		}
		if c.At.IsZero() {
			t.Errorf("event %d has no time", c.Seq)
		}
		after = c.Seq
	}
	return after
}

func applyCases() []testCase {
	return []testCase{
		{"Apply/CreateEvents", func(t *testing.T, s graph.Store) {
			before := time.Now().Add(-time.Second)
			ch := MustApply(t, s, graph.Batch{
				Nodes: []graph.Node{
					at(node("StreetLight", "a", "name", "A", "status", "OK"), 42, -71),
					node("Organization", "b", "name", "B"),
				},
				Edges: []graph.Edge{edge("b", "MAINTAINS", "a", "since", ts("2020-01-01T00:00:00Z"))},
			})
			sameOps(t, "create", ch, "CREATE a", "CREATE b", "EDGE_ADD b MAINTAINS a")
			checkSeq(t, 0, ch)
			if len(ch) == 3 {
				if want := []string{"location", "name", "status"}; !sameSet(ch[0].Changed, want) {
					t.Errorf("CREATE a changed %q, want %q", ch[0].Changed, want)
				}
				if ch[0].Class != "StreetLight" || ch[1].Class != "Organization" || ch[2].Class != "Organization" {
					t.Errorf("classes %q %q %q", ch[0].Class, ch[1].Class, ch[2].Class)
				}
				if e := ch[2].Edge; e == nil || *e != (graph.EdgeKey{From: "b", Rel: "MAINTAINS", To: "a"}) {
					t.Errorf("edge event key %v", e)
				}
			}
			n := MustNode(t, s, "a")
			if n.Prov.IngestedAt.Before(before) || n.Prov.IngestedAt.After(time.Now().Add(time.Second)) {
				t.Errorf("IngestedAt %v is not the store's time of writing", n.Prov.IngestedAt)
			}
		}},
		{"Apply/Idempotent", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			b := graph.Batch{
				Nodes: []graph.Node{
					at(node("StreetLight", "n-1", "name", "Alpha", "status", "OK"), 42.001, -71),
					node("Organization", "no-1", "name", "Lights Ltd"),
				},
				Edges: []graph.Edge{edge("ni-1", "AFFECTS", "n-1", "impact", "high", "weight", 0.9), edge("no-1", "MAINTAINS", "n-3")},
			}
			first := MustNode(t, s, "n-1")
			time.Sleep(2 * time.Millisecond)
			sameOps(t, "identical re-upsert", MustApply(t, s, b))
			// a new connector run with the same data changes nothing either
			for i := range b.Nodes {
				b.Nodes[i].Prov = graph.Provenance{Connector: "csv", Run: "run-2", FetchedAt: time.Now().UTC()}
			}
			sameOps(t, "re-upsert from another run", MustApply(t, s, b))
			if again := MustNode(t, s, "n-1"); !again.Prov.IngestedAt.Equal(first.Prov.IngestedAt) {
				t.Errorf("IngestedAt moved from %v to %v on a no-op", first.Prov.IngestedAt, again.Prov.IngestedAt)
			}
			sameOps(t, "empty batch", MustApply(t, s, graph.Batch{}))
			sameOps(t, "delete of a missing node and edge", MustApply(t, s, graph.Batch{
				DeleteNodes: []string{"nope"},
				DeleteEdges: []graph.EdgeKey{{From: "n-2", Rel: "AFFECTS", To: "n-1"}, {From: "nope", Rel: "LOCATED_IN", To: "nd-1"}},
			}))
		}},
		{"Apply/Update", func(t *testing.T, s graph.Store) {
			n := at(node("StreetLight", "u", "name", "U", "status", "OK", "externalIds", list("x")), 42, -71)
			MustApply(t, s, graph.Batch{Nodes: []graph.Node{n}})
			steps := []struct {
				name    string
				edit    func(n *graph.Node)
				changed []string
			}{
				{"rename", func(n *graph.Node) { n.Props["name"] = "V" }, []string{"name"}},
				{"drop", func(n *graph.Node) { delete(n.Props, "status") }, []string{"status"}},
				{"add", func(n *graph.Node) { n.Props["lampCount"] = int64(2) }, []string{"lampCount"}},
				{"list", func(n *graph.Node) { n.Props["externalIds"] = list("x", "y") }, []string{"externalIds"}},
				{"empty-list-is-null", func(n *graph.Node) { n.Props["externalIds"] = list() }, []string{"externalIds"}},
				{"nil-is-absent", func(n *graph.Node) { n.Props["lampCount"] = nil }, []string{"lampCount"}},
				{"move", func(n *graph.Node) { n.Geometry = graph.PointGeometry(42.1, -71) }, []string{"location"}},
				{"two", func(n *graph.Node) { n.Props["name"] = "W"; n.Props["lit"] = true }, []string{"lit", "name"}},
				{"source", func(n *graph.Node) { n.Prov.Source = "gis" }, []string{"_source"}},
			}
			for _, st := range steps {
				st.edit(&n)
				ch := MustApply(t, s, graph.Batch{Nodes: []graph.Node{n}})
				sameOps(t, st.name, ch, "UPDATE u")
				if len(ch) == 1 && !sameSet(ch[0].Changed, st.changed) {
					t.Errorf("%s: changed %q, want %q", st.name, ch[0].Changed, st.changed)
				}
				sameOps(t, st.name+" again", MustApply(t, s, graph.Batch{Nodes: []graph.Node{n}}))
			}
			got := MustNode(t, s, "u")
			want := map[string]any{"name": "W", "lit": true}
			if !reflect.DeepEqual(got.Props, want) {
				t.Errorf("props %v, want %v", got.Props, want)
			}
			if got.Geometry == nil || got.Geometry.Point != (graph.Point{Lat: 42.1, Lon: -71}) {
				t.Errorf("geometry %+v", got.Geometry)
			}
			n.Geometry = nil
			ch := MustApply(t, s, graph.Batch{Nodes: []graph.Node{n}})
			if len(ch) != 1 || !sameSet(ch[0].Changed, []string{"location"}) {
				t.Errorf("geometry removal: %v", ch)
			}
			if got := findIDs(t, s, "StreetLight", graph.Within{Box: graph.BBox{MinLat: 40, MinLon: -72, MaxLat: 43, MaxLon: -70}}); len(got) != 0 {
				t.Errorf("a node without geometry is still found by position: %q", got)
			}
		}},
		{"Apply/SrcUpdatedAt", func(t *testing.T, s graph.Store) {
			t1, t2, t3, t4 := ts("2024-01-01T00:00:00Z"), ts("2024-02-01T00:00:00Z"), ts("2024-03-01T00:00:00Z"), ts("2024-04-01T00:00:00Z")
			version := func(name string, at time.Time) graph.Node {
				n := node("StreetLight", "v", "name", name)
				n.Prov.SrcUpdatedAt = at
				return n
			}
			MustApply(t, s, graph.Batch{Nodes: []graph.Node{version("two", t2)}})
			sameOps(t, "older", MustApply(t, s, graph.Batch{Nodes: []graph.Node{version("one", t1)}}))
			sameOps(t, "unknown time", MustApply(t, s, graph.Batch{Nodes: []graph.Node{version("none", time.Time{})}}))
			if got := MustNode(t, s, "v").Props["name"]; got != "two" {
				t.Errorf("after older writes name = %v, want two", got)
			}
			sameOps(t, "same time, other data", MustApply(t, s, graph.Batch{Nodes: []graph.Node{version("two b", t2)}}), "UPDATE v")
			sameOps(t, "same data, newer time", MustApply(t, s, graph.Batch{Nodes: []graph.Node{version("two b", t4)}}))
			sameOps(t, "between the stored times", MustApply(t, s, graph.Batch{Nodes: []graph.Node{version("three", t3)}}))
			if got := MustNode(t, s, "v"); got.Props["name"] != "two b" || !got.Prov.SrcUpdatedAt.Equal(t4) {
				t.Errorf("name %v srcUpdatedAt %v, want two b at %v", got.Props["name"], got.Prov.SrcUpdatedAt, t4)
			}
			sameOps(t, "newer", MustApply(t, s, graph.Batch{Nodes: []graph.Node{version("five", t4.Add(time.Hour))}}), "UPDATE v")
			// edges follow the same rule
			MustApply(t, s, graph.Batch{Nodes: []graph.Node{
				node("Incident", "i", "reportedAt", t1), at(node("StreetLight", "w"), 1, 1),
			}})
			e := edge("i", "AFFECTS", "w", "impact", "new")
			e.Prov.SrcUpdatedAt = t3
			sameOps(t, "edge add", MustApply(t, s, graph.Batch{Edges: []graph.Edge{e}}), "EDGE_ADD i AFFECTS w")
			e = edge("i", "AFFECTS", "w", "impact", "old")
			e.Prov.SrcUpdatedAt = t2
			sameOps(t, "older edge", MustApply(t, s, graph.Batch{Edges: []graph.Edge{e}}))
			ps := MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"i"}, Rel: "AFFECTS", First: 1})
			if got := ps[0].EdgeProps[0]["impact"]; got != "new" {
				t.Errorf("edge impact %v, want new", got)
			}
		}},
		{"Apply/ClassConflict", func(t *testing.T, s graph.Store) {
			MustApply(t, s, graph.Batch{Nodes: []graph.Node{node("StreetLight", "x", "name", "X")}})
			_, err := s.Apply(t.Context(), graph.Batch{Nodes: []graph.Node{
				node("StreetLight", "y", "name", "Y"),
				node("Camera", "x", "name", "X"),
			}})
			MustFail(t, "reusing an ID with another class", err, graph.ErrConflict)
			if n := MustNodes(t, s, "y")[0]; n != nil {
				t.Error("a failed batch left its first node behind")
			}
			_, err = s.Apply(t.Context(), graph.Batch{Nodes: []graph.Node{
				node("Camera", "z"), node("StreetLight", "z"),
			}})
			MustFail(t, "one ID with two classes in a batch", err, graph.ErrConflict)
		}},
		{"Apply/Invalid", func(t *testing.T, s graph.Store) {
			bad := map[string]graph.Node{
				"unknown-class":       node("Lamp", "x"),
				"abstract-class":      node("Asset", "x"),
				"empty-id":            node("StreetLight", ""),
				"unknown-property":    node("StreetLight", "x", "colour", "red"),
				"property-of-sibling": node("StreetLight", "x", "streamRef", "rtsp://"),
				"int-as-int":          node("StreetLight", "x", "lampCount", 2),
				"int-as-float":        node("StreetLight", "x", "lampCount", 2.0),
				"int-as-string":       node("StreetLight", "x", "lampCount", "2"),
				"float-as-int":        node("StreetLight", "x", "powerRatingW", int64(2)),
				"float-nan":           node("StreetLight", "x", "powerRatingW", math.NaN()),
				"float-inf":           node("StreetLight", "x", "powerRatingW", math.Inf(1)),
				"string-as-int":       node("StreetLight", "x", "name", int64(1)),
				"bool-as-string":      node("StreetLight", "x", "lit", "true"),
				"time-as-string":      node("StreetLight", "x", "installedAt", "2020-01-01T00:00:00Z"),
				"enum-bad-value":      node("StreetLight", "x", "status", "BROKEN"),
				"enum-lower-case":     node("StreetLight", "x", "status", "ok"),
				"list-as-scalar":      node("StreetLight", "x", "externalIds", "A-1"),
				"list-typed-slice":    node("StreetLight", "x", "externalIds", []string{"A-1"}),
				"list-bad-element":    node("StreetLight", "x", "externalIds", list("A-1", int64(2))),
				"list-nil-element":    node("StreetLight", "x", "externalIds", list("A-1", nil)),
				"list-enum-bad":       node("Incident", "x", "reportedAt", ts("2024-01-01T00:00:00Z"), "categories", list("HIGH", "NOPE")),
				"json-as-string":      node("StreetLight", "x", "attributes", `{"a":1}`),
				"required-missing":    node("District", "x", "name", "D"),
				"required-time":       node("Incident", "x"),
				"invalid-utf8":        node("StreetLight", "x", "name", "bad \xff"),
				"geometry-on-unlocated": func() graph.Node {
					n := node("Organization", "x")
					n.Geometry = graph.PointGeometry(1, 1)
					return n
				}(),
				"latitude-out-of-range": at(node("StreetLight", "x"), 91, 0),
				"bad-geojson": func() graph.Node {
					n := node("District", "x", "officialCode", "X")
					n.Geometry = &graph.Geometry{Kind: "Polygon", GeoJSON: `{"type":"Polygon","coordinates":[[[0,0],[1,1]]]}`}
					return n
				}(),
			}
			for name, n := range bad {
				_, err := s.Apply(t.Context(), graph.Batch{Nodes: []graph.Node{node("StreetLight", "ok"), n}})
				MustFail(t, "Apply "+name, err, graph.ErrInvalid)
			}
			if got := findIDs(t, s, "Entity", nil); len(got) != 0 {
				t.Errorf("failed batches left %q", got)
			}
			if cl, ok := s.(graph.ChangeLog); ok {
				ch, err := cl.ChangesSince(t.Context(), 0, 100)
				if err != nil || len(ch) != 0 {
					t.Errorf("failed batches left events %v (%v)", ops(ch), err)
				}
			}
		}},
		{"Apply/EdgeValidation", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			for name, c := range map[string]struct {
				e    graph.Edge
				want error
			}{
				"unknown-relation":   {edge("n-1", "NEXT_TO", "n-2"), graph.ErrInvalid},
				"missing-source":     {edge("nope", "LOCATED_IN", "nd-1"), graph.ErrInvalid},
				"missing-target":     {edge("n-1", "LOCATED_IN", "nope"), graph.ErrInvalid},
				"unknown-property":   {edge("ni-1", "AFFECTS", "n-3", "colour", "red"), graph.ErrInvalid},
				"wrong-prop-type":    {edge("ni-1", "AFFECTS", "n-3", "weight", "heavy"), graph.ErrInvalid},
				"wrong-source-class": {edge("n-1", "AFFECTS", "n-2"), graph.ErrConflict},
				"wrong-target-class": {edge("n-1", "LOCATED_IN", "n-2"), graph.ErrConflict},
				"organisation-in":    {edge("no-1", "LOCATED_IN", "nd-1"), graph.ErrConflict},
			} {
				_, err := s.Apply(t.Context(), graph.Batch{Edges: []graph.Edge{c.e}})
				MustFail(t, "edge "+name, err, c.want)
			}
			_, err := s.Apply(t.Context(), graph.Batch{DeleteEdges: []graph.EdgeKey{{From: "n-1", Rel: "NEXT_TO", To: "n-2"}}})
			MustFail(t, "deleting an edge of an unknown relation", err, graph.ErrInvalid)
			// subclasses are allowed at both ends; endpoints may come in the same batch
			ch := MustApply(t, s, graph.Batch{
				Nodes: []graph.Node{at(node("Camera", "new-cam"), 42, -71)},
				Edges: []graph.Edge{edge("new-cam", "LOCATED_IN", "nd-2"), edge("nd-2", "LOCATED_IN", "nd-1")},
			})
			sameOps(t, "subclass edges", ch, "CREATE new-cam", "EDGE_ADD new-cam LOCATED_IN nd-2", "EDGE_ADD nd-2 LOCATED_IN nd-1")
		}},
		{"Apply/EdgeEvents", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			e := edge("ni-2", "AFFECTS", "n-3", "impact", "minor")
			ch := MustApply(t, s, graph.Batch{Edges: []graph.Edge{e}})
			sameOps(t, "add", ch, "EDGE_ADD ni-2 AFFECTS n-3")
			if len(ch) == 1 && (ch[0].Class != "Incident" || !sameSet(ch[0].Changed, []string{"impact"})) {
				t.Errorf("add event: class %s changed %q", ch[0].Class, ch[0].Changed)
			}
			sameOps(t, "re-add", MustApply(t, s, graph.Batch{Edges: []graph.Edge{e}}))
			e.Props["weight"] = 0.5
			ch = MustApply(t, s, graph.Batch{Edges: []graph.Edge{e}})
			sameOps(t, "update", ch, "EDGE_UPDATE ni-2 AFFECTS n-3")
			if len(ch) == 1 && !sameSet(ch[0].Changed, []string{"weight"}) {
				t.Errorf("update changed %q, want weight", ch[0].Changed)
			}
			e.Props = nil
			ch = MustApply(t, s, graph.Batch{Edges: []graph.Edge{e}})
			if len(ch) != 1 || !sameSet(ch[0].Changed, []string{"impact", "weight"}) {
				t.Errorf("clearing the props: %v", ch)
			}
			k := graph.EdgeKey{From: "ni-2", Rel: "AFFECTS", To: "n-3"}
			sameOps(t, "delete", MustApply(t, s, graph.Batch{DeleteEdges: []graph.EdgeKey{k}}), "EDGE_REMOVE ni-2 AFFECTS n-3")
			sameOps(t, "delete again", MustApply(t, s, graph.Batch{DeleteEdges: []graph.EdgeKey{k}}))
			ps := MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"n-3"}, Rel: "AFFECTS", Dir: ontology.In, First: 5})
			sameIDs(t, "after the delete", ps[0].Nodes)
		}},
		{"Apply/DeleteNode", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			ch := MustApply(t, s, graph.Batch{DeleteNodes: []string{"n-1"}})
			checkSeq(t, 0, ch)
			if len(ch) != 5 || ch[4].Op != graph.OpDelete || ch[4].ID != "n-1" || ch[4].Class != "StreetLight" {
				t.Fatalf("delete events %q, want four EDGE_REMOVE then DELETE n-1", ops(ch))
			}
			got := ops(ch[:4])
			slices.Sort(got)
			want := []string{"EDGE_REMOVE n-1 LOCATED_IN nd-1", "EDGE_REMOVE ni-1 AFFECTS n-1", "EDGE_REMOVE ni-2 AFFECTS n-1", "EDGE_REMOVE no-1 MAINTAINS n-1"}
			if !slices.Equal(got, want) {
				t.Errorf("edge events %q, want %q", got, want)
			}
			for _, c := range ch[:4] {
				if want := map[string]string{"n-1": "StreetLight", "ni-1": "Incident", "ni-2": "Incident", "no-1": "Organization"}[c.ID]; c.Class != want {
					t.Errorf("%s %s: class %s, want %s (the edge's source)", c.Op, c.ID, c.Class, want)
				}
			}
			if MustNodes(t, s, "n-1")[0] != nil {
				t.Error("n-1 still exists")
			}
			ps := MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"nd-1", "ni-1"}, Rel: "LOCATED_IN", Dir: ontology.In, First: 10})
			sameIDs(t, "nd-1 after the delete", ps[0].Nodes, "n-2", "n-3", "n-4", "nc-1", "ni-1")
			ps = MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{"ni-1"}, Rel: "AFFECTS", First: 10})
			sameIDs(t, "ni-1 affects after the delete", ps[0].Nodes, "n-2", "nc-1")
			sameOps(t, "delete again", MustApply(t, s, graph.Batch{DeleteNodes: []string{"n-1"}}))
			// the ID can be reused, even with another class
			sameOps(t, "reuse", MustApply(t, s, graph.Batch{Nodes: []graph.Node{node("Camera", "n-1")}}), "CREATE n-1")
		}},
		{"Apply/BatchOrder", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			ch := MustApply(t, s, graph.Batch{
				Nodes:       []graph.Node{at(node("StreetLight", "n-9", "name", "Nine"), 42, -71), node("StreetLight", "n-4", "name", "Delta 2")},
				Edges:       []graph.Edge{edge("n-9", "LOCATED_IN", "nd-2")},
				DeleteEdges: []graph.EdgeKey{{From: "n-2", Rel: "LOCATED_IN", To: "nd-1"}},
				DeleteNodes: []string{"n-5", "n-9"},
			})
			sameOps(t, "batch", ch,
				"CREATE n-9", "UPDATE n-4", "EDGE_ADD n-9 LOCATED_IN nd-2", "EDGE_REMOVE n-2 LOCATED_IN nd-1",
				"EDGE_REMOVE n-5 LOCATED_IN nd-2", "DELETE n-5", "EDGE_REMOVE n-9 LOCATED_IN nd-2", "DELETE n-9")
			checkSeq(t, 0, ch)
			// the same node twice in one batch: the second write wins
			ch = MustApply(t, s, graph.Batch{Nodes: []graph.Node{node("StreetLight", "d", "name", "one"), node("StreetLight", "d", "name", "two")}})
			sameOps(t, "twice", ch, "CREATE d", "UPDATE d")
			if got := MustNode(t, s, "d").Props["name"]; got != "two" {
				t.Errorf("name %v, want two", got)
			}
		}},
		{"Apply/Sequence", func(t *testing.T, s graph.Store) {
			var all []graph.Change
			var last uint64
			for i := range 5 {
				ch := MustApply(t, s, graph.Batch{Nodes: []graph.Node{
					node("StreetLight", "s", "lampCount", int64(i)), node("StreetLight", "s2", "lampCount", int64(i)),
				}})
				if len(ch) != 2 {
					t.Fatalf("apply %d: %d events", i, len(ch))
				}
				last = checkSeq(t, last, ch)
				all = append(all, ch...)
			}
			cl, ok := s.(graph.ChangeLog)
			if !ok {
				return
			}
			got, err := cl.ChangesSince(t.Context(), 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !sameChanges(got, all) {
				t.Errorf("ChangesSince(0) = %v, want the events Apply returned %v", got, all)
			}
			got, err = cl.ChangesSince(t.Context(), all[3].Seq, 2)
			if err != nil {
				t.Fatal(err)
			}
			if !sameChanges(got, all[4:6]) {
				t.Errorf("ChangesSince(%d, 2) = %v, want %v", all[3].Seq, got, all[4:6])
			}
			got, err = cl.ChangesSince(t.Context(), last, 10)
			if err != nil || len(got) != 0 {
				t.Errorf("ChangesSince(last) = %v, %v", got, err)
			}
		}},
		{"Apply/ChangeLogPrune", func(t *testing.T, s graph.Store) {
			cl, ok := s.(graph.ChangeLog)
			if !ok {
				return
			}
			last0, err := cl.LastSeq(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			old := MustApply(t, s, graph.Batch{Nodes: []graph.Node{node("StreetLight", "p1"), node("StreetLight", "p2")}})
			checkSeq(t, last0, old)
			time.Sleep(20 * time.Millisecond)
			mid := time.Now()
			time.Sleep(20 * time.Millisecond)
			kept := MustApply(t, s, graph.Batch{Nodes: []graph.Node{node("StreetLight", "p3")}})
			last := checkSeq(t, old[len(old)-1].Seq, kept)
			if got, err := cl.LastSeq(t.Context()); err != nil || got != last {
				t.Fatalf("LastSeq = %d, %v; want %d", got, err, last)
			}
			first, err := cl.PruneChanges(t.Context(), mid)
			if err != nil || first != kept[0].Seq {
				t.Fatalf("PruneChanges(between the applies) = %d, %v; want the second apply's first event %d", first, err, kept[0].Seq)
			}
			got, err := cl.ChangesSince(t.Context(), 0, 100)
			if err != nil || !sameChanges(got, kept) {
				t.Errorf("after pruning, ChangesSince(0) = %v, %v; want only %v", got, err, kept)
			}
			// pruning everything keeps the sequence: the next event follows on
			first, err = cl.PruneChanges(t.Context(), time.Now().Add(time.Hour))
			if err != nil || first != last+1 {
				t.Fatalf("PruneChanges(future) = %d, %v; want %d", first, err, last+1)
			}
			if got, err := cl.ChangesSince(t.Context(), 0, 100); err != nil || len(got) != 0 {
				t.Errorf("after pruning all, ChangesSince(0) = %v, %v", got, err)
			}
			if got, err := cl.LastSeq(t.Context()); err != nil || got != last {
				t.Errorf("LastSeq after pruning all = %d, %v; want %d", got, err, last)
			}
			next := MustApply(t, s, graph.Batch{Nodes: []graph.Node{node("StreetLight", "p4")}})
			checkSeq(t, last, next)
		}},
		{"Apply/RoundTrip", func(t *testing.T, s graph.Store) {
			when := time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC)
			n := node("StreetLight", "rt/1 ü ' \" `",
				"name", nasty+" ü 中文 🚦 \u2028 \t\n", "description", "",
				"lampCount", int64(math.MaxInt64), "powerRatingW", 0.1, "lit", false,
				"installedAt", when.In(time.FixedZone("X", 3600)),
				"externalIds", list("a", "", nasty), "readings", list(-1e300, 2.5, 0.0),
				"serviceDates", list(when, when.Add(time.Microsecond)),
				"attributes", map[string]any{"a": 1.5, "b": "x", "c": []any{true, nil, "s"}, "d": map[string]any{"e": "f"}},
				"status", "UNKNOWN", "poleNumber", "P-1")
			n.Geometry = graph.PointGeometry(-33.8688, 151.2093)
			n.Prov = graph.Provenance{
				Source: "src", SourceKey: "k-1", Connector: "csv", Run: "run-1",
				FetchedAt: when, SrcUpdatedAt: when.Add(-time.Hour), ValidFrom: when.Add(-time.Hour * 24), ValidTo: when.Add(time.Hour * 24),
				Sources: []string{"src", "other"},
			}
			d := node("District", "rt-d", "officialCode", "D", "population", int64(-5))
			d.Geometry = square(10, 20, 1, 0.5)
			MustApply(t, s, graph.Batch{Nodes: []graph.Node{n, d}})
			got := MustNodes(t, s, n.ID, "rt-d")
			want := n.Props
			want["installedAt"] = when
			if !reflect.DeepEqual(got[0].Props, want) {
				t.Errorf("props round trip:\n got %#v\nwant %#v", got[0].Props, want)
			}
			if got[0].Class != "StreetLight" || got[0].Geometry == nil || got[0].Geometry.Point != n.Geometry.Point || got[0].Geometry.Kind != "Point" {
				t.Errorf("class %s geometry %+v", got[0].Class, got[0].Geometry)
			}
			p := got[0].Prov
			if p.IngestedAt.IsZero() {
				t.Error("IngestedAt not set")
			}
			p.IngestedAt = time.Time{}
			if !reflect.DeepEqual(p, n.Prov) {
				t.Errorf("provenance round trip:\n got %+v\nwant %+v", p, n.Prov)
			}
			if g := got[1].Geometry; g == nil || g.GeoJSON != d.Geometry.GeoJSON || g.Kind != "Polygon" || g.BBox != d.Geometry.BBox || g.Point != d.Geometry.Point {
				t.Errorf("polygon round trip: %+v, want %+v", g, d.Geometry)
			}
			if got[1].Props["population"] != int64(-5) {
				t.Errorf("population %#v", got[1].Props["population"])
			}
			sameOps(t, "re-applying what was read", MustApply(t, s, graph.Batch{Nodes: []graph.Node{*got[0], *got[1]}}))
		}},
		{"Apply/Nodes", func(t *testing.T, s graph.Store) {
			seedNeighbors(t, s)
			sameIDs(t, "Nodes", MustNodes(t, s, "n-3", "missing", "nd-1", "n-3", ""), "n-3", "<nil>", "nd-1", "n-3", "<nil>")
			if ns := MustNodes(t, s); len(ns) != 0 {
				t.Errorf("no IDs: %d nodes", len(ns))
			}
		}},
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func sameChanges(a, b []graph.Change) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Seq != y.Seq || x.Op != y.Op || x.ID != y.ID || x.Class != y.Class || !sameSet(x.Changed, y.Changed) ||
			!x.At.Equal(y.At) || (x.Edge == nil) != (y.Edge == nil) || (x.Edge != nil && *x.Edge != *y.Edge) {
			return false
		}
	}
	return true
}
