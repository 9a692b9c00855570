package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/cityhub/cityhub/ontology"
)

// schemaVersion is the layout version kept in the meta table. Version 2
// partitions the R*Tree by class (rtree.go); Open migrates version 1.
const schemaVersion = 2

// baseSchema creates the tables. Times are graph.FormatTime text (NULL for
// the zero time), so text order is time order; empty provenance strings
// are NULL.
const baseSchema = `
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS nodes (
	rid            INTEGER PRIMARY KEY,
	id             TEXT NOT NULL UNIQUE,
	class          TEXT NOT NULL,
	props          BLOB NOT NULL, -- JSONB
	doc            BLOB NOT NULL, -- geometry and provenance for reads (doc_codec.go)
	search         TEXT,          -- lower-cased searchable text
	lat            REAL,          -- representative point
	lon            REAL,
	geometry       TEXT,          -- GeoJSON of lines and polygons
	source         TEXT,
	fetched_at     TEXT,
	ingested_at    TEXT NOT NULL,
	src_updated_at TEXT,
	valid_from     TEXT,
	valid_to       TEXT
);
CREATE INDEX IF NOT EXISTS nodes_class_id ON nodes (class, id);

-- nodes_rtree (rtree.go), created by migrate, indexes node points (min =
-- max) by class ordinal; lines and polygons are filtered by their
-- representative point, as the filter model says.

CREATE TABLE IF NOT EXISTS edges (
	from_id        TEXT NOT NULL,
	rel            TEXT NOT NULL,
	to_id          TEXT NOT NULL,
	from_rid       INTEGER NOT NULL, -- nodes.rid of from_id and to_id, for joins
	to_rid         INTEGER NOT NULL,
	props          BLOB, -- JSONB, NULL for none
	source         TEXT,
	source_key     TEXT,
	connector      TEXT,
	run            TEXT,
	fetched_at     TEXT,
	ingested_at    TEXT NOT NULL,
	src_updated_at TEXT,
	valid_from     TEXT,
	valid_to       TEXT,
	sources        TEXT,
	PRIMARY KEY (from_id, rel, to_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_to ON edges (to_id, rel, from_id, from_rid);

CREATE TABLE IF NOT EXISTS changes (
	seq       INTEGER PRIMARY KEY,
	op        TEXT NOT NULL,
	id        TEXT NOT NULL,
	class     TEXT NOT NULL,
	changed   TEXT,
	edge_from TEXT,
	edge_rel  TEXT,
	edge_to   TEXT,
	at        TEXT NOT NULL
);
`

// propIndexPrefix names the expression indexes derived from the ontology.
const propIndexPrefix = "nodes_prop_"

// propExpr is the SQL expression for a scalar property of the node
// aliased alias (none in index definitions). SQLite matches an index
// expression with a query expression by structure, not by text. name must be an ontology property name (camelCase ASCII,
// checked by the ontology loader and again by safeName).
func propExpr(alias, name string) string {
	col := "props"
	if alias != "" {
		col = alias + ".props"
	}
	return "json_extract(" + col + ", '$." + name + "')"
}

// safeName reports whether a property name can be spelled inside SQL text.
func safeName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// indexedProps returns the names of the scalar properties the ontology
// marks indexed, sorted.
func indexedProps(ont *ontology.Ontology) []string {
	var out []string
	for _, c := range ont.Classes {
		for _, p := range c.Own {
			if p.Indexed && !p.List && p.Type != ontology.TypeJSON && safeName(p.Name) && !slices.Contains(out, p.Name) {
				out = append(out, p.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// searchFingerprint describes which properties feed the search column,
// so that Open can rebuild it when the ontology changes.
func searchFingerprint(ont *ontology.Ontology) string {
	var parts []string
	for _, c := range ont.Concrete() {
		for _, p := range c.Props {
			if p.Searchable {
				parts = append(parts, c.Name+"."+p.Name)
			}
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// migrate brings the database to the current layout and the ontology's
// indexes. It runs on the writer connection.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, baseSchema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	err = tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'schema_version'`).Scan(&version)
	switch {
	case err == sql.ErrNoRows:
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('schema_version', ?), ('seq', 0)`, schemaVersion); err != nil {
			return err
		}
	case err != nil:
		return err
	case version > schemaVersion:
		return fmt.Errorf("database layout version %d is newer than this program's (%d)", version, schemaVersion)
	}

	// expression indexes for indexed properties: create the missing ones,
	// drop those the ontology no longer asks for.
	want := map[string]string{}
	for _, name := range indexedProps(s.ont) {
		want[propIndexPrefix+name] = fmt.Sprintf("CREATE INDEX %s ON nodes (class, %s, id)", propIndexPrefix+name, propExpr("", name))
	}
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'nodes' AND name LIKE 'nodes\_prop\_%' ESCAPE '\'`)
	if err != nil {
		return err
	}
	var have []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		have = append(have, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, name := range have {
		if _, ok := want[name]; ok {
			delete(want, name)
			continue
		}
		if !safeName(strings.TrimPrefix(name, propIndexPrefix)) {
			continue
		}
		if _, err := tx.ExecContext(ctx, "DROP INDEX "+name); err != nil {
			return err
		}
	}
	for _, ddl := range want {
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("%s: %w", ddl, err)
		}
	}

	// search text
	fp := searchFingerprint(s.ont)
	var oldFP sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'search_fingerprint'`).Scan(&oldFP); err != nil && err != sql.ErrNoRows {
		return err
	}
	if oldFP.String != fp {
		if err := s.rebuildSearch(ctx, tx); err != nil {
			return fmt.Errorf("rebuild search text: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('search_fingerprint', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, fp); err != nil {
			return err
		}
	}
	// R*Tree: rebuilt when missing, in an older layout (version 1 had no
	// class axis) or numbered for another ontology
	var ddl sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'nodes_rtree'`).Scan(&ddl); err != nil && err != sql.ErrNoRows {
		return err
	}
	rfp := rtreeFingerprint(s.ont)
	var oldRFP sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'rtree_fingerprint'`).Scan(&oldRFP); err != nil && err != sql.ErrNoRows {
		return err
	}
	rebuilt := int64(-1)
	if ddl.String != rtreeSchema || !oldRFP.Valid || oldRFP.String != rfp {
		if rebuilt, err = s.rebuildRtree(ctx, tx); err != nil {
			return fmt.Errorf("rebuild spatial index: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('rtree_fingerprint', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, rfp); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = 'schema_version'`, schemaVersion); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if rebuilt >= 0 && ddl.Valid { // not a new database
		s.log.InfoContext(ctx, "spatial index rebuilt", "points", rebuilt, "from_version", version)
	}
	return nil
}

// rebuildSearch recomputes every node's search text from its properties.
func (s *Store) rebuildSearch(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT rid, class, props FROM nodes`)
	if err != nil {
		return err
	}
	type upd struct {
		rid    int64
		search sql.NullString
	}
	var ups []upd
	for rows.Next() {
		var rid int64
		var class, props string
		if err := rows.Scan(&rid, &class, &props); err != nil {
			rows.Close()
			return err
		}
		ps := s.classProps[class]
		if ps == nil {
			continue
		}
		m, err := decodeProps(ps, props)
		if err != nil {
			continue
		}
		var b strings.Builder
		for _, p := range ps.all {
			if p.Searchable && m[p.Name] != nil {
				addSearch(&b, m[p.Name])
			}
		}
		ups = append(ups, upd{rid, nullString(b.String())})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, u := range ups {
		if _, err := tx.ExecContext(ctx, `UPDATE nodes SET search = ? WHERE rid = ?`, u.search, u.rid); err != nil {
			return err
		}
	}
	return nil
}
