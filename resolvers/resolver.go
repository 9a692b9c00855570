// Package resolvers holds the gqlgen resolvers. Every ontology-derived
// resolver body is generated (by resolvers/gen) as a call into the generic
// engine in resolvers/core; only resolvers of hand-written schema are
// written by hand.
package resolvers

import "github.com/cityhub/cityhub/resolvers/core"

// Resolver is the root resolver: the dependencies every resolver needs,
// filled by cmd/cityhub.
type Resolver struct {
	Engine *core.Engine
	// Admin serves the connector fields; nil when no connectors are
	// configured.
	Admin core.Admin
}
