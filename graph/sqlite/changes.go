package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// ChangesSince returns up to limit changes with Seq > after, in order. It
// returns ErrInvalid for a limit below 1.
func (s *Store) ChangesSince(ctx context.Context, after uint64, limit int) ([]graph.Change, error) {
	if limit < 1 {
		return nil, fmt.Errorf("sqlite: changes: %w: limit must be positive", graph.ErrInvalid)
	}
	rows, err := s.query(ctx, nil, `SELECT seq, op, id, class, changed, edge_from, edge_rel, edge_to, at
		FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: changes: %w", err)
	}
	defer rows.Close()
	var out []graph.Change
	for rows.Next() {
		var c graph.Change
		var seq int64
		var op, at string
		var changed, ef, er, et sql.NullString
		if err := rows.Scan(&seq, &op, &c.ID, &c.Class, &changed, &ef, &er, &et, &at); err != nil {
			return nil, fmt.Errorf("sqlite: changes: %w", err)
		}
		c.Seq, c.Op = uint64(seq), graph.Op(op)
		if changed.Valid {
			if err := json.Unmarshal([]byte(changed.String), &c.Changed); err != nil {
				return nil, fmt.Errorf("sqlite: changes: seq %d: %w", seq, err)
			}
		}
		if ef.Valid {
			c.Edge = &graph.EdgeKey{From: ef.String, Rel: er.String, To: et.String}
		}
		c.At = parseNullTime(sql.NullString{String: at, Valid: true})
		out = append(out, c)
	}
	return out, rows.Err()
}

// LastSeq returns the sequence number of the last committed event.
func (s *Store) LastSeq(ctx context.Context) (uint64, error) {
	var seq int64
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'seq'`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite: last change: %w", err)
	}
	return uint64(seq), nil
}

// PruneChanges deletes the events committed before the given time. One
// writer at a time appends events in sequence order, so the oldest event
// kept is the first at or after the time, and the scan for it reads the
// rows it deletes.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) (uint64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune changes: begin: %w", err)
	}
	defer tx.Rollback()
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'seq'`).Scan(&last); err != nil {
		return 0, fmt.Errorf("sqlite: prune changes: %w", err)
	}
	keep := last + 1
	err = tx.QueryRowContext(ctx, `SELECT seq FROM changes WHERE at >= ? ORDER BY seq LIMIT 1`, graph.FormatTime(before)).Scan(&keep)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sqlite: prune changes: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE seq < ?`, keep); err != nil {
		return 0, fmt.Errorf("sqlite: prune changes: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: prune changes: commit: %w", err)
	}
	return uint64(keep), nil
}
