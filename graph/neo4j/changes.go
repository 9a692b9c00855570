package neo4j

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/cityhub/cityhub/graph"
)

// The change log: every Apply that changes something adds one
// (:CityhubChangeSet {first, last, at, events}) node, events being a JSON
// array with one [op, id, class, changed, from, rel, to] entry per event
// (sequence numbers first, first+1, … last), and sets the sequence node
// (:CityhubMeta {key: 'seq', seq}) to last, in the Apply's transaction.
// A range index on last (Migrate) serves ChangesSince.

// event is one change in the change set's JSON form.
type event struct {
	Op      graph.Op
	ID      string
	Class   string
	Changed []string
	Edge    *graph.EdgeKey
}

func (e *event) UnmarshalJSON(b []byte) error {
	var row []json.RawMessage
	if err := json.Unmarshal(b, &row); err != nil {
		return err
	}
	if len(row) != 7 {
		return fmt.Errorf("change event has %d fields", len(row))
	}
	var from, rel, to *string
	for i, dst := range []any{&e.Op, &e.ID, &e.Class, &e.Changed, &from, &rel, &to} {
		if err := json.Unmarshal(row[i], dst); err != nil {
			return err
		}
	}
	if from != nil && rel != nil && to != nil {
		e.Edge = &graph.EdgeKey{From: *from, Rel: *rel, To: *to}
	}
	return nil
}

// encodeEvents renders a batch's events as the change set's JSON array
// (by hand: a batch of 500 upserts has a thousand events).
func encodeEvents(ch []graph.Change) (string, error) {
	buf := make([]byte, 0, 160*len(ch))
	buf = append(buf, '[')
	for i, c := range ch {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = appendJSONString(buf, string(c.Op))
		buf = append(buf, ',')
		buf = appendJSONString(buf, c.ID)
		buf = append(buf, ',')
		buf = appendJSONString(buf, c.Class)
		buf = append(buf, ',')
		if c.Changed == nil {
			buf = append(buf, "null"...)
		} else {
			buf = append(buf, '[')
			for j, n := range c.Changed {
				if j > 0 {
					buf = append(buf, ',')
				}
				buf = appendJSONString(buf, n)
			}
			buf = append(buf, ']')
		}
		if c.Edge == nil {
			buf = append(buf, ",null,null,null"...)
		} else {
			for _, s := range []string{c.Edge.From, c.Edge.Rel, c.Edge.To} {
				buf = append(buf, ',')
				buf = appendJSONString(buf, s)
			}
		}
		buf = append(buf, ']')
	}
	return string(append(buf, ']')), nil
}

// appendJSONString appends s as a JSON string literal (valid UTF-8 in,
// as Apply checks IDs and names).
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// ChangesSince returns up to limit changes with Seq > after, in order. It
// returns ErrInvalid for a limit below 1.
func (s *Store) ChangesSince(ctx context.Context, after uint64, limit int) ([]graph.Change, error) {
	if limit < 1 {
		return nil, fmt.Errorf("neo4j: changes: %w: limit must be positive", graph.ErrInvalid)
	}
	var out []graph.Change
	_, err := s.read(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		out = out[:0]
		// each change set past after holds at least one wanted event, so
		// limit sets are enough
		res, err := tx.Run(ctx, "MATCH (c:"+labelChanges+") WHERE c.last > $after RETURN c.first, c.at, c.events ORDER BY c.last LIMIT $limit",
			map[string]any{"after": int64(after), "limit": int64(limit)})
		if err != nil {
			return nil, err
		}
		for res.Next(ctx) && len(out) < limit {
			v := res.Record().Values
			first, _ := v[0].(int64)
			at, _ := v[1].(time.Time)
			text, _ := v[2].(string)
			var evs []event
			if err := json.Unmarshal([]byte(text), &evs); err != nil {
				return nil, fmt.Errorf("change set %d: %w", first, err)
			}
			for i, e := range evs {
				seq := uint64(first) + uint64(i)
				if seq <= after || len(out) >= limit {
					continue
				}
				out = append(out, graph.Change{Seq: seq, Op: e.Op, ID: e.ID, Class: e.Class, Changed: e.Changed, Edge: e.Edge, At: normTime(at)})
			}
		}
		return nil, res.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("neo4j: changes: %w", err)
	}
	return out, nil
}

// LastSeq returns the sequence number of the last committed event.
func (s *Store) LastSeq(ctx context.Context) (uint64, error) {
	v, err := s.read(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "MATCH (m:"+labelMeta+" {key: 'seq'}) RETURN m.seq", nil)
		if err != nil {
			return nil, err
		}
		var seq int64
		if res.Next(ctx) {
			seq, _ = res.Record().Values[0].(int64)
		}
		return seq, res.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("neo4j: last change: %w", err)
	}
	return uint64(v.(int64)), nil
}

// pruneChunk bounds the change sets deleted by one transaction.
const pruneChunk = 5000

// PruneChanges deletes the change sets committed before the given time.
// Change sets are created in sequence order under the sequence node's
// lock, so the oldest kept is the first (by the index on last) at or after
// the time; older ones go in transactions of pruneChunk.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) (uint64, error) {
	v, err := s.read(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "MATCH (m:"+labelMeta+" {key: 'seq'}) "+
			"OPTIONAL MATCH (c:"+labelChanges+") WHERE c.last > 0 AND c.at >= $before "+
			"WITH m, c ORDER BY c.last LIMIT 1 RETURN m.seq, c.first", map[string]any{"before": before.UTC()})
		if err != nil {
			return nil, err
		}
		keep := int64(-1)
		if res.Next(ctx) {
			last, _ := res.Record().Values[0].(int64)
			keep = last + 1
			if first, ok := res.Record().Values[1].(int64); ok {
				keep = first
			}
		}
		return keep, res.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("neo4j: prune changes: %w", err)
	}
	keep := v.(int64)
	if keep < 0 {
		return 1, nil // nothing was ever written
	}
	for {
		n, err := s.write(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
			res, err := tx.Run(ctx, "MATCH (c:"+labelChanges+") WHERE c.last < $keep WITH c LIMIT $chunk DELETE c RETURN count(*)",
				map[string]any{"keep": keep, "chunk": int64(pruneChunk)})
			if err != nil {
				return nil, err
			}
			var n int64
			if res.Next(ctx) {
				n, _ = res.Record().Values[0].(int64)
			}
			return n, res.Err()
		})
		if err != nil {
			return 0, fmt.Errorf("neo4j: prune changes: %w", err)
		}
		if n.(int64) < pruneChunk {
			return uint64(keep), nil
		}
	}
}
