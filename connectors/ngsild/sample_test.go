package ngsild

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

func mustStore(t testing.TB) *sqlite.Store {
	t.Helper()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "city.db")
	st, err := sqlite.Open(t.Context(), cfg, ontology.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mustParse(t testing.TB, name string, data []byte) []*connectors.Connector {
	t.Helper()
	reg := connectors.NewRegistry()
	Register(reg)
	conns, err := connectors.Parse(name, data, ontology.Default(), reg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return conns
}

func mustRun(t testing.TB, conns []*connectors.Connector, st *sqlite.Store, cfg connectors.RunnerConfig) ([]connectors.RunStats, *connectortest.DeadLetters) {
	t.Helper()
	dead := &connectortest.DeadLetters{}
	cfg.Logger, cfg.Now, cfg.DeadLetters = connectortest.Logger(t), connectortest.Now, dead
	stats, err := connectors.NewRunner(cfg).RunAll(t.Context(), conns, st)
	if err != nil {
		t.Fatal(err)
	}
	return stats, dead
}

func mustNode(t testing.TB, st *sqlite.Store, id string) *graph.Node {
	t.Helper()
	ns, err := st.Nodes(t.Context(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	if ns[0] == nil {
		t.Fatalf("no node %s", id)
	}
	return ns[0]
}

func nodeID(class, source, key string) string { return connectors.ID(class, source, key) }

// madridKey is the escaped key part of the Madrid station (its NGSI-LD id).
var madridKey = connectors.EscapeKey("urn:ngsi-ld:PointOfInterest:28079004-Pza.deEspanya")

// TestSample runs the embedded sample into the embedded SQLite store.
func TestSample(t *testing.T) {
	st := mustStore(t)
	stats, dead := mustRun(t, mustParse(t, "sample.yaml", Kind().Sample), st, connectors.RunnerConfig{Journal: true})
	if len(stats) != 7 || len(dead.Letters) != 0 {
		t.Fatalf("%d runs, dead letters %+v", len(stats), dead.Letters)
	}
	for _, s := range stats {
		if s.Read != 1 || s.Written != 1 {
			t.Errorf("%s: %+v", s.Connector, s)
		}
	}
	for class, want := range map[string]int{"Sensor": 1, "ObservableProperty": 8, "Datastream": 8, "Observation": 8,
		"StreetLight": 1, "ParkingSpot": 1, "ParkingFacility": 1, "WasteContainer": 1, "Street": 1, "Alert": 1} {
		p, err := st.Find(t.Context(), graph.FindQuery{Class: class, First: 1, Count: true})
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != want {
			t.Errorf("%s: %d nodes, want %d", class, p.Total, want)
		}
	}
	num := func(n *graph.Node, prop string) float64 {
		switch x := n.Props[prop].(type) {
		case float64:
			return x
		case int64:
			return float64(x)
		}
		t.Fatalf("%s.%s = %#v, not a number", n.ID, prop, n.Props[prop])
		return 0
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

	// Madrid: units from unitCode, relative humidity from parts per one to %
	no2 := mustNode(t, st, nodeID("datastream", "madrid-air", madridKey+"~no2"))
	co := mustNode(t, st, nodeID("datastream", "madrid-air", madridKey+"~co"))
	if no2.Props["unitUcum"] != "ug/m3" || no2.Props["unitCefact"] != "GQ" || num(no2, "lastValue") != 69 || co.Props["unitUcum"] != "mg/m3" || num(co, "lastValue") != 500 {
		t.Errorf("no2 %v, co %v", no2.Props, co.Props)
	}
	// 2016-03-15T11:00:00 Madrid time is 10:00 UTC
	rhObs := mustNode(t, st, nodeID("observation", "madrid-air", madridKey+"~relativeHumidity~1458036000000"))
	if !near(num(rhObs, "value"), 54) || rhObs.Props["phenomenonTime"] != time.Date(2016, 3, 15, 10, 0, 0, 0, time.UTC) {
		t.Errorf("relative humidity observation %v", rhObs.Props)
	}
	station := nodeID("sensor", "madrid-air", madridKey)
	rhStream := nodeID("datastream", "madrid-air", madridKey+"~relativeHumidity")
	for _, e := range []struct{ from, rel, to string }{{rhObs.ID, "IN_DATASTREAM", rhStream}, {no2.ID, "OBSERVED_BY", station}} {
		pages, err := st.Neighbors(t.Context(), graph.NeighborQuery{IDs: []string{e.from}, Rel: e.rel, Dir: ontology.Out, First: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(pages[0].Nodes) != 1 || pages[0].Nodes[0].ID != e.to {
			t.Errorf("%s -%s-> %+v, want %s", e.from, e.rel, pages[0].Nodes, e.to)
		}
	}
	if s := mustNode(t, st, station); s.Props["name"] != "Air quality station Plaza de España" || s.Geometry == nil || !near(s.Geometry.Point.Lat, 40.423852777777775) {
		t.Errorf("station %v %+v", s.Props, s.Geometry)
	}

	sl := mustNode(t, st, nodeID("street-light", "guadalajara-lighting", connectors.EscapeKey("urn:ngsi-ld:Streetlight:streetlight:guadalajara:4567")))
	for k, v := range map[string]any{"status": "OK", "statusRaw": "ok", "powerState": "OFF", "controllingMethod": "INDIVIDUAL", "circuitId": "C-456-A467", "feederId": "F1", "poleNumber": "2"} {
		if sl.Props[k] != v {
			t.Errorf("streetlight %s = %#v, want %#v", k, sl.Props[k], v)
		}
	}
	ps := mustNode(t, st, nodeID("parking-spot", "santander-parking", connectors.EscapeKey("urn:ngsi-ld:ParkingSpot:santander:daoiz_velarde_1_5:3")))
	if ps.Props["occupancy"] != "FREE" || ps.Props["status"] != "OK" || ps.Props["statusRaw"] != "free" || ps.Props["spaceId"] != "A-13" {
		t.Errorf("parking spot %v", ps.Props)
	}
	// Porto (NGSI v2 keyValues): srcUpdatedAt from dateModified, occupancy 0.68 → 68 %
	cp := mustNode(t, st, nodeID("parking-facility", "porto-parking", "porto-ParkingLot-23889"))
	if num(cp, "totalSpots") != 414 || !cp.Prov.SrcUpdatedAt.Equal(time.Date(2018, 9, 21, 12, 0, 5, 0, time.UTC)) {
		t.Errorf("car park %v %+v", cp.Props, cp.Prov)
	}
	occ := mustNode(t, st, nodeID("observation", "porto-parking", "porto-ParkingLot-23889~occupancy~1537531200000"))
	if !near(num(occ, "value"), 68) {
		t.Errorf("occupancy observation %v", occ.Props)
	}
	wc := mustNode(t, st, nodeID("waste-container", "waste-sensors", connectors.EscapeKey("urn:ngsi-ld:wastecontainer:1021:AAWD")))
	if wc.Props["status"] != "UNKNOWN" || wc.Props["assetTag"] != "12" || wc.Props["fillingPct"] != nil {
		t.Errorf("waste container %v", wc.Props)
	}
	tfo := connectors.EscapeKey("urn:ngsi-ld:TrafficFlowObserved:TrafficFlowObserved-Valladolid-osm-60821110")
	if seg := mustNode(t, st, nodeID("street", "valladolid-traffic", tfo)); seg.Geometry == nil || seg.Geometry.Kind != "LineString" || seg.Props["streetName"] != "Avenida de Salamanca" {
		t.Errorf("street %v %+v", seg.Props, seg.Geometry)
	}
	lane := mustNode(t, st, nodeID("observation", "valladolid-traffic", tfo+"~occupancy~1481109000000"))
	if !near(num(lane, "value"), 76) || lane.Props["phenomenonEnd"] != time.Date(2016, 12, 7, 11, 15, 0, 0, time.UTC) {
		t.Errorf("lane occupancy %v", lane.Props)
	}
	if ds := mustNode(t, st, nodeID("datastream", "valladolid-traffic", tfo+"~trafficIntensity")); ds.Props["unitUcum"] != "{vehicle}" || num(ds, "lastValue") != 197 {
		t.Errorf("intensity stream %v", ds.Props)
	}
	al := mustNode(t, st, nodeID("alert", "city-alerts", connectors.EscapeKey("urn:ngsi-ld:Alert:Alert:1")))
	if al.Props["severity"] != "HIGH" || al.Props["category"] != "TRAFFIC" || al.Props["categoryRaw"] != "traffic" ||
		al.Props["reportedAt"] != time.Date(2017, 1, 2, 9, 25, 55, 0, time.UTC) || !al.Prov.ValidTo.Equal(time.Date(2017, 1, 2, 10, 25, 55, 0, time.UTC)) {
		t.Errorf("alert %v %+v", al.Props, al.Prov)
	}

	// a second run resumes from the committed checkpoints: Porto's entity
	// has a modification time and is not read again; the others have none
	// and are read on every run
	stats, _ = mustRun(t, mustParse(t, "sample.yaml", Kind().Sample), st, connectors.RunnerConfig{Journal: true})
	for _, s := range stats {
		want := 1
		if s.Connector == "porto-car-parks" {
			want = 0
		}
		if s.Read != want {
			t.Errorf("second run of %s read %d, want %d (checkpoint %q)", s.Connector, s.Read, want, s.Checkpoint)
		}
	}
}

// TestSampleUnits: the Madrid mapping rejects entities whose unit it cannot
// know (an unknown unitCode, or none in key-values), never guessing.
func TestSampleUnits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aqo.json")
	mustJSONArray(t, path,
		mustRead(t, "AirQualityObserved", ldNormalized),
		mustEdit(t, mustRead(t, "AirQualityObserved", ldNormalized), func(m map[string]any) {
			m["id"] = "urn:ngsi-ld:AirQualityObserved:ppm"
			m["no2"].(map[string]any)["unitCode"] = "59" // parts per million
		}),
		mustRead(t, "AirQualityObserved", ldKeyValues),
	)
	sample := bytes.Replace(Kind().Sample, []byte("testdata/AirQualityObserved/example-normalized.jsonld"), []byte(path), 1)
	conns := mustParse(t, "sample.yaml", sample)
	stats, dead := mustRun(t, conns[:1], mustStore(t), connectors.RunnerConfig{})
	if stats[0].Written != 1 || stats[0].Rejected != 2 || len(dead.Letters) != 2 {
		t.Fatalf("stats %+v, dead letters %+v", stats[0], dead.Letters)
	}
	for i, want := range []string{`"59" does not match`, "is missing"} {
		l := dead.Letters[i]
		if l.Pos.Index != i+1 || !strings.Contains(l.Reason, want) {
			t.Errorf("dead letter %d: %s at %+v, want %q", i, l.Reason, l.Pos, want)
		}
	}
}

// TestMalformedLand: the malformed entities of a file are dead-lettered
// with their positions; the others land in the store.
func TestMalformedLand(t *testing.T) {
	dir := t.TempDir()
	malformedDoc(t, filepath.Join(dir, "entities.json"))
	file := `connectors:
  - name: mixed
    source: mixed-ngsi
    kind: ngsi_ld
    config: {path: entities.json}
    mapping:
      nodes:
        - class: ParkingSpot
          key: "{id}"
          skip_if: {matches: {type: '^(Alert|OffStreetParking)$'}}
          properties: {status: {field: status, map: {free: OK}, default: UNKNOWN}}
          location: geometry
        - class: Alert
          key: "{id}"
          skip_if: {matches: {type: '^(ParkingSpot|OffStreetParking)$'}}
          properties: {status: ACTIVE, reportedAt: "{dateIssued}"}
        - class: ParkingFacility
          key: "{id}"
          skip_if: {matches: {type: '^(ParkingSpot|Alert)$'}}
          properties: {totalSpots: "{totalSpotNumber}"}
`
	st := mustStore(t)
	stats, dead := mustRun(t, mustParse(t, filepath.Join(dir, "connectors.yaml"), []byte(file)), st, connectors.RunnerConfig{})
	if s := stats[0]; s.Read != 6 || s.Written != 3 || s.Rejected != 3 || s.Nodes != 3 {
		t.Errorf("stats %+v", s)
	}
	want := []struct{ path, reason string }{
		{"$[1]", "entity has no id"},
		{"$[3]", `entity "urn:ngsi-ld:wastecontainer:1021:AAWD": attribute "binColor": neither value nor object`},
		{"$[4]", "entity is not a JSON object"},
	}
	if len(dead.Letters) != len(want) {
		t.Fatalf("dead letters %+v", dead.Letters)
	}
	for i, l := range dead.Letters {
		if l.Pos.Path != want[i].path || l.Reason != l.Pos.String()+": "+want[i].reason || len(l.Raw) == 0 {
			t.Errorf("dead letter %d = %s %q, want %s %q", i, l.Pos.Path, l.Reason, want[i].path, want[i].reason)
		}
	}
	for _, id := range []string{nodeID("parking-spot", "mixed-ngsi", connectors.EscapeKey("urn:ngsi-ld:ParkingSpot:santander:daoiz_velarde_1_5:3")),
		nodeID("alert", "mixed-ngsi", connectors.EscapeKey("urn:ngsi-ld:Alert:Alert:1")), nodeID("parking-facility", "mixed-ngsi", "porto-ParkingLot-23889")} {
		mustNode(t, st, id)
	}
}
