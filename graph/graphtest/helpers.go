package graphtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// MustApply applies b and fails the test on error.
func MustApply(t testing.TB, s graph.Store, b graph.Batch) []graph.Change {
	t.Helper()
	ch, err := s.Apply(t.Context(), b)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return ch
}

// MustNodes reads nodes by ID and fails the test on error.
func MustNodes(t testing.TB, s graph.Store, ids ...string) []*graph.Node {
	t.Helper()
	ns, err := s.Nodes(t.Context(), ids)
	if err != nil {
		t.Fatalf("Nodes(%q): %v", ids, err)
	}
	if len(ns) != len(ids) {
		t.Fatalf("Nodes(%q) returned %d nodes, want %d", ids, len(ns), len(ids))
	}
	return ns
}

// MustNode reads one node that must exist.
func MustNode(t testing.TB, s graph.Store, id string) *graph.Node {
	t.Helper()
	n := MustNodes(t, s, id)[0]
	if n == nil {
		t.Fatalf("node %q does not exist", id)
	}
	return n
}

// MustFind runs a find and fails the test on error.
func MustFind(t testing.TB, s graph.Store, q graph.FindQuery) *graph.Page {
	t.Helper()
	p, err := s.Find(t.Context(), q)
	if err != nil {
		t.Fatalf("Find(%s, %s): %v", q.Class, graph.KeyOf(q.Filter), err)
	}
	checkPage(t, p)
	return p
}

// MustNeighbors runs a neighbour query and fails the test on error.
func MustNeighbors(t testing.TB, s graph.Store, q graph.NeighborQuery) []*graph.Page {
	t.Helper()
	ps, err := s.Neighbors(t.Context(), q)
	if err != nil {
		t.Fatalf("Neighbors(%q, %s): %v", q.IDs, q.Rel, err)
	}
	if len(ps) != len(q.IDs) {
		t.Fatalf("Neighbors(%q) returned %d pages", q.IDs, len(ps))
	}
	for _, p := range ps {
		checkPage(t, p)
		if len(p.EdgeProps) != len(p.Nodes) {
			t.Fatalf("neighbour page has %d edge props for %d nodes", len(p.EdgeProps), len(p.Nodes))
		}
	}
	return ps
}

// MustNear runs a near query and fails the test on error.
func MustNear(t testing.TB, s graph.Store, q graph.NearQuery) []*graph.Page {
	t.Helper()
	ps, err := s.Near(t.Context(), q)
	if err != nil {
		t.Fatalf("Near: %v", err)
	}
	if len(ps) != len(q.Points) {
		t.Fatalf("Near returned %d pages for %d points", len(ps), len(q.Points))
	}
	for _, p := range ps {
		checkPage(t, p)
		if len(p.Distances) != len(p.Nodes) {
			t.Fatalf("near page has %d distances for %d nodes", len(p.Distances), len(p.Nodes))
		}
	}
	return ps
}

// MustAggregate runs an aggregate and fails the test on error.
func MustAggregate(t testing.TB, s graph.Store, q graph.AggregateQuery) []graph.Group {
	t.Helper()
	gs, err := s.Aggregate(t.Context(), q)
	if err != nil {
		t.Fatalf("Aggregate(%+v): %v", q, err)
	}
	return gs
}

// MustFail checks that err matches want.
func MustFail(t testing.TB, what string, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want one matching %v", what, err, want)
	}
}

func checkPage(t testing.TB, p *graph.Page) {
	t.Helper()
	if p == nil {
		t.Fatal("nil page")
	}
	if len(p.Cursors) != len(p.Nodes) {
		t.Fatalf("page has %d cursors for %d nodes", len(p.Cursors), len(p.Nodes))
	}
	for i, n := range p.Nodes {
		if n == nil {
			t.Fatalf("page node %d is nil", i)
		}
	}
}

// ids returns the IDs of nodes.
func ids(ns []*graph.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		if n == nil {
			out[i] = "<nil>"
			continue
		}
		out[i] = n.ID
	}
	return out
}

func sameIDs(t testing.TB, what string, got []*graph.Node, want ...string) {
	t.Helper()
	g := ids(got)
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(g, want) {
		t.Errorf("%s = %q, want %q", what, g, want)
	}
}

// node builds a node of a class with properties given as key, value pairs.
func node(class, id string, kv ...any) graph.Node {
	n := graph.Node{ID: id, Class: class, Props: map[string]any{}}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Props[kv[i].(string)] = kv[i+1]
	}
	return n
}

// at gives a node a point geometry.
func at(n graph.Node, lat, lon float64) graph.Node {
	n.Geometry = graph.PointGeometry(lat, lon)
	return n
}

// square returns a polygon geometry: the square around (lat, lon) with
// half-side d degrees, optionally with a square hole of half-side h.
func square(lat, lon, d, h float64) *graph.Geometry {
	ring := func(d float64) string {
		return fmt.Sprintf("[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]",
			lon-d, lat-d, lon+d, lat-d, lon+d, lat+d, lon-d, lat+d, lon-d, lat-d)
	}
	gj := `{"type":"Polygon","coordinates":[` + ring(d)
	if h > 0 {
		gj += "," + ring(h)
	}
	gj += "]}"
	return &graph.Geometry{
		Point:   graph.Point{Lat: lat, Lon: lon},
		Kind:    "Polygon",
		GeoJSON: gj,
		BBox:    graph.BBox{MinLat: lat - d, MinLon: lon - d, MaxLat: lat + d, MaxLon: lon + d},
	}
}

func edge(from, rel, to string, kv ...any) graph.Edge {
	e := graph.Edge{From: from, Rel: rel, To: to}
	if len(kv) > 0 {
		e.Props = map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			e.Props[kv[i].(string)] = kv[i+1]
		}
	}
	return e
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func list(v ...any) []any { return v }

// findIDs returns the IDs of every node matching f, by ID, in one page.
func findIDs(t testing.TB, s graph.Store, class string, f graph.Filter) []string {
	t.Helper()
	p := MustFind(t, s, graph.FindQuery{Class: class, Filter: f, First: 1000, Order: []graph.Order{{Field: "id"}}})
	return ids(p.Nodes)
}

// allPages pages through a find with page size n and returns every node
// ID in order, checking HasNext, HasPrev and Total on the way.
func allPages(t testing.TB, s graph.Store, q graph.FindQuery, n int) []string {
	t.Helper()
	q.First, q.Count = n, true
	var out []string
	for i := 0; ; i++ {
		p := MustFind(t, s, q)
		if p.HasPrev != (q.After != "") {
			t.Fatalf("page %d: HasPrev = %v with After %q", i, p.HasPrev, q.After)
		}
		if len(p.Nodes) > n {
			t.Fatalf("page %d has %d nodes, first %d", i, len(p.Nodes), n)
		}
		out = append(out, ids(p.Nodes)...)
		if !p.HasNext {
			if p.Total != len(out) {
				t.Fatalf("Total = %d, pages held %d nodes", p.Total, len(out))
			}
			return out
		}
		if len(p.Nodes) == 0 {
			t.Fatalf("page %d: HasNext with no nodes", i)
		}
		if i > 1000 {
			t.Fatal("paging does not end")
		}
		q.After = p.Cursors[len(p.Cursors)-1]
	}
}

func byField(f string, desc bool) []graph.Order { return []graph.Order{{Field: f, Desc: desc}} }

func key(f graph.Filter) string {
	k := graph.KeyOf(f)
	if len(k) > 80 {
		k = k[:80] + "…"
	}
	return strings.ReplaceAll(k, "\n", " ")
}
