package graph

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cityhub/cityhub/ontology"
)

// Sentinel errors. Backends wrap them; callers match with errors.Is.
var (
	// ErrNotFound: a node or area that a request names does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request is malformed (unknown class, property or
	// relation, a value of the wrong type, a bad cursor).
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: a write contradicts the ontology or existing data (a
	// node re-used with another class, an edge between wrong classes).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the backend cannot be reached; the call may succeed later.
	ErrUnavailable = errors.New("store unavailable")
)

// Order sorts by one field; ties are always broken by node ID ascending.
type Order struct {
	Field string
	Desc  bool
}

// FindQuery asks for the nodes of a class (and its subclasses) matching a
// filter, in order, one page at a time.
type FindQuery struct {
	Class  string // class name; abstract classes include every subclass
	Filter Filter // nil matches all
	Order  []Order
	First  int    // page size, > 0
	After  string // cursor of the last node of the previous page, or ""
	// Count asks for the total number of matching nodes (all pages).
	Count bool
}

// NeighborQuery asks, for each of several nodes, for the nodes at the other
// end of one relation. Filter, Order and paging apply per node.
type NeighborQuery struct {
	IDs    []string
	Rel    string
	Dir    ontology.Direction
	Class  string // restrict neighbours to this class and its subclasses; "" for any
	Filter Filter
	Order  []Order
	First  int
	After  string
}

// NearQuery asks, for each of several points, for the nodes of a class
// within a distance, nearest first.
type NearQuery struct {
	Points []Point
	Class  string
	Meters float64
	Filter Filter
	First  int
}

// Page is one page of results.
type Page struct {
	Nodes   []*Node
	Cursors []string // one keyset cursor per node
	HasNext bool
	HasPrev bool // true when the page was requested with a cursor
	Total   int  // number of matches over all pages; -1 when not counted
	// EdgeProps holds, for neighbour pages, the properties of the edge that
	// led to each node (nil when the edge has none).
	EdgeProps []map[string]any
	// Distances holds, for near pages, the distance in metres to each node.
	Distances []float64
}

// AggregateQuery groups the nodes of a class matching a filter by one
// property and reports counts and, for a numeric field, statistics.
type AggregateQuery struct {
	Class   string
	Filter  Filter
	GroupBy string // property to group by; "" for one group over all matches
	Field   string // numeric property for min/max/avg/sum; "" for counts only
}

// Group is one aggregate group.
type Group struct {
	Key   any // the group's value (nil for the null group or when not grouped)
	Count int
	Min   *float64
	Max   *float64
	Avg   *float64
	Sum   *float64
}

// Store is the knowledge graph. Every read is batched so that one GraphQL
// nesting level costs one call; every write is an idempotent batch.
//
// Implementations are safe for concurrent use.
type Store interface {
	// Nodes returns the nodes with the given IDs, in the same order, with
	// nil for IDs that do not exist.
	Nodes(ctx context.Context, ids []string) ([]*Node, error)
	// Neighbors returns one page per ID in q.IDs, in the same order.
	// Each page counts its total. ErrInvalid for an unknown relation.
	Neighbors(ctx context.Context, q NeighborQuery) ([]*Page, error)
	// Find returns one page of the class's nodes matching the filter.
	// ErrInvalid for an unknown class or field or a bad cursor.
	Find(ctx context.Context, q FindQuery) (*Page, error)
	// Near returns one page per point in q.Points, nearest first.
	Near(ctx context.Context, q NearQuery) ([]*Page, error)
	// Aggregate groups matching nodes; groups are sorted by key, nulls last.
	Aggregate(ctx context.Context, q AggregateQuery) ([]Group, error)
	// Apply commits the batch atomically and returns the change events it
	// caused, in batch order, with increasing sequence numbers. Writes that
	// change nothing (an identical re-upsert, or a record older than the
	// stored srcUpdatedAt) produce no event. Once Apply returns nil the
	// batch is durable.
	Apply(ctx context.Context, b Batch) ([]Change, error)
	// Close releases the store.
	Close() error
}

// ChangeLog is implemented by stores that keep their change events and can
// replay them (for subscriptions that resume from a cursor). Sequence
// numbers have no gaps: every committed event has one, in commit order, so
// a reader that sees a gap knows events were pruned.
type ChangeLog interface {
	// ChangesSince returns up to limit changes with Seq > after, in order.
	ChangesSince(ctx context.Context, after uint64, limit int) ([]Change, error)
	// LastSeq returns the sequence number of the last committed event (0
	// before the first).
	LastSeq(ctx context.Context) (uint64, error)
	// PruneChanges deletes the events committed before the given time and
	// returns the sequence number of the oldest event kept (LastSeq()+1
	// when none is kept). Pruning never changes LastSeq.
	PruneChanges(ctx context.Context, before time.Time) (uint64, error)
}

// Pinger is implemented by stores that can report their health.
type Pinger interface {
	Ping(ctx context.Context) error
}

// cursor is the keyset position of a node within an ordering.
type cursor struct {
	O string `json:"o"` // order signature, so a cursor is not reused with another order
	V []any  `json:"v"` // order field values of the node
	I string `json:"i"` // node ID
}

// OrderKey returns the signature of an ordering, stored in cursors.
func OrderKey(order []Order) string {
	s := ""
	for _, o := range order {
		if o.Desc {
			s += "-"
		} else {
			s += "+"
		}
		s += o.Field
	}
	return s
}

// EncodeCursor renders a keyset cursor: the node's values for the order
// fields (already in the backend's comparable form) and its ID.
func EncodeCursor(order []Order, values []any, id string) string {
	b, _ := json.Marshal(cursor{O: OrderKey(order), V: values, I: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses a cursor made by EncodeCursor for the same ordering.
// Integers come back as int64 (exact beyond 2^53), other numbers as
// float64.
func DecodeCursor(order []Order, s string) (values []any, id string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, "", fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	var c cursor
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil || c.I == "" {
		return nil, "", fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	for i, v := range c.V {
		n, ok := v.(json.Number)
		if !ok {
			continue
		}
		if iv, err := n.Int64(); err == nil {
			c.V[i] = iv
		} else if fv, err := n.Float64(); err == nil {
			c.V[i] = fv
		} else {
			return nil, "", fmt.Errorf("%w: malformed cursor", ErrInvalid)
		}
	}
	if c.O != OrderKey(order) || len(c.V) != len(order) {
		return nil, "", fmt.Errorf("%w: cursor belongs to another ordering", ErrInvalid)
	}
	return c.V, c.I, nil
}
