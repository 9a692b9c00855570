package neo4j_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/graphtest"
	"github.com/cityhub/cityhub/graph/neo4j"
	"github.com/cityhub/cityhub/ontology"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func mustModel(t testing.TB) *neo4j.Model {
	t.Helper()
	m, err := neo4j.NewModel(graphtest.Ontology())
	if err != nil {
		t.Fatalf("NewModel: %v", err)
	}
	return m
}

func c(f string, op graph.CmpOp, v any) graph.Cmp { return graph.Cmp{Field: f, Op: op, Value: v} }

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// compileCase is one statement of the golden file.
type compileCase struct {
	name    string
	compile func(m *neo4j.Model) (neo4j.Statement, error)
}

func find(q graph.FindQuery) func(m *neo4j.Model) (neo4j.Statement, error) {
	return func(m *neo4j.Model) (neo4j.Statement, error) { return m.Find(q) }
}

func where(class string, f graph.Filter) func(m *neo4j.Model) (neo4j.Statement, error) {
	return find(graph.FindQuery{Class: class, Filter: f, First: 10})
}

func compileCases() []compileCase {
	const SL = "StreetLight"
	cursor := graph.EncodeCursor([]graph.Order{{Field: "name"}, {Field: "installedAt", Desc: true}}, []any{"Main", nil}, "sl-1")
	return []compileCase{
		{"eq", where(SL, c("name", graph.OpEq, "Main"))},
		{"ne", where(SL, c("status", graph.OpNe, "OK"))},
		{"lt-time", where(SL, c("installedAt", graph.OpLt, ts("2020-01-01T01:00:00.1234567+01:00")))},
		{"gte-number", where(SL, c("powerRatingW", graph.OpGte, int64(100)))},
		{"in", where(SL, c("lampCount", graph.OpIn, []any{int64(1), 2.5}))},
		{"in-empty", where(SL, c("status", graph.OpIn, []any{}))},
		{"not-in-empty", where(SL, graph.Not{F: c("status", graph.OpIn, []any{})})},
		{"isNull", where(SL, c("powerRatingW", graph.OpIsNull, true))},
		{"isNotNull-json", where(SL, c("attributes", graph.OpIsNull, false))},
		{"contains", where(SL, c("name", graph.OpContains, "STRAẞE"))},
		{"contains-enum", where(SL, c("status", graph.OpContains, "ok"))},
		{"contains-id", where(SL, c("id", graph.OpContains, "SL-"))},
		{"contains-list", where(SL, c("externalIds", graph.OpContains, "X-"))},
		{"startsWith", where(SL, c("name", graph.OpStartsWith, "Main"))},
		{"list-eq", where(SL, c("externalIds", graph.OpEq, "A-1"))},
		{"list-ne", where(SL, c("externalIds", graph.OpNe, "A-1"))},
		{"list-in", where("Incident", c("counts", graph.OpIn, []any{int64(7)}))},
		{"bool", where(SL, c("lit", graph.OpEq, true))},
		{"builtins", where(SL, graph.And{c("class", graph.OpEq, SL), c("_source", graph.OpEq, "gis"), c("_fetchedAt", graph.OpGt, ts("2024-01-01T00:00:00Z"))})},
		{"not-and-or", where(SL, graph.Not{F: graph.And{c("status", graph.OpEq, "OK"), graph.Or{c("lampCount", graph.OpGt, int64(1)), c("lit", graph.OpEq, false)}}})},
		{"or-empty", where(SL, graph.Or{})},
		{"search", where("Asset", graph.Search{Text: "Main  STREET"})},
		{"search-blank", where("Asset", graph.Search{Text: " "})},
		{"near", where(SL, graph.Near{Center: graph.Point{Lat: 42, Lon: -71}, Meters: 250})},
		{"within", where("Entity", graph.Within{Box: graph.BBox{MinLat: 42, MinLon: -71.1, MaxLat: 42.1, MaxLon: -71}})},
		{"within-empty-box", where(SL, graph.Within{Box: graph.BBox{MinLat: 43, MinLon: -71.1, MaxLat: 42.1, MaxLon: -71}})},
		{"within-area-unresolved", where(SL, graph.WithinArea{AreaID: "d-1"})},
		{"indexed-labels", where(SL, graph.And{c("poleNumber", graph.OpEq, "P-1"), c("status", graph.OpEq, "OK")})},
		{"order-cursor-count", find(graph.FindQuery{Class: "Asset", Order: []graph.Order{{Field: "name"}, {Field: "installedAt", Desc: true}},
			After: cursor, First: 5, Count: true, Filter: c("status", graph.OpEq, "OK")})},
		{"order-bool-desc", find(graph.FindQuery{Class: SL, Order: []graph.Order{{Field: "lit", Desc: true}}, First: 5})},
		{"neighbors-in-narrow", func(m *neo4j.Model) (neo4j.Statement, error) {
			return m.Neighbors(graph.NeighborQuery{IDs: []string{"nd-1", "nd-2", "nd-1"}, Rel: "LOCATED_IN", Dir: ontology.In, Class: SL,
				Filter: c("status", graph.OpEq, "OK"), Order: []graph.Order{{Field: "name", Desc: true}}, First: 2})
		}},
		{"neighbors-out-props", func(m *neo4j.Model) (neo4j.Statement, error) {
			return m.Neighbors(graph.NeighborQuery{IDs: []string{"ni-1"}, Rel: "AFFECTS", First: 10})
		}},
		{"near-query", func(m *neo4j.Model) (neo4j.Statement, error) {
			return m.Near(graph.NearQuery{Points: []graph.Point{{Lat: 42, Lon: -71}, {Lat: 42.1, Lon: -71}}, Class: "Asset", Meters: 500, First: 3,
				Filter: c("status", graph.OpEq, "OK")})
		}},
		{"aggregate-grouped", func(m *neo4j.Model) (neo4j.Statement, error) {
			return m.Aggregate(graph.AggregateQuery{Class: SL, GroupBy: "status", Field: "powerRatingW", Filter: c("lit", graph.OpEq, true)})
		}},
		{"aggregate-all", func(m *neo4j.Model) (neo4j.Statement, error) {
			return m.Aggregate(graph.AggregateQuery{Class: SL})
		}},
		{"nodes", func(m *neo4j.Model) (neo4j.Statement, error) { return m.Nodes([]string{"a", "b", "a"}), nil }},
	}
}

// render writes a statement for the golden file: Cypher, then each
// parameter as JSON, sorted by name.
func render(name string, st neo4j.Statement) string {
	var b strings.Builder
	fmt.Fprintf(&b, "== %s\n%s\n", name, st.Cypher)
	keys := make([]string, 0, len(st.Params))
	for k := range st.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		raw, err := json.Marshal(st.Params[k])
		if err != nil {
			raw = []byte(fmt.Sprintf("%#v", st.Params[k]))
		}
		fmt.Fprintf(&b, "$%s = %s\n", k, raw)
	}
	return b.String()
}

// TestCompileGolden pins the Cypher each call compiles to, with its
// parameters. Run with -update to rewrite testdata/compile.golden.
func TestCompileGolden(t *testing.T) {
	m := mustModel(t)
	var b strings.Builder
	for _, cc := range compileCases() {
		st, err := cc.compile(m)
		if err != nil {
			t.Fatalf("%s: %v", cc.name, err)
		}
		b.WriteString(render(cc.name, st))
		b.WriteByte('\n')
	}
	b.WriteString("== schema\n")
	for _, s := range m.Schema() {
		b.WriteString(s + "\n")
	}
	got := b.String()
	path := filepath.Join("testdata", "compile.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("compiled Cypher differs from %s (-want +got):\n%s", path, diff)
	}
}

// hostile values: quotes, backticks, braces, parameter syntax, comments,
// newlines and Cypher keywords.
var hostile = []string{
	`x' OR '1'='1`,
	"x\" OR \"1\"=\"1",
	"`) DETACH DELETE n //",
	"x\"}) MATCH (m) DETACH DELETE m RETURN m //",
	"$p0",
	"{brace} [x] ${x}",
	"*/ MATCH (n) DETACH DELETE n /*",
	"line\nbreak\\u0027",
	"CALL db.clearQueryCaches() YIELD x",
	"UNION MATCH (n) RETURN n",
	"`",
}

// TestHostileValuesOnlyInParams compiles every kind of statement with
// hostile values where values go (filter values, search text, area IDs,
// cursor values, node IDs) and checks that the query text is exactly the
// text compiled with a plain value, and that the value reaches the
// database only as a parameter.
func TestHostileValuesOnlyInParams(t *testing.T) {
	m := mustModel(t)
	const SL = "StreetLight"
	order := []graph.Order{{Field: "name"}}
	type gen func(v string) (neo4j.Statement, error)
	gens := map[string]gen{}
	for _, op := range []graph.CmpOp{graph.OpEq, graph.OpNe, graph.OpLt, graph.OpGte, graph.OpContains, graph.OpStartsWith} {
		for _, f := range []string{"name", "externalIds", "id", "_source", "status", "class"} {
			gens[fmt.Sprintf("%s %s", f, op)] = func(v string) (neo4j.Statement, error) {
				return m.Find(graph.FindQuery{Class: SL, First: 3, Filter: graph.Not{F: c(f, op, v)}})
			}
		}
	}
	gens["in"] = func(v string) (neo4j.Statement, error) {
		return m.Find(graph.FindQuery{Class: SL, First: 3, Filter: c("name", graph.OpIn, []any{"a", v})})
	}
	gens["search"] = func(v string) (neo4j.Statement, error) {
		return m.Find(graph.FindQuery{Class: "Asset", First: 3, Filter: graph.Search{Text: strings.Join(strings.Fields(v), "")}})
	}
	gens["area"] = func(v string) (neo4j.Statement, error) {
		return m.Find(graph.FindQuery{Class: SL, First: 3, Filter: graph.Or{graph.WithinArea{AreaID: v}, c("id", graph.OpEq, v)}})
	}
	gens["cursor"] = func(v string) (neo4j.Statement, error) {
		return m.Find(graph.FindQuery{Class: SL, First: 3, Order: order, After: graph.EncodeCursor(order, []any{v}, v), Count: true})
	}
	gens["nodes"] = func(v string) (neo4j.Statement, error) { return m.Nodes([]string{v, "b"}), nil }
	gens["neighbors"] = func(v string) (neo4j.Statement, error) {
		return m.Neighbors(graph.NeighborQuery{IDs: []string{v}, Rel: "LOCATED_IN", Dir: ontology.In, First: 2, Order: order,
			After: graph.EncodeCursor(order, []any{v}, v), Filter: c("name", graph.OpContains, v)})
	}
	gens["near"] = func(v string) (neo4j.Statement, error) {
		return m.Near(graph.NearQuery{Points: []graph.Point{{Lat: 1, Lon: 2}}, Class: SL, Meters: 10, First: 2, Filter: c("name", graph.OpEq, v)})
	}
	gens["aggregate"] = func(v string) (neo4j.Statement, error) {
		return m.Aggregate(graph.AggregateQuery{Class: SL, GroupBy: "name", Filter: c("name", graph.OpStartsWith, v)})
	}
	for name, g := range gens {
		plain, err := g("plain")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, v := range hostile {
			st, err := g(v)
			if err != nil {
				t.Fatalf("%s with %q: %v", name, v, err)
			}
			if st.Cypher != plain.Cypher {
				t.Errorf("%s: the value %q changed the query text:\n%s\nwant\n%s", name, v, st.Cypher, plain.Cypher)
			}
			if !inParams(st.Params, v) && !inParams(st.Params, strings.ToLower(v)) && !inParams(st.Params, strings.Join(strings.Fields(strings.ToLower(v)), "")) {
				t.Errorf("%s: the value %q is not among the parameters %v", name, v, st.Params)
			}
		}
	}
}

// inParams reports whether v occurs as a parameter or inside one.
func inParams(params map[string]any, v string) bool {
	var walk func(x any) bool
	walk = func(x any) bool {
		switch y := x.(type) {
		case string:
			return y == v
		case []any:
			return slices.ContainsFunc(y, walk)
		case map[string]any:
			for _, e := range y {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	for _, p := range params {
		if walk(p) {
			return true
		}
	}
	return false
}

func TestCompileInvalid(t *testing.T) {
	m := mustModel(t)
	for name, q := range map[string]graph.FindQuery{
		"unknown-field": {Class: "StreetLight", First: 1, Filter: c("nope", graph.OpEq, "x")},
		"bad-type":      {Class: "StreetLight", First: 1, Filter: c("lampCount", graph.OpEq, "1")},
		"bad-near":      {Class: "StreetLight", First: 1, Filter: graph.Near{Center: graph.Point{Lat: 91}, Meters: 1}},
		"order-list":    {Class: "StreetLight", First: 1, Order: []graph.Order{{Field: "externalIds"}}},
		"bad-cursor":    {Class: "StreetLight", First: 1, After: "zz"},
	} {
		if _, err := m.Find(q); !errors.Is(err, graph.ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := neo4j.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
	for name, edit := range map[string]func(*neo4j.Config){
		"no-uri":      func(c *neo4j.Config) { c.URI = "" },
		"scheme":      func(c *neo4j.Config) { c.URI = "http://127.0.0.1:7474" },
		"no-host":     func(c *neo4j.Config) { c.URI = "bolt://" },
		"pw-no-user":  func(c *neo4j.Config) { c.Password = "x" },
		"connections": func(c *neo4j.Config) { c.MaxConnections = 0 },
		"timeout":     func(c *neo4j.Config) { c.ConnectTimeout = 0 },
	} {
		cfg := neo4j.DefaultConfig()
		edit(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil for %+v", name, cfg)
		}
	}
}

// TestOpenUnavailable needs no server: nothing listens on the port, so
// Open fails quickly with graph.ErrUnavailable.
func TestOpenUnavailable(t *testing.T) {
	cfg := neo4j.DefaultConfig()
	cfg.URI = "bolt://127.0.0.1:1"
	cfg.ConnectTimeout = time.Second
	cfg.MaxRetryTime = time.Second
	start := time.Now()
	s, err := neo4j.Open(t.Context(), cfg, graphtest.Ontology())
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with nothing listening")
	}
	if !errors.Is(err, graph.ErrUnavailable) {
		t.Errorf("Open: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v to fail", d)
	}
}

func TestEventsRoundTrip(t *testing.T) {
	nasty := "x\"\\\n\r\t\x01\u2028ü🚦`{}'"
	in := []graph.Change{
		{Seq: 1, Op: graph.OpCreate, ID: nasty, Class: "StreetLight", Changed: []string{"name", "location"}},
		{Seq: 2, Op: graph.OpUpdate, ID: "a", Class: "StreetLight", Changed: []string{}},
		{Seq: 3, Op: graph.OpEdgeAdd, ID: nasty, Class: "Incident", Edge: &graph.EdgeKey{From: nasty, Rel: "AFFECTS", To: "b" + nasty}},
		{Seq: 4, Op: graph.OpDelete, ID: "a", Class: "StreetLight"},
	}
	out, err := neo4j.RoundTripEvents(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("events round trip (-in +out):\n%s", diff)
	}
}
