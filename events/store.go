package events

import (
	"context"
	"log/slog"

	"github.com/cityhub/cityhub/graph"
)

// Publisher takes the change events of committed batches: a Hub, or a
// Bus that carries them to the hub of every replica.
type Publisher interface {
	Publish(ctx context.Context, b Batch) error
}

// Publish offers b to the hub (a Hub is its own in-process Publisher).
func (h *Hub) Publish(ctx context.Context, b Batch) error { return h.Offer(ctx, b) }

// Store is a graph.Store whose Apply publishes the change events of every
// committed batch: every writer (connectors, pushes, mutations) goes
// through it. Use the wrapped store itself for its optional interfaces
// (graph.ChangeLog, graph.Pinger).
type Store struct {
	graph.Store
	pub Publisher
	log *slog.Logger
}

// Publishing wraps s so that its commits are published to pub.
func Publishing(s graph.Store, pub Publisher, log *slog.Logger) *Store {
	if log == nil {
		log = slog.Default()
	}
	return &Store{Store: s, pub: pub, log: log}
}

// Apply commits b, then publishes its events. A failed publish does not
// fail the commit: hubs read events no one delivered from the change log.
func (s *Store) Apply(ctx context.Context, b graph.Batch) ([]graph.Change, error) {
	var deleted map[string]*graph.Node
	if len(b.DeleteNodes) > 0 {
		// the state before, so that subscription filters can judge the deletion
		if ns, err := s.Store.Nodes(ctx, b.DeleteNodes); err == nil {
			deleted = make(map[string]*graph.Node, len(ns))
			for _, n := range ns {
				if n != nil {
					deleted[n.ID] = n
				}
			}
		}
	}
	ch, err := s.Store.Apply(ctx, b)
	if err != nil || len(ch) == 0 {
		return ch, err
	}
	if err := s.pub.Publish(context.WithoutCancel(ctx), Batch{Changes: ch, Deleted: deleted}); err != nil {
		s.log.WarnContext(ctx, "change events not published; subscribers get them from the change log", "first", ch[0].Seq, "last", ch[len(ch)-1].Seq, "err", err)
	}
	return ch, nil
}
