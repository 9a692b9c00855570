// Package residents is the residents' desk: the domain logic behind
// issue reports ("the street light outside no. 12 is out") and their
// status lifecycle. A Desk validates a resident's report against the
// service list (an Open311 GeoReport v2 style YAML file, see README.md)
// and the city boundary, links it to its Service, the area that contains
// it and the nearest affected asset, and writes it with its first status
// change in one graph.Store Apply; operators then move it through the
// lifecycle of ONTOLOGY.md (Transition), and the resident follows it with
// a tracking ID and a secret token (Lookup).
//
// The package knows the graph contract and the ontology, not GraphQL: the
// API layer calls a Desk and maps its errors to codes with IsInvalid,
// IsNotFound and IsConflict (every error wraps graph.ErrInvalid,
// graph.ErrNotFound or graph.ErrConflict, or is internal).
package residents
