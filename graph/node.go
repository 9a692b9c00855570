package graph

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// Node is one entity of the knowledge graph.
//
// Props holds typed values keyed by ontology property name: string, int64,
// float64, bool, time.Time (UTC), []any of those, or map[string]any for
// JSON properties. A property that is absent is null.
type Node struct {
	ID       string
	Class    string // leaf class name
	Props    map[string]any
	Geometry *Geometry
	Prov     Provenance
}

// Provenance says where a node or edge came from and when it is true.
type Provenance struct {
	Source       string    // registered source code, e.g. "cambridge-gis"
	SourceKey    string    // the source's own primary key
	Connector    string    // connector name that wrote it
	Run          string    // ingest run ID
	FetchedAt    time.Time // when the connector read it
	IngestedAt   time.Time // when the store committed it (set by the store)
	SrcUpdatedAt time.Time // the source's own last-modified time, if any
	ValidFrom    time.Time // valid time start, zero if unknown
	ValidTo      time.Time // valid time end, zero if open
	Sources      []string  // every source that contributed to a merged node
}

// Point is a WGS84 position.
type Point struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// BBox is a WGS84 bounding box.
type BBox struct {
	MinLat, MinLon, MaxLat, MaxLon float64
}

// Contains reports whether p lies inside b (edges included).
func (b BBox) Contains(p Point) bool {
	return p.Lat >= b.MinLat && p.Lat <= b.MaxLat && p.Lon >= b.MinLon && p.Lon <= b.MaxLon
}

// Geometry is the location of a node: a representative point (the point
// itself, or the centroid of a line or polygon) and, for lines and
// polygons, the full shape as GeoJSON geometry text.
type Geometry struct {
	Point   Point
	Kind    string // GeoJSON type: Point, LineString, Polygon, MultiPolygon, ...
	GeoJSON string // full geometry for non-point kinds, empty for points
	BBox    BBox
}

// PointGeometry returns a point geometry.
func PointGeometry(lat, lon float64) *Geometry {
	return &Geometry{Point: Point{lat, lon}, Kind: "Point", BBox: BBox{lat, lon, lat, lon}}
}

// Edge is a typed relation from one node to another.
type Edge struct {
	From  string
	Rel   string // relation name from the ontology, e.g. LOCATED_IN
	To    string
	Props map[string]any
	Prov  Provenance
}

// EdgeKey identifies an edge: at most one edge of a relation links two nodes.
type EdgeKey struct {
	From string
	Rel  string
	To   string
}

// Key returns the edge's identity.
func (e Edge) Key() EdgeKey { return EdgeKey{e.From, e.Rel, e.To} }

// Batch is an idempotent set of writes applied atomically, in this order:
// node upserts, edge upserts, edge deletes, node deletes.
type Batch struct {
	Nodes       []Node
	Edges       []Edge
	DeleteEdges []EdgeKey
	// DeleteNodes removes nodes with all their edges.
	DeleteNodes []string
}

// Len is the number of writes in the batch.
func (b Batch) Len() int {
	return len(b.Nodes) + len(b.Edges) + len(b.DeleteEdges) + len(b.DeleteNodes)
}

// Op is the kind of a change event.
type Op string

// Change operations.
const (
	OpCreate      Op = "CREATE"
	OpUpdate      Op = "UPDATE"
	OpDelete      Op = "DELETE"
	OpEdgeAdd     Op = "EDGE_ADD"
	OpEdgeRemove  Op = "EDGE_REMOVE"
	OpEdgeUpdate  Op = "EDGE_UPDATE"
	OpSourceState Op = "SOURCE_STATE"
)

// MarshalGQL writes the operation as a GraphQL enum value (ChangeOp).
func (o Op) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(o))) }

// UnmarshalGQL reads a ChangeOp enum value.
func (o *Op) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%w: change operation %v is not a string", ErrInvalid, v)
	}
	switch op := Op(s); op {
	case OpCreate, OpUpdate, OpDelete, OpEdgeAdd, OpEdgeRemove, OpEdgeUpdate, OpSourceState:
		*o = op
		return nil
	}
	return fmt.Errorf("%w: %q is not a change operation", ErrInvalid, s)
}

// Change is one committed change. Seq is strictly increasing across every
// Apply of a store; events of one Apply are in the order of the batch.
type Change struct {
	Seq     uint64
	Op      Op
	ID      string   // node ID (the source node for edge events)
	Class   string   // leaf class of the node
	Changed []string // names of changed properties ("location" for geometry)
	Edge    *EdgeKey // set for edge events
	At      time.Time
}
