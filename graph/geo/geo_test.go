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

// TestRadiusBoxContainsCircle checks, for centres near the poles, on the
// antimeridian and in between, and radii up to half the Earth, that every
// point within the radius lies inside the box.
func TestRadiusBoxContainsCircle(t *testing.T) {
	centres := [][2]float64{{0, 0}, {42.37, -71.1}, {89.5, 10}, {-89.9, -170}, {10, 179.9}, {-35, -179.5}, {60, 120}}
	radii := []float64{10, 5e3, 1e6, 7.7e6, 2e7}
	for _, c := range centres {
		for _, m := range radii {
			minLat, minLon, maxLat, maxLon := RadiusBox(c[0], c[1], m)
			if minLat < -90 || maxLat > 90 || minLon < -180 || maxLon > 180 || minLat > maxLat || minLon > maxLon {
				t.Fatalf("RadiusBox(%v, %v) = [%v %v %v %v]: not a valid box", c, m, minLat, minLon, maxLat, maxLon)
			}
			for lat := -90.0; lat <= 90; lat += 0.5 {
				for lon := -180.0; lon <= 180; lon += 0.5 {
					if Distance(c[0], c[1], lat, lon) > m {
						continue
					}
					if lat < minLat || lat > maxLat || lon < minLon || lon > maxLon {
						t.Fatalf("centre %v radius %v m: point (%v, %v) at %.0f m is outside the box [%v %v %v %v]",
							c, m, lat, lon, Distance(c[0], c[1], lat, lon), minLat, minLon, maxLat, maxLon)
					}
				}
			}
		}
	}
}
