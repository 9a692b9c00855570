package gtfsrt_test

import (
	"fmt"
	"os"

	"github.com/cityhub/cityhub/connectors/gtfsrt"
)

// Decode flattens the entities of one kind into records.
func ExampleDecode() {
	data, err := os.ReadFile("testdata/caltrain_vehicle-positions.pb")
	if err != nil {
		panic(err)
	}
	m, err := gtfsrt.Decode(data, gtfsrt.VehiclePositions, "CT", "vehicle-positions.pb")
	if err != nil {
		panic(err)
	}
	r := m.Records[0]
	fmt.Println(m.HeaderTimestamp, len(m.Records))
	fmt.Println(r.Fields["vehicle_key"], r.Fields["trip_id"], r.Fields["route_id"], r.Fields["lat"], r.Fields["lon"], r.Fields["updated_at"])
	fmt.Println(string(r.Geometry))
	// Output:
	// 1699405559 14
	// 124 124 L1 37.37046 -121.99604 1699405549
	// {"type":"Point","coordinates":[-121.99604,37.37046]}
}
