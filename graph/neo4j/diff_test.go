package neo4j_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
	"github.com/cityhub/cityhub/graph/graphtest"
	"github.com/cityhub/cityhub/graph/neo4j"
	"github.com/cityhub/cityhub/graph/sqlite"
)

// FuzzIntegrationDifferentialFilters checks that the sqlite and Neo4j
// backends answer the same finds identically. Both stores hold the same
// ~200 varied nodes; every input is decoded into a class, a filter (nested
// And/Or/Not of comparisons over every operator and property type, geo and
// search filters), an order and a page size, and the find is paged to the
// end on both stores. The IDs, their order and the totals must agree, and
// both stores must reject the same inputs with ErrInvalid.
//
// Run the seeds with the other integration tests, or fuzz with
//
//	CITYHUB_NEO4J_URI=bolt://127.0.0.1:7687 go test ./graph/neo4j -run '^$' -fuzz FuzzIntegrationDifferentialFilters
//
// The Neo4j database is seeded once: fuzz workers are separate processes,
// so the first one (under a lock file) wipes and seeds it and leaves a
// marker node that the others check; nobody writes while finds run.
func FuzzIntegrationDifferentialFilters(f *testing.F) {
	for _, seed := range []string{
		"",
		"\x00\x01\x02\x03",
		"\x03\x04\x00\x05Main\x01\x02",
		"\x01\x02\x0b\x05\x03\x07\x00\x04\x01\x09\x02\x03",
		"\x06\x00\x03\x02\x04\x06\x08\x0a\x0c\x0e\x10\x12\x14\x16",
		"\x00\x0a\x00\x03\x01\x05\x02\x07",
		"\x00\x0b\x01\x02\x03\x04\x05\x06\x07",
		"\x05\x0c\x00\x0d\x03\x02\x01\x00\x01\x01",
		"\x02\x01\x03\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13",
		"\x04\x02\x02\x05\x06\x06\x07\x07\x08\x08\x09\x09\xff\xfe\xfd\xfc\xfb\xfa",
		"\x01\x00\x03\x11\x09\x22\x00\x33\x07\x44\x05\x55\x03\x66\x01\x77",
		"\x07\x0d\x00\x01\x00\x00\x80\x40\x20\x10\x08\x04\x02\x01",
		// found by the fuzzer: and(or(), near(...)) on Place made Neo4j refuse
		// the point-index hint
		"70220%0000000",
		"70220%00000000",
	} {
		f.Add([]byte(seed))
	}

	cfg := config(f)
	data := diffData()
	lite := openDiffSQLite(f)
	graphtest.MustApply(f, lite, data)
	neo := mustOpen(f)
	seedDiffNeo4j(f, neo, cfg.URI, data)
	points := diffPoints(data)

	f.Fuzz(func(t *testing.T, in []byte) {
		q := newDiffGen(in, points).query()
		a, errA := pageAll(t.Context(), lite, q)
		b, errB := pageAll(t.Context(), neo, q)
		desc := fmt.Sprintf("class %s, filter %s, order %s, first %d", q.Class, keyOr(q.Filter), graph.OrderKey(q.Order), q.First)
		t.Logf("%s: %d ids, %v / %v", desc, len(a.ids), errA, errB)
		switch {
		case errA != nil && errB != nil:
			if !errors.Is(errA, graph.ErrInvalid) || !errors.Is(errB, graph.ErrInvalid) {
				t.Fatalf("%s:\n  sqlite error: %v\n  neo4j error:  %v", desc, errA, errB)
			}
			return
		case errA != nil || errB != nil:
			t.Fatalf("%s: only one backend fails:\n  sqlite: %v (%d ids)\n  neo4j:  %v (%d ids)", desc, errA, len(a.ids), errB, len(b.ids))
		}
		if !slices.Equal(a.ids, b.ids) || !slices.Equal(a.totals, b.totals) || !slices.Equal(a.pages, b.pages) {
			t.Fatalf("%s: the backends differ\n  sqlite: %d ids %q\n          totals %v, page sizes %v\n  neo4j:  %d ids %q\n          totals %v, page sizes %v\n  only in sqlite: %q\n  only in neo4j:  %q",
				desc, len(a.ids), a.ids, a.totals, a.pages, len(b.ids), b.ids, b.totals, b.pages, minus(a.ids, b.ids), minus(b.ids, a.ids))
		}
	})
}

func keyOr(f graph.Filter) string {
	if f == nil {
		return "<nil>"
	}
	return f.Key()
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// paged is the result of paging a find to its end.
type paged struct {
	ids    []string
	totals []int // Total of every page
	pages  []int // number of nodes of every page
}

func pageAll(ctx context.Context, s graph.Store, q graph.FindQuery) (paged, error) {
	var r paged
	for i := 0; ; i++ {
		p, err := s.Find(ctx, q)
		if err != nil {
			if i > 0 {
				return r, fmt.Errorf("page %d (after %q): %w", i, q.After, err)
			}
			return r, err
		}
		if len(p.Cursors) != len(p.Nodes) {
			return r, fmt.Errorf("page %d: %d cursors for %d nodes", i, len(p.Cursors), len(p.Nodes))
		}
		if p.HasPrev != (q.After != "") {
			return r, fmt.Errorf("page %d: HasPrev %v with after %q", i, p.HasPrev, q.After)
		}
		for _, n := range p.Nodes {
			r.ids = append(r.ids, n.ID)
		}
		r.totals = append(r.totals, p.Total)
		r.pages = append(r.pages, len(p.Nodes))
		if !p.HasNext {
			return r, nil
		}
		if len(p.Nodes) == 0 {
			return r, fmt.Errorf("page %d: HasNext without nodes", i)
		}
		if i > 1000 {
			return r, errors.New("paging does not end")
		}
		q.After = p.Cursors[len(p.Cursors)-1]
	}
}

func openDiffSQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	s, err := sqlite.Open(t.Context(), cfg, graphtest.Ontology())
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

const diffMarker = "zz-diff-marker"

// seedDiffNeo4j makes the database hold exactly data: unless the marker
// node says it already does, it wipes and seeds it. A lock file serialises
// the fuzz worker processes.
func seedDiffNeo4j(t testing.TB, s *neo4j.Store, uri string, data graph.Batch) {
	t.Helper()
	ctx := t.Context()
	sum := sha256.Sum256([]byte(uri))
	unlock := lockFile(t, filepath.Join(os.TempDir(), "cityhub-neo4j-diff-"+hex.EncodeToString(sum[:8])+".lock"))
	defer unlock()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	hash := data.Nodes[len(data.Nodes)-1].Props["name"]
	ns, err := s.Nodes(ctx, []string{diffMarker})
	if err == nil && ns[0] != nil && ns[0].Props["name"] == hash {
		p, err := s.Find(ctx, graph.FindQuery{Class: "Entity", First: 1, Count: true})
		if err == nil && p.Total == len(data.Nodes) {
			return // seeded by another process of this run
		}
	}
	if err := neo4j.Wipe(ctx, s); err != nil {
		t.Fatalf("Wipe: %v", err)
	}
	// the marker (the last node) is written last
	body := data
	body.Nodes = data.Nodes[:len(data.Nodes)-1]
	graphtest.MustApply(t, s, body)
	graphtest.MustApply(t, s, graph.Batch{Nodes: data.Nodes[len(data.Nodes)-1:]})
}

func lockFile(t testing.TB, path string) func() {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }
		}
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > 2*time.Minute {
			os.Remove(path) // left by a killed process
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s: still held", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The fixture's value pools, shared by the data and the filters.
var (
	diffStrings = []string{
		"", " ", "Main Street", "main street", "MAIN STREET 2", "O'Brien \"Quote\"", "x' OR '1'='1",
		"Ärztehaus Straße", "ärztehaus", "Straße", "STRASSE", "GROẞE WIESE", "große", "İstanbul", "istanbul",
		"ΟΔΟΣ", "οδος", "Σίσυφος", "50% off_peak", "a_b", "a%b", `back\slash`, "x`y{z}[w]", "$1 ?;",
		"emoji 🚦 light", "🚦", "日本語テキスト", "  spaced  out  ", "tab\there", "line\nbreak",
		"NULL", "null", "e\u0301", "é", "ǅ digraph", "ﬁle", "K kelvin", "\u00a0nbsp", "A-1", "a-1", "P-001", "P_001",
		"zzz", "~tilde", "-- comment", "MATCH (n) DETACH DELETE n", "\"}) RETURN n //",
	}
	diffInts   = []int64{-7, -1, 0, 1, 2, 3, 5, 7, 42, 1000, 1 << 31, 1<<53 + 1, math.MaxInt64, math.MinInt64}
	diffFloats = []float64{-1e300, -2.5, -1, -0.0, 0, 1e-9, 0.1, 0.30000000000000004, 0.5, 1, 1.5, 2, 2.5, 60.5, 100, 150, 9007199254740993, 1e15, 1e300}
	diffTimes  = []time.Time{
		time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2019, 12, 31, 19, 0, 0, 0, time.FixedZone("EST", -5*3600)),
		time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(2021, 6, 15, 12, 0, 0, 1000, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC),
		time.Date(2024, 5, 1, 8, 0, 0, 0, time.FixedZone("CEST", 2*3600)),
		time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	diffStatus   = []string{"OK", "FAULTY", "UNKNOWN"}
	diffSeverity = []string{"LOW", "MEDIUM", "HIGH"}
	diffSources  = []string{"", "gis", "survey", "Gis", "gis-2"}
)

const dLat, dLon = 42.0, -71.0

// diffData builds the fixture deterministically. The last node is the
// marker, whose name is a hash of everything else.
func diffData() graph.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(n int) int { return r.IntN(n) }
	maybe := func(p float64) bool { return r.Float64() < p }
	str := func() string { return diffStrings[pick(len(diffStrings))] }
	tm := func() time.Time { return diffTimes[pick(len(diffTimes))] }
	point := func() *graph.Geometry {
		switch pick(8) {
		case 0:
			return nil
		case 1: // on a grid, some on the polygon's edges
			return graph.PointGeometry(dLat-0.02+float64(pick(9))*0.005, dLon-0.02+float64(pick(9))*0.005)
		case 2:
			return graph.PointGeometry(10, []float64{179.9999, -179.9999, 180, -180}[pick(4)])
		case 3:
			return graph.PointGeometry([]float64{-90, 90, 0}[pick(3)], float64(pick(360)-180))
		default:
			return graph.PointGeometry(dLat+(r.Float64()-0.5)*0.06, dLon+(r.Float64()-0.5)*0.06)
		}
	}
	prov := func() graph.Provenance {
		var p graph.Provenance
		p.Source = diffSources[pick(len(diffSources))]
		if maybe(0.5) {
			p.FetchedAt = tm()
		}
		if maybe(0.3) {
			p.ValidFrom = tm()
		}
		if maybe(0.15) {
			p.ValidTo = tm()
		}
		return p
	}
	entity := func(n *graph.Node) {
		if maybe(0.85) {
			n.Props["name"] = str()
		}
		if maybe(0.4) {
			n.Props["description"] = str() + " " + str()
		}
		if maybe(0.4) {
			var l []any
			for range pick(4) {
				l = append(l, str())
			}
			n.Props["externalIds"] = l
		}
	}
	var b graph.Batch
	add := func(n graph.Node) { b.Nodes = append(b.Nodes, n) }

	// districts: one L-shaped polygon with a hole, one point only, one without geometry
	poly := graph.Node{ID: "d-poly", Class: "District", Props: map[string]any{"name": "L Square", "officialCode": "D1", "population": int64(1000)}}
	poly.Geometry = &graph.Geometry{
		Point: graph.Point{Lat: dLat, Lon: dLon},
		Kind:  "Polygon",
		GeoJSON: fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]],[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`,
			dLon-0.01, dLat-0.01, dLon+0.01, dLat-0.01, dLon+0.01, dLat, dLon, dLat, dLon, dLat+0.01, dLon-0.01, dLat+0.01, dLon-0.01, dLat-0.01,
			dLon-0.006, dLat-0.006, dLon-0.004, dLat-0.006, dLon-0.004, dLat-0.004, dLon-0.006, dLat-0.004, dLon-0.006, dLat-0.006),
		BBox: graph.BBox{MinLat: dLat - 0.01, MinLon: dLon - 0.01, MaxLat: dLat + 0.01, MaxLon: dLon + 0.01},
	}
	add(poly)
	add(graph.Node{ID: "d-point", Class: "District", Props: map[string]any{"name": "Point only", "officialCode": "D2", "population": int64(0)}, Geometry: graph.PointGeometry(dLat, dLon)})
	add(graph.Node{ID: "d-none", Class: "District", Props: map[string]any{"officialCode": "", "description": "no geometry"}})

	var assets, incidents, orgs []string
	for i := range 110 {
		n := graph.Node{ID: fmt.Sprintf("sl-%03d", i), Class: "StreetLight", Props: map[string]any{}, Prov: prov()}
		entity(&n)
		n.Geometry = point()
		if maybe(0.8) {
			n.Props["status"] = diffStatus[pick(3)]
		}
		if maybe(0.6) {
			n.Props["installedAt"] = tm()
		}
		if maybe(0.5) {
			n.Props["poleNumber"] = str()
		}
		if maybe(0.6) {
			n.Props["powerRatingW"] = diffFloats[pick(len(diffFloats))]
		}
		if maybe(0.6) {
			n.Props["lampCount"] = diffInts[pick(len(diffInts))]
		}
		if maybe(0.6) {
			n.Props["lit"] = maybe(0.5)
		}
		if maybe(0.4) {
			var l []any
			for range pick(4) {
				l = append(l, diffFloats[pick(len(diffFloats))])
			}
			n.Props["readings"] = l
		}
		if maybe(0.3) {
			var l []any
			for range pick(3) {
				l = append(l, tm())
			}
			n.Props["serviceDates"] = l
		}
		if maybe(0.2) {
			n.Props["attributes"] = map[string]any{"k": str(), "n": float64(pick(5))}
		}
		assets = append(assets, n.ID)
		add(n)
	}
	for i := range 25 {
		n := graph.Node{ID: fmt.Sprintf("cam-%02d", i), Class: "Camera", Props: map[string]any{}, Prov: prov()}
		entity(&n)
		n.Geometry = point()
		if maybe(0.7) {
			n.Props["status"] = diffStatus[pick(3)]
		}
		if maybe(0.5) {
			n.Props["installedAt"] = tm()
		}
		if maybe(0.5) {
			n.Props["streamRef"] = "rtsp://" + str()
		}
		assets = append(assets, n.ID)
		add(n)
	}
	for i := range 45 {
		n := graph.Node{ID: fmt.Sprintf("inc-%02d", i), Class: "Incident", Props: map[string]any{"reportedAt": tm()}, Prov: prov()}
		entity(&n)
		n.Geometry = point()
		if maybe(0.7) {
			n.Props["severity"] = diffSeverity[pick(3)]
		}
		if maybe(0.6) {
			n.Props["casualties"] = diffInts[pick(len(diffInts))]
		}
		if maybe(0.5) {
			var l []any
			for range pick(4) {
				l = append(l, diffSeverity[pick(3)])
			}
			n.Props["categories"] = l
		}
		if maybe(0.5) {
			var l []any
			for range pick(4) {
				l = append(l, diffInts[pick(len(diffInts))])
			}
			n.Props["counts"] = l
		}
		if maybe(0.5) {
			n.Props["urgent"] = maybe(0.5)
		}
		incidents = append(incidents, n.ID)
		add(n)
	}
	for i := range 15 {
		n := graph.Node{ID: fmt.Sprintf("org-%02d", i), Class: "Organization", Props: map[string]any{}, Prov: prov()}
		entity(&n)
		if maybe(0.6) {
			n.Props["website"] = "https://" + str()
		}
		orgs = append(orgs, n.ID)
		add(n)
	}
	districts := []string{"d-poly", "d-point", "d-none"}
	for _, a := range assets {
		if maybe(0.4) {
			b.Edges = append(b.Edges, graph.Edge{From: a, Rel: "LOCATED_IN", To: districts[pick(3)]})
		}
	}
	for _, in := range incidents {
		for range pick(3) {
			b.Edges = append(b.Edges, graph.Edge{From: in, Rel: "AFFECTS", To: assets[pick(len(assets))], Props: map[string]any{"impact": str(), "weight": diffFloats[pick(len(diffFloats))]}})
		}
	}
	for _, o := range orgs {
		for range pick(4) {
			b.Edges = append(b.Edges, graph.Edge{From: o, Rel: "MAINTAINS", To: assets[pick(len(assets))]})
		}
	}
	slices.SortFunc(b.Edges, func(x, y graph.Edge) int {
		return strings.Compare(x.From+"\x00"+x.Rel+"\x00"+x.To, y.From+"\x00"+y.Rel+"\x00"+y.To)
	})
	b.Edges = slices.CompactFunc(b.Edges, func(x, y graph.Edge) bool { return x.Key() == y.Key() })

	raw, err := json.Marshal(b)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(raw)
	add(graph.Node{ID: diffMarker, Class: "Organization", Props: map[string]any{"name": "marker " + hex.EncodeToString(sum[:12])}})
	return b
}

// diffPoints returns the fixture's points, for near filters on them.
func diffPoints(b graph.Batch) []graph.Point {
	var out []graph.Point
	for _, n := range b.Nodes {
		if n.Geometry != nil {
			out = append(out, n.Geometry.Point)
		}
	}
	return out
}

// field types of the ontology's properties and the built-in fields
type diffField struct {
	name    string
	typ     string // String, Int, Float, DateTime, Boolean, JSON, AssetStatus, Severity, Class
	list    bool
	classes []string // leaf classes that have it; nil for every class
}

var diffFields = []diffField{
	{"id", "String", false, nil},
	{"class", "Class", false, nil},
	{"_source", "String", false, nil},
	{"_fetchedAt", "DateTime", false, nil},
	{"_validFrom", "DateTime", false, nil},
	{"_validTo", "DateTime", false, nil},
	{"_ingestedAt", "Ingested", false, nil},
	{"name", "String", false, nil},
	{"description", "String", false, nil},
	{"externalIds", "String", true, nil},
	{"officialCode", "String", false, []string{"District"}},
	{"population", "Int", false, []string{"District"}},
	{"status", "AssetStatus", false, []string{"StreetLight", "Camera"}},
	{"installedAt", "DateTime", false, []string{"StreetLight", "Camera"}},
	{"poleNumber", "String", false, []string{"StreetLight"}},
	{"powerRatingW", "Float", false, []string{"StreetLight"}},
	{"lampCount", "Int", false, []string{"StreetLight"}},
	{"lit", "Boolean", false, []string{"StreetLight"}},
	{"readings", "Float", true, []string{"StreetLight"}},
	{"serviceDates", "DateTime", true, []string{"StreetLight"}},
	{"attributes", "JSON", false, []string{"StreetLight"}},
	{"streamRef", "String", false, []string{"Camera"}},
	{"severity", "Severity", false, []string{"Incident"}},
	{"reportedAt", "DateTime", false, []string{"Incident"}},
	{"casualties", "Int", false, []string{"Incident"}},
	{"categories", "Severity", true, []string{"Incident"}},
	{"counts", "Int", true, []string{"Incident"}},
	{"urgent", "Boolean", false, []string{"Incident"}},
	{"website", "String", false, []string{"Organization"}},
	{"nope", "String", false, []string{"None"}},
}

var diffClasses = map[string][]string{
	"StreetLight":  {"StreetLight"},
	"Camera":       {"Camera"},
	"Incident":     {"Incident"},
	"District":     {"District"},
	"Organization": {"Organization"},
	"Asset":        {"StreetLight", "Camera"},
	"Place":        {"District"},
	"Entity":       {"StreetLight", "Camera", "Incident", "District", "Organization"},
}

var diffClassNames = []string{"StreetLight", "Asset", "Entity", "Incident", "Camera", "District", "Organization", "Place"}

// diffGen decodes fuzz bytes into a query; past the end it reads zeros.
type diffGen struct {
	in     []byte
	pos    int
	points []graph.Point
	class  string
	fields []diffField // fields of class (and its subclasses)
}

func newDiffGen(in []byte, points []graph.Point) *diffGen {
	return &diffGen{in: in, points: points}
}

func (g *diffGen) byte() byte {
	if g.pos >= len(g.in) {
		g.pos++
		return 0
	}
	b := g.in[g.pos]
	g.pos++
	return b
}

func (g *diffGen) n(n int) int { return int(g.byte()) % n }

func (g *diffGen) done() bool { return g.pos >= len(g.in) }

func (g *diffGen) query() graph.FindQuery {
	g.class = diffClassNames[g.n(len(diffClassNames))]
	leaves := diffClasses[g.class]
	for _, f := range diffFields {
		if f.classes == nil || slices.ContainsFunc(f.classes, func(c string) bool { return slices.Contains(leaves, c) }) {
			g.fields = append(g.fields, f)
		}
	}
	q := graph.FindQuery{Class: g.class, Count: true}
	q.Filter = g.filter(0)
	for range g.n(3) {
		f := g.field()
		if f.name == "_ingestedAt" {
			continue // the stores stamp their own times
		}
		q.Order = append(q.Order, graph.Order{Field: f.name, Desc: g.n(2) == 1})
	}
	q.First = []int{3, 1, 2, 5, 8, 13, 50, 100, 500, 7}[g.n(10)]
	return q
}

// field picks mostly a field of the class, sometimes any field.
func (g *diffGen) field() diffField {
	if g.n(16) == 15 {
		return diffFields[g.n(len(diffFields))]
	}
	return g.fields[g.n(len(g.fields))]
}

func (g *diffGen) filter(depth int) graph.Filter {
	if g.done() && depth > 0 {
		return g.cmp()
	}
	k := g.n(16)
	if depth >= 4 && k < 4 {
		k += 4
	}
	switch k {
	case 0, 1:
		var a graph.And
		for range g.n(4) {
			a = append(a, g.filter(depth+1))
		}
		return a
	case 2:
		var o graph.Or
		for range g.n(4) {
			o = append(o, g.filter(depth+1))
		}
		return o
	case 3:
		return graph.Not{F: g.filter(depth + 1)}
	case 4:
		if depth == 0 {
			return nil
		}
		return g.cmp()
	case 5:
		return graph.Near{Center: g.point(), Meters: g.meters()}
	case 6:
		return graph.Within{Box: g.box()}
	case 7:
		return graph.WithinArea{AreaID: []string{"d-poly", "d-point", "d-none", "nope", "sl-001", ""}[g.n(6)]}
	case 8:
		return graph.Search{Text: g.searchText()}
	default:
		return g.cmp()
	}
}

var diffOps = []graph.CmpOp{graph.OpEq, graph.OpNe, graph.OpLt, graph.OpLte, graph.OpGt, graph.OpGte, graph.OpIn, graph.OpContains, graph.OpStartsWith, graph.OpIsNull}

func (g *diffGen) cmp() graph.Cmp {
	f := g.field()
	op := diffOps[g.n(len(diffOps))]
	if g.n(64) == 63 {
		op = graph.CmpOp("like")
	}
	c := graph.Cmp{Field: f.name, Op: op}
	switch op {
	case graph.OpIsNull:
		c.Value = g.n(2) == 0
		if g.n(32) == 31 {
			c.Value = "yes"
		}
	case graph.OpIn:
		l := []any{}
		for range g.n(4) {
			l = append(l, g.value(f))
		}
		c.Value = l
		if g.n(32) == 31 {
			c.Value = g.value(f)
		}
	default:
		c.Value = g.value(f)
	}
	return c
}

// value picks a value of the field's type, rarely one of another type.
func (g *diffGen) value(f diffField) any {
	typ := f.typ
	if g.n(24) == 23 {
		typ = []string{"String", "Int", "Float", "DateTime", "Boolean", "Nil", "NaN"}[g.n(7)]
	}
	switch typ {
	case "String":
		switch f.name {
		case "id":
			if g.n(2) == 0 {
				return []string{"sl-001", "sl-0", "SL-", "sl-", "cam-01", "inc-", "d-poly", "org-1", "zz", "sl-109", "sl-110"}[g.n(11)]
			}
		case "_source":
			if g.n(2) == 0 {
				return diffSources[g.n(len(diffSources))]
			}
		}
		return g.str()
	case "Class":
		return []string{"StreetLight", "Camera", "Incident", "District", "Organization", "Asset", "streetlight", ""}[g.n(8)]
	case "AssetStatus":
		return append(slices.Clone(diffStatus), "ok", "NOPE")[g.n(5)]
	case "Severity":
		return append(slices.Clone(diffSeverity), "high", "")[g.n(5)]
	case "Int":
		if g.n(4) == 0 {
			return diffFloats[g.n(len(diffFloats))]
		}
		return diffInts[g.n(len(diffInts))]
	case "Float":
		if g.n(4) == 0 {
			return diffInts[g.n(len(diffInts))]
		}
		return diffFloats[g.n(len(diffFloats))]
	case "DateTime":
		t := diffTimes[g.n(len(diffTimes))]
		switch g.n(4) {
		case 0:
			t = t.In(time.FixedZone("X", (g.n(25)-12)*3600))
		case 1:
			t = t.Add(time.Duration(g.n(3)-1) * time.Microsecond)
		}
		return t
	case "Ingested":
		return []time.Time{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}[g.n(2)]
	case "Boolean":
		return g.n(2) == 0
	case "JSON":
		return g.str()
	case "NaN":
		return math.NaN()
	}
	return nil
}

// str picks a string from the pool, a piece of one, or raw input bytes.
func (g *diffGen) str() string {
	switch g.n(4) {
	case 0:
		s := diffStrings[g.n(len(diffStrings))]
		r := []rune(s)
		if len(r) == 0 {
			return s
		}
		i := g.n(len(r))
		j := i + g.n(len(r)-i+1)
		return string(r[i:j])
	case 1:
		l := g.n(8)
		var b []byte
		for range l {
			b = append(b, g.byte())
		}
		s := strings.ToValidUTF8(string(b), "\uFFFD")
		if !utf8.ValidString(s) {
			return ""
		}
		return s
	default:
		return diffStrings[g.n(len(diffStrings))]
	}
}

func (g *diffGen) searchText() string {
	var words []string
	for range g.n(4) {
		words = append(words, g.str())
	}
	return strings.Join(words, []string{" ", "  ", "\t"}[g.n(3)])
}

func (g *diffGen) point() graph.Point {
	switch g.n(6) {
	case 0:
		return graph.Point{Lat: dLat, Lon: dLon}
	case 1:
		return graph.Point{Lat: []float64{91, -90, 90, 10, 0}[g.n(5)], Lon: []float64{180, -180, 181, 0, 179.99}[g.n(5)]}
	case 2:
		return graph.Point{Lat: dLat + float64(int(g.byte())-128)*0.0002, Lon: dLon + float64(int(g.byte())-128)*0.0002}
	default:
		if len(g.points) == 0 {
			return graph.Point{Lat: dLat, Lon: dLon}
		}
		return g.points[int(g.byte())*7%len(g.points)]
	}
}

func (g *diffGen) meters() float64 {
	switch g.n(5) {
	case 0:
		// exactly the distance from the centre to a stored point, or just under
		c, p := g.point(), g.point()
		d := geo.Distance(c.Lat, c.Lon, p.Lat, p.Lon)
		if g.n(2) == 0 {
			d = math.Nextafter(d, 0)
		}
		return d
	case 1:
		return []float64{0, -1, math.Inf(1), 1e-9, 2e7}[g.n(5)]
	default:
		return float64(g.byte()) * float64(g.byte()) / 10
	}
}

func (g *diffGen) box() graph.BBox {
	if g.n(4) == 0 {
		p := g.point()
		return graph.BBox{MinLat: p.Lat, MinLon: p.Lon, MaxLat: p.Lat, MaxLon: p.Lon}
	}
	c := g.point()
	h := float64(g.byte()) * 0.0002
	w := float64(g.byte()) * 0.0002
	if g.n(8) == 7 {
		h = -h // inverted
	}
	return graph.BBox{MinLat: c.Lat - h, MinLon: c.Lon - w, MaxLat: c.Lat + h, MaxLon: c.Lon + w}
}
