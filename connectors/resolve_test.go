package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

// The pole numbers in these tests are those of the first features of
// testdata/streetlights_gis.geojson (Cambridge GIS); the records around
// them are written inline to reach cases the real files do not have (two
// records of one source sharing a pole, conflicting values).

// TestParseResolve checks the resolve_by rules that need the real
// ontology: persons, events and observations refuse it with the file, line
// and field; other classes accept identifiers from external_ids or from a
// properties.externalIds template.
func TestParseResolve(t *testing.T) {
	head := "connectors:\n  - name: c\n    source: city-gis\n    kind: memory\n    mapping:\n      nodes:\n"
	tests := []struct {
		name, node, want string
		resolve          []string // ResolveBy of the class on success
	}{
		{"external_ids", "{class: StreetLight, key: \"{P}\", properties: {status: UNKNOWN}, external_ids: {poleNumber: \"{P}\", assetTag: {field: T}}, resolve_by: [assetTag, poleNumber]}", "", []string{"assetTag", "poleNumber"}},
		{"externalIds template", "{class: StreetLight, key: \"{P}\", properties: {status: UNKNOWN, externalIds: \"poleNumber:{P}\"}, resolve_by: poleNumber}", "", []string{"poleNumber"}},
		{"person", "{class: Person, key: \"{P}\", properties: {pseudonym: \"{P}\"}, external_ids: {crm: \"{P}\"}, resolve_by: [crm]}",
			`test.yaml:7: connectors[0].mapping.nodes[0].resolve_by: class Person cannot resolve_by: persons are never merged across sources (ONTOLOGY.md §4); link them instead (PART_OF, DERIVED_FROM)`, nil},
		{"incident", "{class: Incident, key: \"{P}\", properties: {status: OPEN, reportedAt: {field: D}}, external_ids: {incidentNumber: \"{P}\"}, resolve_by: [incidentNumber]}",
			`test.yaml:7: connectors[0].mapping.nodes[0].resolve_by: class Incident (an Event) cannot resolve_by: events are never merged across sources`, nil},
		{"service request", "{class: ServiceRequest, key: \"{P}\", properties: {status: OPEN, reportedAt: {field: D}, requestNumber: \"{P}\"}, external_ids: {open311: \"{P}\"}, resolve_by: [open311]}",
			`test.yaml:7: connectors[0].mapping.nodes[0].resolve_by: class ServiceRequest (an Event) cannot resolve_by`, nil},
		{"observation", "{class: Observation, key: \"{P}\", properties: {phenomenonTime: {field: D}}, external_ids: {ds: \"{P}\"}, resolve_by: [ds]}",
			`test.yaml:7: connectors[0].mapping.nodes[0].resolve_by: class Observation cannot resolve_by: observations are never merged`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conns, err := Parse("test.yaml", []byte(head+"        - "+tt.node+"\n"), ontology.Default(), testRegistry())
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrConfig) {
					t.Fatalf("Parse error = %v, want a config error containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := conns[0].Mapping.ResolveBy("StreetLight"); !slices.Equal(got, tt.resolve) {
				t.Errorf("ResolveBy(StreetLight) = %v, want %v", got, tt.resolve)
			}
			if got := conns[0].Mapping.ResolveBy("Agency"); got != nil {
				t.Errorf("ResolveBy(Agency) = %v, want nil", got)
			}
		})
	}
}

// TestMapExternalIDs checks what the mapper puts in externalIds: mapped
// ones, then external_ids in file order, then the own URN of a resolving
// node; blank identifiers are left out and constants are not modified.
func TestMapExternalIDs(t *testing.T) {
	conns := mustParse(t, `
connectors:
  - name: c
    source: city-gis
    kind: memory
    mapping:
      nodes:
        - class: StreetLight
          key: "{P}"
          properties: {status: OK, externalIds: {value: ["gis:layer-1"]}}
          external_ids: {poleNumber: "{P}", assetTag: {field: T}}
          resolve_by: [poleNumber]
        - class: Sensor
          key: "{P}"
          properties: {status: OK}
          external_ids: {assetTag: {field: T}}
`)
	mp := newMapper(conns[0].Mapping, "city-gis", graph.Provenance{Source: "city-gis"}, nil)
	want := [][]any{
		{"gis:layer-1", "poleNumber:791-2", "assetTag:A7", "urn:city:street-light:city-gis:791-2"},
		{"gis:layer-1", "poleNumber:456-7", "urn:city:street-light:city-gis:456-7"},
	}
	for i, fields := range []map[string]any{{"P": "791-2", "T": "A7"}, {"P": "456-7", "T": " "}} {
		var out mapped
		if err := mp.mapRecord(&Record{Fields: fields}, &out); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want[i], out.nodes[0].Props["externalIds"]); d != "" {
			t.Errorf("record %d: StreetLight externalIds (-want +got):\n%s", i, d)
		}
		// a node that does not resolve gets no URN
		sensor := out.nodes[1].Props["externalIds"]
		if i == 0 && !cmp.Equal(sensor, []any{"assetTag:A7"}) || i == 1 && sensor != nil {
			t.Errorf("record %d: Sensor externalIds = %v", i, sensor)
		}
	}
}

func TestMergeNode(t *testing.T) {
	t1 := time.Date(2023, 2, 16, 5, 0, 0, 0, time.UTC)
	t2 := t1.Add(24 * time.Hour)
	gis := graph.Node{ID: "urn:city:street-light:gis:791-2", Class: "StreetLight",
		Props:    map[string]any{"name": "Street light 791-2", "lampCount": int64(1), "status": "UNKNOWN", "externalIds": []any{"poleNumber:791-2", "urn:city:street-light:gis:791-2"}},
		Geometry: graph.PointGeometry(42.3996, -71.1387),
		Prov:     graph.Provenance{Source: "gis", SourceKey: "791-2", Run: "r1", SrcUpdatedAt: t2, Sources: []string{"gis"}}}
	reg := graph.Node{ID: "urn:city:street-light:assets:791-2", Class: "StreetLight",
		Props: map[string]any{"lampCount": int64(2), "status": "OK", "lampType": "LED", "name": nil, "externalIds": []any{"urn:city:street-light:assets:791-2", "poleNumber:791-2"}},
		Prov:  graph.Provenance{Source: "assets", SourceKey: "791-2", Run: "r2"}}
	tests := []struct {
		name   string
		base   *graph.Node
		n      graph.Node
		target string
		want   graph.Node
	}{
		{"new node", nil, reg, reg.ID, graph.Node{ID: reg.ID, Class: "StreetLight",
			Props: map[string]any{"lampCount": int64(2), "status": "OK", "lampType": "LED", "name": nil, "externalIds": []any{"poleNumber:791-2", "urn:city:street-light:assets:791-2"}},
			Prov:  graph.Provenance{Source: "assets", SourceKey: "791-2", Run: "r2", Sources: []string{"assets"}}}},
		{"merge: this source's non-null values win, nulls keep", &gis, reg, gis.ID, graph.Node{ID: gis.ID, Class: "StreetLight",
			Props: map[string]any{"name": "Street light 791-2", "lampCount": int64(2), "status": "OK", "lampType": "LED",
				"externalIds": []any{"poleNumber:791-2", "urn:city:street-light:assets:791-2", "urn:city:street-light:gis:791-2"}},
			Geometry: gis.Geometry,
			Prov:     graph.Provenance{Source: "assets", SourceKey: "791-2", Run: "r2", SrcUpdatedAt: t2, Sources: []string{"assets", "gis"}}}},
		{"own node is replaced", &gis, func() graph.Node {
			n := gis
			n.Props = map[string]any{"status": "FAULTY", "externalIds": gis.Props["externalIds"]}
			n.Prov.SrcUpdatedAt, n.Prov.Run = t1, "r3"
			return n
		}(), gis.ID, graph.Node{ID: gis.ID, Class: "StreetLight",
			Props:    map[string]any{"status": "FAULTY", "externalIds": []any{"poleNumber:791-2", "urn:city:street-light:gis:791-2"}},
			Geometry: gis.Geometry,
			Prov:     graph.Provenance{Source: "gis", SourceKey: "791-2", Run: "r3", SrcUpdatedAt: t1, Sources: []string{"gis"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeNode(tt.base, tt.n, tt.target)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("mergeNode (-want +got):\n%s", d)
			}
		})
	}
	// a merge that changes no stored data keeps the stored provenance, with
	// the later source time
	stored := mergeNode(&gis, reg, gis.ID)
	stored.Prov.Run = "stored"
	again := mergeNode(&stored, reg, gis.ID)
	keepProvenance(&stored, &again)
	if again.Prov.Run != "stored" || again.Prov.Source != "assets" || !again.Prov.SrcUpdatedAt.Equal(t2) {
		t.Errorf("unchanged merge provenance = %+v, want the stored one", again.Prov)
	}
	// the other source's record sets lampCount back: it wins and takes
	// the provenance
	again = mergeNode(&stored, gis, gis.ID)
	keepProvenance(&stored, &again)
	if again.Prov.Run != "r1" || again.Props["lampCount"] != int64(1) || again.Props["lampType"] != "LED" {
		t.Errorf("changing merge = %+v %v, want the record's provenance and value", again.Prov, again.Props)
	}
}

func TestSameValue(t *testing.T) {
	at := time.Date(2023, 2, 16, 5, 0, 0, 123456789, time.UTC)
	tests := []struct {
		a, b any
		want bool
	}{
		{int64(2), 2.0, true},
		{2.5, int64(2), false},
		{at, at.Truncate(time.Microsecond).In(time.FixedZone("x", 3600)), true},
		{at, at.Add(time.Millisecond), false},
		{[]any{"a", int64(1)}, []any{"a", 1.0}, true},
		{[]any{"a"}, []any{"a", "b"}, false},
		{map[string]any{"k": []any{"v"}}, map[string]any{"k": []any{"v"}}, true},
		{map[string]any{"k": "v"}, map[string]any{"k": "w"}, false},
		{"LED", "LED", true},
		{true, "true", false},
	}
	for _, tt := range tests {
		if got := sameValue(tt.a, tt.b); got != tt.want {
			t.Errorf("sameValue(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// resolveStore is the real embedded store with the default ontology,
// counting the Find calls.
type resolveStore struct {
	*sqlite.Store
	finds atomic.Int64
	// failFind makes Find fail with this error.
	failFind error
}

func (s *resolveStore) Find(ctx context.Context, q graph.FindQuery) (*graph.Page, error) {
	s.finds.Add(1)
	if s.failFind != nil {
		return nil, s.failFind
	}
	return s.Store.Find(ctx, q)
}

func mustResolveStore(t testing.TB) *resolveStore {
	t.Helper()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	st, err := sqlite.Open(context.Background(), cfg, ontology.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &resolveStore{Store: st}
}

func mustParseDefault(t testing.TB, src string) []*Connector {
	t.Helper()
	conns, err := Parse("test.yaml", []byte(src), ontology.Default(), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return conns
}

func mustRun(t *testing.T, c *Connector, s Target) RunStats {
	t.Helper()
	r := NewRunner(RunnerConfig{Retry: RetryPolicy{Attempts: 1}})
	st, err := r.Run(t.Context(), c, s)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rejected > 0 {
		t.Fatalf("rejected: %v", st.Rejections)
	}
	return st
}

func lightID(source, key string) string { return ID("street-light", source, key) }

// TestResolveSameBatch checks that records of one batch sharing an
// identifier become one node (the first record's), that the edges of the
// later ones follow, and that a second run changes nothing.
func TestResolveSameBatch(t *testing.T) {
	c := mustParseDefault(t, `
connectors:
  - name: register
    source: city-assets
    kind: memory
    config:
      records:
        - {tag: A-1, pole: 791-2, owner: City, lamps: 1}
        - {tag: A-2, pole: 791-2, owner: City, lamps: 2, type: LED}
        - {tag: A-3, pole: 456-7, owner: City}
    mapping:
      nodes:
        - class: StreetLight
          key: "{tag}"
          properties: {status: UNKNOWN, assetTag: "{tag}", lampCount: "{lamps}", lampType: "{type}"}
          external_ids: {poleNumber: "{pole}", assetTag: "{tag}"}
          resolve_by: [poleNumber, assetTag]
          edges: [{rel: OPERATED_BY, to: owner}]
        - {ref: owner, class: Agency, key: "{owner}", properties: {agencyCode: "{owner}"}}
`)[0]
	s := mustResolveStore(t)
	st := mustRun(t, c, s)
	if s.finds.Load() != 1 {
		t.Errorf("%d resolution queries for one batch, want 1", s.finds.Load())
	}
	if got := countClass(t, s, "StreetLight"); got != 2 {
		t.Fatalf("%d street lights, want 2 (A-1 and A-2 share pole 791-2)", got)
	}
	n := mustNode(t, s, lightID("city-assets", "A-1"))
	want := map[string]any{"status": "UNKNOWN", "assetTag": "A-2", "lampCount": int64(2), "lampType": "LED",
		"externalIds": []any{"assetTag:A-1", "assetTag:A-2", "poleNumber:791-2", lightID("city-assets", "A-1"), lightID("city-assets", "A-2")}}
	if d := cmp.Diff(want, n.Props); d != "" {
		t.Errorf("merged node (-want +got):\n%s", d)
	}
	if n.Prov.SourceKey != "A-2" || !slices.Equal(n.Prov.Sources, []string{"city-assets"}) {
		t.Errorf("provenance = %+v, want the last record's, one source", n.Prov)
	}
	if ns, _ := s.Nodes(t.Context(), []string{lightID("city-assets", "A-2")}); ns[0] != nil {
		t.Errorf("node A-2 was written: %+v", ns[0])
	}
	pages, err := s.Neighbors(t.Context(), graph.NeighborQuery{IDs: []string{ID("agency", "city-assets", "City")}, Rel: "OPERATED_BY", Dir: ontology.In, First: 5})
	if err != nil {
		t.Fatal(err)
	}
	var from []string
	for _, p := range pages[0].Nodes {
		from = append(from, p.ID)
	}
	if wantFrom := []string{lightID("city-assets", "A-1"), lightID("city-assets", "A-3")}; !slices.Equal(from, wantFrom) {
		t.Errorf("OPERATED_BY edges from %v, want %v", from, wantFrom)
	}
	// the node is written once: 2 lights, 1 agency, 2 edges
	if st.Changes != 5 {
		t.Errorf("first run: %d changes, want 5", st.Changes)
	}
	if st := mustRun(t, c, s); st.Changes != 0 {
		t.Errorf("second run: %d changes, want 0", st.Changes)
	}
}

// TestResolveByOwnURN checks that a record merged into a node of another
// ID finds that node again by its own URN, even once it has lost the
// shared identifier (rung 1: same source and key, same node).
func TestResolveByOwnURN(t *testing.T) {
	conn := func(name, source, records string) *Connector {
		return mustParseDefault(t, fmt.Sprintf(`
connectors:
  - name: %s
    source: %s
    kind: memory
    config: {records: %s}
    mapping:
      nodes:
        - class: StreetLight
          key: "{tag}"
          properties: {status: UNKNOWN, lampType: "{type}"}
          external_ids: {poleNumber: "{pole}"}
          resolve_by: [poleNumber]
`, name, source, records))[0]
	}
	s := mustResolveStore(t)
	mustRun(t, conn("gis", "cambridge-gis", "[{tag: 791-2, pole: 791-2}]"), s)
	mustRun(t, conn("register", "city-assets", "[{tag: A-1, pole: 791-2, type: HPS}]"), s)
	// the register record no longer carries the pole number
	mustRun(t, conn("register", "city-assets", "[{tag: A-1, pole: '', type: LED}]"), s)
	if got := countClass(t, s, "StreetLight"); got != 1 {
		t.Errorf("%d street lights, want 1", got)
	}
	n := mustNode(t, s, lightID("cambridge-gis", "791-2"))
	want := []any{"poleNumber:791-2", lightID("cambridge-gis", "791-2"), lightID("city-assets", "A-1")}
	if n.Props["lampType"] != "LED" || !cmp.Equal(n.Props["externalIds"], want) {
		t.Errorf("merged node = %v, want lampType LED and externalIds %v", n.Props, want)
	}
}

// TestResolveOwnNode checks that a node only its own record wrote is
// replaced as usual: a property the record drops is removed, and an older
// record does not overwrite a newer one.
func TestResolveOwnNode(t *testing.T) {
	conn := func(lamps, date string) *Connector {
		return mustParseDefault(t, fmt.Sprintf(`
connectors:
  - name: gis
    source: cambridge-gis
    kind: memory
    config:
      records: [{PoleID: 791-2, NumLamps: %q, last_edited_date: %q}]
    mapping:
      nodes:
        - class: StreetLight
          key: "{PoleID}"
          properties: {status: UNKNOWN, lampCount: "{NumLamps}"}
          src_updated_at: {field: last_edited_date, layout: "2006-01-02", timezone: America/New_York}
          external_ids: {poleNumber: "{PoleID}"}
          resolve_by: [poleNumber]
`, lamps, date))[0]
	}
	s := mustResolveStore(t)
	id := lightID("cambridge-gis", "791-2")
	mustRun(t, conn("2", "2023-02-16"), s)
	if got := mustNode(t, s, id).Props["lampCount"]; got != int64(2) {
		t.Fatalf("lampCount = %v, want 2", got)
	}
	if st := mustRun(t, conn("", "2023-03-01"), s); st.Changes != 1 {
		t.Errorf("newer record without lamps: %d changes, want 1", st.Changes)
	}
	if got, ok := mustNode(t, s, id).Props["lampCount"]; ok {
		t.Errorf("lampCount = %v after the source dropped it, want none", got)
	}
	if st := mustRun(t, conn("5", "2023-01-01"), s); st.Changes != 0 {
		t.Errorf("older record: %d changes, want 0", st.Changes)
	}
	if n := mustNode(t, s, id); n.Props["lampCount"] != nil || !slices.Equal(n.Prov.Sources, []string{"cambridge-gis"}) {
		t.Errorf("older record overwrote the node: %v %+v", n.Props, n.Prov)
	}
}

// TestResolveExistingNodes checks that resolution never merges two nodes
// that already exist (the identifier resolves to the smaller ID), and
// that identifiers only resolve nodes of the same class.
func TestResolveExistingNodes(t *testing.T) {
	s := mustResolveStore(t)
	light := func(src string) graph.Node {
		return graph.Node{ID: lightID(src, "791-2"), Class: "StreetLight", Props: map[string]any{"status": "UNKNOWN",
			"externalIds": []any{"poleNumber:791-2"}}, Prov: graph.Provenance{Source: src, SourceKey: "791-2"}}
	}
	signal := graph.Node{ID: ID("traffic-signal", "city-traffic", "449"), Class: "TrafficSignal",
		Props: map[string]any{"status": "OK", "externalIds": []any{"poleNumber:456-7"}}, Prov: graph.Provenance{Source: "city-traffic", SourceKey: "449"}}
	if _, err := s.Apply(t.Context(), graph.Batch{Nodes: []graph.Node{light("b-layer"), light("a-layer"), signal}}); err != nil {
		t.Fatal(err)
	}
	c := mustParseDefault(t, `
connectors:
  - name: register
    source: city-assets
    kind: memory
    config:
      records: [{pole: 791-2, type: LED}, {pole: 456-7, type: HPS}]
    mapping:
      nodes:
        - class: StreetLight
          key: "{pole}"
          properties: {status: UNKNOWN, lampType: "{type}"}
          external_ids: {poleNumber: "{pole}"}
          resolve_by: [poleNumber]
`)[0]
	mustRun(t, c, s)
	if got := countClass(t, s, "StreetLight"); got != 3 {
		t.Errorf("%d street lights, want 3 (two existing, one new for 456-7)", got)
	}
	a := mustNode(t, s, lightID("a-layer", "791-2"))
	if a.Props["lampType"] != "LED" || !slices.Equal(a.Prov.Sources, []string{"a-layer", "city-assets"}) {
		t.Errorf("smaller ID = %v %+v, want the register merged into it", a.Props, a.Prov)
	}
	if b := mustNode(t, s, lightID("b-layer", "791-2")); b.Props["lampType"] != nil || b.Prov.Source != "b-layer" {
		t.Errorf("larger ID was changed: %v %+v", b.Props, b.Prov)
	}
	if n := mustNode(t, s, lightID("city-assets", "456-7")); n.Props["lampType"] != "HPS" {
		t.Errorf("new light = %v", n.Props)
	}
	if sig := mustNode(t, s, signal.ID); len(sig.Props) != 2 {
		t.Errorf("a traffic signal sharing the pole number was merged with a street light: %v", sig.Props)
	}
}

// TestResolvePages checks that the resolution query pages until done.
func TestResolvePages(t *testing.T) {
	s := mustResolveStore(t)
	poles := []string{"791-2", "456-7", "340-27", "445-8", "471-280"}
	var existing, batch []graph.Node
	for _, p := range poles {
		existing = append(existing, graph.Node{ID: lightID("cambridge-gis", p), Class: "StreetLight",
			Props: map[string]any{"status": "UNKNOWN", "externalIds": []any{"poleNumber:" + p}}, Prov: graph.Provenance{Source: "cambridge-gis", SourceKey: p}})
		batch = append(batch, graph.Node{ID: lightID("city-assets", p), Class: "StreetLight",
			Props: map[string]any{"status": "OK", "externalIds": []any{"poleNumber:" + p}}, Prov: graph.Provenance{Source: "city-assets", SourceKey: p}})
	}
	if _, err := s.Apply(t.Context(), graph.Batch{Nodes: existing}); err != nil {
		t.Fatal(err)
	}
	c := mustParseDefault(t, `
connectors:
  - name: register
    source: city-assets
    kind: memory
    mapping:
      nodes:
        - {class: StreetLight, key: "{P}", properties: {status: OK}, external_ids: {poleNumber: "{P}"}, resolve_by: [poleNumber]}
`)[0]
	b := graph.Batch{Nodes: batch, Edges: []graph.Edge{{From: batch[4].ID, Rel: "OPERATED_BY", To: ID("agency", "city-assets", "City")}}}
	if err := resolveWith(t.Context(), s, c.Mapping, &b, slog.New(slog.DiscardHandler), 2); err != nil {
		t.Fatal(err)
	}
	if got := s.finds.Load(); got != 3 {
		t.Errorf("%d pages for 5 nodes of 2, want 3", got)
	}
	for i, n := range b.Nodes {
		if n.ID != existing[i].ID || n.Props["status"] != "OK" {
			t.Errorf("node %d = %s %v, want merged into %s", i, n.ID, n.Props, existing[i].ID)
		}
	}
	if b.Edges[0].From != existing[4].ID {
		t.Errorf("edge from %s, want %s", b.Edges[0].From, existing[4].ID)
	}
}

// TestResolveQueryFails checks that a failed resolution query fails the
// run and writes nothing of the batch.
func TestResolveQueryFails(t *testing.T) {
	s := mustResolveStore(t)
	s.failFind = fmt.Errorf("store down: %w", graph.ErrUnavailable)
	c := mustParseDefault(t, `
connectors:
  - name: register
    source: city-assets
    kind: memory
    config:
      records: [{P: 791-2}]
    mapping:
      nodes:
        - {class: StreetLight, key: "{P}", properties: {status: OK}, external_ids: {poleNumber: "{P}"}, resolve_by: [poleNumber]}
`)[0]
	r := NewRunner(RunnerConfig{Retry: RetryPolicy{Attempts: 1}})
	_, err := r.Run(t.Context(), c, s)
	if !errors.Is(err, graph.ErrUnavailable) || !strings.Contains(err.Error(), "resolve identities") {
		t.Errorf("run error = %v, want the resolution query's", err)
	}
	s.failFind = nil
	if got := countClass(t, s, "StreetLight"); got != 0 {
		t.Errorf("%d street lights written after a failed resolution", got)
	}
}

// BenchmarkResolveBatch measures the resolution of one batch of 500
// register nodes against a store holding n street lights: the 60 real
// pole numbers of the GIS slice, repeated with a suffix to reach n (half
// of the batch matches an existing node).
func BenchmarkResolveBatch(b *testing.B) {
	poles := mustGISPoles(b)
	c := mustParseDefault(b, `
connectors:
  - name: register
    source: city-assets
    kind: memory
    mapping:
      nodes:
        - {class: StreetLight, key: "{P}", properties: {status: OK}, external_ids: {poleNumber: "{P}"}, resolve_by: [poleNumber]}
`)[0]
	for _, n := range []int{600, 6000} {
		b.Run(fmt.Sprintf("existing=%d", n), func(b *testing.B) {
			s := mustResolveStore(b)
			pole := func(i int) string { return fmt.Sprintf("%s.%d", poles[i%len(poles)], i/len(poles)) }
			for start := 0; start < n; start += 500 {
				var nodes []graph.Node
				for i := start; i < min(start+500, n); i++ {
					p := pole(i)
					nodes = append(nodes, graph.Node{ID: lightID("cambridge-gis", p), Class: "StreetLight",
						Props: map[string]any{"status": "UNKNOWN", "externalIds": []any{"poleNumber:" + p, lightID("cambridge-gis", p)}},
						Prov:  graph.Provenance{Source: "cambridge-gis", SourceKey: p, Sources: []string{"cambridge-gis"}}})
				}
				if _, err := s.Apply(context.Background(), graph.Batch{Nodes: nodes}); err != nil {
					b.Fatal(err)
				}
			}
			log := slog.New(slog.DiscardHandler)
			b.ReportAllocs()
			for b.Loop() {
				batch := graph.Batch{Nodes: make([]graph.Node, 500)}
				for i := range batch.Nodes {
					p := pole(n - 250 + i) // 250 existing, 250 new
					batch.Nodes[i] = graph.Node{ID: lightID("city-assets", p), Class: "StreetLight",
						Props: map[string]any{"status": "OK", "externalIds": []any{"poleNumber:" + p, lightID("city-assets", p)}},
						Prov:  graph.Provenance{Source: "city-assets", SourceKey: p}}
				}
				if err := resolveWith(context.Background(), s, c.Mapping, &batch, log, resolvePage); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// mustGISPoles returns the pole numbers of the GIS slice, in file order.
func mustGISPoles(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/streetlights_gis.geojson")
	if err != nil {
		t.Fatal(err)
	}
	var fc struct {
		Features []struct {
			Properties struct{ PoleID string } `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(b, &fc); err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(fc.Features))
	for _, f := range fc.Features {
		out = append(out, f.Properties.PoleID)
	}
	return out
}
