package residents_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/neo4j"
	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/residents"
)

// neo4jStore opens the Neo4j at CITYHUB_NEO4J_URI (with
// CITYHUB_NEO4J_USER and CITYHUB_NEO4J_PASSWORD when it has auth), as the
// backend's own tests do. Without a URI the test is skipped, or fails when
// CITYHUB_REQUIRE_INTEGRATION=1. The database is shared (CI, benchmarks):
// the test neither wipes nor migrates it, writes only nodes of a source
// code of its own and deletes them at the end.
func neo4jStore(t *testing.T) *neo4j.Store {
	t.Helper()
	uri := os.Getenv("CITYHUB_NEO4J_URI")
	if uri == "" {
		if os.Getenv("CITYHUB_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("CITYHUB_NEO4J_URI is not set and CITYHUB_REQUIRE_INTEGRATION=1: start Neo4j (scripts/neo4j.sh start) and export its URI")
		}
		t.Skip("CITYHUB_NEO4J_URI is not set: start Neo4j with `eval $(scripts/neo4j.sh start)` to run the Neo4j integration test")
	}
	cfg := neo4j.DefaultConfig()
	cfg.URI = uri
	cfg.User = os.Getenv("CITYHUB_NEO4J_USER")
	cfg.Password = os.Getenv("CITYHUB_NEO4J_PASSWORD")
	s, err := neo4j.Open(t.Context(), cfg, ontology.Default())
	if err != nil {
		t.Fatalf("neo4j.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// deleteSource removes every node written under source.
func deleteSource(ctx context.Context, st graph.Store, source string) error {
	for {
		p, err := st.Find(ctx, graph.FindQuery{Class: "Entity", First: 500,
			Filter: graph.Cmp{Field: graph.FieldSource, Op: graph.OpEq, Value: source}})
		if err != nil {
			return err
		}
		if len(p.Nodes) == 0 {
			return nil
		}
		var b graph.Batch
		for _, n := range p.Nodes {
			b.DeleteNodes = append(b.DeleteNodes, n.ID)
		}
		if _, err := st.Apply(ctx, b); err != nil {
			return err
		}
	}
}

func countSource(t *testing.T, st graph.Store, class, source string) int {
	t.Helper()
	p, err := st.Find(t.Context(), graph.FindQuery{Class: class, First: 1, Count: true,
		Filter: graph.Cmp{Field: graph.FieldSource, Op: graph.OpEq, Value: source}})
	if err != nil {
		t.Fatal(err)
	}
	return p.Total
}

// TestIntegrationNeo4j runs a report and its lifecycle against Neo4j: the
// real Cambridge boundary as the city, a block around the report as the
// area and a street light 3 m from the resident, all under a source code
// no other test uses.
func TestIntegrationNeo4j(t *testing.T) {
	st := neo4jStore(t)
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	src := "rit-" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() {
		if err := deleteSource(context.WithoutCancel(t.Context()), st, src); err != nil {
			t.Errorf("clean up source %s: %v", src, err)
		}
	})
	fs := mustFeatures(t, demoDir+"/data/geo/cambridge_BOUNDARY_CityBoundary.geojson")
	const lat, lon = 42.36838, -71.108783 // Massachusetts Ave & Hancock St
	prov := graph.Provenance{Source: src}
	cityID := connectors.ID("city", src, "cambridge")
	blockID := connectors.ID("neighbourhood", src, "block")
	lightID := connectors.ID("street-light", src, "T-1")
	agencyID := connectors.ID("agency", src, "dpw")
	block := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%[1]g,%[2]g],[%[3]g,%[2]g],[%[3]g,%[4]g],[%[1]g,%[4]g],[%[1]g,%[2]g]]]}`,
		lon-0.001, lat-0.001, lon+0.001, lat+0.001)
	if _, err := st.Apply(t.Context(), graph.Batch{Nodes: []graph.Node{
		{ID: cityID, Class: "City", Props: map[string]any{"name": "Cambridge", "officialCode": "2511000"}, Prov: prov,
			Geometry: &graph.Geometry{GeoJSON: string(fs[0].Geometry)}},
		{ID: blockID, Class: "Neighbourhood", Props: map[string]any{"name": "Test block", "officialCode": "T1"}, Prov: prov,
			Geometry: &graph.Geometry{GeoJSON: block}},
		{ID: lightID, Class: "StreetLight", Props: map[string]any{"name": "Street light T-1", "poleNumber": "T-1", "status": "UNKNOWN"}, Prov: prov,
			Geometry: graph.PointGeometry(lat+0.000027, lon)},
		{ID: agencyID, Class: "Agency", Props: map[string]any{"name": "Public Works", "agencyCode": "DPW"}, Prov: prov},
	}}); err != nil {
		t.Fatalf("fixture: %v", err)
	}

	cfg := *MustServices(t)
	cfg.Source, cfg.Connector, cfg.CityID = src, src+"-desk", cityID
	d, err := residents.New(st, ontology.Default(), cfg, residents.WithNow(newClock(time.Now().UTC().Truncate(time.Second)).Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Seed(t.Context()); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	rc, err := d.Report(t.Context(), residents.Report{ServiceCode: "streetlight-out", Lat: lat + 0.000027, Lon: lon, Description: "Dark all night"})
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if rc.Area == nil || rc.Area.ID != blockID {
		t.Errorf("area %+v, want %s", rc.Area, blockID)
	}
	if rc.Asset == nil || rc.Asset.ID != lightID || rc.Asset.DistanceM > 0.01 {
		t.Errorf("asset %+v, want %s at 0 m", rc.Asset, lightID)
	}
	for rel, want := range map[string]string{"FOR_SERVICE": connectors.ID("service", src, "streetlight-out"), "LOCATED_IN": blockID, "AFFECTS": lightID} {
		if ids, _ := neighbors(t, st, rc.RequestID, rel); len(ids) != 1 || ids[0] != want {
			t.Errorf("%s → %v, want %s", rel, ids, want)
		}
	}

	// refused reports write nothing
	for _, r := range []residents.Report{
		{ServiceCode: "streetlight-out", Lat: 42.3550, Lon: -71.0656, Description: "Boston Common"},
		{ServiceCode: "streetlight-out", Lat: lat, Lon: lon, Description: "x", MediaURLs: []string{"file:///etc/passwd"}},
	} {
		if _, err := d.Report(t.Context(), r); !residents.IsInvalid(err) {
			t.Errorf("Report(%+v) = %v, want bad input", r, err)
		}
	}
	if n := countSource(t, st, "ServiceRequest", src); n != 1 {
		t.Errorf("%d requests stored, want 1", n)
	}
	if n := countSource(t, st, "StatusChange", src); n != 1 {
		t.Errorf("%d status changes stored, want 1", n)
	}

	steps := []struct {
		to            residents.RequestStatus
		reason, actor string
	}{
		{"ACKNOWLEDGED", "", agencyID}, {"ASSIGNED", "crew 4", ""}, {"IN_PROGRESS", "", ""},
		{"ON_HOLD", "waiting for a new lamp head", ""}, {"RESOLVED", "lamp replaced", agencyID}, {"CLOSED", "", ""},
	}
	for _, s := range steps {
		n, err := d.Transition(t.Context(), rc.RequestID, s.to, s.reason, s.actor)
		if err != nil {
			t.Fatalf("Transition(%s): %v", s.to, err)
		}
		if n.Props["status"] != string(s.to) {
			t.Errorf("after %s: status %v", s.to, n.Props["status"])
		}
	}
	if _, err := d.Transition(t.Context(), rc.RequestID, "IN_PROGRESS", "", ""); !errors.Is(err, residents.ErrTransition) {
		t.Errorf("CLOSED → IN_PROGRESS: %v", err)
	}
	if _, err := d.Transition(t.Context(), rc.RequestID, "REOPENED", "", ""); !errors.Is(err, residents.ErrReasonRequired) {
		t.Errorf("REOPENED without a reason: %v", err)
	}
	status, err := d.Lookup(t.Context(), rc.TrackingID, rc.PublicToken)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if status.Status != "CLOSED" || status.ClosedAt.IsZero() || len(status.History) != len(steps)+1 {
		t.Fatalf("Lookup = %+v", status)
	}
	for i, s := range steps {
		h := status.History[i+1]
		if h.To != s.to || h.Note != s.reason || h.From != status.History[i].To || !h.At.After(status.History[i].At) {
			t.Errorf("history[%d] = %+v, want → %s", i+1, h, s.to)
		}
	}
	if math.Abs(status.ReportedAt.Sub(rc.ReportedAt).Seconds()) > 1e-6 {
		t.Errorf("reportedAt %v, receipt %v", status.ReportedAt, rc.ReportedAt)
	}
	if _, err := d.Lookup(t.Context(), rc.TrackingID, wrongToken(rc.PublicToken)); !errors.Is(err, residents.ErrNoRequest) {
		t.Errorf("Lookup with a wrong token: %v", err)
	}
	changes, _ := neighbors(t, st, rc.RequestID, "HAS_STATUS_CHANGE")
	by := 0
	for _, c := range changes {
		if ids, _ := neighbors(t, st, c, "CHANGED_BY"); len(ids) == 1 && ids[0] == agencyID {
			by++
		}
	}
	if len(changes) != len(steps)+1 || by != 2 {
		t.Errorf("%d status changes, %d by the agency; want %d and 2", len(changes), by, len(steps)+1)
	}
}
