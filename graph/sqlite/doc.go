// Package sqlite is the embedded default graph.Store, built on SQLite
// through modernc.org/sqlite (pure Go, no cgo). It needs no other process:
// one database file (plus its WAL) holds the whole graph.
//
// Layout: nodes keep their typed properties as one JSONB object (props),
// their geometry and provenance packed for reading (doc) and again as the
// columns that filters, orderings and the R*Tree over node points use
// (the R*Tree has a class axis, so that a geo lookup for a class reads
// only that class's points; see rtree.go); edges are keyed by (from,
// relation, to) with an index on (to, relation); changes is the sequenced
// change log. Properties the ontology marks
// indexed get expression indexes (class, json_extract(props, '$.name'),
// id); searchable properties feed a lower-cased search column.
//
// Durability: WAL mode with synchronous=FULL, so a batch is on disk once
// Apply returns, even if the process is killed right after. One
// connection writes (Apply is serialised); a pool of connections reads
// concurrently from consistent snapshots.
//
// Safety: property values are validated against the ontology on write;
// every value in a query is a bound parameter, and the only names spelled
// into SQL text are property names checked against the ontology.
// Unicode-aware lower-casing, great-circle distance, point-in-polygon and
// the nearest-first ranking of Near run as SQL functions registered on
// this package's own driver.
//
// The package must not know GraphQL or connectors; it passes the
// conformance suite in graph/graphtest.
package sqlite
