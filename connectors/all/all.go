// Package all lists the built-in source kinds. cmd/ builds the registry
// with:
//
//	reg := connectors.NewRegistry()
//	all.Register(reg)
package all

import (
	"github.com/cityhub/cityhub/connectors"
	csvsrc "github.com/cityhub/cityhub/connectors/csv"
	"github.com/cityhub/cityhub/connectors/geojson"
	jsonsrc "github.com/cityhub/cityhub/connectors/json"
)

// Register adds every built-in kind to r.
func Register(r *connectors.Registry) {
	csvsrc.Register(r)
	geojson.Register(r)
	jsonsrc.Register(r)
}
