package events

import (
	"context"
	"slices"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// coalesce merges the events from in that concern one node (or one edge)
// within a window opened by the first of them into one event with the
// latest state, and sends the merged events in the order of their last
// change. It closes the returned channel when in is closed (after sending
// what it holds) or ctx ends.
func coalesce(ctx context.Context, in <-chan *Event, window time.Duration) <-chan *Event {
	out := make(chan *Event)
	go func() {
		defer close(out)
		merged := map[string]*Event{}
		flush := func() bool {
			evs := make([]*Event, 0, len(merged))
			for _, ev := range merged {
				evs = append(evs, ev)
			}
			clear(merged)
			slices.SortFunc(evs, func(a, b *Event) int { return cmpSeq(a.Seq, b.Seq) })
			for _, ev := range evs {
				select {
				case out <- ev:
				case <-ctx.Done():
					return false
				}
			}
			return true
		}
		timer := time.NewTimer(window)
		timer.Stop()
		for {
			var tick <-chan time.Time
			if len(merged) > 0 {
				tick = timer.C
			}
			select {
			case ev, ok := <-in:
				if !ok {
					flush()
					return
				}
				if len(merged) == 0 {
					timer.Reset(window)
				}
				k := coalesceKey(ev)
				merged[k] = merge(merged[k], ev)
			case <-tick:
				if !flush() {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func coalesceKey(ev *Event) string {
	if ev.Edge != nil {
		return "e\x00" + ev.Edge.From + "\x00" + ev.Edge.Rel + "\x00" + ev.Edge.To + "\x00" + ev.ID
	}
	return "n\x00" + ev.ID
}

// merge folds next into prev (nil for the first): the latest state, the
// union of the changed properties, and an operation that says what the
// window did as a whole: created then updated is a creation, anything
// then deleted a deletion, deleted then created an update.
func merge(prev, next *Event) *Event {
	if prev == nil {
		return next // shared and not modified: a copy is made only to merge
	}
	m := *next
	m.Merged = prev.Merged + next.Merged
	switch {
	case prev.Op == graph.OpCreate && next.Op == graph.OpUpdate:
		m.Op = graph.OpCreate
	case prev.Op == graph.OpDelete && next.Op == graph.OpCreate:
		m.Op = graph.OpUpdate
	}
	if m.Op != graph.OpDelete && len(prev.Changed) > 0 {
		ch := slices.Clone(prev.Changed)
		for _, c := range next.Changed {
			if !slices.Contains(ch, c) {
				ch = append(ch, c)
			}
		}
		m.Changed = ch
	}
	return &m
}
