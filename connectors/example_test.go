package connectors_test

import (
	"context"
	"fmt"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/all"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/ontology"
)

// Load a connector file against the ontology and run it.
func Example() {
	const file = `
connectors:
  - name: crashes
    source: cambridge-police
    kind: csv
    config: {path: csv/testdata/crashes.csv}
    mapping:
      nodes:
        - class: Incident
          key: "{Crash Number}"
          properties:
            status: CLOSED
            incidentType: ROAD_ACCIDENT
            reportedAt: {field: Date Time, layout: "1/2/06 15:04", timezone: America/New_York}
          location: {lat: Latitude, lon: Longitude}
`
	reg := connectors.NewRegistry()
	all.Register(reg)
	conns, err := connectors.Parse("example.yaml", []byte(file), ontology.Default(), reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	store := connectortest.NewStore(ontology.Default())
	r := connectors.NewRunner(connectors.RunnerConfig{Now: connectortest.Now})
	st, err := r.Run(context.Background(), conns[0], store)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("read %d, written %d, rejected %d\n", st.Read, st.Written, st.Rejected)
	n := store.Nodes["urn:city:incident:cambridge-police:24029"]
	fmt.Println(n.Props["reportedAt"], n.Prov.Run)
	// Output:
	// read 20, written 20, rejected 0
	// 2010-04-10 13:39:00 +0000 UTC urn:city:ingest-run:hub:crashes~20250105T020000.000Z
}

// Configuration errors name the file, the line and the field.
func ExampleParse_error() {
	const file = `connectors:
  - name: lights
    source: cambridge-gis
    kind: geojson
    config: {path: lights.geojson}
    mapping:
      nodes:
        - class: StreetLight
          key: "{PoleID}"
          properties:
            status: UNKNOWN
            powerRatingW: {value: bright}
`
	reg := connectors.NewRegistry()
	all.Register(reg)
	_, err := connectors.Parse("lights.yaml", []byte(file), ontology.Default(), reg)
	fmt.Println(err)
	// Output:
	// lights.yaml:12: connectors[0].mapping.nodes[0].properties.powerRatingW: "bright" is not a number
}
