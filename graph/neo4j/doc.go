// Package neo4j is the Neo4j graph.Store, built on the official driver
// (github.com/neo4j/neo4j-go-driver/v5, imported as neo4jdrv). It owns the
// mapping of the knowledge graph onto a property graph, the Cypher every
// call compiles to, and the database schema the ontology calls for
// (Migrate, SchemaStatus). It must not know GraphQL or connectors, and no
// driver type leaves it; it passes the conformance suite in
// graph/graphtest.
//
// Layout: a node is one Neo4j node labelled with its class and every
// superclass (:Entity:Asset:StreetLight), its ontology properties as
// native properties (DateTime as UTC datetime at microsecond precision,
// JSON as canonical text), its representative point as a WGS-84 point in
// location, lines and polygons as GeoJSON text plus a box, provenance and
// bookkeeping in properties starting with "_" (node.go, codec.go). An
// edge is a relationship typed by its relation, one per (from, type, to).
// A (:CityhubMeta {key: 'seq'}) node holds the change sequence and
// (:CityhubChangeSet) nodes the change log (changes.go).
//
// Queries: values only ever travel as parameters; labels, relationship
// types and property keys written into Cypher are names of the ontology,
// checked when the store opens. Each batched read is one statement (UNWIND
// over IDs or points, CALL and COUNT subqueries per parent), preceded only
// when a filter names areas or radii by one statement that fetches the
// areas' polygons and Go's verdict on points within a hair of a radius
// (geo.go), so that results match graph/geo exactly. Apply plays the batch
// against the stored state in Go inside one managed write transaction,
// writes only what changed with UNWIND … MERGE per class and relation
// type, and records the events with their sequence numbers in the same
// transaction (apply.go). Managed transactions retry transient errors;
// connectivity failures are graph.ErrUnavailable.
//
// Schema (schema.go): Migrate creates, idempotently, the uniqueness
// constraint on id, point indexes on location, range indexes on the
// properties the ontology marks indexed, a full-text index on the
// searchable ones and a text index for the Search filter, and drops the
// store's indexes the ontology no longer needs. SchemaStatus tells a
// server whether to refuse to start (ErrSchemaBehind).
package neo4j
