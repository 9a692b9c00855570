package neo4j

import (
	"context"
	"encoding/json"
	"fmt"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Model exposes the server-less Cypher compilers to the tests.
type Model struct{ m *model }

// NewModel derives the store's tables from an ontology.
func NewModel(ont *ontology.Ontology) (*Model, error) {
	m, err := newModel(ont)
	if err != nil {
		return nil, err
	}
	return &Model{m}, nil
}

// Statement is a compiled query.
type Statement struct {
	Cypher string
	Params map[string]any
}

// Find compiles a find as Store.Find would, with no geo inputs resolved.
func (x *Model) Find(q graph.FindQuery) (Statement, error) {
	sc, err := x.m.scopeFor(q.Class)
	if err != nil {
		return Statement{}, err
	}
	p, err := x.m.prepare(sc, q.Filter, q.Order, q.After)
	if err != nil {
		return Statement{}, err
	}
	c, err := x.m.findCypher(p, q.First, q.Count, nil)
	if err != nil {
		return Statement{}, err
	}
	return Statement{c.String(), c.params}, nil
}

// Neighbors compiles a neighbour query as Store.Neighbors would.
func (x *Model) Neighbors(q graph.NeighborQuery) (Statement, error) {
	rel := x.m.ont.Relation(q.Rel)
	if rel == nil {
		return Statement{}, fmt.Errorf("unknown relation %q", q.Rel)
	}
	end := x.m.ends[endKey{rel.Name, q.Dir}]
	sc := end
	if q.Class != "" {
		var err error
		if sc, err = x.m.scopeFor(q.Class); err != nil {
			return Statement{}, err
		}
	}
	p, err := x.m.prepare(sc, q.Filter, q.Order, q.After)
	if err != nil {
		return Statement{}, err
	}
	c, err := x.m.neighborsCypher(p, rel, q.Dir, !subset(end.classes, sc.classes), dedupe(q.IDs), q.First, nil)
	if err != nil {
		return Statement{}, err
	}
	return Statement{c.String(), c.params}, nil
}

// Near compiles a near query as Store.Near would.
func (x *Model) Near(q graph.NearQuery) (Statement, error) {
	sc, err := x.m.scopeFor(q.Class)
	if err != nil {
		return Statement{}, err
	}
	p, err := x.m.prepare(sc, q.Filter, nil, "")
	if err != nil {
		return Statement{}, err
	}
	nears := make([]graph.Near, len(q.Points))
	bands := make([]*nearBand, len(q.Points))
	for i, pt := range q.Points {
		nears[i] = graph.Near{Center: pt, Meters: q.Meters}
		bands[i] = &nearBand{}
	}
	c, err := x.m.nearCypher(p, nears, bands, q.First, nil)
	if err != nil {
		return Statement{}, err
	}
	return Statement{c.String(), c.params}, nil
}

// Aggregate compiles an aggregate as Store.Aggregate would.
func (x *Model) Aggregate(q graph.AggregateQuery) (Statement, error) {
	sc, err := x.m.scopeFor(q.Class)
	if err != nil {
		return Statement{}, err
	}
	var group, stat *field
	if q.GroupBy != "" {
		f, err := sc.resolve(q.GroupBy)
		if err != nil {
			return Statement{}, err
		}
		group = &f
	}
	if q.Field != "" {
		f, err := sc.resolve(q.Field)
		if err != nil {
			return Statement{}, err
		}
		stat = &f
	}
	p, err := x.m.prepare(sc, q.Filter, nil, "")
	if err != nil {
		return Statement{}, err
	}
	c, err := x.m.aggregateCypher(p, group, stat, nil)
	if err != nil {
		return Statement{}, err
	}
	return Statement{c.String(), c.params}, nil
}

// Nodes compiles a read by IDs.
func (x *Model) Nodes(ids []string) Statement {
	c := x.m.nodesCypher(ids)
	return Statement{c.String(), c.params}
}

// Schema lists the statements Migrate runs on an empty database.
func (x *Model) Schema() []string {
	var out []string
	for _, it := range x.m.schema() {
		out = append(out, it.create)
	}
	return out
}

// Wipe deletes every node and relationship of the store's database, in
// batches (CALL … IN TRANSACTIONS needs an implicit transaction), which
// also resets the change sequence.
func Wipe(ctx context.Context, s *Store) error {
	sess := s.drv.NewSession(ctx, neo4jdrv.SessionConfig{DatabaseName: s.cfg.Database, BookmarkManager: s.drv.ExecuteQueryBookmarkManager()})
	defer sess.Close(context.WithoutCancel(ctx))
	res, err := sess.Run(ctx, "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS", nil)
	if err != nil {
		return err
	}
	_, err = res.Consume(ctx)
	return err
}

// DropIndex drops one of the store's indexes.
func DropIndex(ctx context.Context, s *Store, name string) error {
	return s.schemaExec(ctx, "DROP INDEX "+name+" IF EXISTS")
}

// Driver returns the store's driver, for benchmarks that compare the
// store with hand-written Cypher.
func Driver(s *Store) neo4jdrv.DriverWithContext { return s.drv }

// CypherDistance computes, in the database, the distance expression the
// store compiles (graph/geo's haversine, evaluated by Java).
func CypherDistance(ctx context.Context, s *Store, lat1, lon1, lat2, lon2 float64) (float64, error) {
	c := newCypher()
	c.named("lat2", lat2)
	c.named("lon2", lon2)
	expr := havExpr(c, c.named("lat1", lat1), c.named("lon1", lon1), "n")
	out, err := s.read(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "WITH {location: point({latitude: $lat2, longitude: $lon2})} AS n RETURN "+expr, c.params)
		if err != nil {
			return nil, err
		}
		rec, err := res.Single(ctx)
		if err != nil {
			return nil, err
		}
		return rec.Values[0], nil
	})
	if err != nil {
		return 0, err
	}
	d, _ := out.(float64)
	return d, nil
}

// RoundTripEvents encodes events as a change set stores them and decodes
// them again (sequence numbers from 1).
func RoundTripEvents(ch []graph.Change) ([]graph.Change, error) {
	text, err := encodeEvents(ch)
	if err != nil {
		return nil, err
	}
	var evs []event
	if err := json.Unmarshal([]byte(text), &evs); err != nil {
		return nil, fmt.Errorf("%w in %s", err, text)
	}
	out := make([]graph.Change, len(evs))
	for i, e := range evs {
		out[i] = graph.Change{Seq: uint64(i + 1), Op: e.Op, ID: e.ID, Class: e.Class, Changed: e.Changed, Edge: e.Edge}
	}
	return out, nil
}

// EdgeLookup returns the subquery of Apply's read that looks up the
// stored edges of $ekeys.
func EdgeLookup(s *Store) string { return s.edgeLookup() }

// SetEdgeLookupHints turns the edge lookup's index hints of s on or off.
func SetEdgeLookupHints(s *Store, on bool) { s.noEdgeHints = !on }
