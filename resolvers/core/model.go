package core

import (
	"context"
	"encoding/json"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// Object is implemented by every generated class type; GraphQL interfaces
// (Node, Entity, Place, ...) are bound to it or to interfaces embedding it.
type Object interface {
	GraphNode() *graph.Node
}

// Props reads typed values from a property map. Values of an unexpected
// type read as null rather than failing the whole response.
type Props map[string]any

// Str returns a string property.
func (p Props) Str(k string) *string {
	if s, ok := p[k].(string); ok {
		return &s
	}
	return nil
}

// Int returns an integer property.
func (p Props) Int(k string) *int {
	switch v := p[k].(type) {
	case int64:
		i := int(v)
		return &i
	case int:
		return &v
	case float64:
		i := int(v)
		return &i
	}
	return nil
}

// Float returns a numeric property.
func (p Props) Float(k string) *float64 {
	switch v := p[k].(type) {
	case float64:
		return &v
	case int64:
		f := float64(v)
		return &f
	case int:
		f := float64(v)
		return &f
	}
	return nil
}

// Bool returns a boolean property.
func (p Props) Bool(k string) *bool {
	if b, ok := p[k].(bool); ok {
		return &b
	}
	return nil
}

// Time returns a DateTime property.
func (p Props) Time(k string) *time.Time {
	switch v := p[k].(type) {
	case time.Time:
		return &v
	case string:
		if t, err := graph.ParseTime(v); err == nil {
			return &t
		}
	}
	return nil
}

// JSON returns a JSON property as is.
func (p Props) JSON(k string) any { return p[k] }

func list(p Props, k string) []any {
	switch v := p[k].(type) {
	case []any:
		return v
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = s
		}
		return out
	}
	return nil
}

// StrList returns a list-of-strings property.
func (p Props) StrList(k string) []string {
	l := list(p, k)
	if l == nil {
		return nil
	}
	out := make([]string, 0, len(l))
	for i := range l {
		if s := (Props{"v": l[i]}).Str("v"); s != nil {
			out = append(out, *s)
		}
	}
	return out
}

// IntList returns a list-of-integers property.
func (p Props) IntList(k string) []int {
	var out []int
	for _, v := range list(p, k) {
		if i := (Props{"v": v}).Int("v"); i != nil {
			out = append(out, *i)
		}
	}
	return out
}

// FloatList returns a list-of-numbers property.
func (p Props) FloatList(k string) []float64 {
	var out []float64
	for _, v := range list(p, k) {
		if f := (Props{"v": v}).Float("v"); f != nil {
			out = append(out, *f)
		}
	}
	return out
}

// BoolList returns a list-of-booleans property.
func (p Props) BoolList(k string) []bool {
	var out []bool
	for _, v := range list(p, k) {
		if b, ok := v.(bool); ok {
			out = append(out, b)
		}
	}
	return out
}

// TimeList returns a list-of-DateTime property.
func (p Props) TimeList(k string) []*time.Time {
	var out []*time.Time
	for _, v := range list(p, k) {
		if t := (Props{"v": v}).Time("v"); t != nil {
			out = append(out, t)
		}
	}
	return out
}

// JSONList returns a list property as is.
func (p Props) JSONList(k string) []any { return list(p, k) }

// Enum converts a string property to a generated enum type.
func Enum[T ~string](s *string) *T {
	if s == nil {
		return nil
	}
	v := T(*s)
	return &v
}

// EnumList converts a list of strings to a list of a generated enum type.
func EnumList[T ~string](ss []string) []T {
	if ss == nil {
		return nil
	}
	out := make([]T, len(ss))
	for i, s := range ss {
		out[i] = T(s)
	}
	return out
}

// Base is embedded by every generated class type.
type Base struct {
	N *graph.Node
}

// GraphNode implements Object.
func (b *Base) GraphNode() *graph.Node { return b.N }

// ID is the node's URN.
func (b *Base) ID() string { return b.N.ID }

// P returns the node's properties.
func (b *Base) P() Props { return Props(b.N.Props) }

// Location is the node's representative point.
func (b *Base) Location() *graph.Point {
	if b.N.Geometry == nil {
		return nil
	}
	p := b.N.Geometry.Point
	return &p
}

// Geometry is the node's full geometry as GeoJSON (null for points).
func (b *Base) Geometry() any {
	if b.N.Geometry == nil || b.N.Geometry.GeoJSON == "" {
		return nil
	}
	return json.RawMessage(b.N.Geometry.GeoJSON)
}

// Provenance reports where the node came from.
func (b *Base) Provenance() *Provenance { return NewProvenance(b.N.Prov) }

// Provenance is the GraphQL view of graph.Provenance.
type Provenance struct {
	Source       string
	SourceKey    *string
	Connector    *string
	Run          *string
	FetchedAt    *time.Time
	IngestedAt   *time.Time
	SrcUpdatedAt *time.Time
	ValidFrom    *time.Time
	ValidTo      *time.Time
	Sources      []string
}

// NewProvenance converts graph provenance, mapping zero values to null.
func NewProvenance(p graph.Provenance) *Provenance {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	tm := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	sources := p.Sources
	if len(sources) == 0 && p.Source != "" {
		sources = []string{p.Source}
	}
	if sources == nil {
		sources = []string{}
	}
	return &Provenance{
		Source: p.Source, SourceKey: str(p.SourceKey), Connector: str(p.Connector), Run: str(p.Run),
		FetchedAt: tm(p.FetchedAt), IngestedAt: tm(p.IngestedAt), SrcUpdatedAt: tm(p.SrcUpdatedAt),
		ValidFrom: tm(p.ValidFrom), ValidTo: tm(p.ValidTo), Sources: sources,
	}
}

// PageInfo is Relay page information.
type PageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool
	StartCursor     *string
	EndCursor       *string
}

// Conn is embedded by every generated connection type.
type Conn struct {
	Page *graph.Page
	// Count computes the total when the page did not carry it.
	Count func(ctx context.Context) (int, error)
}

// PageInfo reports the page's position.
func (c *Conn) PageInfo() *PageInfo {
	pi := &PageInfo{HasNextPage: c.Page.HasNext, HasPreviousPage: c.Page.HasPrev}
	if n := len(c.Page.Cursors); n > 0 {
		pi.StartCursor, pi.EndCursor = &c.Page.Cursors[0], &c.Page.Cursors[n-1]
	}
	return pi
}

// TotalCount is the number of matches over all pages.
func (c *Conn) TotalCount(ctx context.Context) (int, error) {
	if c.Page.Total >= 0 {
		return c.Page.Total, nil
	}
	if c.Count != nil {
		return c.Count(ctx)
	}
	return len(c.Page.Nodes), nil
}

// Cursor returns the cursor of the i-th node.
func (c *Conn) Cursor(i int) string {
	if i < len(c.Page.Cursors) {
		return c.Page.Cursors[i]
	}
	return ""
}

// EdgeProps returns the properties of the edge that led to the i-th node.
func (c *Conn) EdgeProps(i int) Props {
	if i < len(c.Page.EdgeProps) {
		return Props(c.Page.EdgeProps[i])
	}
	return nil
}

// Wrapper turns a graph node into its generated class type.
type Wrapper func(*graph.Node) Object

// NearbyConnection lists nodes near another, nearest first.
type NearbyConnection struct {
	Page *graph.Page
	Wrap Wrapper
}

// NearbyEdge is one node near another.
type NearbyEdge struct {
	DistanceMeters float64
	Node           Object
}

// Edges lists the nodes with their distances.
func (c *NearbyConnection) Edges() []*NearbyEdge {
	out := make([]*NearbyEdge, 0, len(c.Page.Nodes))
	for i, n := range c.Page.Nodes {
		e := &NearbyEdge{Node: c.Wrap(n)}
		if i < len(c.Page.Distances) {
			e.DistanceMeters = c.Page.Distances[i]
		}
		out = append(out, e)
	}
	return out
}

// Nodes lists the nodes.
func (c *NearbyConnection) Nodes() []Object {
	out := make([]Object, 0, len(c.Page.Nodes))
	for _, n := range c.Page.Nodes {
		out = append(out, c.Wrap(n))
	}
	return out
}

// AggregateGroup is one group of an aggregate.
type AggregateGroup struct {
	Key   any
	Count int
	Min   *float64
	Max   *float64
	Avg   *float64
	Sum   *float64
}
