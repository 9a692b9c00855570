package sqlite

import (
	"cmp"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
	"github.com/cityhub/cityhub/graph/graphtest"
	"github.com/cityhub/cityhub/ontology"
)

// TestClassRanges checks the ordinal ranges of scopes in the suite's
// ontology: Entity, Place, District, Asset, StreetLight, Camera, Incident,
// Organization are numbered 0 to 7.
func TestClassRanges(t *testing.T) {
	t.Parallel()
	s := mustOpenInternal(t)
	if got := rtreeFingerprint(s.ont); got != "0.0009765625:Entity,Place,District,Asset,StreetLight,Camera,Incident,Organization" {
		t.Fatalf("ordinal order %s", got)
	}
	for _, tc := range []struct {
		classes []string
		want    string
	}{
		{[]string{"StreetLight"}, "[{4 4}]"},
		{[]string{"Camera", "StreetLight"}, "[{4 5}]"},
		{s.scopes["Entity"].classes, "[{2 7}]"},             // spans the abstract Asset
		{[]string{"District", "Incident"}, "[{2 2} {6 6}]"}, // not across StreetLight
		{[]string{"Incident", "Nope"}, "[{6 6}]"},
		{nil, "[]"},
	} {
		if got := fmt.Sprint(s.classRanges(tc.classes)); got != tc.want {
			t.Errorf("classRanges(%q) = %s, want %s", tc.classes, got, tc.want)
		}
	}
}

// mustPlan returns the query plan of q, one detail per line.
func mustPlan(t testing.TB, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
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
	return strings.Join(out, "\n")
}

// TestNearPlan checks that Near reads the R*Tree with the class and box
// constraints (B0 D1: min_cls <= hi, max_cls >= lo; then the four box
// bounds) and then the candidates' rows by rowid, with no sort of the
// candidates.
func TestNearPlan(t *testing.T) {
	t.Parallel()
	s := mustOpenInternal(t)
	ctx := t.Context()
	if _, err := s.Near(ctx, graph.NearQuery{Points: []graph.Point{{Lat: 1, Lon: 1}}, Class: "Asset", Meters: 10, First: 3}); err != nil {
		t.Fatal(err)
	}
	var q string
	s.stmts.mu.Lock()
	for k := range s.stmts.m {
		if strings.Contains(k, "cityhub_nearest") {
			q = k
		}
	}
	s.stmts.mu.Unlock()
	if q == "" {
		t.Fatal("no Near statement in the cache")
	}
	p := mustPlan(t, s.r, q, make([]any, strings.Count(q, "?"))...)
	for _, want := range []string{"SCAN r VIRTUAL TABLE INDEX 2:B0D1", "SEARCH n USING INTEGER PRIMARY KEY (rowid=?)"} {
		if !strings.Contains(p, want) {
			t.Errorf("near plan lacks %q:\n%s", want, p)
		}
	}
	if n := strings.Count(p, "TEMP B-TREE"); n > 1 {
		t.Errorf("near plan sorts %d times (want only the kept rows):\n%s", n, p)
	}

	// a filter on a scope of two separate ranges: one R*Tree lookup each
	sc := s.newScope("test", []string{"District", "Incident"})
	var b builder
	if err := s.filter(&b, sc, nil, graph.Within{Box: graph.BBox{MinLat: 0, MinLon: 0, MaxLat: 1, MaxLon: 1}}); err != nil {
		t.Fatal(err)
	}
	p = mustPlan(t, s.r, "SELECT id FROM nodes n WHERE "+b.sb.String(), b.args...)
	if n := strings.Count(p, "VIRTUAL TABLE INDEX 2:B0D1"); n != 2 {
		t.Errorf("within plan for two ranges: %d class-restricted lookups, want 2:\n%s", n, p)
	}
}

// geoNode is a located node of the brute-force fixture.
type geoNode struct {
	id, class, status string
	lat, lon          float64
}

// seedMixed stores n located nodes of four classes on a coarse grid (so
// that many share a position and tie on distance) and a few without one.
func seedMixed(t testing.TB, s *Store, n int) []geoNode {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	classes := []string{"StreetLight", "Camera", "Incident", "District"}
	var out []geoNode
	var batch graph.Batch
	for i := range n {
		g := geoNode{id: fmt.Sprintf("m-%04d", i), class: classes[r.IntN(len(classes))],
			lat: 42 + float64(r.IntN(40))*0.0005, lon: -71 + float64(r.IntN(40))*0.0007}
		props := map[string]any{"name": g.id}
		switch g.class {
		case "StreetLight", "Camera":
			g.status = []string{"OK", "FAULTY"}[r.IntN(2)]
			props["status"] = g.status
		case "Incident":
			props["reportedAt"] = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		case "District":
			props["officialCode"] = g.id
		}
		node := graph.Node{ID: g.id, Class: g.class, Props: props}
		if i%50 == 7 && g.class != "District" {
			batch.Nodes = append(batch.Nodes, node) // no geometry
			continue
		}
		node.Geometry = graph.PointGeometry(g.lat, g.lon)
		batch.Nodes = append(batch.Nodes, node)
		out = append(out, g)
	}
	graphtest.MustApply(t, s, batch)
	return out
}

// TestNearMatchesBruteForce compares Near and the geo filters with a
// brute-force answer over a mixed fixture: totals, pages, order (ties by
// ID), HasNext and distances, for concrete and abstract classes.
func TestNearMatchesBruteForce(t *testing.T) {
	t.Parallel()
	s := mustOpenInternal(t)
	nodes := seedMixed(t, s, 600)
	checkNearBruteForce(t, s, nodes, false)
}

// checkNearBruteForce compares Near and the Near and Within filters of
// Find with a brute-force answer; quick checks fewer cases.
func checkNearBruteForce(t *testing.T, s *Store, nodes []geoNode, quick bool) {
	t.Helper()
	classes := []string{"StreetLight", "Camera", "Asset", "Incident", "Place", "Entity", "Organization"}
	radii := []float64{0, 150, 700, 5000}
	firsts := []int{1, 4, 40}
	if quick {
		classes, radii, firsts = []string{"Camera", "Asset", "Entity"}, []float64{600}, []int{4}
	}
	ctx := t.Context()
	r := rand.New(rand.NewPCG(13, 14))
	var pts []graph.Point
	for range 6 {
		pts = append(pts, graph.Point{Lat: 42 + r.Float64()*0.02, Lon: -71 + r.Float64()*0.028})
	}
	pts = append(pts, graph.Point{Lat: nodes[0].lat, Lon: nodes[0].lon}) // on nodes: distance 0
	// every node by distance from each point, ties by ID
	type hit struct {
		n    geoNode
		dist float64
	}
	byDist := make([][]hit, len(pts))
	for i, p := range pts {
		for _, n := range nodes {
			byDist[i] = append(byDist[i], hit{n, geo.Distance(p.Lat, p.Lon, n.lat, n.lon)})
		}
		slices.SortFunc(byDist[i], func(a, b hit) int { return cmp.Or(cmp.Compare(a.dist, b.dist), strings.Compare(a.n.id, b.n.id)) })
	}
	for _, class := range classes {
		scope := s.ont.Class(class).ConcreteDescendants()
		for _, meters := range radii {
			for _, first := range firsts {
				for _, ok := range []bool{false, true} {
					if ok && class != "Asset" && class != "StreetLight" {
						continue
					}
					q := graph.NearQuery{Points: pts, Class: class, Meters: meters, First: first}
					if ok {
						q.Filter = graph.Cmp{Field: "status", Op: graph.OpEq, Value: "OK"}
					}
					pages, err := s.Near(ctx, q)
					if err != nil {
						t.Fatalf("Near(%s, %v m, first %d): %v", class, meters, first, err)
					}
					for i := range pts {
						var want []hit
						for _, h := range byDist[i] {
							if h.dist > meters {
								break
							}
							if slices.Contains(scope, h.n.class) && (!ok || h.n.status == "OK") {
								want = append(want, h)
							}
						}
						pg := pages[i]
						what := fmt.Sprintf("Near(%s, %v m, first %d, ok %v) point %d", class, meters, first, ok, i)
						if pg.Total != len(want) || pg.HasNext != (len(want) > first) {
							t.Errorf("%s: Total %d HasNext %v, want %d %v", what, pg.Total, pg.HasNext, len(want), len(want) > first)
						}
						want = want[:min(first, len(want))]
						var got, wantIDs []string
						for j, n := range pg.Nodes {
							got = append(got, n.ID)
							if j < len(want) && math.Abs(pg.Distances[j]-want[j].dist) > 1e-6 {
								t.Errorf("%s: distance to %s = %v, want %v", what, n.ID, pg.Distances[j], want[j].dist)
							}
						}
						for _, w := range want {
							wantIDs = append(wantIDs, w.n.id)
						}
						if !slices.Equal(got, wantIDs) {
							t.Errorf("%s:\n got %q\nwant %q", what, got, wantIDs)
						}
					}
				}
			}
			// the Near and Within filters of Find over the same scope
			c := pts[0]
			minLat, minLon, maxLat, maxLon := geo.RadiusBox(c.Lat, c.Lon, meters)
			box := graph.BBox{MinLat: minLat, MinLon: minLon, MaxLat: maxLat, MaxLon: maxLon}
			for _, f := range []graph.Filter{graph.Near{Center: c, Meters: meters}, graph.Within{Box: box}} {
				p, err := s.Find(ctx, graph.FindQuery{Class: class, Filter: f, First: 1, Count: true})
				if err != nil {
					t.Fatalf("Find(%s, %s): %v", class, graph.KeyOf(f), err)
				}
				want := 0
				for _, n := range nodes {
					if !slices.Contains(scope, n.class) {
						continue
					}
					if _, near := f.(graph.Near); near && geo.Distance(c.Lat, c.Lon, n.lat, n.lon) <= meters ||
						!near && n.lat >= minLat && n.lat <= maxLat && n.lon >= minLon && n.lon <= maxLon {
						want++
					}
				}
				if p.Total != want {
					t.Errorf("Find(%s, %s): Total %d, want %d", class, graph.KeyOf(f), p.Total, want)
				}
			}
		}
	}
}

// reorderedOntology is the suite's ontology with classes moved so that
// every ordinal changes: Incident before Place, Camera before StreetLight.
func reorderedOntology(t *testing.T) *ontology.Ontology {
	t.Helper()
	src := string(mustReadOntology(t))
	move := func(block, before string) {
		if !strings.Contains(src, block) || !strings.Contains(src, before) {
			t.Fatalf("ontology fixture lacks %q or %q", block, before)
		}
		src = strings.Replace(src, block, "", 1)
		src = strings.Replace(src, before, block+before, 1)
	}
	move(classBlock(t, src, "Incident"), "  Place:\n")
	move(classBlock(t, src, "Camera"), "  StreetLight:\n")
	ont, err := ontology.Parse("reordered.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return ont
}

// classBlock returns the YAML lines of one class in the classes section.
func classBlock(t testing.TB, src, name string) string {
	t.Helper()
	start := strings.Index(src, "\n  "+name+":\n")
	if start < 0 {
		t.Fatalf("no class %s in the fixture", name)
	}
	start++
	end := start + len("  "+name+":\n")
	for end < len(src) && strings.HasPrefix(src[end:], "    ") {
		end += strings.IndexByte(src[end:], '\n') + 1
	}
	return src[start:end]
}

// TestRtreeRebuildOnOntologyChange reopens a database with an ontology
// whose classes are reordered: Open renumbers the R*Tree, and geo queries
// still find every class's nodes.
func TestRtreeRebuildOnOntologyChange(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	s, err := Open(t.Context(), cfg, graphtest.Ontology())
	if err != nil {
		t.Fatal(err)
	}
	nodes := seedMixed(t, s, 300)
	oldFP := mustMeta(t, s, "rtree_fingerprint")
	s.Close()

	ont := reorderedOntology(t)
	if rtreeFingerprint(ont) == oldFP {
		t.Fatalf("reordering left the ordinals alone: %s", oldFP)
	}
	s2, err := Open(t.Context(), cfg, ont)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := mustMeta(t, s2, "rtree_fingerprint"); got != rtreeFingerprint(ont) {
		t.Errorf("fingerprint after reopening %q, want %q", got, rtreeFingerprint(ont))
	}
	checkRtreeOrdinals(t, s2)
	checkNearBruteForce(t, s2, nodes, true)
}

// checkRtreeOrdinals checks that every located node is in the R*Tree under
// its class's ordinal.
func checkRtreeOrdinals(t *testing.T, s *Store) {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT n.id, n.class, r.min_cls, r.max_cls FROM nodes n LEFT JOIN nodes_rtree r ON r.rid = n.rid WHERE n.lat IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, class string
		var lo, hi sql.NullFloat64
		if err := rows.Scan(&id, &class, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if want := float64(s.classOrd[class]); !lo.Valid || lo.Float64 != want || hi.Float64 != want+clsExtent {
			t.Errorf("%s (%s): R*Tree class %v..%v, want %v..%v", id, class, lo, hi, want, want+clsExtent)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func mustMeta(t testing.TB, s *Store, key string) string {
	t.Helper()
	var v sql.NullString
	if err := s.r.QueryRowContext(t.Context(), `SELECT value FROM meta WHERE key = ?`, key).Scan(&v); err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	return v.String
}

// TestOpenVersion1 opens a database in the layout of version 1 (a 2-D
// R*Tree of every class, no ordinal fingerprint), written by hand: Open
// migrates it, Near answers correctly and writes keep the tree current.
func TestOpenVersion1(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	s, err := Open(ctx, cfg, graphtest.Ontology())
	if err != nil {
		t.Fatal(err)
	}
	nodes := seedMixed(t, s, 300)
	s.Close()

	// back to version 1
	db := sql.OpenDB(connector{dsn(cfg.Path, nil)})
	for _, q := range []string{
		`DROP TABLE nodes_rtree`,
		`CREATE VIRTUAL TABLE IF NOT EXISTS nodes_rtree USING rtree (rid, min_lat, max_lat, min_lon, max_lon)`,
		`INSERT INTO nodes_rtree SELECT rid, lat, lat, lon, lon FROM nodes WHERE lat IS NOT NULL`,
		`UPDATE meta SET value = 1 WHERE key = 'schema_version'`,
		`DELETE FROM meta WHERE key = 'rtree_fingerprint'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s2, err := Open(ctx, cfg, graphtest.Ontology())
	if err != nil {
		t.Fatalf("open a version 1 database: %v", err)
	}
	defer s2.Close()
	if v := mustMeta(t, s2, "schema_version"); v != fmt.Sprint(schemaVersion) {
		t.Errorf("schema_version %s after migrating, want %d", v, schemaVersion)
	}
	var ddl string
	if err := s2.r.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'nodes_rtree'`).Scan(&ddl); err != nil || ddl != rtreeSchema {
		t.Errorf("R*Tree after migrating: %q, %v", ddl, err)
	}
	checkRtreeOrdinals(t, s2)
	checkNearBruteForce(t, s2, nodes, true)

	// writes after the migration: a light moves, a camera is added
	moved := nodes[0]
	for i, n := range nodes {
		if n.class == "StreetLight" {
			moved, nodes[i].lat, nodes[i].lon = n, 42.004, -70.996
			break
		}
	}
	graphtest.MustApply(t, s2, graph.Batch{Nodes: []graph.Node{
		{ID: moved.id, Class: "StreetLight", Props: map[string]any{"name": moved.id, "status": moved.status}, Geometry: graph.PointGeometry(42.004, -70.996)},
		{ID: "m-new", Class: "Camera", Props: map[string]any{"status": "OK"}, Geometry: graph.PointGeometry(42.004, -70.996)},
	}})
	nodes = append(nodes, geoNode{id: "m-new", class: "Camera", status: "OK", lat: 42.004, lon: -70.996})
	checkRtreeOrdinals(t, s2)
	checkNearBruteForce(t, s2, nodes, true)
}

// TestOpenKeepsRtree checks that reopening with the same ontology does
// not rebuild the tree.
func TestOpenKeepsRtree(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	s, err := Open(ctx, cfg, graphtest.Ontology())
	if err != nil {
		t.Fatal(err)
	}
	seedMixed(t, s, 20)
	// a marker row the rebuild would drop (no such node)
	if _, err := s.w.ExecContext(ctx, `INSERT INTO nodes_rtree VALUES (999999, 0, 0, 0, 0, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(ctx, cfg, graphtest.Ontology())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var n int
	if err := s2.r.QueryRowContext(ctx, `SELECT count(*) FROM nodes_rtree WHERE rid = 999999`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the R*Tree was rebuilt on reopening with the same ontology (%d, %v)", n, err)
	}
}
