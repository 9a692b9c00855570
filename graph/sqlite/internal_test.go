package sqlite

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
	"github.com/cityhub/cityhub/graph/graphtest"
	"github.com/cityhub/cityhub/ontology"
)

func mustOpenInternal(t testing.TB) *Store {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	s, err := Open(t.Context(), cfg, graphtest.Ontology())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestDurabilitySettings checks the settings the durability promise rests on.
func TestDurabilitySettings(t *testing.T) {
	s := mustOpenInternal(t)
	var mode string
	var sync int
	if err := s.w.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 2 {
		t.Errorf("journal_mode %s synchronous %d, want wal 2 (FULL)", mode, sync)
	}
}

// TestPolygonsContain compares the SQL polygon test with geo.Shape.Contains.
func TestPolygonsContain(t *testing.T) {
	shapes := []string{
		`{"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,4],[0,0]],[[1,1],[2,1],[2,2],[1,2],[1,1]]]}`,
		`{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[0,1],[0,0]]],[[[2,2],[3,2],[3,3],[2,2]]]]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[4,0],[2,1],[4,4],[0,4],[1,2],[0,0]]]}`,
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, gj := range shapes {
		shape, err := geo.ParseGeoJSON([]byte(gj))
		if err != nil {
			t.Fatal(err)
		}
		blob := encodePolygons(shape)
		for range 5000 {
			lat, lon := r.Float64()*5-0.5, r.Float64()*5-0.5
			if got, want := polygonsContain(blob, lat, lon), shape.Contains(lat, lon); got != want {
				t.Fatalf("%s: contains(%v, %v) = %v, want %v", gj, lat, lon, got, want)
			}
		}
	}
	if polygonsContain([]byte("short"), 0, 0) || polygonsContain(nil, 0, 0) {
		t.Error("a malformed blob contains a point")
	}
}

// TestQueryPlans checks that the hot paths use their indexes.
func TestQueryPlans(t *testing.T) {
	s := mustOpenInternal(t)
	plan := func(q string, args ...any) string {
		rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			out = append(out, detail)
		}
		return strings.Join(out, "; ")
	}
	sc := s.scopes["StreetLight"]
	var b builder
	classes(&b, sc)
	b.w(" AND ")
	if err := s.filter(&b, sc, nil, graph.Cmp{Field: "status", Op: graph.OpEq, Value: "OK"}); err != nil {
		t.Fatal(err)
	}
	if p := plan("SELECT id FROM nodes n WHERE "+b.sb.String(), b.args...); !strings.Contains(p, "nodes_prop_status") {
		t.Errorf("status filter plan: %s", p)
	}
	b = builder{}
	if err := s.filter(&b, sc, nil, graph.Near{Center: graph.Point{Lat: 1, Lon: 1}, Meters: 10}); err != nil {
		t.Fatal(err)
	}
	if p := plan("SELECT id FROM nodes n WHERE "+b.sb.String(), b.args...); !strings.Contains(p, "nodes_rtree") {
		t.Errorf("near plan: %s", p)
	}
	if p := plan(`SELECT id FROM nodes n WHERE n.id IN (SELECT value FROM json_each(?))`, `["a"]`); !strings.Contains(p, "sqlite_autoindex_nodes_1 (id=?)") {
		t.Errorf("nodes by id plan: %s", p)
	}
}

// TestCodecRoundTrip checks that the props codec returns what it stored
// and writes JSONB that SQLite accepts as strictly valid and reads alike.
func TestCodecRoundTrip(t *testing.T) {
	s := mustOpenInternal(t)
	ps := s.classProps["StreetLight"]
	long := strings.Repeat("x", 300) + strings.Repeat("y", 70000)
	for i, props := range []map[string]any{
		{},
		{"name": "x\"y\\z\n\u0000\u2028 ü\x7f", "lampCount": int64(-7), "powerRatingW": 1e-9, "lit": true},
		{"externalIds": []any{"a", "b", long}, "readings": []any{0.0, -2.5, 1e22, 100.0}, "attributes": map[string]any{"a": []any{1.0, "b", nil, 2.5}, "n": map[string]any{}}},
		{"name": long, "lampCount": int64(math.MinInt64), "powerRatingW": -0.5, "lit": false},
	} {
		blob, _, err := encodeProps(ps, props)
		if err != nil {
			t.Fatalf("%d: encode: %v", i, err)
		}
		got, err := decodeProps(ps, string(blob))
		if err != nil {
			t.Fatalf("%d: decode %x: %v", i, blob, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(props) {
			t.Errorf("%d: round trip:\n got %v\nwant %v", i, got, props)
		}
		var valid int
		var text string
		if err := s.r.QueryRowContext(t.Context(), "SELECT json_valid(?1, 8), json(?1)", blob).Scan(&valid, &text); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if valid != 1 {
			t.Errorf("%d: SQLite says the JSONB is not valid: %x", i, blob)
		}
		var generic map[string]any
		if err := json.Unmarshal([]byte(text), &generic); err != nil {
			t.Fatalf("%d: json(%x) = %s: %v", i, blob, text, err)
		}
		for k, v := range props {
			if g := generic[k]; fmt.Sprint(g) != fmt.Sprint(v) && !(k == "lampCount" || k == "attributes") {
				t.Errorf("%d: SQLite reads %s as %v, want %v", i, k, g, v)
			}
		}
		// the reverse: JSONB that SQLite wrote from the JSON text
		var sqliteBlob []byte
		if err := s.r.QueryRowContext(t.Context(), "SELECT jsonb(?)", text).Scan(&sqliteBlob); err != nil {
			t.Fatal(err)
		}
		again, err := decodeProps(ps, string(sqliteBlob))
		if err != nil {
			t.Fatalf("%d: decode SQLite's JSONB %x: %v", i, sqliteBlob, err)
		}
		if fmt.Sprint(again) != fmt.Sprint(props) {
			t.Errorf("%d: SQLite's JSONB:\n got %v\nwant %v", i, again, props)
		}
	}
}

// FuzzDecodeProps feeds arbitrary bytes to the props decoder: it returns
// values or an error, never panics.
func FuzzDecodeProps(f *testing.F) {
	ps := newPropSet("test", graphtest.Ontology().Class("StreetLight").Props)
	for _, props := range []map[string]any{
		{}, {"name": "a", "lampCount": int64(1)}, {"readings": []any{1.5}, "attributes": map[string]any{"a": []any{1.0}}},
	} {
		blob, _, err := encodeProps(ps, props)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(blob)
	}
	f.Add([]byte{0xcc, 0xff})
	f.Add([]byte{0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeProps(ps, string(b))
		_, _ = rawFields(string(b))
		if root, err := jbAt(string(b), 0); err == nil {
			_, _ = jbAny(string(b), root, 0)
		}
	})
}

// TestOntologyChange reopens a database with a changed ontology: indexes
// follow the indexed flags and the search text the searchable flags.
func TestOntologyChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graph.db")
	cfg := DefaultConfig()
	cfg.Path = path
	s, err := Open(t.Context(), cfg, graphtest.Ontology())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(t.Context(), graph.Batch{Nodes: []graph.Node{{ID: "a", Class: "StreetLight",
		Props: map[string]any{"name": "Alpha", "description": "near the river", "lampCount": int64(2)}}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	src := string(mustReadOntology(t))
	for old, repl := range map[string]string{
		"description: {type: String, searchable: true}": "description: String",
		"lampCount: Int": "lampCount: {type: Int, indexed: true}",
		"poleNumber: {type: String, indexed: true}": "poleNumber: String",
	} {
		if !strings.Contains(src, old) {
			t.Fatalf("ontology fixture lacks %q", old)
		}
		src = strings.Replace(src, old, repl, 1)
	}
	changed, err := ontology.Parse("changed.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(t.Context(), cfg, changed)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var idx []string
	rows, err := s2.r.QueryContext(t.Context(), `SELECT name FROM sqlite_schema WHERE type = 'index' AND name LIKE 'nodes_prop_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		idx = append(idx, n)
	}
	rows.Close()
	if want := "nodes_prop_lampCount,nodes_prop_name,nodes_prop_status"; strings.Join(idx, ",") != want {
		t.Errorf("indexes %v, want %s", idx, want)
	}
	for text, want := range map[string]int{"alpha": 1, "river": 0} {
		p, err := s2.Find(t.Context(), graph.FindQuery{Class: "StreetLight", Filter: graph.Search{Text: text}, First: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Nodes) != want {
			t.Errorf("search %q after the change: %d nodes, want %d", text, len(p.Nodes), want)
		}
	}
}

func mustReadOntology(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../graphtest/ontology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
