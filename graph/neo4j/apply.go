package neo4j

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// errNoop ends a write transaction that has nothing to write: it rolls
// back (releasing the sequence lock) and Apply returns no events.
var errNoop = errors.New("neo4j: nothing to write")

func invalid(format string, args ...any) error {
	return fmt.Errorf("neo4j: apply: %w: %s", graph.ErrInvalid, fmt.Sprintf(format, args...))
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("neo4j: apply: %w: %s", graph.ErrConflict, fmt.Sprintf(format, args...))
}

func edgeName(k graph.EdgeKey) string { return fmt.Sprintf("(%q)-[%s]->(%q)", k.From, k.Rel, k.To) }

type encEdge struct {
	e     *graph.Edge
	rel   *ontology.Relation
	props map[string]any // storage form
	prov  graph.Provenance
}

// encode validates the batch against the ontology without touching the
// database.
func (s *Store) encode(b graph.Batch) ([]*stored, []encEdge, error) {
	nodes := make([]*stored, len(b.Nodes))
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
		nodes[i] = &stored{id: n.ID, class: c.Name, props: props, geo: g, prov: p, search: search}
	}
	edges := make([]encEdge, len(b.Edges))
	for i := range b.Edges {
		e := &b.Edges[i]
		rel := s.ont.Relation(e.Rel)
		if rel == nil {
			return nil, nil, invalid("edge %s: unknown relation %q", edgeName(e.Key()), e.Rel)
		}
		if e.From == "" || e.To == "" || !utf8.ValidString(e.From) || !utf8.ValidString(e.To) {
			return nil, nil, invalid("edge %s: empty or invalid node ID", edgeName(e.Key()))
		}
		props, _, err := encodeProps(s.relProps[rel.Name], e.Props)
		if err != nil {
			return nil, nil, invalid("edge %s: %v", edgeName(e.Key()), err)
		}
		if err := graph.CheckProvenanceText(e.Prov); err != nil {
			return nil, nil, invalid("edge %s: %v", edgeName(e.Key()), err)
		}
		p := normProv(e.Prov)
		p.IngestedAt = time.Time{}
		edges[i] = encEdge{e: e, rel: rel, props: props, prov: p}
	}
	for _, k := range b.DeleteEdges {
		if s.ont.Relation(k.Rel) == nil {
			return nil, nil, invalid("edge delete %s: unknown relation %q", edgeName(k), k.Rel)
		}
	}
	return nodes, edges, nil
}

// Apply commits the batch in one managed write transaction (retried on
// transient errors). See graph.Store for the contract; errors wrap
// graph.ErrInvalid (the batch does not fit the ontology), graph.ErrConflict
// (it contradicts stored data) or graph.ErrUnavailable.
//
// The transaction first locks the sequence node (:CityhubMeta {key:
// 'seq'}), which serialises every Apply, and reads the stored state of
// everything the batch names in the same statement. The batch is then
// played against that state in Go, exactly as the embedded store does,
// to decide what changes and which events follow. A second statement
// writes only what changed: an UNWIND subquery per class (MERGE by id,
// labels of the class and its ancestors), per relation type (MERGE by
// (from, type, to)), for edge deletes and for node deletes (DETACH
// DELETE), and the events, kept in one (:CityhubChangeSet) node per Apply,
// with the sequence node moved on. Nodes and edges the read found absent
// are written with CREATE instead of MERGE: every writer holds the
// sequence lock, so they are still absent, and CREATE skips MERGE's
// locking lookup (the uniqueness constraint on id still guards nodes). A
// batch that changes nothing rolls back.
func (s *Store) Apply(ctx context.Context, b graph.Batch) ([]graph.Change, error) {
	if b.Len() == 0 {
		return nil, nil
	}
	nodes, edges, err := s.encode(b)
	if err != nil {
		return nil, err
	}
	var perr error // the batch contradicts the stored data
	out, err := s.write(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		perr = nil
		a := &applier{s: s, ctx: ctx, tx: tx, now: normTime(s.now())}
		if err := a.load(b, nodes, edges); err != nil {
			return nil, err
		}
		if err := a.play(b, nodes, edges); err != nil {
			perr = err
			return nil, err
		}
		if len(a.changes) == 0 && !a.dirty() {
			return nil, errNoop
		}
		if err := a.save(); err != nil {
			return nil, err
		}
		return a.changes, nil
	})
	switch {
	case perr != nil:
		return nil, perr
	case errors.Is(err, errNoop):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("neo4j: apply: %w", err)
	}
	ch, _ := out.([]graph.Change)
	return ch, nil
}

// simNode is a node as the batch sees it while it is played.
type simNode struct {
	st      *stored // full state (props loaded), or only id and class
	full    bool
	exists  bool
	existed bool // in the database before the batch
	dirty   bool // must be written
}

// simEdge is an edge as the batch sees it.
type simEdge struct {
	key       graph.EdgeKey
	fromClass string
	props     map[string]any
	prov      graph.Provenance
	exists    bool
	existed   bool
	dirty     bool
}

// applier carries the state of one attempt of one Apply.
type applier struct {
	s       *Store
	ctx     context.Context
	tx      neo4jdrv.ManagedTransaction
	now     time.Time
	seq     uint64
	first   uint64 // first sequence number of this batch
	nodes   map[string]*simNode
	order   []string // node IDs in first-seen order
	edges   map[graph.EdgeKey]*simEdge
	eorder  []graph.EdgeKey
	changes []graph.Change
}

func (a *applier) dirty() bool {
	for _, n := range a.nodes {
		if n.dirty {
			return true
		}
	}
	for _, e := range a.edges {
		if e.dirty {
			return true
		}
	}
	return false
}

func (a *applier) run(q string, params map[string]any) (neo4jdrv.ResultWithContext, error) {
	return a.tx.Run(a.ctx, q, params)
}

// load locks the sequence and reads, in one statement, the stored state of
// every node and edge the batch names and the edges of the nodes it
// deletes.
func (a *applier) load(b graph.Batch, nodes []*stored, edges []encEdge) error {
	root := a.s.root
	var full, ends []string
	for _, n := range nodes {
		full = append(full, n.id)
	}
	full = append(full, b.DeleteNodes...)
	full = dedupe(full)
	inFull := make(map[string]bool, len(full))
	for _, id := range full {
		inFull[id] = true
	}
	addEnd := func(id string) {
		if !inFull[id] {
			inFull[id] = true
			ends = append(ends, id)
		}
	}
	// each edge is read once however often the batch names it (a stream
	// of readings names its datastream's edges once per reading)
	var ekeys []any
	seen := make(map[graph.EdgeKey]bool, len(edges)+len(b.DeleteEdges))
	addKey := func(k graph.EdgeKey) {
		if !seen[k] {
			seen[k] = true
			ekeys = append(ekeys, []any{k.From, k.Rel, k.To})
		}
	}
	for _, e := range edges {
		addEnd(e.e.From)
		addEnd(e.e.To)
		addKey(e.e.Key())
	}
	for _, k := range b.DeleteEdges {
		addEnd(k.From)
		addKey(k)
	}
	q := "MERGE (m:" + labelMeta + " {key: 'seq'}) ON CREATE SET m.seq = 0 SET m.lock = true WITH m.seq AS seq" +
		" CALL { UNWIND $full AS id MATCH (n:" + root + " {id: id}) RETURN collect(properties(n)) AS nodes }" +
		" CALL { UNWIND $ends AS id MATCH (n:" + root + " {id: id}) RETURN collect([n.id, n." + keyClass + "]) AS ends }" +
		" CALL { " + a.s.edgeLookup() + " }" +
		" CALL { UNWIND $dels AS id MATCH (x:" + root + " {id: id})-[r]-() WITH DISTINCT r" +
		" RETURN collect([startNode(r).id, type(r), endNode(r).id, startNode(r)." + keyClass + "]) AS dedges }" +
		" RETURN seq, nodes, ends, edges, dedges"
	res, err := a.run(q, map[string]any{
		"full": anyList(full), "ends": anyList(ends), "ekeys": orEmpty(ekeys), "dels": anyList(dedupe(b.DeleteNodes)),
	})
	if err != nil {
		return err
	}
	rec, err := res.Single(a.ctx)
	if err != nil {
		return err
	}
	v := rec.Values
	seq, _ := v[0].(int64)
	a.seq, a.first = uint64(seq), uint64(seq)+1
	a.nodes = map[string]*simNode{}
	a.edges = map[graph.EdgeKey]*simEdge{}
	for _, raw := range asList(v[1]) {
		m, _ := raw.(map[string]any)
		st, err := a.s.decodeStored(m)
		if err != nil {
			return err
		}
		a.addNode(st.id, &simNode{st: st, full: true, exists: true, existed: true})
	}
	for _, raw := range asList(v[2]) {
		pair := asList(raw)
		if len(pair) != 2 {
			continue
		}
		id, _ := pair[0].(string)
		class, _ := pair[1].(string)
		a.addNode(id, &simNode{st: &stored{id: id, class: class}, exists: true, existed: true})
	}
	for _, raw := range asList(v[3]) {
		row := asList(raw)
		if len(row) != 4 {
			continue
		}
		k := edgeKey(row)
		pm, _ := row[3].(map[string]any)
		e := &simEdge{key: k, props: map[string]any{}, exists: true, existed: true, prov: readProv(pm)}
		if ps := a.s.relProps[k.Rel]; ps != nil {
			for name, x := range pm {
				if p := ps.byName[name]; p != nil {
					if sv := storedValue(p, x); sv != nil {
						e.props[name] = sv
					}
				}
			}
		}
		a.addEdge(e)
	}
	for _, raw := range asList(v[4]) {
		row := asList(raw)
		if len(row) != 4 {
			continue
		}
		k := edgeKey(row)
		if a.edges[k] != nil {
			a.edges[k].fromClass, _ = row[3].(string)
			continue
		}
		e := &simEdge{key: k, exists: true, existed: true}
		e.fromClass, _ = row[3].(string)
		a.addEdge(e)
	}
	return res.Err()
}

// edgeLookup is the subquery of load that reads the stored edges of
// $ekeys ([from, rel, to] lists): one [from, rel, to, properties] list
// per edge found, collected as edges.
//
// It seeks both ends by id and only then, in a subquery per pair with the
// two bound, matches the relationship between them: Expand(Into), which
// starts from the end with fewer relationships. In one pattern the planner chooses by its
// statistics, and Neo4j 5 then either seeks the target alone and scans
// all its relationships for the source (planned on a graph of some 20,000
// nodes or more), or, on a fresh database, expands all the relationships
// of both ends and joins them (even with index hints), or scans the
// relationships and joins them with the ends: as slow as the
// target is dense (every new Observation's IN_DATASTREAM edge read all
// the observations of its datastream). noEdgeHints keeps that one
// pattern, for the tests that compare the two.
func (s *Store) edgeLookup() string {
	ret := " WHERE type(r) = k[1] RETURN collect([k[0], k[1], k[2], properties(r)]) AS edges"
	if s.noEdgeHints {
		return "UNWIND $ekeys AS k MATCH (a:" + s.root + " {id: k[0]})-[r]->(b:" + s.root + " {id: k[2]})" + ret
	}
	return "UNWIND $ekeys AS k" +
		" MATCH (a:" + s.root + " {id: k[0]}) USING INDEX SEEK a:" + s.root + "(id)" +
		" MATCH (b:" + s.root + " {id: k[2]}) USING INDEX SEEK b:" + s.root + "(id)" +
		" CALL { WITH k, a, b MATCH (a)-[r]->(b) WHERE type(r) = k[1] RETURN r }" +
		" RETURN collect([k[0], k[1], k[2], properties(r)]) AS edges"
}

func asList(v any) []any { l, _ := v.([]any); return l }

func edgeKey(row []any) graph.EdgeKey {
	var k graph.EdgeKey
	k.From, _ = row[0].(string)
	k.Rel, _ = row[1].(string)
	k.To, _ = row[2].(string)
	return k
}

func (a *applier) addNode(id string, n *simNode) {
	if a.nodes[id] == nil {
		a.order = append(a.order, id)
	}
	a.nodes[id] = n
}

func (a *applier) addEdge(e *simEdge) {
	if a.edges[e.key] == nil {
		a.eorder = append(a.eorder, e.key)
	}
	a.edges[e.key] = e
}

// node returns the node with the ID if it exists as the batch is played.
func (a *applier) node(id string) *simNode {
	if n := a.nodes[id]; n != nil && n.exists {
		return n
	}
	return nil
}

// emit records a change event.
func (a *applier) emit(op graph.Op, id, class string, changed []string, edge *graph.EdgeKey) {
	a.seq++
	a.changes = append(a.changes, graph.Change{Seq: a.seq, Op: op, ID: id, Class: class, Changed: changed, Edge: edge, At: a.now})
}

// play applies the batch to the loaded state in batch order: node upserts,
// edge upserts, edge deletes, node deletes.
func (a *applier) play(b graph.Batch, nodes []*stored, edges []encEdge) error {
	for _, n := range nodes {
		if err := a.upsertNode(n); err != nil {
			return err
		}
	}
	for i := range edges {
		if err := a.upsertEdge(&edges[i]); err != nil {
			return err
		}
	}
	for _, k := range b.DeleteEdges {
		a.deleteEdge(k)
	}
	for _, id := range b.DeleteNodes {
		a.deleteNode(id)
	}
	return nil
}

func (a *applier) upsertNode(in *stored) error {
	old := a.node(in.id)
	p := in.prov
	if old != nil {
		o := old.st
		if o.class != in.class {
			return conflict("node %q is stored as a %s, not a %s", in.id, o.class, in.class)
		}
		// older data never overwrites newer; an unknown time is older than any
		if graph.OlderThan(p.SrcUpdatedAt, o.prov.SrcUpdatedAt) {
			return nil
		}
		if samePropMaps(o.props, in.props) && sameGeometry(o.geo, in.geo) && graph.SameRecord(o.prov, p) {
			if p.SrcUpdatedAt.After(o.prov.SrcUpdatedAt) {
				// same data, fresher source time: keep the time so that
				// older records stay rejected; no event
				keep := p
				keep.IngestedAt = o.prov.IngestedAt
				o.prov = keep
				old.dirty = true
			}
			return nil
		}
	}
	p.IngestedAt = a.now
	st := &stored{id: in.id, class: in.class, props: in.props, geo: in.geo, prov: p, search: in.search}
	if old == nil {
		n := a.nodes[in.id]
		existed := n != nil && n.existed
		a.addNode(in.id, &simNode{st: st, full: true, exists: true, existed: existed, dirty: true})
		changed := propNames(in.props)
		if in.geo != nil {
			changed = append(changed, "location")
		}
		a.emit(graph.OpCreate, in.id, in.class, changed, nil)
		return nil
	}
	changed := diffProps(old.st.props, in.props)
	if !sameGeometry(old.st.geo, in.geo) {
		changed = append(changed, "location")
	}
	changed = append(changed, graph.ProvenanceChanges(old.st.prov, p)...)
	old.st, old.full, old.dirty = st, true, true
	a.emit(graph.OpUpdate, in.id, in.class, changed, nil)
	return nil
}

func samePropMaps(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !sameValue(v, w) {
			return false
		}
	}
	return true
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
	from, to := a.node(e.From), a.node(e.To)
	if from == nil {
		return invalid("edge %s: node %q does not exist", edgeName(k), e.From)
	}
	if to == nil {
		return invalid("edge %s: node %q does not exist", edgeName(k), e.To)
	}
	if fc := a.s.ont.Class(from.st.class); fc == nil || !classAllowed(fc, ee.rel.From...) {
		return conflict("edge %s: relation %s cannot start at a %s", edgeName(k), e.Rel, from.st.class)
	}
	if tc := a.s.ont.Class(to.st.class); tc == nil || !classAllowed(tc, ee.rel.To) {
		return conflict("edge %s: relation %s cannot end at a %s", edgeName(k), e.Rel, to.st.class)
	}
	p := ee.prov
	old := a.edges[k]
	if old == nil || !old.exists {
		p.IngestedAt = a.now
		existed := old != nil && old.existed
		a.addEdge(&simEdge{key: k, fromClass: from.st.class, props: ee.props, prov: p, exists: true, existed: existed, dirty: true})
		a.emit(graph.OpEdgeAdd, k.From, from.st.class, propNames(ee.props), &k)
		return nil
	}
	if graph.OlderThan(p.SrcUpdatedAt, old.prov.SrcUpdatedAt) {
		return nil
	}
	if samePropMaps(old.props, ee.props) && graph.SameRecord(old.prov, p) {
		if p.SrcUpdatedAt.After(old.prov.SrcUpdatedAt) {
			// the embedded store's touch: run bookkeeping and the fresher
			// source time, no event
			old.prov.Connector, old.prov.Run, old.prov.FetchedAt, old.prov.SrcUpdatedAt = p.Connector, p.Run, p.FetchedAt, p.SrcUpdatedAt
			old.dirty = true
		}
		return nil
	}
	changed := diffProps(old.props, ee.props)
	changed = append(changed, graph.ProvenanceChanges(old.prov, p)...)
	p.IngestedAt = a.now
	old.props, old.prov, old.fromClass, old.dirty = ee.props, p, from.st.class, true
	a.emit(graph.OpEdgeUpdate, k.From, from.st.class, changed, &k)
	return nil
}

func (a *applier) deleteEdge(k graph.EdgeKey) {
	e := a.edges[k]
	if e == nil || !e.exists {
		return
	}
	e.exists, e.dirty = false, true
	class := e.fromClass
	if n := a.nodes[k.From]; n != nil {
		class = n.st.class
	}
	a.emit(graph.OpEdgeRemove, k.From, class, nil, &k)
}

func (a *applier) deleteNode(id string) {
	n := a.node(id)
	if n == nil {
		return
	}
	var gone []*simEdge
	for _, k := range a.eorder {
		if e := a.edges[k]; e.exists && (k.From == id || k.To == id) {
			gone = append(gone, e)
		}
	}
	slices.SortFunc(gone, func(x, y *simEdge) int {
		return cmp.Or(cmp.Compare(x.key.From, y.key.From), cmp.Compare(x.key.Rel, y.key.Rel), cmp.Compare(x.key.To, y.key.To))
	})
	for _, e := range gone {
		e.exists, e.dirty = false, true
		class := e.fromClass
		if f := a.nodes[e.key.From]; f != nil {
			class = f.st.class
		}
		k := e.key
		a.emit(graph.OpEdgeRemove, k.From, class, nil, &k)
	}
	n.exists, n.dirty = false, true
	a.emit(graph.OpDelete, id, n.st.class, nil, nil)
}

// save writes the final state of everything the batch changed, then the
// events and the sequence, in one statement of unit subqueries:
//
//	CALL { UNWIND $n0 AS row MERGE (n:Root {id: row.id}) SET n = row.p SET n:Asset:StreetLight }   (per class)
//	CALL { UNWIND $n1 AS row CREATE (n:Root:Asset:StreetLight) SET n = row.p }                     (per class, new nodes)
//	CALL { UNWIND $e0 AS row MATCH (a:Root {id: row.from}) MATCH (b:Root {id: row.to})
//	       MERGE (a)-[r:LOCATED_IN]->(b) SET r = row.p }                                          (per relation type;
//	                                                                                               CREATE for new edges)
//	CALL { UNWIND $edel AS k MATCH (a:Root {id: k[0]})-[r]->(b:Root {id: k[2]}) WHERE type(r) = k[1] DELETE r }
//	CALL { UNWIND $ndel AS id MATCH (n:Root {id: id}) DETACH DELETE n }
//	CALL { MATCH (m:CityhubMeta {key: 'seq'}) SET m.seq = $last
//	       CREATE (:CityhubChangeSet {first: $first, last: $last, at: $at, events: $events}) }
func (a *applier) save() error {
	root := a.s.root
	c := newCypher()
	// node upserts, one subquery per class and kind: nodes that were not
	// in the database when the batch read it (under the sequence lock,
	// which every writer takes) are created, the others merged
	type group struct {
		name string
		rows []any
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, id := range a.order {
		n := a.nodes[id]
		if !n.dirty || !n.exists {
			continue
		}
		key := n.st.class
		if !n.existed {
			key = "+" + key
		}
		g := byKey[key]
		if g == nil {
			g = &group{name: key}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.rows = append(g.rows, map[string]any{"id": id, "p": a.s.encodeStored(n.st)})
	}
	for i, g := range groups {
		cn, create := g.name, false
		if cn[0] == '+' {
			cn, create = cn[1:], true
		}
		labels := a.s.ont.Class(cn).Labels()
		if create {
			c.w("CALL { UNWIND ", c.named(fmt.Sprintf("n%d", i), g.rows), " AS row CREATE (n:", root)
			if len(labels) > 1 {
				c.w(":", joinLabels(labels[1:]))
			}
			c.w(") SET n = row.p } ")
			continue
		}
		c.w("CALL { UNWIND ", c.named(fmt.Sprintf("n%d", i), g.rows), " AS row MERGE (n:", root, " {id: row.id}) SET n = row.p")
		if len(labels) > 1 {
			c.w(" SET n:", joinLabels(labels[1:]))
		}
		c.w(" } ")
	}
	// edge upserts, one subquery per relation type and kind (created when
	// not in the database before the batch, merged otherwise)
	var egroups []*group
	byRel := map[string]*group{}
	var edgeDels []any
	for _, k := range a.eorder {
		e := a.edges[k]
		if !e.dirty {
			continue
		}
		if !e.exists {
			if e.existed {
				edgeDels = append(edgeDels, []any{k.From, k.Rel, k.To})
			}
			continue
		}
		key := k.Rel
		if !e.existed {
			key = "+" + key
		}
		g := byRel[key]
		if g == nil {
			g = &group{name: key}
			byRel[key] = g
			egroups = append(egroups, g)
		}
		p := make(map[string]any, len(e.props)+8)
		for name, v := range e.props {
			p[name] = v
		}
		putProv(p, e.prov)
		g.rows = append(g.rows, map[string]any{"from": k.From, "to": k.To, "p": p})
	}
	for i, g := range egroups {
		rel, verb := g.name, "MERGE"
		if rel[0] == '+' {
			rel, verb = rel[1:], "CREATE"
		}
		if a.s.ont.Relation(rel) == nil || !nameRE.MatchString(rel) {
			return invalid("unknown relation %q", rel)
		}
		c.w("CALL { UNWIND ", c.named(fmt.Sprintf("e%d", i), g.rows), " AS row MATCH (a:", root, " {id: row.from}) MATCH (b:", root,
			" {id: row.to}) ", verb, " (a)-[r:", rel, "]->(b) SET r = row.p } ")
	}
	if len(edgeDels) > 0 {
		c.w("CALL { UNWIND ", c.named("edel", edgeDels), " AS k MATCH (a:", root, " {id: k[0]})-[r]->(b:", root,
			" {id: k[2]}) WHERE type(r) = k[1] DELETE r } ")
	}
	var nodeDels []any
	for _, id := range a.order {
		if n := a.nodes[id]; n.dirty && !n.exists && n.existed {
			nodeDels = append(nodeDels, id)
		}
	}
	if len(nodeDels) > 0 {
		c.w("CALL { UNWIND ", c.named("ndel", nodeDels), " AS id MATCH (n:", root, " {id: id}) DETACH DELETE n } ")
	}
	if len(a.changes) > 0 {
		events, err := encodeEvents(a.changes)
		if err != nil {
			return err
		}
		c.named("first", int64(a.first))
		c.named("at", a.now)
		c.named("events", events)
		c.w("CALL { MATCH (m:", labelMeta, " {key: 'seq'}) SET m.seq = ", c.named("last", int64(a.seq)),
			" CREATE (:", labelChanges, " {first: $first, last: $last, at: $at, events: $events}) } ")
	}
	if c.sb.Len() == 0 {
		return nil
	}
	return a.exec(c.String(), c.params)
}

func (a *applier) exec(q string, params map[string]any) error {
	res, err := a.run(q, params)
	if err != nil {
		return err
	}
	_, err = res.Consume(a.ctx)
	return err
}

func joinLabels(ls []string) string {
	out := ""
	for i, l := range ls {
		if i > 0 {
			out += ":"
		}
		out += l
	}
	return out
}
