package core

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/ontology/gen"
)

// Config bounds what one query may ask for.
type Config struct {
	DefaultFirst int           // page size when `first` is omitted
	MaxFirst     int           // largest `first` accepted
	BatchWait    time.Duration // how long a loader waits to fill a batch
	BatchMax     int           // largest batch a loader sends in one store call
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{DefaultFirst: gen.DefaultFirst, MaxFirst: 1000, BatchWait: 250 * time.Microsecond, BatchMax: 1000}
}

// Engine resolves every ontology-derived field generically: generated
// resolvers call it with the class and field names.
type Engine struct {
	store   Reader
	ont     *ontology.Ontology
	args    *Args
	cfg     Config
	log     *slog.Logger
	located map[string]*ontology.Class // LocatedClass enum value → class
	// classValues maps ClassName enum values to classes.
	classValues map[string]*ontology.Class
	live        Live // nil: no subscriptions
}

// NewEngine builds an engine over a store.
func NewEngine(store Reader, ont *ontology.Ontology, cfg Config, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{store: store, ont: ont, args: NewArgs(ont, cfg.MaxFirst), cfg: cfg, log: log, located: map[string]*ontology.Class{},
		classValues: map[string]*ontology.Class{}}
	var n gen.Names
	for _, c := range ont.Classes {
		e.classValues[n.ClassValue(c)] = c
		if c.Located() {
			e.located[n.LocatedValue(c)] = c
		}
	}
	return e
}

// Ontology returns the engine's ontology.
func (e *Engine) Ontology() *ontology.Ontology { return e.ont }

// NewLoaders builds the loaders for one operation.
func (e *Engine) NewLoaders() *Loaders {
	return NewLoaders(e.store, e.cfg.BatchWait, e.cfg.BatchMax, e.isA)
}

// isA reports whether a node of class is of the GraphQL type typ (a class
// or the Node interface).
func (e *Engine) isA(class, typ string) bool {
	c, t := e.ont.Class(class), e.ont.Class(typ)
	if c == nil || t == nil {
		return typ == "Node"
	}
	return c.IsA(t)
}

// parentType is the GraphQL type the current field is resolved on.
func parentType(ctx context.Context) string {
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		return fc.Object
	}
	return ""
}

func (e *Engine) loaders(ctx context.Context) *Loaders {
	if l := loadersFrom(ctx); l != nil {
		return l
	}
	return e.NewLoaders()
}

func (e *Engine) class(name string) (*ontology.Class, error) {
	c := e.ont.Class(name)
	if c == nil {
		return nil, fmt.Errorf("%w: unknown class %q", graph.ErrInvalid, name)
	}
	return c, nil
}

// wantsTotal reports whether the current field selects totalCount.
func wantsTotal(ctx context.Context) bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil {
		return true
	}
	oc := graphql.GetOperationContext(ctx)
	for _, f := range graphql.CollectFields(oc, fc.Field.Selections, nil) {
		if f.Name == "totalCount" {
			return true
		}
	}
	return false
}

// Find lists the nodes of a class (root list fields).
func (e *Engine) Find(ctx context.Context, class string, where map[string]any, orderBy []map[string]any, first *int, after *string) (Conn, error) {
	c, err := e.class(class)
	if err != nil {
		return Conn{}, err
	}
	q := graph.FindQuery{Count: wantsTotal(ctx)}
	if q.Filter, c, err = e.args.Where(c, RoleFrom(ctx), "where", where); err != nil {
		return Conn{}, err
	}
	q.Class = c.Name
	if q.Order, err = e.args.Order(c, RoleFrom(ctx), "orderBy", orderBy); err != nil {
		return Conn{}, err
	}
	if q.First, err = e.args.First("first", first, e.cfg.DefaultFirst); err != nil {
		return Conn{}, err
	}
	if after != nil {
		q.After = *after
	}
	want := q.First
	q.First = max(want, 1) // first: 0 asks for counts and paging info only
	p, err := e.store.Find(ctx, q)
	if err != nil {
		return Conn{}, err
	}
	trim(p, want)
	if l := loadersFrom(ctx); l != nil {
		l.record(p.Nodes)
	}
	return Conn{Page: p}, nil
}

// trim cuts a page to its first n nodes (pages shared by loaders are copied
// by the caller first).
func trim(p *graph.Page, n int) {
	if len(p.Nodes) <= n {
		return
	}
	p.HasNext = true
	p.Nodes = p.Nodes[:n]
	if len(p.Cursors) > n {
		p.Cursors = p.Cursors[:n]
	}
	if len(p.EdgeProps) > n {
		p.EdgeProps = p.EdgeProps[:n]
	}
	if len(p.Distances) > n {
		p.Distances = p.Distances[:n]
	}
}

// Node loads any node by ID (nil when unknown).
func (e *Engine) Node(ctx context.Context, id string) (*graph.Node, error) {
	return e.loaders(ctx).nodes.Load(ctx, id)()
}

// Nodes loads several nodes by ID, nil where unknown.
func (e *Engine) Nodes(ctx context.Context, ids []string) ([]*graph.Node, error) {
	if len(ids) > e.cfg.MaxFirst {
		return nil, inputErr("ids", "at most %d IDs per request (got %d)", e.cfg.MaxFirst, len(ids))
	}
	nodes, errs := e.loaders(ctx).nodes.LoadMany(ctx, ids)()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return nodes, nil
}

// Get loads a node by ID if it is of the class (or a subclass).
func (e *Engine) Get(ctx context.Context, class, id string) (*graph.Node, error) {
	c, err := e.class(class)
	if err != nil {
		return nil, err
	}
	n, err := e.Node(ctx, id)
	if err != nil || n == nil {
		return nil, err
	}
	if nc := e.ont.Class(n.Class); nc == nil || !nc.IsA(c) {
		return nil, nil
	}
	return n, nil
}

func (e *Engine) end(obj Object, field string) (*ontology.RelationEnd, *graph.Node, error) {
	n := obj.GraphNode()
	c, err := e.class(n.Class)
	if err != nil {
		return nil, nil, err
	}
	end := c.RelationField(field)
	if end == nil {
		return nil, nil, fmt.Errorf("%w: class %s has no relation field %q", graph.ErrInvalid, c.Name, field)
	}
	return end, n, nil
}

// Relation pages through the nodes linked to obj by a relation field.
func (e *Engine) Relation(ctx context.Context, obj Object, field string, where map[string]any, orderBy []map[string]any, first *int, after *string) (Conn, error) {
	end, n, err := e.end(obj, field)
	if err != nil {
		return Conn{}, err
	}
	q := graph.NeighborQuery{Rel: end.Relation.Name, Dir: end.Direction}
	target := end.Target
	if q.Filter, target, err = e.args.Where(end.Target, RoleFrom(ctx), field+".where", where); err != nil {
		return Conn{}, err
	}
	if target != e.ont.Root() {
		q.Class = target.Name
	}
	if q.Order, err = e.args.Order(target, RoleFrom(ctx), field+".orderBy", orderBy); err != nil {
		return Conn{}, err
	}
	if q.First, err = e.args.First(field+".first", first, e.cfg.DefaultFirst); err != nil {
		return Conn{}, err
	}
	if after != nil {
		q.After = *after
	}
	want := q.First
	q.First = max(want, 1)
	p, err := e.loaders(ctx).neighbor(ctx, n.ID, parentType(ctx), q)
	if err != nil {
		return Conn{}, err
	}
	if want == 0 {
		cp := *p
		p = &cp
		trim(p, 0)
	}
	return Conn{Page: p}, nil
}

// One returns the node at the other end of a single-valued relation field.
func (e *Engine) One(ctx context.Context, obj Object, field string) (*graph.Node, error) {
	end, n, err := e.end(obj, field)
	if err != nil {
		return nil, err
	}
	q := graph.NeighborQuery{Rel: end.Relation.Name, Dir: end.Direction, First: 1}
	p, err := e.loaders(ctx).neighbor(ctx, n.ID, parentType(ctx), q)
	if err != nil || len(p.Nodes) == 0 {
		return nil, err
	}
	return p.Nodes[0], nil
}

// Nearby lists nodes of a located class near obj, nearest first.
func (e *Engine) Nearby(ctx context.Context, obj Object, class string, meters float64, first *int, wrap Wrapper) (*NearbyConnection, error) {
	c, ok := e.located[class]
	if !ok {
		return nil, inputErr("nearby.class", "%q is not a located class", class)
	}
	if err := CheckRadius("nearby.meters", meters); err != nil {
		return nil, err
	}
	k, err := e.args.First("nearby.first", first, 5)
	if err != nil {
		return nil, err
	}
	n := obj.GraphNode()
	if n.Geometry == nil || k == 0 {
		return &NearbyConnection{Page: &graph.Page{Total: 0}, Wrap: wrap}, nil
	}
	q := graph.NearQuery{Class: c.Name, Meters: meters, First: k}
	// ask for one more so the node itself can be dropped
	q.First++
	p, err := e.loaders(ctx).nearby(ctx, n.ID, parentType(ctx), n.Geometry.Point, q)
	if err != nil {
		return nil, err
	}
	out := &graph.Page{Total: -1}
	for i, m := range p.Nodes {
		if m.ID == n.ID || len(out.Nodes) == k {
			continue
		}
		out.Nodes = append(out.Nodes, m)
		if i < len(p.Distances) {
			out.Distances = append(out.Distances, p.Distances[i])
		}
	}
	return &NearbyConnection{Page: out, Wrap: wrap}, nil
}

// Aggregate counts the nodes of a class, optionally grouped.
func (e *Engine) Aggregate(ctx context.Context, class string, where map[string]any, groupBy, field *string) ([]*AggregateGroup, error) {
	c, err := e.class(class)
	if err != nil {
		return nil, err
	}
	q := graph.AggregateQuery{}
	if q.Filter, c, err = e.args.Where(c, RoleFrom(ctx), "where", where); err != nil {
		return nil, err
	}
	q.Class = c.Name
	if q.GroupBy, err = e.args.OrderField(c, RoleFrom(ctx), "groupBy", groupBy); err != nil {
		return nil, err
	}
	if q.Field, err = e.args.OrderField(c, RoleFrom(ctx), "field", field); err != nil {
		return nil, err
	}
	if q.Field != "" {
		p := c.Property(q.Field)
		if p == nil || (p.Type != ontology.TypeInt && p.Type != ontology.TypeFloat) {
			return nil, inputErr("field", "%s is not a numeric property of %s", q.Field, c.Name)
		}
	}
	groups, err := e.store.Aggregate(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]*AggregateGroup, len(groups))
	for i, g := range groups {
		key := g.Key
		if t, ok := key.(time.Time); ok {
			key = t.UTC().Format(time.RFC3339Nano)
		}
		out[i] = &AggregateGroup{Key: key, Count: g.Count, Min: g.Min, Max: g.Max, Avg: g.Avg, Sum: g.Sum}
	}
	return out, nil
}
