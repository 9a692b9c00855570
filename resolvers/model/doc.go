// Package model holds the Go types gqlgen binds the GraphQL schema to.
// ontology_gen.go is generated from the ontology by resolvers/gen and
// models_gen.go by gqlgen; neither is edited by hand.
package model
