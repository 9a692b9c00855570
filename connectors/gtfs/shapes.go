package gtfs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cityhub/cityhub/connectors"
)

// shapes.txt holds one row per point of a shape; a shape record gathers
// the points of one shape_id, in shape_pt_sequence order, into a GeoJSON
// LineString.
//
// Rows are usually grouped by shape_id, but GTFS does not require it. A
// first pass over the table counts the points of every shape and finds
// out whether the shapes are contiguous. If they are, a second pass
// streams them, holding one shape at a time. If not, the shapes are read
// in groups of at most max_shape_points points, one pass per group, so
// memory stays bounded whatever the order; a shape larger than
// max_shape_points alone becomes an error record.

// shapeCols are the column indexes of shapes.txt.
type shapeCols struct{ id, lat, lon, seq int }

func shapeColumns(t *table) (shapeCols, error) {
	c := shapeCols{t.column("shape_id"), t.column("shape_pt_lat"), t.column("shape_pt_lon"), t.column("shape_pt_sequence")}
	for _, x := range []struct {
		i    int
		name string
	}{{c.id, "shape_id"}, {c.lat, "shape_pt_lat"}, {c.lon, "shape_pt_lon"}, {c.seq, "shape_pt_sequence"}} {
		if x.i < 0 {
			return c, fmt.Errorf("%s has no column %s", t.file, x.name)
		}
	}
	return c, nil
}

// shapeScan is what the first pass learns.
type shapeScan struct {
	order      []string       // shape ids in order of first appearance
	counts     map[string]int // rows per shape id
	total      int            // rows with a shape id
	contiguous bool           // every shape's rows are adjacent
}

type shapePoint struct {
	seq      int64
	lat, lon float64
	line     int
}

// shapeAcc gathers one shape.
type shapeAcc struct {
	id    string
	index int // order of first appearance
	first connectors.Position
	pts   []shapePoint
	bad   *row // first malformed row of the shape
}

// eachRow runs fn on every row of shapes.txt.
func (s *Source) eachShapeRow(ctx context.Context, f *feed, fn func(t *table, c shapeCols, r row) error) error {
	t, rc, err := f.openTable("shapes", s.cfg.MaxRecordBytes)
	if err != nil {
		return err
	}
	defer rc.Close()
	c, err := shapeColumns(t)
	if err != nil {
		return fmt.Errorf("gtfs: %s: %w", f.name, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := t.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gtfs: %s: %w", f.name, err)
		}
		if err := fn(t, c, r); err != nil {
			return err
		}
	}
}

// scanShapes is the first pass.
func (s *Source) scanShapes(ctx context.Context, f *feed) (*shapeScan, error) {
	sc := &shapeScan{counts: map[string]int{}, contiguous: true}
	cur := ""
	err := s.eachShapeRow(ctx, f, func(_ *table, c shapeCols, r row) error {
		id := shapeID(c, r)
		if id == "" {
			return nil
		}
		if id != cur {
			if _, seen := sc.counts[id]; seen {
				sc.contiguous = false
			} else {
				sc.order = append(sc.order, id)
			}
			cur = id
		}
		sc.counts[id]++
		sc.total++
		return nil
	})
	return sc, err
}

// groups splits the shapes into groups read in one pass each: one group
// when the shapes are contiguous (streamed) or all fit in maxPoints.
func (sc *shapeScan) groups(maxPoints int) [][]string {
	if sc.contiguous || sc.total <= maxPoints {
		return [][]string{sc.order}
	}
	var out [][]string
	var cur []string
	sum := 0
	for _, id := range sc.order {
		n := sc.counts[id]
		if n > maxPoints {
			n = 0 // not gathered: it becomes an error record
		}
		if sum+n > maxPoints && len(cur) > 0 {
			out = append(out, cur)
			cur, sum = nil, 0
		}
		cur = append(cur, id)
		sum += n
	}
	return append(out, cur)
}

// readShapes emits one record per shape.
func (s *Source) readShapes(ctx context.Context, f *feed, emit func(connectors.Record) error) error {
	sc, err := s.scanShapes(ctx, f)
	if err != nil {
		return err
	}
	for gi, g := range sc.groups(s.cfg.MaxShapePoints) {
		if err := s.shapePass(ctx, f, sc, g, gi == 0, emit); err != nil {
			return err
		}
	}
	return nil
}

// shapeIndex reads every shape into memory for the trips join: shape id
// to GeoJSON LineString. Shapes that are malformed are left out.
func (s *Source) shapeIndex(ctx context.Context, f *feed) (map[string]json.RawMessage, error) {
	sc, err := s.scanShapes(ctx, f)
	if err != nil {
		return nil, err
	}
	if sc.total > s.cfg.MaxShapePoints {
		return nil, fmt.Errorf("gtfs: %s: shapes.txt has %d points, more than max_shape_points (%d) that the trips join holds in memory", f.name, sc.total, s.cfg.MaxShapePoints)
	}
	idx := make(map[string]json.RawMessage, len(sc.order))
	err = s.shapePass(ctx, f, sc, sc.order, false, func(rec connectors.Record) error {
		if rec.Err == nil {
			idx[rec.Fields["shape_id"].(string)] = rec.Geometry
		}
		return nil
	})
	return idx, err
}

// shapePass reads shapes.txt once and emits the shapes of ids. Contiguous
// shapes are emitted as soon as they end; otherwise the group is held and
// emitted at the end, in order of first appearance. Rows that belong to
// no shape (unparsable, or without shape_id) are emitted as error records
// when rowErrors is set.
func (s *Source) shapePass(ctx context.Context, f *feed, sc *shapeScan, ids []string, rowErrors bool, emit func(connectors.Record) error) error {
	want := make(map[string]*shapeAcc, len(ids))
	for _, id := range ids {
		want[id] = nil
	}
	index := make(map[string]int, len(sc.order))
	for i, id := range sc.order {
		index[id] = i
	}
	var cur *shapeAcc
	var held []*shapeAcc
	err := s.eachShapeRow(ctx, f, func(_ *table, c shapeCols, r row) error {
		id := shapeID(c, r)
		if id == "" {
			if r.err == nil {
				r.err = errors.New("shape_id is empty")
			}
			if !rowErrors {
				return nil
			}
			return emit(connectors.Record{Pos: r.pos, Raw: r.raw, Err: r.err})
		}
		acc, wanted := want[id]
		if !wanted {
			return nil
		}
		if acc == nil {
			if sc.contiguous && cur != nil {
				if err := emit(s.shapeRecord(f, sc, cur)); err != nil {
					return err
				}
				delete(want, cur.id) // its rows are over
			}
			acc = &shapeAcc{id: id, index: index[id], first: r.pos}
			acc.first.Index = acc.index
			want[id] = acc
			cur = acc
			if !sc.contiguous {
				held = append(held, acc)
			}
		}
		if acc.bad != nil || sc.counts[id] > s.cfg.MaxShapePoints {
			return nil
		}
		err := r.err
		var p shapePoint
		if err == nil {
			p, err = parsePoint(c, r)
		}
		if err != nil {
			bad := row{pos: r.pos, raw: r.raw, err: err}
			acc.bad = &bad
			acc.pts = nil
			return nil
		}
		acc.pts = append(acc.pts, p)
		return nil
	})
	if err != nil {
		return err
	}
	if sc.contiguous {
		if cur != nil {
			return emit(s.shapeRecord(f, sc, cur))
		}
		return nil
	}
	for _, acc := range held {
		if err := emit(s.shapeRecord(f, sc, acc)); err != nil {
			return err
		}
	}
	return nil
}

// shapeID returns the shape a row belongs to, even when the row is
// otherwise malformed; "" when it names none.
func shapeID(c shapeCols, r row) string {
	if c.id >= len(r.cells) {
		return ""
	}
	return strings.TrimSpace(r.cells[c.id])
}

func parsePoint(c shapeCols, r row) (shapePoint, error) {
	p := shapePoint{line: r.pos.Line}
	seq, err := strconv.ParseInt(strings.TrimSpace(r.values[c.seq]), 10, 64)
	if err != nil || seq < 0 {
		return p, fmt.Errorf("shape_pt_sequence %q is not a non-negative integer", r.values[c.seq])
	}
	p.seq = seq
	if p.lat, err = coordinate(r.values[c.lat], "shape_pt_lat", 90); err != nil {
		return p, err
	}
	if p.lon, err = coordinate(r.values[c.lon], "shape_pt_lon", 180); err != nil {
		return p, err
	}
	return p, nil
}

func coordinate(s, name string, limit float64) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s %q is not a number", name, s)
	}
	if v < -limit || v > limit {
		return 0, fmt.Errorf("%s %s is out of range [-%g, %g]", name, s, limit, limit)
	}
	return v, nil
}

// shapeRecord turns a gathered shape into its record.
func (s *Source) shapeRecord(f *feed, sc *shapeScan, acc *shapeAcc) connectors.Record {
	rec := connectors.Record{Pos: acc.first}
	n := sc.counts[acc.id]
	switch {
	case acc.bad != nil:
		rec.Pos, rec.Raw = acc.bad.pos, acc.bad.raw
		rec.Err = fmt.Errorf("shape %q is left out: %v", acc.id, acc.bad.err)
		return rec
	case n > s.cfg.MaxShapePoints:
		rec.Err = fmt.Errorf("shape %q has %d points, more than max_shape_points (%d)", acc.id, n, s.cfg.MaxShapePoints)
		return rec
	case len(acc.pts) < 2:
		rec.Err = fmt.Errorf("shape %q has %d point(s); a line needs at least 2", acc.id, len(acc.pts))
		return rec
	}
	slices.SortStableFunc(acc.pts, func(a, b shapePoint) int { return cmp.Compare(a.seq, b.seq) })
	for i := 1; i < len(acc.pts); i++ {
		if a, b := acc.pts[i-1], acc.pts[i]; a.seq == b.seq {
			rec.Err = fmt.Errorf("shape %q: shape_pt_sequence %d appears twice (lines %d and %d)", acc.id, a.seq, a.line, b.line)
			return rec
		}
	}
	rec.Geometry = lineString(acc.pts)
	rec.Fields = map[string]any{"shape_id": acc.id, "feed_id": s.cfg.FeedID, "point_count": int64(len(acc.pts))}
	if f.updated != "" {
		rec.Fields["feed_updated_at"] = f.updated
	}
	acc.pts = nil
	return rec
}

// lineString renders points as a GeoJSON LineString ([lon, lat] pairs).
func lineString(pts []shapePoint) json.RawMessage {
	b := make([]byte, 0, 40+len(pts)*28)
	b = append(b, `{"type":"LineString","coordinates":[`...)
	for i, p := range pts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendFloat(b, p.lon, 'f', -1, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, p.lat, 'f', -1, 64)
		b = append(b, ']')
	}
	return append(b, "]}"...)
}
