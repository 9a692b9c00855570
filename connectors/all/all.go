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
	"github.com/cityhub/cityhub/connectors/gtfs"
	"github.com/cityhub/cityhub/connectors/gtfsrt"
	jsonsrc "github.com/cityhub/cityhub/connectors/json"
	"github.com/cityhub/cityhub/connectors/mqtt"
	"github.com/cityhub/cityhub/connectors/ngsild"
	"github.com/cityhub/cityhub/connectors/open311"
	sqlsrc "github.com/cityhub/cityhub/connectors/sql"
)

// Register adds every built-in kind to r.
func Register(r *connectors.Registry) {
	csvsrc.Register(r)
	geojson.Register(r)
	gtfs.Register(r)
	gtfsrt.Register(r)
	jsonsrc.Register(r)
	mqtt.Register(r)
	ngsild.Register(r)
	open311.Register(r)
	r.Register(connectors.PushKind())
	sqlsrc.Register(r)
}
