package ngsild_test

import (
	"fmt"
	"os"

	"github.com/cityhub/cityhub/connectors/ngsild"
)

// Flatten turns an NGSI-LD normalized entity (the Santander parking spot of
// the FIWARE examples) into record fields.
func ExampleFlatten() {
	data, err := os.ReadFile("testdata/ParkingSpot/example-normalized.jsonld")
	if err != nil {
		panic(err)
	}
	fields, geometry, err := ngsild.Flatten(data, ngsild.FormatAuto)
	if err != nil {
		panic(err)
	}
	for _, k := range []string{"id", "status", "status_observedAt", "status_parkingPermit", "refParkingSite", "category"} {
		fmt.Printf("%s: %v\n", k, fields[k])
	}
	fmt.Printf("geometry: %s\n", geometry)
	// Output:
	// id: urn:ngsi-ld:ParkingSpot:santander:daoiz_velarde_1_5:3
	// status: free
	// status_observedAt: 2018-09-21T12:00:00Z
	// status_parkingPermit: yes
	// refParkingSite: urn:ngsi-ld:ParkingSite:santander:daoiz_velarde_1_5
	// category: [onStreet]
	// geometry: {"coordinates":[-3.80356167695194,43.46296641666926],"type":"Point"}
}
