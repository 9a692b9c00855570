// Package core is the generic, ontology-driven runtime behind the
// generated GraphQL API: the model base types every generated class type
// embeds, the conversion of `where`/`orderBy` arguments into the graph
// filter model, the per-operation dataloaders that batch store reads (one
// store call per nesting level), and the error presenter.
//
// Generated code (resolvers/model, resolvers/*.resolvers.go) calls into this
// package; nothing here is generated, and nothing here knows a class by name.
package core
