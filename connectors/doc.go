// Package connectors is the connector framework: the Source contract that
// every source kind implements, the explicit Registry of kinds, the
// connector file format (YAML, decoded strictly, every error naming file,
// line and field), the declarative mapping from source records to ontology
// nodes and relations, and the Runner that reads a source, maps its records,
// writes them in batches with provenance and sends records it cannot map to
// a dead-letter sink.
//
// The package parses no source format: each kind lives in its own
// subpackage (connectors/csv, connectors/geojson, connectors/json) and
// registers itself through an exported Register function; connectors/all
// lists the built-in kinds. There is no package-level registry and no init.
//
// A connector file holds one or more connectors:
//
//	connectors:
//	  - name: cambridge-streetlights   # unique connector name
//	    source: cambridge-gis          # registered source code, used in URNs
//	    kind: geojson                  # a registered kind
//	    config: {path: data/lights.geojson}
//	    mapping:
//	      nodes:
//	        - class: StreetLight
//	          key: "{PoleID}"
//	          properties: {poleNumber: "{PoleID}"}
//	          location: geometry
//	          locate_in: Neighbourhood
//
// A node template may also declare external identifiers and resolve by
// them (resolve.go): records of different sources sharing an identifier
// in the same scheme become one node holding both sources' data,
// identifiers and provenance (ONTOLOGY.md §4, rungs 1 and 2):
//
//	external_ids: {poleNumber: "{PoleID}"}
//	resolve_by: [poleNumber]
//
// See mapping.go for the full mapping reference, resolve.go for the
// resolution and merge rules, and the README.md of the connectors folder
// for a summary.
package connectors
