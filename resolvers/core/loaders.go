package core

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/cityhub/cityhub/graph"
)

// Reader is the part of graph.Store the API reads through.
type Reader interface {
	Nodes(ctx context.Context, ids []string) ([]*graph.Node, error)
	Neighbors(ctx context.Context, q graph.NeighborQuery) ([]*graph.Page, error)
	Find(ctx context.Context, q graph.FindQuery) (*graph.Page, error)
	Near(ctx context.Context, q graph.NearQuery) ([]*graph.Page, error)
	Aggregate(ctx context.Context, q graph.AggregateQuery) ([]graph.Group, error)
}

type neighborKey struct {
	ID   string
	Spec string // canonical text of the query without IDs
}

type nearKey struct {
	Lat, Lon float64
	Spec     string
}

// Loaders batch the store reads of one GraphQL operation: every load of a
// nesting level that shares a query shape becomes one store call.
type Loaders struct {
	nodes     *dataloader.Loader[string, *graph.Node]
	neighbors *dataloader.Loader[neighborKey, *graph.Page]
	near      *dataloader.Loader[nearKey, *graph.Page]

	mu        sync.Mutex
	specs     map[string]graph.NeighborQuery
	nearSpecs map[string]graph.NearQuery
	// gens maps a node ID to the generation it arrived in: the nodes one
	// store call returned together. A nesting level's parents are one
	// generation, so the first load for one parent enqueues the load for
	// every sibling of the same type at once, and the level costs one store
	// call however the executor schedules its goroutines.
	gens       map[string]*generation
	prefetches map[prefetchKey]*prefetch
	isA        func(class, typ string) bool
	store      Reader
}

// generation is the set of nodes one store call returned.
type generation struct {
	nodes []*graph.Node
}

type prefetchKey struct {
	gen        *generation
	spec       string
	parentType string
}

// prefetch is one store call made for every sibling of a generation; every
// sibling's load waits for it (once) and reads its own page.
type prefetch struct {
	once  sync.Once
	pages map[string]*graph.Page // by parent node ID
	near  map[graph.Point]*graph.Page
	err   error
}

// record notes the nodes of one store call as a generation. A node keeps
// the first generation it arrived in: a node reached again deeper in the
// query must not move, or its earlier siblings' loads, still running, would
// no longer find each other.
func (l *Loaders) record(nodes []*graph.Node) {
	if len(nodes) == 0 {
		return
	}
	g := &generation{nodes: nodes}
	l.mu.Lock()
	for _, n := range nodes {
		if n != nil {
			if _, ok := l.gens[n.ID]; !ok {
				l.gens[n.ID] = g
			}
		}
	}
	l.mu.Unlock()
}

func (l *Loaders) recordPages(pages []*graph.Page) {
	var all []*graph.Node
	for _, p := range pages {
		if p != nil {
			all = append(all, p.Nodes...)
		}
	}
	l.record(all)
}

// prefetchFor returns the prefetch shared by id's generation siblings for
// one query shape, or nil when id arrived outside any recorded generation.
func (l *Loaders) prefetchFor(id, spec, parentType string) (*prefetch, *generation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.gens[id]
	if g == nil {
		return nil, nil
	}
	k := prefetchKey{g, spec, parentType}
	pf := l.prefetches[k]
	if pf == nil {
		pf = &prefetch{}
		l.prefetches[k] = pf
	}
	return pf, g
}

// members returns the nodes of g the field is resolved on: those whose
// class is a parentType, each once.
func (l *Loaders) members(g *generation, parentType string) []*graph.Node {
	var out []*graph.Node
	seen := map[string]bool{}
	for _, n := range g.nodes {
		if n == nil || seen[n.ID] || (l.isA != nil && !l.isA(n.Class, parentType)) {
			continue
		}
		seen[n.ID] = true
		out = append(out, n)
	}
	return out
}

// NewLoaders builds the loaders for one operation.
//
// isA reports whether a node class is a GraphQL object type (a class name);
// nil treats every node as matching.
func NewLoaders(store Reader, wait time.Duration, capacity int, isA func(class, typ string) bool) *Loaders {
	l := &Loaders{
		specs: map[string]graph.NeighborQuery{}, nearSpecs: map[string]graph.NearQuery{},
		gens: map[string]*generation{}, prefetches: map[prefetchKey]*prefetch{}, isA: isA, store: store,
	}
	l.nodes = dataloader.NewBatchedLoader(func(ctx context.Context, ids []string) []*dataloader.Result[*graph.Node] {
		nodes, err := store.Nodes(ctx, ids)
		l.record(nodes)
		out := make([]*dataloader.Result[*graph.Node], len(ids))
		for i := range ids {
			switch {
			case err != nil:
				out[i] = &dataloader.Result[*graph.Node]{Error: err}
			case i < len(nodes):
				out[i] = &dataloader.Result[*graph.Node]{Data: nodes[i]}
			default:
				out[i] = &dataloader.Result[*graph.Node]{Error: fmt.Errorf("store returned %d nodes for %d ids", len(nodes), len(ids))}
			}
		}
		return out
	}, dataloader.WithWait[string, *graph.Node](wait), dataloader.WithBatchCapacity[string, *graph.Node](capacity))

	l.neighbors = dataloader.NewBatchedLoader(func(ctx context.Context, keys []neighborKey) []*dataloader.Result[*graph.Page] {
		return batchGroups(keys, func(k neighborKey) string { return k.Spec }, func(spec string, idx []int) ([]*graph.Page, error) {
			l.mu.Lock()
			q := l.specs[spec]
			l.mu.Unlock()
			q.IDs = make([]string, len(idx))
			for i, j := range idx {
				q.IDs[i] = keys[j].ID
			}
			pages, err := store.Neighbors(ctx, q)
			l.recordPages(pages)
			return pages, err
		})
	}, dataloader.WithWait[neighborKey, *graph.Page](wait), dataloader.WithBatchCapacity[neighborKey, *graph.Page](capacity))

	l.near = dataloader.NewBatchedLoader(func(ctx context.Context, keys []nearKey) []*dataloader.Result[*graph.Page] {
		return batchGroups(keys, func(k nearKey) string { return k.Spec }, func(spec string, idx []int) ([]*graph.Page, error) {
			l.mu.Lock()
			q := l.nearSpecs[spec]
			l.mu.Unlock()
			q.Points = make([]graph.Point, len(idx))
			for i, j := range idx {
				q.Points[i] = graph.Point{Lat: keys[j].Lat, Lon: keys[j].Lon}
			}
			pages, err := store.Near(ctx, q)
			l.recordPages(pages)
			return pages, err
		})
	}, dataloader.WithWait[nearKey, *graph.Page](wait), dataloader.WithBatchCapacity[nearKey, *graph.Page](capacity))
	return l
}

// batchGroups splits a batch by query shape, runs one store call per shape
// and maps the pages back to the keys, one result per key in key order.
func batchGroups[K any](keys []K, spec func(K) string, call func(spec string, idx []int) ([]*graph.Page, error)) []*dataloader.Result[*graph.Page] {
	out := make([]*dataloader.Result[*graph.Page], len(keys))
	var order []string
	groups := map[string][]int{}
	for i, k := range keys {
		s := spec(k)
		if _, ok := groups[s]; !ok {
			order = append(order, s)
		}
		groups[s] = append(groups[s], i)
	}
	for _, s := range order {
		idx := groups[s]
		pages, err := call(s, idx)
		if err == nil && len(pages) != len(idx) {
			err = fmt.Errorf("store returned %d pages for %d keys", len(pages), len(idx))
		}
		for i, j := range idx {
			if err != nil {
				out[j] = &dataloader.Result[*graph.Page]{Error: err}
				continue
			}
			out[j] = &dataloader.Result[*graph.Page]{Data: pages[i]}
		}
	}
	return out
}

// WithLoaders returns ctx carrying l.
func WithLoaders(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, loadersKey{}, l)
}

func loadersFrom(ctx context.Context) *Loaders {
	switch v := ctx.Value(loadersKey{}).(type) {
	case *Loaders:
		return v
	case *lazyLoaders:
		return v.get()
	}
	return nil
}

// lazyLoaders builds its loaders on first use: a subscription event whose
// selection reads nothing from the store (op, cursor, node's own fields)
// costs no loaders.
type lazyLoaders struct {
	once sync.Once
	mk   func() *Loaders
	l    *Loaders
}

func (z *lazyLoaders) get() *Loaders {
	z.once.Do(func() { z.l = z.mk() })
	return z.l
}

// withLazyLoaders gives ctx loaders built by mk when first needed.
func withLazyLoaders(ctx context.Context, mk func() *Loaders) context.Context {
	return context.WithValue(ctx, loadersKey{}, &lazyLoaders{mk: mk})
}

// neighbor loads the neighbour page of one parent node. parentType is the
// GraphQL type the field is resolved on. When the parent arrived with
// siblings (one generation), the first load makes one store call for every
// sibling of that type and the others wait for it: a nesting level costs one
// store call whatever order the executor runs its goroutines in. Parents
// outside a generation go through the dataloader, which batches by time.
func (l *Loaders) neighbor(ctx context.Context, id, parentType string, q graph.NeighborQuery) (*graph.Page, error) {
	spec := fmt.Sprintf("%s|%d|%s|%s|%s|%d|%s", q.Rel, q.Dir, q.Class, graph.KeyOf(q.Filter), graph.OrderKey(q.Order), q.First, q.After)
	if pf, g := l.prefetchFor(id, spec, parentType); pf != nil {
		pf.once.Do(func() {
			members := l.members(g, parentType)
			bq := q
			bq.IDs = make([]string, len(members))
			for i, n := range members {
				bq.IDs[i] = n.ID
			}
			pages, err := l.store.Neighbors(ctx, bq)
			if err == nil && len(pages) != len(bq.IDs) {
				err = fmt.Errorf("store returned %d pages for %d ids", len(pages), len(bq.IDs))
			}
			pf.err = err
			if err == nil {
				l.recordPages(pages)
				pf.pages = make(map[string]*graph.Page, len(pages))
				for i, p := range pages {
					pf.pages[bq.IDs[i]] = p
				}
			}
		})
		if pf.err != nil {
			return nil, pf.err
		}
		if p, ok := pf.pages[id]; ok {
			return p, nil
		}
	}
	l.mu.Lock()
	if _, ok := l.specs[spec]; !ok {
		l.specs[spec] = q
	}
	l.mu.Unlock()
	return l.neighbors.Load(ctx, neighborKey{ID: id, Spec: spec})()
}

// nearby loads the nodes near one parent node's point, with the same
// generation prefetch as neighbor.
func (l *Loaders) nearby(ctx context.Context, id, parentType string, p graph.Point, q graph.NearQuery) (*graph.Page, error) {
	spec := fmt.Sprintf("%s|%g|%s|%d", q.Class, q.Meters, graph.KeyOf(q.Filter), q.First)
	if pf, g := l.prefetchFor(id, "near|"+spec, parentType); pf != nil {
		pf.once.Do(func() {
			bq := q
			seen := map[graph.Point]bool{}
			for _, n := range l.members(g, parentType) {
				if n.Geometry != nil && !seen[n.Geometry.Point] {
					seen[n.Geometry.Point] = true
					bq.Points = append(bq.Points, n.Geometry.Point)
				}
			}
			pages, err := l.store.Near(ctx, bq)
			if err == nil && len(pages) != len(bq.Points) {
				err = fmt.Errorf("store returned %d pages for %d points", len(pages), len(bq.Points))
			}
			pf.err = err
			if err == nil {
				l.recordPages(pages)
				pf.near = make(map[graph.Point]*graph.Page, len(pages))
				for i, pg := range pages {
					pf.near[bq.Points[i]] = pg
				}
			}
		})
		if pf.err != nil {
			return nil, pf.err
		}
		if pg, ok := pf.near[p]; ok {
			return pg, nil
		}
	}
	l.mu.Lock()
	if _, ok := l.nearSpecs[spec]; !ok {
		l.nearSpecs[spec] = q
	}
	l.mu.Unlock()
	return l.near.Load(ctx, nearKey{Lat: p.Lat, Lon: p.Lon, Spec: spec})()
}

type loadersKey struct{}
