package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/resolvers/core"
)

// countingStore counts the store calls the API makes, per method.
type countingStore struct {
	core.Reader
	mu    sync.Mutex
	calls map[string]int
}

func (s *countingStore) count(m string) {
	s.mu.Lock()
	s.calls[m]++
	s.mu.Unlock()
}

func (s *countingStore) Nodes(ctx context.Context, ids []string) ([]*graph.Node, error) {
	s.count("Nodes")
	return s.Reader.Nodes(ctx, ids)
}

func (s *countingStore) Neighbors(ctx context.Context, q graph.NeighborQuery) ([]*graph.Page, error) {
	s.count("Neighbors")
	return s.Reader.Neighbors(ctx, q)
}

func (s *countingStore) Find(ctx context.Context, q graph.FindQuery) (*graph.Page, error) {
	s.count("Find")
	return s.Reader.Find(ctx, q)
}

func (s *countingStore) Near(ctx context.Context, q graph.NearQuery) ([]*graph.Page, error) {
	s.count("Near")
	return s.Reader.Near(ctx, q)
}

func (s *countingStore) reset() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = map[string]int{}
	return c
}

// MustSeed fills a store with a synthetic city: parents neighbourhoods in a
// row, each a small square with 3 crashes inside and 2 traffic signals next
// to each crash.
func MustSeed(t testing.TB, parents int) graph.Store {
	t.Helper()
	ctx := context.Background()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "city.db")
	store, err := sqlite.Open(ctx, cfg, ontology.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	prov := graph.Provenance{Source: "test", FetchedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var b graph.Batch
	for i := 0; i < parents; i++ {
		lon0 := -71.2 + float64(i)*0.01
		square := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%f,42.30],[%f,42.30],[%f,42.31],[%f,42.31],[%f,42.30]]]}`,
			lon0, lon0+0.009, lon0+0.009, lon0, lon0)
		hood := fmt.Sprintf("urn:city:neighbourhood:test:%03d", i)
		b.Nodes = append(b.Nodes, graph.Node{ID: hood, Class: "Neighbourhood", Prov: prov,
			Props: map[string]any{"name": fmt.Sprintf("Hood %03d", i), "officialCode": fmt.Sprint(i)},
			Geometry: &graph.Geometry{Point: graph.Point{Lat: 42.305, Lon: lon0 + 0.0045}, Kind: "Polygon", GeoJSON: square,
				BBox: graph.BBox{MinLat: 42.30, MinLon: lon0, MaxLat: 42.31, MaxLon: lon0 + 0.009}}})
		for j := 0; j < 3; j++ {
			lat, lon := 42.301+float64(j)*0.003, lon0+0.002
			crash := fmt.Sprintf("urn:city:incident:test:%03d-%d", i, j)
			b.Nodes = append(b.Nodes, graph.Node{ID: crash, Class: "Incident", Prov: prov, Geometry: graph.PointGeometry(lat, lon),
				Props: map[string]any{"name": "crash", "incidentType": "ROAD_ACCIDENT", "status": "CLOSED", "reportedAt": time.Date(2015, 1, 1+j, 0, 0, 0, 0, time.UTC)}})
			b.Edges = append(b.Edges, graph.Edge{From: crash, Rel: "LOCATED_IN", To: hood, Prov: prov})
			for k := 0; k < 2; k++ {
				b.Nodes = append(b.Nodes, graph.Node{ID: fmt.Sprintf("urn:city:traffic-signal:test:%03d-%d-%d", i, j, k), Class: "TrafficSignal",
					Prov: prov, Geometry: graph.PointGeometry(lat+0.0001*float64(k+1), lon), Props: map[string]any{"status": "OK"}})
			}
		}
	}
	if _, err := store.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	return store
}

func post(t testing.TB, url, query string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out["errors"] != nil {
		t.Fatalf("errors: %v", out["errors"])
	}
	return out
}

// TestOneStoreCallPerLevel checks that a three-level query over 100
// parents costs one store call per nesting level, not one per parent.
func TestOneStoreCallPerLevel(t *testing.T) {
	store := MustSeed(t, 100)
	cs := &countingStore{Reader: store, calls: map[string]int{}}
	engine := core.NewEngine(cs, ontology.Default(), core.DefaultConfig(), nil)
	srv := httptest.NewServer(New(DefaultConfig(), engine, nil, nil, nil))
	defer srv.Close()

	tests := []struct {
		name  string
		query string
		want  map[string]int
		// check walks the response and returns the number of leaves found.
		leaves int
	}{
		{
			name: "find, neighbours, near",
			query: `{ neighbourhoods(first: 100) { nodes { id
				crashes: contains(where: {class: INCIDENT}, first: 10) { nodes { id
					... on Incident { nearby(class: TRAFFIC_SIGNAL, meters: 50, first: 2) { edges { node { id } } } } } } } } }`,
			want:   map[string]int{"Find": 1, "Neighbors": 1, "Near": 1},
			leaves: 100 * 3 * 2,
		},
		{
			name: "find, neighbours, neighbours back",
			query: `{ neighbourhoods(first: 100) { totalCount nodes { id
				crashes: contains(where: {class: INCIDENT}, first: 10) { totalCount nodes { id
					... on Incident { locatedIn { nodes { id } } } } } } } }`,
			want:   map[string]int{"Find": 1, "Neighbors": 2},
			leaves: 100 * 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs.reset()
			out := post(t, srv.URL+"/graphql", tt.query)
			got := cs.reset()
			for m, n := range tt.want {
				if got[m] != n {
					t.Errorf("%s calls = %d, want %d (all calls: %v)", m, got[m], n, got)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("calls = %v, want %v", got, tt.want)
			}
			leaves := 0
			hoods := out["data"].(map[string]any)["neighbourhoods"].(map[string]any)["nodes"].([]any)
			if len(hoods) != 100 {
				t.Fatalf("neighbourhoods = %d, want 100", len(hoods))
			}
			for _, h := range hoods {
				for _, c := range h.(map[string]any)["crashes"].(map[string]any)["nodes"].([]any) {
					cm := c.(map[string]any)
					if nb, ok := cm["nearby"]; ok {
						leaves += len(nb.(map[string]any)["edges"].([]any))
					}
					if li, ok := cm["locatedIn"]; ok {
						leaves += len(li.(map[string]any)["nodes"].([]any))
					}
				}
			}
			if leaves != tt.leaves {
				t.Errorf("leaves = %d, want %d", leaves, tt.leaves)
			}
		})
	}
}

func postRaw(t testing.TB, url, query string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRestrictedFieldsAndPaging checks that a sensitive property resolves
// only for a role that may read it, and the paging edge cases.
func TestRestrictedFieldsAndPaging(t *testing.T) {
	store := MustSeed(t, 3)
	prov := graph.Provenance{Source: "test"}
	if _, err := store.Apply(context.Background(), graph.Batch{Nodes: []graph.Node{{
		ID: "urn:city:camera:test:c1", Class: "Camera", Prov: prov, Geometry: graph.PointGeometry(42.3, -71.1),
		Props: map[string]any{"status": "OK", "streamRef": "rtsp://cam/1"},
	}}}); err != nil {
		t.Fatal(err)
	}
	engine := core.NewEngine(store, ontology.Default(), core.DefaultConfig(), nil)
	h := New(DefaultConfig(), engine, nil, nil, nil)
	public := httptest.NewServer(h)
	defer public.Close()
	operator := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(core.WithRole(r.Context(), core.RoleOperator)))
	}))
	defer operator.Close()

	const q = `{ cameras { nodes { id streamRef } } }`
	out := postRaw(t, public.URL+"/graphql", q)
	errs, _ := out["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("public: want one FORBIDDEN error, got %v", out)
	}
	e := errs[0].(map[string]any)
	if e["extensions"].(map[string]any)["code"] != core.CodeForbidden {
		t.Errorf("public: error = %v, want code FORBIDDEN", e)
	}
	if ref := at(out, "data", "cameras", "nodes", 0, "streamRef"); ref != nil {
		t.Errorf("public caller read streamRef %v", ref)
	}
	if id := at(out, "data", "cameras", "nodes", 0, "id"); id != "urn:city:camera:test:c1" {
		t.Errorf("public: the rest of the node is lost: %v", out)
	}
	out = post(t, operator.URL+"/graphql", q)
	if ref := at(out, "data", "cameras", "nodes", 0, "streamRef"); ref != "rtsp://cam/1" {
		t.Errorf("operator: streamRef = %v", ref)
	}

	out = post(t, public.URL+"/graphql", `{ incidents(first: 0) { totalCount pageInfo { hasNextPage } edges { cursor } } }`)
	if n := at(out, "data", "incidents", "totalCount"); n != 9.0 {
		t.Errorf("first: 0 totalCount = %v, want 9", n)
	}
	if e := at(out, "data", "incidents", "edges").([]any); len(e) != 0 {
		t.Errorf("first: 0 returned %d edges", len(e))
	}
	if next := at(out, "data", "incidents", "pageInfo", "hasNextPage"); next != true {
		t.Errorf("first: 0 hasNextPage = %v", next)
	}

	// walk every incident two at a time: each appears once, in order
	var seen []string
	after := ""
	for page := 0; page < 10; page++ {
		arg := ""
		if after != "" {
			arg = fmt.Sprintf(`, after: %q`, after)
		}
		out = post(t, public.URL+"/graphql", fmt.Sprintf(`{ incidents(first: 2, orderBy: [{field: REPORTED_AT, direction: DESC}]%s) { pageInfo { hasNextPage endCursor } nodes { id } } }`, arg))
		for _, n := range at(out, "data", "incidents", "nodes").([]any) {
			seen = append(seen, n.(map[string]any)["id"].(string))
		}
		if at(out, "data", "incidents", "pageInfo", "hasNextPage") != true {
			break
		}
		after = at(out, "data", "incidents", "pageInfo", "endCursor").(string)
	}
	if len(seen) != 9 {
		t.Errorf("paged through %d incidents, want 9: %v", len(seen), seen)
	}
}

func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}
