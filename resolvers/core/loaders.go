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
}

type loadersKey struct{}

// NewLoaders builds the loaders for one operation.
func NewLoaders(store Reader, wait time.Duration, capacity int) *Loaders {
	l := &Loaders{specs: map[string]graph.NeighborQuery{}, nearSpecs: map[string]graph.NearQuery{}}
	l.nodes = dataloader.NewBatchedLoader(func(ctx context.Context, ids []string) []*dataloader.Result[*graph.Node] {
		nodes, err := store.Nodes(ctx, ids)
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
			return store.Neighbors(ctx, q)
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
			return store.Near(ctx, q)
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
	l, _ := ctx.Value(loadersKey{}).(*Loaders)
	return l
}

func (l *Loaders) neighbor(ctx context.Context, id string, q graph.NeighborQuery) (*graph.Page, error) {
	spec := fmt.Sprintf("%s|%d|%s|%s|%s|%d|%s", q.Rel, q.Dir, q.Class, graph.KeyOf(q.Filter), graph.OrderKey(q.Order), q.First, q.After)
	l.mu.Lock()
	if _, ok := l.specs[spec]; !ok {
		l.specs[spec] = q
	}
	l.mu.Unlock()
	return l.neighbors.Load(ctx, neighborKey{ID: id, Spec: spec})()
}

func (l *Loaders) nearby(ctx context.Context, p graph.Point, q graph.NearQuery) (*graph.Page, error) {
	spec := fmt.Sprintf("%s|%g|%s|%d", q.Class, q.Meters, graph.KeyOf(q.Filter), q.First)
	l.mu.Lock()
	if _, ok := l.nearSpecs[spec]; !ok {
		l.nearSpecs[spec] = q
	}
	l.mu.Unlock()
	return l.near.Load(ctx, nearKey{Lat: p.Lat, Lon: p.Lon, Spec: spec})()
}
