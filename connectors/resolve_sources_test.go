package connectors_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/all"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

// Two connectors read two files that share pole numbers: the City GIS
// street-light layer (a real slice, testdata/streetlights_gis.geojson) and
// an asset register. No public pair of files sharing identifiers exists in
// the sample data, so the register is a CSV this test writes from features
// 21 to 60 of the same real slice (pole number, street, owner, LED flag):
// 40 poles are in both sources, 20 in the GIS layer only.

const gisFile = "testdata/streetlights_gis.geojson"

const resolveConnectors = `
connectors:
  - name: gis-streetlights
    source: cambridge-gis
    kind: geojson
    batch_size: 16
    config: {path: %q}
    mapping:
      nodes:
        - class: StreetLight
          key: "{PoleID}"
          name: "Street light {PoleID}"
          properties:
            poleNumber: "{PoleID}"
            fixtureType: "{Description}"
            lampCount: "{NumLamps}"
            status: UNKNOWN
          src_updated_at: {field: last_edited_date, layout: "2006-01-02", timezone: America/New_York}
          location: geometry
          external_ids: {poleNumber: "{PoleID}"}
          resolve_by: [poleNumber]
        - ref: owner
          class: Agency
          key: "{Owner}"
          skip_if: {empty: [Owner]}
          properties: {agencyCode: "{Owner}"}
          external_ids: {agencyCode: "{Owner}"}
          resolve_by: [agencyCode]

  - name: streetlight-register
    source: city-assets
    kind: csv
    batch_size: 16
    config: {path: %q}
    mapping:
      fields: [pole_number, street, owner, led]
      nodes:
        - class: StreetLight
          key: "{pole_number}"
          properties:
            poleNumber: "{pole_number}"
            description: "{street}"
            lampType: {field: led, map: {"Yes": LED, "No": null}}
            status: UNKNOWN
          external_ids: {poleNumber: "{pole_number}"}
          resolve_by: [poleNumber]
          edges:
            - {rel: OPERATED_BY, to: owner}
        - ref: owner
          class: Agency
          key: "{owner}"
          name: "{owner}"
          skip_if: {empty: [owner]}
          properties: {agencyCode: "{owner}"}
          external_ids: {agencyCode: "{owner}"}
          resolve_by: [agencyCode]
`

// gisFeature is what the test reads of a GIS feature.
type gisFeature struct {
	Properties struct {
		PoleID       string `json:"PoleID"`
		StreetName   string `json:"StreetName"`
		StreetSuffix string `json:"StreetSuffix"`
		Owner        string `json:"Owner"`
		LEDchk       string `json:"LEDchk"`
	} `json:"properties"`
}

func mustGISFeatures(t testing.TB) []gisFeature {
	t.Helper()
	b, err := os.ReadFile(gisFile)
	if err != nil {
		t.Fatal(err)
	}
	var fc struct{ Features []gisFeature }
	if err := json.Unmarshal(b, &fc); err != nil {
		t.Fatal(err)
	}
	return fc.Features
}

// mustWriteRegister writes the asset register CSV from features[from:] of
// the GIS slice and returns its path.
func mustWriteRegister(t testing.TB, dir string, features []gisFeature) string {
	t.Helper()
	path := filepath.Join(dir, "register.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	rows := [][]string{{"pole_number", "street", "owner", "led"}}
	for _, ft := range features {
		p := ft.Properties
		rows = append(rows, []string{p.PoleID, strings.TrimSpace(p.StreetName + " " + p.StreetSuffix), p.Owner, p.LEDchk})
	}
	if err := w.WriteAll(rows); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// countingStore counts the store calls of the runs.
type countingStore struct {
	*sqlite.Store
	finds, applies atomic.Int64
}

func (s *countingStore) Find(ctx context.Context, q graph.FindQuery) (*graph.Page, error) {
	s.finds.Add(1)
	return s.Store.Find(ctx, q)
}

func (s *countingStore) Apply(ctx context.Context, b graph.Batch) ([]graph.Change, error) {
	s.applies.Add(1)
	return s.Store.Apply(ctx, b)
}

type resolveFixture struct {
	gis, register *connectors.Connector
	store         *countingStore
	runner        *connectors.Runner
}

func mustResolveFixture(t *testing.T, registerFeatures []gisFeature) *resolveFixture {
	t.Helper()
	dir := t.TempDir()
	gisPath, err := filepath.Abs(gisFile)
	if err != nil {
		t.Fatal(err)
	}
	regPath := mustWriteRegister(t, dir, registerFeatures)
	reg := connectors.NewRegistry()
	all.Register(reg)
	ont := ontology.Default()
	conns, err := connectors.Parse(filepath.Join(dir, "resolve.yaml"), fmt.Appendf(nil, resolveConnectors, gisPath, regPath), ont, reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(dir, "graph.db")
	st, err := sqlite.Open(t.Context(), cfg, ont)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	r := connectors.NewRunner(connectors.RunnerConfig{Rand: func() float64 { return 0 },
		Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	return &resolveFixture{gis: conns[0], register: conns[1], store: &countingStore{Store: st}, runner: r}
}

// run runs a connector and checks that it made one resolution query per
// batch: with the journal off, every Find of a run is a resolution query.
func (f *resolveFixture) run(t *testing.T, c *connectors.Connector) connectors.RunStats {
	t.Helper()
	f0, a0 := f.store.finds.Load(), f.store.applies.Load()
	st, err := f.runner.Run(t.Context(), c, f.store)
	if err != nil {
		t.Fatal(err)
	}
	finds, applies := f.store.finds.Load()-f0, f.store.applies.Load()-a0
	if st.Rejected != 0 || st.Written != st.Read {
		t.Fatalf("%s: read %d, written %d, rejected %d %v", c.Name, st.Read, st.Written, st.Rejected, st.Rejections)
	}
	if applies < 2 || finds != applies {
		t.Errorf("%s: %d resolution queries for %d batches, want one per batch", c.Name, finds, applies)
	}
	return st
}

// byIdentifier returns the StreetLight nodes holding an identifier.
func byIdentifier(t *testing.T, s graph.Store, class, id string) []*graph.Node {
	t.Helper()
	p, err := s.Find(t.Context(), graph.FindQuery{Class: class, First: 10, Filter: graph.Cmp{Field: "externalIds", Op: graph.OpEq, Value: id}})
	if err != nil {
		t.Fatal(err)
	}
	return p.Nodes
}

func lightURN(source, pole string) string {
	return connectors.ID(ontology.Kebab("StreetLight"), source, connectors.EscapeKey(pole))
}

// TestResolveTwoSources runs the GIS layer and the register in both
// orders and checks that each shared pole ends as one node holding both
// sources' data, identifiers and provenance, that edges follow the merged
// nodes, and that running either source again changes nothing.
func TestResolveTwoSources(t *testing.T) {
	features := mustGISFeatures(t)
	if len(features) != 60 {
		t.Fatalf("%d features in %s, want 60", len(features), gisFile)
	}
	registerFeatures := features[20:]
	shared := map[string]bool{}
	for _, ft := range registerFeatures {
		shared[ft.Properties.PoleID] = true
	}
	final := map[string]map[string]any{} // order → pole → props, compared across orders
	for _, order := range []string{"gis-first", "register-first"} {
		t.Run(order, func(t *testing.T) {
			f := mustResolveFixture(t, registerFeatures)
			first, second := f.gis, f.register
			if order == "register-first" {
				first, second = second, first
			}
			// each run changes every node and edge it brings once: the GIS
			// layer its lights and the agency (created or merged), the
			// register its lights, the agency and one edge per row
			want := map[string]int{f.gis.Name: len(features) + 1, f.register.Name: 2*len(registerFeatures) + 1}
			for _, c := range []*connectors.Connector{first, second} {
				st := f.run(t, c)
				t.Logf("%s: read %d, nodes %d, edges %d, changes %d", c.Name, st.Read, st.Nodes, st.Edges, st.Changes)
				if st.Changes != want[c.Name] {
					t.Errorf("%s made %d changes, want %d", c.Name, st.Changes, want[c.Name])
				}
			}
			s := f.store.Store
			// one node per pole: 60 in the GIS layer, of which 40 in the register
			if got := countNodes(t, s, "StreetLight"); got != len(features) {
				t.Errorf("%d street lights, want %d (one per pole)", got, len(features))
			}
			if got := countNodes(t, s, "Agency"); got != 1 {
				t.Errorf("%d agencies, want 1 (both sources name owner %q)", got, features[0].Properties.Owner)
			}
			firstSrc := first.Source
			agency := byIdentifier(t, s, "Agency", "agencyCode:"+features[0].Properties.Owner)
			if len(agency) != 1 {
				t.Fatalf("%d agencies hold agencyCode:%s", len(agency), features[0].Properties.Owner)
			}
			if want := connectors.ID(ontology.Kebab("Agency"), firstSrc, features[0].Properties.Owner); agency[0].ID != want {
				t.Errorf("agency ID = %s, want the first written %s", agency[0].ID, want)
			}
			if got, want := agency[0].Prov.Sources, []string{"cambridge-gis", "city-assets"}; !slices.Equal(got, want) {
				t.Errorf("agency sources = %v, want %v", got, want)
			}
			props := map[string]any{}
			for _, ft := range features {
				pole := ft.Properties.PoleID
				ns := byIdentifier(t, s, "StreetLight", "poleNumber:"+pole)
				if len(ns) != 1 {
					t.Fatalf("pole %s: %d nodes hold its pole number, want 1", pole, len(ns))
				}
				n := ns[0]
				gisURN, regURN := lightURN("cambridge-gis", pole), lightURN("city-assets", pole)
				if !shared[pole] {
					checkNode(t, n, gisURN, []string{"cambridge-gis"}, []any{"poleNumber:" + pole, gisURN})
					if _, ok := n.Props["lampType"]; ok {
						t.Errorf("GIS-only pole %s has register data: %v", pole, n.Props)
					}
					continue
				}
				wantID := gisURN
				if firstSrc == "city-assets" {
					wantID = regURN
				}
				checkNode(t, n, wantID, []string{"cambridge-gis", "city-assets"}, []any{"poleNumber:" + pole, gisURN, regURN})
				// both sources' data
				street := strings.TrimSpace(ft.Properties.StreetName + " " + ft.Properties.StreetSuffix)
				if n.Props["description"] != street || n.Props["lampType"] != "LED" || n.Props["name"] != "Street light "+pole ||
					n.Props["fixtureType"] == nil || n.Geometry == nil {
					t.Errorf("pole %s lacks data of a source: props %v, geometry %v", pole, n.Props, n.Geometry)
				}
				// the last source that changed the node holds the provenance
				if n.Prov.Source != second.Source || n.Prov.SourceKey != pole {
					t.Errorf("pole %s provenance = %s/%s, want %s/%s", pole, n.Prov.Source, n.Prov.SourceKey, second.Source, pole)
				}
				if n.Prov.SrcUpdatedAt.IsZero() {
					t.Errorf("pole %s lost the GIS layer's source update time", pole)
				}
				// the register's edge starts at the merged node and ends at the merged agency
				pages, err := s.Neighbors(t.Context(), graph.NeighborQuery{IDs: []string{n.ID}, Rel: "OPERATED_BY", Dir: ontology.Out, First: 5})
				if err != nil {
					t.Fatal(err)
				}
				if got := pages[0].Nodes; len(got) != 1 || got[0].ID != agency[0].ID {
					t.Errorf("pole %s OPERATED_BY %v, want the agency %s", pole, got, agency[0].ID)
				}
				if ns, err := s.Nodes(t.Context(), []string{gisURN, regURN}); err != nil || (ns[0] == nil) == (ns[1] == nil) {
					t.Errorf("pole %s: want exactly one of %s and %s, got %v (err %v)", pole, gisURN, regURN, ns, err)
				}
				props[pole] = n.Props
			}
			if got := countEdges(t, s, agency[0].ID); got != len(registerFeatures) {
				t.Errorf("agency operates %d lights, want %d (the register's rows)", got, len(registerFeatures))
			}
			final[order] = props
			// a third and a fourth run, of each source, change nothing
			for _, c := range []*connectors.Connector{second, first} {
				if st := f.run(t, c); st.Changes != 0 {
					t.Errorf("re-running %s made %d changes, want 0", c.Name, st.Changes)
				}
			}
		})
	}
	if len(final) == 2 {
		if d := cmp.Diff(final["gis-first"], final["register-first"]); d != "" {
			t.Errorf("the merged properties depend on the order of the runs (-gis first +register first):\n%s", d)
		}
	}
}

func checkNode(t *testing.T, n *graph.Node, id string, sources []string, ext []any) {
	t.Helper()
	slices.SortFunc(ext, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
	if n.ID != id {
		t.Errorf("node ID = %s, want %s", n.ID, id)
	}
	if !slices.Equal(n.Prov.Sources, sources) {
		t.Errorf("%s sources = %v, want %v", n.ID, n.Prov.Sources, sources)
	}
	if d := cmp.Diff(ext, n.Props["externalIds"]); d != "" {
		t.Errorf("%s externalIds (-want +got):\n%s", n.ID, d)
	}
}

func countNodes(t *testing.T, s graph.Store, class string) int {
	t.Helper()
	p, err := s.Find(t.Context(), graph.FindQuery{Class: class, First: 1, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	return p.Total
}

func countEdges(t *testing.T, s graph.Store, agency string) int {
	t.Helper()
	pages, err := s.Neighbors(t.Context(), graph.NeighborQuery{IDs: []string{agency}, Rel: "OPERATED_BY", Dir: ontology.In, First: 1})
	if err != nil {
		t.Fatal(err)
	}
	return pages[0].Total
}
