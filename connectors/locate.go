package connectors

import (
	"context"
	"fmt"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
)

// areaIndex holds the polygons of one class, loaded once per run.
type areaIndex struct {
	areas []area
}

type area struct {
	id    string
	shape *geo.Shape
	size  float64 // bbox area in square degrees, to prefer the most specific
}

const areaPage = 500

// loadAreas pages through every node of class with Find and keeps those
// with polygon geometry. skipped counts nodes without usable polygons.
func loadAreas(ctx context.Context, f Finder, class string) (ix *areaIndex, skipped int, err error) {
	ix = &areaIndex{}
	q := graph.FindQuery{Class: class, First: areaPage}
	for {
		page, err := f.Find(ctx, q)
		if err != nil {
			return nil, 0, fmt.Errorf("load %s polygons: %w", class, err)
		}
		for _, n := range page.Nodes {
			if n == nil || n.Geometry == nil || n.Geometry.GeoJSON == "" {
				skipped++
				continue
			}
			s, err := geo.ParseGeoJSON([]byte(n.Geometry.GeoJSON))
			if err != nil || len(s.Polygons) == 0 {
				skipped++
				continue
			}
			ix.areas = append(ix.areas, area{id: n.ID, shape: s, size: (s.MaxLat - s.MinLat) * (s.MaxLon - s.MinLon)})
		}
		if !page.HasNext || len(page.Cursors) == 0 {
			return ix, skipped, nil
		}
		q.After = page.Cursors[len(page.Cursors)-1]
	}
}

// locate returns the smallest polygon containing p.
func (ix *areaIndex) locate(p graph.Point) (string, bool) {
	best, bestSize := "", 0.0
	for i := range ix.areas {
		a := &ix.areas[i]
		if a.shape.Contains(p.Lat, p.Lon) && (best == "" || a.size < bestSize) {
			best, bestSize = a.id, a.size
		}
	}
	return best, best != ""
}
