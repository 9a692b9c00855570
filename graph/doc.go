// Package graph is the city knowledge graph contract: the Store interface
// every backend implements (the embedded default in graph/sqlite, Neo4j in
// graph/neo4j), the node, edge and change types, and the one filter model
// (an AST) that every backend compiles into its own query language.
//
// The package knows the ontology but nothing of GraphQL or connectors.
// Reads are batched so that a GraphQL query costs one store call per
// nesting level; writes are idempotent batches that return ordered,
// sequenced change events.
package graph
