// Package resolvers holds the gqlgen resolvers. Every ontology-derived
// resolver body is generated (by resolvers/gen) as a call into the generic
// engine in resolvers/core; only resolvers of hand-written schema are
// written by hand.
package resolvers

import (
	"fmt"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/residents"
	"github.com/cityhub/cityhub/resolvers/core"
)

// Resolver is the root resolver: the dependencies every resolver needs,
// filled by cmd/cityhub.
type Resolver struct {
	Engine *core.Engine
	// Admin serves the connector fields; nil when no connectors are
	// configured.
	Admin core.Admin
	// Desk serves residents' issue reports; nil when no service list is
	// configured.
	Desk *residents.Desk
}

// desk returns the residents' desk, or why there is none.
func (r *Resolver) desk() (*residents.Desk, error) {
	if r.Desk == nil {
		return nil, fmt.Errorf("%w: issue reports are not enabled on this server (no service list configured)", graph.ErrNotFound)
	}
	return r.Desk, nil
}
