package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// provCols is the stored form of an edge's provenance (edges keep it in
// columns), without IngestedAt.
type provCols struct {
	source, sourceKey, connector, run, fetched, srcUpdated, validFrom, validTo, sources sql.NullString
}

// sameContent reports whether two provenances describe the same record;
// the bookkeeping of a run (connector, run, fetched-at, source
// updated-at) does not count.
func (p provCols) sameContent(o provCols) bool {
	return p.source == o.source && p.sourceKey == o.sourceKey && p.validFrom == o.validFrom &&
		p.validTo == o.validTo && p.sources == o.sources
}

// changedNames lists the provenance fields that differ, by API name.
func (p provCols) changedNames(o provCols) []string {
	var out []string
	if p.source != o.source {
		out = append(out, "_source")
	}
	if p.sourceKey != o.sourceKey {
		out = append(out, "_sourceKey")
	}
	if p.sources != o.sources {
		out = append(out, "_sources")
	}
	if p.validFrom != o.validFrom {
		out = append(out, "_validFrom")
	}
	if p.validTo != o.validTo {
		out = append(out, "_validTo")
	}
	return out
}

// olderThan reports whether a record with source update time p must not
// overwrite one with stored time o: the stored time is known and later
// (an unknown incoming time counts as older than any known one).
func (p provCols) olderThan(stored provCols) bool {
	return stored.srcUpdated.Valid && (!p.srcUpdated.Valid || stored.srcUpdated.String > p.srcUpdated.String)
}

// newerThan reports whether p carries a later source update time than o.
func (p provCols) newerThan(o provCols) bool {
	return p.srcUpdated.Valid && (!o.srcUpdated.Valid || p.srcUpdated.String > o.srcUpdated.String)
}

func encodeProv(p graph.Provenance) (provCols, error) {
	pc := provCols{
		source:     nullString(p.Source),
		sourceKey:  nullString(p.SourceKey),
		connector:  nullString(p.Connector),
		run:        nullString(p.Run),
		fetched:    nullTime(p.FetchedAt),
		srcUpdated: nullTime(p.SrcUpdatedAt),
		validFrom:  nullTime(p.ValidFrom),
		validTo:    nullTime(p.ValidTo),
	}
	for _, s := range []string{p.Source, p.SourceKey, p.Connector, p.Run} {
		if !utf8.ValidString(s) {
			return pc, errors.New("provenance text is not valid UTF-8")
		}
	}
	if len(p.Sources) > 0 {
		for _, s := range p.Sources {
			if !utf8.ValidString(s) {
				return pc, errors.New("provenance sources are not valid UTF-8")
			}
		}
		raw, _ := json.Marshal(p.Sources)
		pc.sources = sql.NullString{String: string(raw), Valid: true}
	}
	return pc, nil
}

func nullFloat(f float64) sql.NullFloat64 { return sql.NullFloat64{Float64: f, Valid: true} }

type encNode struct {
	n      *graph.Node
	props  []byte // JSONB
	search sql.NullString
	geo    *graph.Geometry  // as stored; nil for none
	prov   graph.Provenance // as stored (normProv), IngestedAt unset
}

type encEdge struct {
	e     *graph.Edge
	rel   *ontology.Relation
	props []byte // JSONB; nil for no properties
	prov  provCols
}

// stored is what Apply knows of a node in the database.
type stored struct {
	rid   int64
	class string
	props []byte
	geo   *graph.Geometry
	prov  graph.Provenance
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("sqlite: apply: %w: %s", graph.ErrInvalid, fmt.Sprintf(format, args...))
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("sqlite: apply: %w: %s", graph.ErrConflict, fmt.Sprintf(format, args...))
}

// encode validates the batch against the ontology without touching the
// database.
func (s *Store) encode(b graph.Batch) ([]encNode, []encEdge, error) {
	nodes := make([]encNode, len(b.Nodes))
	for i := range b.Nodes {
		n := &b.Nodes[i]
		if n.ID == "" || !utf8.ValidString(n.ID) {
			return nil, nil, invalid("node %d: empty or invalid ID", i)
		}
		c := s.ont.Class(n.Class)
		if c == nil {
			return nil, nil, invalid("node %q: unknown class %q", n.ID, n.Class)
		}
		if c.Abstract {
			return nil, nil, invalid("node %q: class %s is abstract", n.ID, n.Class)
		}
		props, search, err := encodeProps(s.classProps[c.Name], n.Props)
		if err != nil {
			return nil, nil, invalid("node %q: %v", n.ID, err)
		}
		g, err := graph.NormalizeGeometry(c, n.Geometry)
		if err != nil {
			return nil, nil, invalid("node %q: %v", n.ID, err)
		}
		if err := graph.CheckProvenanceText(n.Prov); err != nil {
			return nil, nil, invalid("node %q: %v", n.ID, err)
		}
		p := normProv(n.Prov)
		p.IngestedAt = time.Time{}
		nodes[i] = encNode{n: n, props: props, search: nullString(search), geo: g, prov: p}
	}
	edges := make([]encEdge, len(b.Edges))
	for i := range b.Edges {
		e := &b.Edges[i]
		rel := s.ont.Relation(e.Rel)
		if rel == nil {
			return nil, nil, invalid("edge %s: unknown relation %q", edgeName(e.Key()), e.Rel)
		}
		if e.From == "" || e.To == "" {
			return nil, nil, invalid("edge %s: empty node ID", edgeName(e.Key()))
		}
		props, _, err := encodeProps(s.relProps[rel.Name], e.Props)
		if err != nil {
			return nil, nil, invalid("edge %s: %v", edgeName(e.Key()), err)
		}
		p, err := encodeProv(e.Prov)
		if err != nil {
			return nil, nil, invalid("edge %s: %v", edgeName(e.Key()), err)
		}
		ee := encEdge{e: e, rel: rel, prov: p}
		if len(props) > 1 { // more than an empty object
			ee.props = props
		}
		edges[i] = ee
	}
	for _, k := range b.DeleteEdges {
		if s.ont.Relation(k.Rel) == nil {
			return nil, nil, invalid("edge delete %s: unknown relation %q", edgeName(k), k.Rel)
		}
	}
	return nodes, edges, nil
}

func edgeName(k graph.EdgeKey) string { return fmt.Sprintf("(%q)-[%s]->(%q)", k.From, k.Rel, k.To) }

// Apply commits the batch in one transaction: node upserts, edge upserts,
// edge deletes, node deletes. See graph.Store for the contract; errors wrap
// graph.ErrInvalid (the batch does not fit the ontology) or
// graph.ErrConflict (it contradicts stored data: a node ID reused with
// another class, an edge between classes the relation does not allow).
func (s *Store) Apply(ctx context.Context, b graph.Batch) ([]graph.Change, error) {
	if b.Len() == 0 {
		return nil, nil
	}
	nodes, edges, err := s.encode(b)
	if err != nil {
		return nil, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: apply: begin: %w", err)
	}
	defer tx.Rollback()
	a := &applier{s: s, tx: tx, ctx: ctx, now: s.now().UTC().Truncate(time.Microsecond)}
	if err := a.run(b, nodes, edges); err != nil {
		return nil, err
	}
	if len(a.changes) == 0 && !a.wrote {
		return nil, nil // nothing written: let the deferred rollback end the transaction
	}
	if len(a.changes) > 0 {
		if err := a.saveChanges(); err != nil {
			return nil, fmt.Errorf("sqlite: apply: change log: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = 'seq'`, int64(a.seq)); err != nil {
			return nil, fmt.Errorf("sqlite: apply: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: apply: commit: %w", err)
	}
	return a.changes, nil
}

// applier carries the state of one Apply.
type applier struct {
	s       *Store
	tx      *sql.Tx
	ctx     context.Context
	now     time.Time
	seq     uint64
	known   map[string]*stored // nodes the batch names; nil value: absent
	changes []graph.Change
	wrote   bool
	stmts   map[string]*sql.Stmt
}

func (a *applier) stmt(q string) (*sql.Stmt, error) {
	if st := a.stmts[q]; st != nil {
		return st, nil
	}
	var st *sql.Stmt
	if ws := a.s.wstmts[q]; ws != nil {
		st = a.tx.StmtContext(a.ctx, ws)
	} else {
		var err error
		if st, err = a.tx.PrepareContext(a.ctx, q); err != nil {
			return nil, err
		}
	}
	if a.stmts == nil {
		a.stmts = map[string]*sql.Stmt{}
	}
	a.stmts[q] = st
	return st, nil
}

func (a *applier) exec(q string, args ...any) (sql.Result, error) {
	st, err := a.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(a.ctx, args...)
}

// emit records a change event; saveChanges writes them all at the end.
func (a *applier) emit(op graph.Op, id, class string, changed []string, edge *graph.EdgeKey) {
	a.seq++
	a.changes = append(a.changes, graph.Change{Seq: a.seq, Op: op, ID: id, Class: class, Changed: changed, Edge: edge, At: a.now})
	a.wrote = true
}

// saveChanges appends the batch's events to the change log in one
// statement: a JSON array of [seq, op, id, class, changed, from, rel, to].
func (a *applier) saveChanges() error {
	if len(a.changes) == 0 {
		return nil
	}
	buf := make([]byte, 0, 96*len(a.changes))
	buf = append(buf, '[')
	for i, c := range a.changes {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = strconv.AppendUint(buf, c.Seq, 10)
		for _, s := range []string{string(c.Op), c.ID, c.Class} {
			buf = append(buf, ',')
			buf = appendJSONString(buf, s)
		}
		buf = append(buf, ',')
		if len(c.Changed) == 0 {
			buf = append(buf, "null"...)
		} else {
			raw, _ := json.Marshal(c.Changed)
			buf = appendJSONString(buf, string(raw))
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
	buf = append(buf, ']')
	_, err := a.exec(sqlInsChanges, string(buf), graph.FormatTime(a.now))
	return err
}

func (a *applier) run(b graph.Batch, nodes []encNode, edges []encEdge) error {
	var seq int64
	if err := a.tx.QueryRowContext(a.ctx, `SELECT value FROM meta WHERE key = 'seq'`).Scan(&seq); err != nil {
		return fmt.Errorf("sqlite: apply: read sequence: %w", err)
	}
	a.seq = uint64(seq)
	if err := a.load(b); err != nil {
		return fmt.Errorf("sqlite: apply: load: %w", err)
	}
	for i := range nodes {
		if err := a.upsertNode(&nodes[i]); err != nil {
			return err
		}
	}
	for i := range edges {
		if err := a.upsertEdge(&edges[i]); err != nil {
			return err
		}
	}
	for _, k := range b.DeleteEdges {
		if err := a.deleteEdge(k); err != nil {
			return err
		}
	}
	for _, id := range b.DeleteNodes {
		if err := a.deleteNode(id); err != nil {
			return err
		}
	}
	return nil
}

// load reads the stored state of every node the batch names.
func (a *applier) load(b graph.Batch) error {
	ids := make([]string, 0, len(b.Nodes)+2*len(b.Edges)+len(b.DeleteNodes))
	for i := range b.Nodes {
		ids = append(ids, b.Nodes[i].ID)
	}
	for i := range b.Edges {
		ids = append(ids, b.Edges[i].From, b.Edges[i].To)
	}
	for _, k := range b.DeleteEdges {
		ids = append(ids, k.From)
	}
	ids = append(ids, b.DeleteNodes...)
	ids = dedupe(ids)
	a.known = make(map[string]*stored, len(ids))
	rows, err := a.tx.QueryContext(a.ctx, `SELECT rid, id, class, props, doc FROM nodes WHERE id IN (SELECT value FROM json_each(?))`, jsonList(ids))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		st := &stored{}
		var id, doc string
		if err := rows.Scan(&st.rid, &id, &st.class, &st.props, &doc); err != nil {
			return err
		}
		if st.geo, st.prov, err = decodeDoc(doc); err != nil {
			return fmt.Errorf("node %q: %w", id, err)
		}
		a.known[id] = st
	}
	return rows.Err()
}

// Statements of the write path, prepared once on the writer connection.
const (
	sqlInsChanges = `INSERT INTO changes (seq, op, id, class, changed, edge_from, edge_rel, edge_to, at)
		SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, ?2 FROM json_each(?1)`
	sqlInsNode = `INSERT INTO nodes (id, class, props, doc, search, lat, lon, geometry, source, fetched_at, ingested_at, src_updated_at, valid_from, valid_to)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlTouchNode = `UPDATE nodes SET doc = ?, fetched_at = ?, src_updated_at = ? WHERE rid = ?`
	sqlUpdNode   = `UPDATE nodes SET props = ?, doc = ?, search = ?, lat = ?, lon = ?, geometry = ?, source = ?, fetched_at = ?,
			ingested_at = ?, src_updated_at = ?, valid_from = ?, valid_to = ? WHERE rid = ?`
	sqlDelRtree = `DELETE FROM nodes_rtree WHERE rid = ?`
	sqlPutRtree = `INSERT OR REPLACE INTO nodes_rtree (rid, min_cls, max_cls, min_lat, max_lat, min_lon, max_lon) VALUES (?, ?, ?, ?, ?, ?, ?)`
	sqlSelEdge  = `SELECT props, source, source_key, connector, run, fetched_at, src_updated_at, valid_from, valid_to, sources
		FROM edges WHERE from_id = ? AND rel = ? AND to_id = ?`
	sqlPutEdge = `INSERT OR REPLACE INTO edges (from_id, rel, to_id, from_rid, to_rid, props, source, source_key, connector, run, fetched_at, ingested_at,
			src_updated_at, valid_from, valid_to, sources) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlTouchEdge = `UPDATE edges SET connector = ?, run = ?, fetched_at = ?, src_updated_at = ? WHERE from_id = ? AND rel = ? AND to_id = ?`
	sqlDelEdge   = `DELETE FROM edges WHERE from_id = ? AND rel = ? AND to_id = ?`
	sqlNodeEdges = `SELECT e.from_id, e.rel, e.to_id, n.class FROM edges e JOIN nodes n ON n.rid = e.from_rid WHERE e.from_id = ?1
		UNION SELECT e.from_id, e.rel, e.to_id, n.class FROM edges e JOIN nodes n ON n.rid = e.from_rid WHERE e.to_id = ?1
		ORDER BY 1, 2, 3`
	sqlDelNode      = `DELETE FROM nodes WHERE rid = ?`
	sqlDelEdgesFrom = `DELETE FROM edges WHERE from_id = ?`
	sqlDelEdgesTo   = `DELETE FROM edges WHERE to_id = ?`
)

var writerStatements = []string{sqlDelEdge, sqlDelNode, sqlDelRtree, sqlInsChanges, sqlInsNode, sqlNodeEdges, sqlPutEdge, sqlPutRtree, sqlSelEdge, sqlTouchEdge, sqlTouchNode, sqlUpdNode, sqlDelEdgesFrom, sqlDelEdgesTo}

func (a *applier) upsertNode(en *encNode) error {
	n := en.n
	old := a.known[n.ID]
	g, p := en.geo, en.prov
	if old != nil {
		if old.class != n.Class {
			return conflict("node %q is stored as a %s, not a %s", n.ID, old.class, n.Class)
		}
		// older data never overwrites newer; an unknown time is older than any
		if graph.OlderThan(p.SrcUpdatedAt, old.prov.SrcUpdatedAt) {
			return nil
		}
		if bytes.Equal(old.props, en.props) && sameGeometry(old.geo, g) && graph.SameRecord(old.prov, p) {
			if p.SrcUpdatedAt.After(old.prov.SrcUpdatedAt) {
				// same data, fresher source time: keep the time so that
				// older records stay rejected; no event.
				keep := p
				keep.IngestedAt = old.prov.IngestedAt
				if _, err := a.exec(sqlTouchNode, encodeDoc(g, keep), nullTime(p.FetchedAt), nullTime(p.SrcUpdatedAt), old.rid); err != nil {
					return fmt.Errorf("sqlite: apply: node %q: %w", n.ID, err)
				}
				old.prov = keep
				a.wrote = true
			}
			return nil
		}
	}
	p.IngestedAt = a.now
	var lat, lon sql.NullFloat64
	var geojson sql.NullString
	if g != nil {
		lat, lon = nullFloat(g.Point.Lat), nullFloat(g.Point.Lon)
		geojson = nullString(g.GeoJSON)
	}
	cols := []any{en.props, encodeDoc(g, p), en.search, lat, lon, geojson, nullString(p.Source), nullTime(p.FetchedAt),
		nullTime(p.IngestedAt), nullTime(p.SrcUpdatedAt), nullTime(p.ValidFrom), nullTime(p.ValidTo)}
	if old == nil {
		res, err := a.exec(sqlInsNode, append([]any{n.ID, n.Class}, cols...)...)
		if err != nil {
			return fmt.Errorf("sqlite: apply: node %q: %w", n.ID, err)
		}
		rid, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("sqlite: apply: node %q: %w", n.ID, err)
		}
		if g != nil {
			if err := a.rtree(rid, n.Class, g); err != nil {
				return fmt.Errorf("sqlite: apply: node %q: %w", n.ID, err)
			}
		}
		a.known[n.ID] = &stored{rid: rid, class: n.Class, props: en.props, geo: g, prov: p}
		changed, err := propNames(en.props)
		if err != nil {
			return fmt.Errorf("sqlite: apply: node %q: %w", n.ID, err)
		}
		if g != nil {
			changed = append(changed, "location")
		}
		a.emit(graph.OpCreate, n.ID, n.Class, changed, nil)
		return nil
	}
	changed, err := diffProps(old.props, en.props)
	if err != nil {
		return fmt.Errorf("sqlite: apply: node %q: %w", n.ID, err)
	}
	moved := !sameGeometry(old.geo, g)
	if moved {
		changed = append(changed, "location")
	}
	changed = append(changed, graph.ProvenanceChanges(old.prov, p)...)
	if _, err := a.exec(sqlUpdNode, append(cols, old.rid)...); err != nil {
		return fmt.Errorf("sqlite: apply: node %q: %w", n.ID, err)
	}
	if moved && (old.geo == nil || g == nil || old.geo.Point != g.Point) {
		if err := a.rtree(old.rid, n.Class, g); err != nil {
			return fmt.Errorf("sqlite: apply: node %q: %w", n.ID, err)
		}
	}
	old.props, old.geo, old.prov = en.props, g, p
	a.emit(graph.OpUpdate, n.ID, n.Class, changed, nil)
	return nil
}

// rtree indexes the node's point under its class ordinal, or removes it
// when it has none.
func (a *applier) rtree(rid int64, class string, g *graph.Geometry) error {
	if g == nil {
		_, err := a.exec(sqlDelRtree, rid)
		return err
	}
	o := float64(a.s.classOrd[class])
	_, err := a.exec(sqlPutRtree, rid, o, o+clsExtent, g.Point.Lat, g.Point.Lat, g.Point.Lon, g.Point.Lon)
	return err
}

// propNames lists the keys of a props object, sorted; nil for none.
func propNames(props []byte) ([]string, error) {
	if len(props) == 0 {
		return nil, nil
	}
	m, err := rawFields(string(props))
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

// diffProps lists the keys whose values differ between two props objects.
func diffProps(before, after []byte) ([]string, error) {
	if bytes.Equal(before, after) {
		return nil, nil
	}
	b, err := fieldsOf(before)
	if err != nil {
		return nil, err
	}
	aa, err := fieldsOf(after)
	if err != nil {
		return nil, err
	}
	var out []string
	for k, v := range aa {
		if bv, ok := b[k]; !ok || bv != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := aa[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}

func fieldsOf(props []byte) (map[string]string, error) {
	if len(props) == 0 {
		return map[string]string{}, nil
	}
	return rawFields(string(props))
}

func classAllowed(c *ontology.Class, allowed ...*ontology.Class) bool {
	for _, x := range allowed {
		if c.IsA(x) {
			return true
		}
	}
	return false
}

func (a *applier) upsertEdge(ee *encEdge) error {
	e := ee.e
	k := e.Key()
	from, to := a.known[e.From], a.known[e.To]
	if from == nil {
		return invalid("edge %s: node %q does not exist", edgeName(k), e.From)
	}
	if to == nil {
		return invalid("edge %s: node %q does not exist", edgeName(k), e.To)
	}
	if fc := a.s.ont.Class(from.class); fc == nil || !classAllowed(fc, ee.rel.From...) {
		return conflict("edge %s: relation %s cannot start at a %s", edgeName(k), e.Rel, from.class)
	}
	if tc := a.s.ont.Class(to.class); tc == nil || !classAllowed(tc, ee.rel.To) {
		return conflict("edge %s: relation %s cannot end at a %s", edgeName(k), e.Rel, to.class)
	}
	st, err := a.stmt(sqlSelEdge)
	if err != nil {
		return fmt.Errorf("sqlite: apply: edge %s: %w", edgeName(k), err)
	}
	var oldProps []byte
	var old provCols
	err = st.QueryRowContext(a.ctx, k.From, k.Rel, k.To).Scan(&oldProps, &old.source, &old.sourceKey, &old.connector, &old.run,
		&old.fetched, &old.srcUpdated, &old.validFrom, &old.validTo, &old.sources)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: apply: edge %s: %w", edgeName(k), err)
	}
	p := ee.prov
	write := func() error {
		_, err := a.exec(sqlPutEdge,
			k.From, k.Rel, k.To, from.rid, to.rid, ee.props, p.source, p.sourceKey, p.connector, p.run, p.fetched, graph.FormatTime(a.now),
			p.srcUpdated, p.validFrom, p.validTo, p.sources)
		if err != nil {
			return fmt.Errorf("sqlite: apply: edge %s: %w", edgeName(k), err)
		}
		return nil
	}
	if !exists {
		if err := write(); err != nil {
			return err
		}
		changed, err := propNames(ee.props)
		if err != nil {
			return err
		}
		a.emit(graph.OpEdgeAdd, k.From, from.class, changed, &k)
		return nil
	}
	if p.olderThan(old) {
		return nil
	}
	if bytes.Equal(oldProps, ee.props) && old.sameContent(p) {
		if p.newerThan(old) {
			if _, err := a.exec(sqlTouchEdge,
				p.connector, p.run, p.fetched, p.srcUpdated, k.From, k.Rel, k.To); err != nil {
				return fmt.Errorf("sqlite: apply: edge %s: %w", edgeName(k), err)
			}
			a.wrote = true
		}
		return nil
	}
	changed, err := diffProps(oldProps, ee.props)
	if err != nil {
		return err
	}
	changed = append(changed, old.changedNames(p)...)
	if err := write(); err != nil {
		return err
	}
	a.emit(graph.OpEdgeUpdate, k.From, from.class, changed, &k)
	return nil
}

func (a *applier) deleteEdge(k graph.EdgeKey) error {
	res, err := a.exec(sqlDelEdge, k.From, k.Rel, k.To)
	if err != nil {
		return fmt.Errorf("sqlite: apply: delete edge %s: %w", edgeName(k), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	class := ""
	if st := a.known[k.From]; st != nil {
		class = st.class
	}
	a.emit(graph.OpEdgeRemove, k.From, class, nil, &k)
	return nil
}

func (a *applier) deleteNode(id string) error {
	st := a.known[id]
	if st == nil {
		return nil
	}
	q, err := a.stmt(sqlNodeEdges)
	if err != nil {
		return fmt.Errorf("sqlite: apply: delete node %q: %w", id, err)
	}
	rows, err := q.QueryContext(a.ctx, id)
	if err != nil {
		return fmt.Errorf("sqlite: apply: delete node %q: %w", id, err)
	}
	type edgeRow struct {
		k     graph.EdgeKey
		class string
	}
	var es []edgeRow
	for rows.Next() {
		var r edgeRow
		if err := rows.Scan(&r.k.From, &r.k.Rel, &r.k.To, &r.class); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: apply: delete node %q: %w", id, err)
		}
		es = append(es, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: apply: delete node %q: %w", id, err)
	}
	if len(es) > 0 {
		for _, q := range []string{sqlDelEdgesFrom, sqlDelEdgesTo} {
			if _, err := a.exec(q, id); err != nil {
				return fmt.Errorf("sqlite: apply: delete node %q: %w", id, err)
			}
		}
	}
	for _, r := range es {
		k := r.k
		a.emit(graph.OpEdgeRemove, k.From, r.class, nil, &k)
	}
	if _, err := a.exec(sqlDelRtree, st.rid); err != nil {
		return fmt.Errorf("sqlite: apply: delete node %q: %w", id, err)
	}
	if _, err := a.exec(sqlDelNode, st.rid); err != nil {
		return fmt.Errorf("sqlite: apply: delete node %q: %w", id, err)
	}
	a.known[id] = nil
	a.emit(graph.OpDelete, id, st.class, nil, nil)
	return nil
}
