package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

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
