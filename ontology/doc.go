// Package ontology holds the city ontology: the declarative file that
// describes classes, properties, enumerations and relations, the loader that
// validates it (every error names the file, line and element), and the typed
// model every other package reads. It imports no other cityhub package.
//
// Everything derived from the ontology (the GraphQL SDL, the Go model
// adapters, storage constraints, the JSON-LD and Turtle exports) is rendered
// by the subpackage ontology/gen from this model.
package ontology
