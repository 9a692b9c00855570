package geo

import (
	"math"
	"testing"
)

func TestDistance(t *testing.T) {
	// Harvard Square to MIT (77 Massachusetts Ave): about 2.0 km.
	d := Distance(42.3733, -71.1189, 42.3591, -71.0934)
	if math.Abs(d-2600) > 300 {
		t.Errorf("Distance = %.0f m, want about 2600", d)
	}
	if Distance(1, 2, 1, 2) != 0 {
		t.Error("distance to self is not 0")
	}
}

func TestParseAndContains(t *testing.T) {
	sq := `{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}`
	tests := []struct {
		name     string
		lat, lon float64
		want     bool
	}{
		{"inside", 2, 2, true},
		{"in hole", 5, 5, false},
		{"outside", 11, 5, false},
		{"west", 5, -1, false},
	}
	s, err := ParseGeoJSON([]byte(sq))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if got := s.Contains(tt.lat, tt.lon); got != tt.want {
			t.Errorf("%s: Contains(%g, %g) = %v, want %v", tt.name, tt.lat, tt.lon, got, tt.want)
		}
	}
	if !s.Contains(s.Lat, s.Lon) {
		t.Errorf("representative point (%g, %g) not inside", s.Lat, s.Lon)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		`{"type":"Point","coordinates":[200,1]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[1,1]]]}`,
		`{"type":"Circle","coordinates":[0,0]}`,
		`not json`,
	} {
		if _, err := ParseGeoJSON([]byte(in)); err == nil {
			t.Errorf("ParseGeoJSON(%s) succeeded, want error", in)
		}
	}
}

func FuzzParseGeoJSON(f *testing.F) {
	f.Add([]byte(`{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,0]]]}`))
	f.Add([]byte(`{"type":"MultiPolygon","coordinates":[[[[0,0],[10,0],[10,10],[0,0]]]]}`))
	f.Add([]byte(`{"type":"Point","coordinates":[1,2]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseGeoJSON(b)
		if err == nil && !ValidPoint(s.Lat, s.Lon) && len(s.Polygons) == 0 {
			t.Fatalf("representative point out of range: %+v", s)
		}
	})
}
