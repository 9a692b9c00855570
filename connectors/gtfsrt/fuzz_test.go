package gtfsrt

import (
	"encoding/json"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoder for every feed kind: no
// panic, exactly one of Err and Fields per record, geometries that are
// GeoJSON points inside WGS84, records that marshal to JSON (dead letters
// and the store need it).
func FuzzDecode(f *testing.F) {
	for _, path := range []string{vehiclesPB, updatesPB, alertsPB} {
		f.Add(MustRead(f, path))
	}
	f.Add(syntheticFeed(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, kind := range []string{VehiclePositions, TripUpdates, Alerts} {
			m, err := Decode(data, kind, "F", "fuzz.pb")
			if err != nil {
				continue
			}
			if len(m.Records) > m.Entities {
				t.Fatalf("%d records from %d entities", len(m.Records), m.Entities)
			}
			for _, r := range m.Records {
				if (r.Err == nil) == (r.Fields == nil) {
					t.Fatalf("record %+v: exactly one of Err and Fields must be set", r)
				}
				if r.Err != nil {
					continue
				}
				if _, err := json.Marshal(r.Fields); err != nil {
					t.Fatalf("fields %v do not marshal: %v", r.Fields, err)
				}
				if r.Geometry == nil {
					continue
				}
				var g struct {
					Type        string
					Coordinates [2]float64
				}
				if err := json.Unmarshal(r.Geometry, &g); err != nil || g.Type != "Point" ||
					g.Coordinates[0] < -180 || g.Coordinates[0] > 180 || g.Coordinates[1] < -90 || g.Coordinates[1] > 90 {
					t.Fatalf("geometry %s: %v", r.Geometry, err)
				}
			}
		}
	})
}
