package neo4j

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// ErrSchemaBehind is returned (wrapped, by SchemaStatus.Err) when the
// database lacks constraints or indexes the ontology needs: run
// `cityhub migrate` first.
var ErrSchemaBehind = errors.New("neo4j: database schema is behind the ontology")

// schemaPrefix starts the name of every constraint and index the store
// owns; Migrate drops those it no longer needs and leaves others alone.
const schemaPrefix = "cityhub_"

// schemaItem is one constraint or index the ontology calls for.
type schemaItem struct {
	name       string
	constraint bool
	typ        string // index type (RANGE, POINT, FULLTEXT, TEXT) or constraint type (UNIQUENESS)
	labels     []string
	props      []string
	create     string
}

// schema derives the store's constraints and indexes from the ontology:
//
//   - uniqueness of id on the root label (every upsert MERGEs by it), of
//     the bookkeeping node keys, and a range index on the change log;
//   - a point index on location for every located class whose parent is
//     not located (subclasses share it through the parent's label);
//   - a range index on every property the ontology marks indexed, on the
//     label of the class that declares it;
//   - a full-text index over the searchable properties on the labels that
//     declare them (for relevance-ranked name search), and a text index on
//     _search on the root label, which serves the exact substring Search
//     filter.
func (m *model) schema() []schemaItem {
	root := m.root
	items := []schemaItem{
		{name: schemaPrefix + "entity_id", constraint: true, typ: "UNIQUENESS", labels: []string{root}, props: []string{keyID},
			create: "CREATE CONSTRAINT " + schemaPrefix + "entity_id IF NOT EXISTS FOR (n:" + root + ") REQUIRE n.id IS UNIQUE"},
		{name: schemaPrefix + "meta_key", constraint: true, typ: "UNIQUENESS", labels: []string{labelMeta}, props: []string{"key"},
			create: "CREATE CONSTRAINT " + schemaPrefix + "meta_key IF NOT EXISTS FOR (n:" + labelMeta + ") REQUIRE n.key IS UNIQUE"},
		{name: schemaPrefix + "changes_last", typ: "RANGE", labels: []string{labelChanges}, props: []string{"last"},
			create: "CREATE RANGE INDEX " + schemaPrefix + "changes_last IF NOT EXISTS FOR (n:" + labelChanges + ") ON (n.last)"},
	}
	for _, c := range m.ont.Classes {
		if c.Located() && (c.Parent == nil || !c.Parent.Located()) {
			name := schemaPrefix + "point_" + c.Name
			items = append(items, schemaItem{name: name, typ: "POINT", labels: []string{c.Name}, props: []string{keyLocation},
				create: "CREATE POINT INDEX " + name + " IF NOT EXISTS FOR (n:" + c.Name + ") ON (n." + keyLocation + ")"})
		}
	}
	var searchLabels, searchProps []string
	for _, c := range m.ont.Classes {
		for _, p := range c.Own {
			if p.Indexed {
				name := schemaPrefix + "range_" + c.Name + "_" + p.Name
				items = append(items, schemaItem{name: name, typ: "RANGE", labels: []string{c.Name}, props: []string{p.Name},
					create: "CREATE RANGE INDEX " + name + " IF NOT EXISTS FOR (n:" + c.Name + ") ON (n." + p.Name + ")"})
			}
			if p.Searchable {
				if !slices.Contains(searchLabels, c.Name) {
					searchLabels = append(searchLabels, c.Name)
				}
				if !slices.Contains(searchProps, p.Name) {
					searchProps = append(searchProps, p.Name)
				}
			}
		}
	}
	if len(searchProps) > 0 {
		on := make([]string, len(searchProps))
		for i, p := range searchProps {
			on[i] = "n." + p
		}
		items = append(items,
			schemaItem{name: schemaPrefix + "search", typ: "FULLTEXT", labels: searchLabels, props: searchProps,
				create: "CREATE FULLTEXT INDEX " + schemaPrefix + "search IF NOT EXISTS FOR (n:" + strings.Join(searchLabels, "|") +
					") ON EACH [" + strings.Join(on, ", ") + "]"},
			schemaItem{name: schemaPrefix + "text_search", typ: "TEXT", labels: []string{root}, props: []string{keySearch},
				create: "CREATE TEXT INDEX " + schemaPrefix + "text_search IF NOT EXISTS FOR (n:" + root + ") ON (n." + keySearch + ")"})
	}
	return items
}

// SchemaStatus compares the database's constraints and indexes with the
// ones the ontology needs.
type SchemaStatus struct {
	// Missing lists the constraints and indexes the database lacks.
	Missing []string
	// Outdated lists the store's constraints and indexes whose definition
	// no longer matches the ontology, or that failed to build.
	Outdated []string
	// Populating lists indexes still being built.
	Populating []string
	// Obsolete lists the store's constraints and indexes the ontology no
	// longer needs (Migrate drops them; they do not make the schema behind).
	Obsolete []string
}

// Behind reports whether Migrate has work that reads depend on.
func (st SchemaStatus) Behind() bool { return len(st.Missing) > 0 || len(st.Outdated) > 0 }

// Err returns nil when the schema is current, or an error wrapping
// ErrSchemaBehind that names what is missing and how to fix it.
func (st SchemaStatus) Err() error {
	if !st.Behind() {
		return nil
	}
	var parts []string
	if len(st.Missing) > 0 {
		parts = append(parts, "missing "+strings.Join(st.Missing, ", "))
	}
	if len(st.Outdated) > 0 {
		parts = append(parts, "outdated "+strings.Join(st.Outdated, ", "))
	}
	return fmt.Errorf("%w (%s); run `cityhub migrate`", ErrSchemaBehind, strings.Join(parts, "; "))
}

// existing is a constraint or index found in the database.
type existing struct {
	name       string
	constraint bool
	typ        string
	labels     []string
	props      []string
	state      string
}

func (e existing) matches(it schemaItem) bool {
	if e.constraint != it.constraint {
		return false
	}
	if it.constraint {
		if !strings.Contains(e.typ, it.typ) {
			return false
		}
	} else if e.typ != it.typ {
		return false
	}
	return sameSet(e.labels, it.labels) && sameSet(e.props, it.props)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// SchemaStatus reads the database's constraints and indexes and compares
// them with the ontology's. Errors wrap graph.ErrUnavailable when the
// database does not answer.
func (s *Store) SchemaStatus(ctx context.Context) (SchemaStatus, error) {
	st, _, err := s.schemaStatus(ctx)
	return st, err
}

func (s *Store) schemaStatus(ctx context.Context) (SchemaStatus, map[string]existing, error) {
	found := map[string]existing{}
	_, err := s.read(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		clear(found)
		res, err := tx.Run(ctx, "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties", nil)
		if err != nil {
			return nil, err
		}
		for res.Next(ctx) {
			v := res.Record().Values
			e := existing{constraint: true, labels: stringList(v[2]), props: stringList(v[3]), state: "ONLINE"}
			e.name, _ = v[0].(string)
			e.typ, _ = v[1].(string)
			found[e.name] = e
		}
		if err := res.Err(); err != nil {
			return nil, err
		}
		res, err = tx.Run(ctx, "SHOW INDEXES YIELD name, type, labelsOrTypes, properties, state, owningConstraint", nil)
		if err != nil {
			return nil, err
		}
		for res.Next(ctx) {
			v := res.Record().Values
			name, _ := v[0].(string)
			if v[5] != nil { // the index behind a constraint: report its state there
				if c, ok := found[name]; ok {
					c.state, _ = v[4].(string)
					found[name] = c
				}
				continue
			}
			e := existing{name: name, labels: stringList(v[2]), props: stringList(v[3])}
			e.typ, _ = v[1].(string)
			e.state, _ = v[4].(string)
			found[name] = e
		}
		return nil, res.Err()
	})
	if err != nil {
		return SchemaStatus{}, nil, fmt.Errorf("neo4j: schema: %w", err)
	}
	var st SchemaStatus
	want := map[string]bool{}
	for _, it := range s.schema() {
		want[it.name] = true
		e, ok := found[it.name]
		switch {
		case !ok:
			st.Missing = append(st.Missing, it.name)
		case !e.matches(it) || e.state == "FAILED":
			st.Outdated = append(st.Outdated, it.name)
		case e.state != "ONLINE":
			st.Populating = append(st.Populating, it.name)
		}
	}
	for name := range found {
		if strings.HasPrefix(name, schemaPrefix) && !want[name] {
			st.Obsolete = append(st.Obsolete, name)
		}
	}
	slices.Sort(st.Obsolete)
	return st, found, nil
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Migrate brings the database's schema to what the ontology needs,
// idempotently: it drops the store's constraints and indexes that are
// obsolete, outdated or failed, creates the missing ones (IF NOT EXISTS),
// creates the sequence node, and waits until every index is online.
// Running it on a current schema changes nothing.
func (s *Store) Migrate(ctx context.Context) error {
	st, found, err := s.schemaStatus(ctx)
	if err != nil {
		return fmt.Errorf("neo4j: migrate: %w", err)
	}
	drop := append(slices.Clone(st.Outdated), st.Obsolete...)
	for _, name := range drop {
		stmt := "DROP INDEX " + name + " IF EXISTS"
		if found[name].constraint {
			stmt = "DROP CONSTRAINT " + name + " IF EXISTS"
		}
		if !nameRE.MatchString(name) {
			return fmt.Errorf("neo4j: migrate: cannot drop %q", name)
		}
		if err := s.schemaExec(ctx, stmt); err != nil {
			return fmt.Errorf("neo4j: migrate: %s: %w", stmt, err)
		}
		s.log.InfoContext(ctx, "schema item dropped", "name", name)
	}
	redo := map[string]bool{}
	for _, n := range append(slices.Clone(st.Missing), st.Outdated...) {
		redo[n] = true
	}
	for _, it := range s.schema() {
		if !redo[it.name] {
			continue
		}
		if err := s.schemaExec(ctx, it.create); err != nil {
			return fmt.Errorf("neo4j: migrate: %s: %w", it.create, err)
		}
		s.log.InfoContext(ctx, "schema item created", "name", it.name)
	}
	if err := s.schemaExec(ctx, "MERGE (m:"+labelMeta+" {key: 'seq'}) ON CREATE SET m.seq = 0"); err != nil {
		return fmt.Errorf("neo4j: migrate: sequence: %w", err)
	}
	wait := 300 * time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = max(time.Until(d), time.Second)
	}
	if err := s.schemaExec(ctx, "CALL db.awaitIndexes($seconds)", "seconds", int64(wait/time.Second)); err != nil {
		return fmt.Errorf("neo4j: migrate: await indexes: %w", err)
	}
	return nil
}

// schemaExec runs one schema or bookkeeping statement in its own write
// transaction;
// kv holds parameters as name, value pairs.
func (s *Store) schemaExec(ctx context.Context, stmt string, kv ...any) error {
	params := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		params[kv[i].(string)] = kv[i+1]
	}
	_, err := s.write(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, stmt, params)
		if err != nil {
			return nil, err
		}
		_, err = res.Consume(ctx)
		return nil, err
	})
	return err
}
