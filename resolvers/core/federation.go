package core

import (
	"context"
	"fmt"

	"github.com/cityhub/cityhub/graph"
)

// Entities resolves a batch of Apollo Federation entity representations of
// one class (the generated findMany<Class>ByIDs resolvers call it with
// every representation the gateway sent for that class): the nodes with
// these IDs, in order, nil where an ID is unknown or names a node that is
// not of the class.
//
// The batch costs one store call (one per BatchMax distinct IDs), whatever
// its size: it does not go through the time-windowed node loader, whose
// batches a slow scheduler can split. The nodes are primed into the
// operation's loaders and recorded as one generation, so that a relation
// field selected on them is one store call for all of them too.
//
// Errors: graph.ErrInvalid for an unknown class; the store's errors.
func (e *Engine) Entities(ctx context.Context, class string, ids []string) ([]*graph.Node, error) {
	c, err := e.class(class)
	if err != nil {
		return nil, err
	}
	unique := make([]string, 0, len(ids))
	found := make(map[string]*graph.Node, len(ids))
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			found[id] = nil
			unique = append(unique, id)
		}
	}
	l := e.loaders(ctx)
	size := e.cfg.BatchMax
	if size <= 0 {
		size = len(unique)
	}
	for start := 0; start < len(unique); start += size {
		chunk := unique[start:min(start+size, len(unique))]
		nodes, err := e.store.Nodes(ctx, chunk)
		if err != nil {
			return nil, fmt.Errorf("entities %s: %w", class, err)
		}
		if len(nodes) != len(chunk) {
			return nil, fmt.Errorf("entities %s: store returned %d nodes for %d ids", class, len(nodes), len(chunk))
		}
		l.record(nodes)
		for i, n := range nodes {
			l.nodes.Prime(ctx, chunk[i], n)
			found[chunk[i]] = n
		}
	}
	out := make([]*graph.Node, len(ids))
	for i, id := range ids {
		n := found[id]
		if n == nil {
			continue
		}
		if nc := e.ont.Class(n.Class); nc != nil && nc.IsA(c) {
			out[i] = n
		}
	}
	return out, nil
}
