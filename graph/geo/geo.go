// Package geo holds the small amount of WGS84 geometry cityhub needs:
// great-circle distance, GeoJSON geometry parsing into a representative
// point and bounding box, and point-in-polygon tests. It is shared by the
// embedded store, the connectors and the API; it has no dependencies.
package geo

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
)

// EarthRadiusM is the mean Earth radius used for distances, in metres.
const EarthRadiusM = 6371008.8

// Distance returns the great-circle (haversine) distance in metres.
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * EarthRadiusM * math.Asin(math.Min(1, math.Sqrt(a)))
}

// RadiusBox returns a bounding box that contains every point within meters
// of (lat, lon): a cheap prefilter before the exact distance. The box never
// wraps: when the circle reaches a pole or crosses the antimeridian it
// spans every longitude, and latitudes are clamped to [-90, 90].
func RadiusBox(lat, lon, meters float64) (minLat, minLon, maxLat, maxLon float64) {
	r := meters / EarthRadiusM // angular radius
	dLat := r * 180 / math.Pi
	// the widest longitude of a small circle of angular radius r around
	// latitude φ is asin(sin r / cos φ); when sin r ≥ cos φ the circle
	// holds a pole and spans every longitude
	dLon := 180.0
	if cos := math.Cos(lat * math.Pi / 180); r < math.Pi/2 && math.Sin(r) < cos {
		dLon = math.Asin(math.Sin(r)/cos) * 180 / math.Pi
	}
	// widen by a hair so points exactly on the radius survive rounding
	dLat *= 1.000001
	dLon *= 1.000001
	minLat, maxLat = lat-dLat, lat+dLat
	minLon, maxLon = lon-dLon, lon+dLon
	if maxLat >= 90 || minLat <= -90 || minLon < -180 || maxLon > 180 {
		// over a pole every meridian is near; across the antimeridian the
		// box would wrap
		minLon, maxLon = -180, 180
	}
	return math.Max(minLat, -90), minLon, math.Min(maxLat, 90), maxLon
}

// ValidPoint reports whether lat/lon are finite WGS84 coordinates.
func ValidPoint(lat, lon float64) bool {
	return !math.IsNaN(lat) && !math.IsNaN(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// Shape is a parsed GeoJSON geometry.
type Shape struct {
	Kind string
	// Polygons holds the rings of every polygon (outer ring first, then
	// holes) as [lon, lat] pairs; empty for points and lines.
	Polygons [][][][2]float64
	// Coords holds the vertices of points and lines as [lon, lat].
	Coords [][2]float64
	// Representative point and bounding box.
	Lat, Lon                       float64
	MinLat, MinLon, MaxLat, MaxLon float64
}

type rawGeometry struct {
	Type        string          `json:"type"`
	Coordinates json.RawMessage `json:"coordinates"`
}

// ErrGeometry is returned for malformed or unsupported geometry.
var ErrGeometry = errors.New("geo: invalid geometry")

// ParseGeoJSON parses a GeoJSON geometry object (Point, MultiPoint,
// LineString, MultiLineString, Polygon, MultiPolygon).
func ParseGeoJSON(data []byte) (*Shape, error) {
	var g rawGeometry
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGeometry, err)
	}
	s := &Shape{Kind: g.Type}
	var err error
	switch g.Type {
	case "Point":
		var c [2]float64
		if err = json.Unmarshal(g.Coordinates, &c); err == nil {
			s.Coords = [][2]float64{c}
		}
	case "MultiPoint", "LineString":
		err = json.Unmarshal(g.Coordinates, &s.Coords)
	case "MultiLineString":
		var ls [][][2]float64
		if err = json.Unmarshal(g.Coordinates, &ls); err == nil {
			for _, l := range ls {
				s.Coords = append(s.Coords, l...)
			}
		}
	case "Polygon":
		var rings [][][2]float64
		if err = json.Unmarshal(g.Coordinates, &rings); err == nil {
			s.Polygons = [][][][2]float64{rings}
		}
	case "MultiPolygon":
		err = json.Unmarshal(g.Coordinates, &s.Polygons)
	default:
		return nil, fmt.Errorf("%w: unsupported type %q", ErrGeometry, g.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s coordinates: %v", ErrGeometry, g.Type, err)
	}
	for _, p := range s.Polygons {
		if len(p) == 0 || len(p[0]) < 4 {
			return nil, fmt.Errorf("%w: polygon ring with fewer than 4 positions", ErrGeometry)
		}
		s.Coords = append(s.Coords, p[0]...)
	}
	if len(s.Coords) == 0 {
		return nil, fmt.Errorf("%w: no coordinates", ErrGeometry)
	}
	s.MinLat, s.MinLon, s.MaxLat, s.MaxLon = 90, 180, -90, -180
	for _, c := range s.Coords {
		lon, lat := c[0], c[1]
		if !ValidPoint(lat, lon) {
			return nil, fmt.Errorf("%w: coordinate (%g, %g) out of range", ErrGeometry, lon, lat)
		}
		s.MinLat, s.MaxLat = math.Min(s.MinLat, lat), math.Max(s.MaxLat, lat)
		s.MinLon, s.MaxLon = math.Min(s.MinLon, lon), math.Max(s.MaxLon, lon)
	}
	s.Lat, s.Lon = s.representative()
	return s, nil
}

// representative returns the centroid of the largest polygon's outer ring
// (falling back to the vertex mean), or the mean of the vertices.
func (s *Shape) representative() (lat, lon float64) {
	if len(s.Polygons) > 0 {
		best, bestArea := -1, 0.0
		for i, p := range s.Polygons {
			if a := math.Abs(ringArea(p[0])); a > bestArea {
				best, bestArea = i, a
			}
		}
		if best >= 0 {
			lat, lon := ringCentroid(s.Polygons[best][0])
			if s.Contains(lat, lon) {
				return lat, lon
			}
			if lat, lon, ok := s.scanline(s.Polygons[best], lat); ok {
				return lat, lon
			}
		}
	}
	for _, c := range s.Coords {
		lon += c[0]
		lat += c[1]
	}
	n := float64(len(s.Coords))
	return lat / n, lon / n
}

// scanline finds a point inside polygon p on the parallel lat: the middle of
// the widest span between successive edge crossings that lies inside.
func (s *Shape) scanline(p [][][2]float64, lat float64) (float64, float64, bool) {
	var xs []float64
	for _, r := range p {
		for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
			yi, yj := r[i][1], r[j][1]
			if (yi > lat) != (yj > lat) {
				xs = append(xs, (r[j][0]-r[i][0])*(lat-yi)/(yj-yi)+r[i][0])
			}
		}
	}
	sort.Float64s(xs)
	bestW, bestX := 0.0, 0.0
	for i := 0; i+1 < len(xs); i++ {
		mid := (xs[i] + xs[i+1]) / 2
		if w := xs[i+1] - xs[i]; w > bestW && s.Contains(lat, mid) {
			bestW, bestX = w, mid
		}
	}
	return lat, bestX, bestW > 0
}

func ringArea(r [][2]float64) float64 {
	a := 0.0
	for i := 0; i+1 < len(r); i++ {
		a += r[i][0]*r[i+1][1] - r[i+1][0]*r[i][1]
	}
	return a / 2
}

func ringCentroid(r [][2]float64) (lat, lon float64) {
	a := ringArea(r)
	if a == 0 {
		return r[0][1], r[0][0]
	}
	var cx, cy float64
	for i := 0; i+1 < len(r); i++ {
		f := r[i][0]*r[i+1][1] - r[i+1][0]*r[i][1]
		cx += (r[i][0] + r[i+1][0]) * f
		cy += (r[i][1] + r[i+1][1]) * f
	}
	return cy / (6 * a), cx / (6 * a)
}

// Contains reports whether the point lies inside a polygon of the shape
// (inside the outer ring and outside its holes; points on an edge may go
// either way). Shapes without polygons contain nothing.
func (s *Shape) Contains(lat, lon float64) bool {
	if lat < s.MinLat || lat > s.MaxLat || lon < s.MinLon || lon > s.MaxLon {
		return false
	}
	for _, p := range s.Polygons {
		if !inRing(p[0], lat, lon) {
			continue
		}
		inHole := false
		for _, h := range p[1:] {
			if inRing(h, lat, lon) {
				inHole = true
				break
			}
		}
		if !inHole {
			return true
		}
	}
	return false
}

// inRing is the even-odd ray-casting test.
func inRing(r [][2]float64, lat, lon float64) bool {
	in := false
	for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
		xi, yi := r[i][0], r[i][1]
		xj, yj := r[j][0], r[j][1]
		if (yi > lat) != (yj > lat) && lon < (xj-xi)*(lat-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}
