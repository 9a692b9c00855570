package residents

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
)

// The connectors framework locates points the same way for locate_in, but
// its polygon index is unexported (connectors/locate.go); this is the
// desk's own, which also keeps the city boundary.

// polygon is one area node with its parsed shape.
type polygon struct {
	id, name string
	shape    *geo.Shape
	size     float64 // bounding box area in square degrees, to prefer the most specific
}

// polygons is a loaded set of areas.
type polygons []polygon

// contains reports whether any polygon contains p.
func (ps polygons) contains(p graph.Point) bool {
	for i := range ps {
		if ps[i].shape.Contains(p.Lat, p.Lon) {
			return true
		}
	}
	return false
}

// locate returns the smallest polygon containing p, or nil.
func (ps polygons) locate(p graph.Point) *polygon {
	var best *polygon
	for i := range ps {
		a := &ps[i]
		if a.shape.Contains(p.Lat, p.Lon) && (best == nil || a.size < best.size) {
			best = a
		}
	}
	return best
}

const areaPage = 500

// finder is what loading polygons needs of the store.
type finder interface {
	Find(ctx context.Context, q graph.FindQuery) (*graph.Page, error)
	Nodes(ctx context.Context, ids []string) ([]*graph.Node, error)
}

// loadPolygons reads every node of class (or only the node id, when set)
// and keeps those with polygon geometry.
func loadPolygons(ctx context.Context, st finder, class, id string) (polygons, error) {
	var out polygons
	add := func(n *graph.Node) {
		if n == nil || n.Geometry == nil || n.Geometry.GeoJSON == "" {
			return
		}
		s, err := geo.ParseGeoJSON([]byte(n.Geometry.GeoJSON))
		if err != nil || len(s.Polygons) == 0 {
			return
		}
		name, _ := n.Props["name"].(string)
		out = append(out, polygon{id: n.ID, name: name, shape: s, size: (s.MaxLat - s.MinLat) * (s.MaxLon - s.MinLon)})
	}
	if id != "" {
		ns, err := st.Nodes(ctx, []string{id})
		if err != nil {
			return nil, fmt.Errorf("load %s %s: %w", class, id, err)
		}
		if len(ns) == 1 && ns[0] != nil && ns[0].Class == class {
			add(ns[0])
		}
		return out, nil
	}
	q := graph.FindQuery{Class: class, First: areaPage}
	for {
		page, err := st.Find(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("load %s polygons: %w", class, err)
		}
		for _, n := range page.Nodes {
			add(n)
		}
		if !page.HasNext || len(page.Cursors) == 0 {
			return out, nil
		}
		q.After = page.Cursors[len(page.Cursors)-1]
	}
}

// areaCache keeps the city boundary and the area polygons for a while.
type areaCache struct {
	mu       sync.Mutex
	loadedAt time.Time
	city     polygons
	areas    polygons
}

// get returns the polygons, reading them again when they are older than
// refresh or when no city boundary was found last time (it may have been
// loaded since).
func (c *areaCache) get(ctx context.Context, d *Desk) (city, areas polygons, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := d.now()
	if len(c.city) > 0 && now.Sub(c.loadedAt) < d.cfg.AreaRefresh && !now.Before(c.loadedAt) {
		return c.city, c.areas, nil
	}
	city, err = loadPolygons(ctx, d.store, d.cfg.CityClass, d.cfg.CityID)
	if err != nil {
		return nil, nil, err
	}
	areas, err = loadPolygons(ctx, d.store, d.cfg.AreaClass, "")
	if err != nil {
		return nil, nil, err
	}
	c.city, c.areas, c.loadedAt = city, areas, now
	return city, areas, nil
}
