package graphtest

import (
	_ "embed"
	"testing"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

//go:embed ontology.yaml
var ontologyYAML []byte

// Ontology returns the suite's ontology, parsed afresh. Backends open the
// stores they hand to Run and Bench with it.
func Ontology() *ontology.Ontology {
	return ontology.MustParse("graphtest/ontology.yaml", ontologyYAML)
}

// testCase is one named conformance case.
type testCase struct {
	name string
	run  func(t *testing.T, s graph.Store)
}

// cases lists every case, grouped by topic.
func cases() []testCase {
	var all []testCase
	for _, group := range [][]testCase{
		filterCases(),
		orderCases(),
		pageCases(),
		geoCases(),
		neighborCases(),
		applyCases(),
		aggregateCases(),
		miscCases(),
		matchCases(),
	} {
		all = append(all, group...)
	}
	return all
}

// Run runs every conformance case as a subtest, one after the other, each
// on a fresh store from open. open must return an empty store opened with
// Ontology() and close it with t.Cleanup.
func Run(t *testing.T, open func(t testing.TB) graph.Store) {
	t.Helper()
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, open(t))
		})
	}
}
