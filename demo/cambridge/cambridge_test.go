// Package cambridge_test loads the demo city's connector file against the
// built-in city ontology and runs it end to end into an in-memory store.
package cambridge_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/all"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/ontology"
)

func loadDemo(t testing.TB) []*connectors.Connector {
	t.Helper()
	reg := connectors.NewRegistry()
	all.Register(reg)
	conns, err := connectors.LoadFile("connectors.yaml", ontology.Default(), reg)
	if err != nil {
		t.Fatalf("connectors.yaml: %v", err)
	}
	return conns
}

func TestDemo(t *testing.T) {
	conns := loadDemo(t)
	store := connectortest.NewStore(ontology.Default())
	dead := &connectortest.DeadLetters{}
	r := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), Now: connectortest.Now, DeadLetters: dead})
	start := time.Now()
	stats, err := r.RunAll(t.Context(), conns, store)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-30s %6s %7s %8s %7s %6s %7s\n", "connector", "read", "written", "rejected", "nodes", "edges", "located")
	for _, st := range stats {
		fmt.Fprintf(&table, "%-30s %6d %7d %8d %7d %6d %7d\n", st.Connector, st.Read, st.Written, st.Rejected, st.Nodes, st.Edges, st.Located)
		if st.Read != st.Written+st.Rejected+st.Skipped {
			t.Errorf("%s loses records: %+v", st.Connector, st)
		}
	}
	t.Logf("demo loaded in %v\n%s", time.Since(start), table.String())
	for _, d := range dead.Letters {
		t.Logf("dead letter %s %s: %s", d.Connector, d.Pos, d.Reason)
	}

	wantClasses := map[string]int{
		"Neighbourhood": 13, "City": 1,
		"School": 50, "Hospital": 3, "FireStation": 8, "PoliceStation": 2, "CivicOffice": 7,
		"ParkingFacility": 11 + 39,
		"StreetLight":     6117, "TrafficSignal": 785, "ParkingSpot": 3320,
		"BikeShareStation": 195,
		"Sensor":           313, "Datastream": 313, "ObservableProperty": 1, "Observation": 690,
		"Incident": 10335,
	}
	for class, want := range wantClasses {
		if got := store.Count(class); got != want {
			t.Errorf("%s: %d nodes, want %d", class, got, want)
		}
	}
	if len(dead.Letters) != 0 {
		t.Errorf("%d dead letters", len(dead.Letters))
	}

	// Crash 30927 (Massachusetts Ave & Hancock St, 42.36838, -71.108783)
	// lies in Mid-Cambridge (N_HOOD 6); crash 1500000637 (31 Jackson Pl) in
	// North Cambridge (11), as an independent ray-casting check over the
	// boundary file says.
	for id, want := range map[string]string{
		"urn:city:incident:cambridge-police:30927":      "urn:city:neighbourhood:cambridge-gis:6",
		"urn:city:incident:cambridge-police:1500000637": "urn:city:neighbourhood:cambridge-gis:11",
	} {
		if got := store.Neighbors(id, "LOCATED_IN"); len(got) != 1 || got[0] != want {
			t.Errorf("%s LOCATED_IN %v, want %s", id, got, want)
		}
	}
	crash := store.Nodes["urn:city:incident:cambridge-police:30927"]
	wantTime := time.Date(2012, 6, 20, 21, 41, 0, 0, time.UTC) // 6/20/12 17:41 EDT
	if got, _ := crash.Props["reportedAt"].(time.Time); !got.Equal(wantTime) || crash.Props["incidentType"] != "ROAD_ACCIDENT" {
		t.Errorf("crash 30927 = %+v", crash.Props)
	}
	// a crash without coordinates lands without a location
	if c := store.Nodes["urn:city:incident:cambridge-police:24029"]; c.ID == "" || c.Geometry != nil {
		t.Errorf("crash 24029 = %+v", c)
	}
	// the latest traffic count of station 1 (Massachusetts Avenue, 1999 only)
	ds := store.Nodes["urn:city:datastream:cambridge-traffic:1~averageDailyTraffic"]
	if ds.Props["lastValue"] != 29562.0 || store.Neighbors(ds.ID, "OBSERVED_BY")[0] != "urn:city:sensor:cambridge-traffic:1" {
		t.Errorf("datastream 1 = %+v", ds.Props)
	}
	if got := store.Neighbors("urn:city:neighbourhood:cambridge-gis:6", "PART_OF"); len(got) != 1 || got[0] != "urn:city:city:cambridge-gis:cambridge" {
		t.Errorf("Mid-Cambridge PART_OF %v", got)
	}
}

func TestDemoIdempotent(t *testing.T) {
	conns := loadDemo(t)
	store := connectortest.NewStore(ontology.Default())
	r := connectors.NewRunner(connectors.RunnerConfig{Now: connectortest.Now})
	if _, err := r.RunAll(t.Context(), conns, store); err != nil {
		t.Fatal(err)
	}
	nodes, edges := len(store.Nodes), len(store.Edges)
	if _, err := r.RunAll(t.Context(), conns, store); err != nil {
		t.Fatal(err)
	}
	if len(store.Nodes) != nodes || len(store.Edges) != edges {
		t.Errorf("second load: %d nodes, %d edges; first: %d, %d", len(store.Nodes), len(store.Edges), nodes, edges)
	}
}
