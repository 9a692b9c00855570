package graph

import (
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph/geo"
	"github.com/cityhub/cityhub/ontology"
)

// This file holds the write semantics every backend shares, so that Apply
// validates and compares records the same way whatever stores them.

// NormalizeGeometry validates a node's geometry for its class and returns
// it as stored: a GeoJSON shape fills a zero point (with its representative
// point), a zero kind and a zero box; a geometry without GeoJSON is a
// point. A class without geometry accepts none.
func NormalizeGeometry(c *ontology.Class, g *Geometry) (*Geometry, error) {
	if g == nil {
		return nil, nil
	}
	if !c.Located() {
		return nil, fmt.Errorf("class %s has no geometry", c.Name)
	}
	out := *g
	if g.GeoJSON != "" {
		shape, err := geo.ParseGeoJSON([]byte(g.GeoJSON))
		if err != nil {
			return nil, fmt.Errorf("geometry: %v", err)
		}
		if out.Kind == "" {
			out.Kind = shape.Kind
		} else if out.Kind != shape.Kind {
			return nil, fmt.Errorf("geometry kind %q does not match its GeoJSON (%s)", out.Kind, shape.Kind)
		}
		if out.Point == (Point{}) {
			out.Point = Point{Lat: shape.Lat, Lon: shape.Lon}
		}
		if out.BBox == (BBox{}) {
			out.BBox = BBox{MinLat: shape.MinLat, MinLon: shape.MinLon, MaxLat: shape.MaxLat, MaxLon: shape.MaxLon}
		}
	} else {
		if out.Kind == "" {
			out.Kind = "Point"
		}
		if out.BBox == (BBox{}) {
			out.BBox = BBox{MinLat: out.Point.Lat, MinLon: out.Point.Lon, MaxLat: out.Point.Lat, MaxLon: out.Point.Lon}
		}
	}
	if !geo.ValidPoint(out.Point.Lat, out.Point.Lon) {
		return nil, fmt.Errorf("geometry: point (%v, %v) is not a WGS84 position", out.Point.Lat, out.Point.Lon)
	}
	if !geo.ValidPoint(out.BBox.MinLat, out.BBox.MinLon) || !geo.ValidPoint(out.BBox.MaxLat, out.BBox.MaxLon) {
		return nil, errors.New("geometry: bounding box is not WGS84")
	}
	if !utf8.ValidString(out.Kind) || !utf8.ValidString(out.GeoJSON) {
		return nil, errors.New("geometry: text is not valid UTF-8")
	}
	return &out, nil
}

// CheckProvenanceText rejects provenance text that is not UTF-8.
func CheckProvenanceText(p Provenance) error {
	for _, s := range append([]string{p.Source, p.SourceKey, p.Connector, p.Run}, p.Sources...) {
		if !utf8.ValidString(s) {
			return errors.New("provenance text is not valid UTF-8")
		}
	}
	return nil
}

// SameRecord reports whether two provenances describe the same record; the
// bookkeeping of a run (connector, run, fetched-at, ingested-at, source
// updated-at) does not count.
func SameRecord(a, b Provenance) bool {
	return a.Source == b.Source && a.SourceKey == b.SourceKey && a.ValidFrom.Equal(b.ValidFrom) &&
		a.ValidTo.Equal(b.ValidTo) && slices.Equal(a.Sources, b.Sources)
}

// ProvenanceChanges lists the record fields that differ, by the names
// Change.Changed uses.
func ProvenanceChanges(a, b Provenance) []string {
	var out []string
	if a.Source != b.Source {
		out = append(out, "_source")
	}
	if a.SourceKey != b.SourceKey {
		out = append(out, "_sourceKey")
	}
	if !slices.Equal(a.Sources, b.Sources) {
		out = append(out, "_sources")
	}
	if !a.ValidFrom.Equal(b.ValidFrom) {
		out = append(out, "_validFrom")
	}
	if !a.ValidTo.Equal(b.ValidTo) {
		out = append(out, "_validTo")
	}
	return out
}

// OlderThan reports whether a record with source update time t must not
// overwrite one stored with source update time stored: the stored time is
// known and later (an unknown incoming time counts as older than any known
// one).
func OlderThan(t, stored time.Time) bool {
	return !stored.IsZero() && (t.IsZero() || stored.After(t))
}
