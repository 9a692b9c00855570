// Package cityhub is a city data fabric: connectors pull data from city
// agencies' systems into a knowledge graph modelled on a city ontology, and
// one GraphQL API serves it. See README.md; the binary is cmd/cityhub.
//
// This root package holds no code, only the test that keeps the package
// dependency rules of the layout (deps_test.go).
package cityhub
