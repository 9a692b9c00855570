package connectors

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// SourceID returns the ID of a source's Source node.
func SourceID(code string) string { return ID("source", JournalSource, escapeKey(code)) }

// CheckFreshness writes the health of every source a connector with a
// freshness reads: its Source node says whether the source is stale (one
// of its connectors has not succeeded within its freshness) and when a
// connector last succeeded. The nodes are rewritten on every check; a
// store writes, and publishes, only the ones that changed, so a source
// going stale or fresh again is one change event (SOURCE_STATE). Each
// Source node is owned by this check alone, so replicas running it
// concurrently write the same values.
func CheckFreshness(ctx context.Context, t interface {
	Applier
	NodeReader
}, conns []*Connector, now time.Time) ([]graph.Change, error) {
	type health struct {
		stale       bool
		lastSuccess time.Time
	}
	bySource := map[string]*health{}
	for _, c := range conns {
		if c.Freshness <= 0 {
			continue
		}
		st, err := ReadState(ctx, t, c.Name)
		if err != nil {
			return nil, err
		}
		h := bySource[c.Source]
		if h == nil {
			h = &health{}
			bySource[c.Source] = h
		}
		h.stale = h.stale || Stale(c.Freshness, st, now)
		if st.LastSuccessAt.After(h.lastSuccess) {
			h.lastSuccess = st.LastSuccessAt
		}
	}
	if len(bySource) == 0 {
		return nil, nil
	}
	codes := make([]string, 0, len(bySource))
	for code := range bySource {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	var b graph.Batch
	for _, code := range codes {
		h := bySource[code]
		props := map[string]any{"code": code, "name": code, "stale": h.stale}
		putTime(props, "lastSuccessAt", h.lastSuccess)
		b.Nodes = append(b.Nodes, graph.Node{ID: SourceID(code), Class: "Source", Props: props,
			Prov: graph.Provenance{Source: JournalSource, SourceKey: code, Connector: "freshness"}})
	}
	ch, err := t.Apply(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("write source health: %w", err)
	}
	return ch, nil
}
