package neo4j_test

import (
	"fmt"
	"testing"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/neo4j"
)

// denseLeaves is the number of StreetLights LOCATED_IN one district of
// the dense-target test and benchmark: beyond some 20,000 nodes Neo4j
// 5.26 plans the unhinted edge lookup from the target.
const denseLeaves = 30_000

// denseTarget empties the database and writes, with hand-written Cypher
// (Apply would take long), a District "hub" and denseLeaves StreetLights
// LOCATED_IN it, then clears the query caches so that the next queries
// are planned on this graph.
func denseTarget(tb testing.TB) *neo4j.Store {
	tb.Helper()
	s := open(tb).(*neo4j.Store)
	ctx := tb.Context()
	if _, err := s.Apply(ctx, graph.Batch{Nodes: []graph.Node{{ID: "hub", Class: "District", Props: map[string]any{"name": "hub", "officialCode": "H"}}}}); err != nil {
		tb.Fatalf("Apply: %v", err)
	}
	drv := neo4j.Driver(s)
	for _, q := range []string{
		"MATCH (h:Entity {id: 'hub'}) UNWIND range(1, $n) AS i" +
			" CREATE (:Entity:Asset:StreetLight {id: 'leaf-' + i, _class: 'StreetLight'})-[:LOCATED_IN]->(h)",
		"CALL db.clearQueryCaches()",
	} {
		if _, err := neo4jdrv.ExecuteQuery(ctx, drv, q, map[string]any{"n": denseLeaves}, neo4jdrv.EagerResultTransformer); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	return s
}

// operators returns the operators of a plan and its children.
func operators(p neo4jdrv.Plan) []string {
	out := []string{p.Operator()}
	for _, c := range p.Children() {
		out = append(out, operators(c)...)
	}
	return out
}

// TestIntegrationApplyEdgeLookupPlan checks that Apply's edge lookup
// seeks both ends of an edge and expands between them (from the end with
// fewer relationships) on a graph large enough for the planner to prefer,
// unhinted, scanning all the relationships of the target: a batch of
// edges into a dense node then read every relationship of that node once
// per edge.
func TestIntegrationApplyEdgeLookupPlan(t *testing.T) {
	s := denseTarget(t)
	q := "CYPHER replan=force EXPLAIN CALL { " + neo4j.EdgeLookup(s) + " } RETURN edges"
	res, err := neo4jdrv.ExecuteQuery(t.Context(), neo4j.Driver(s), q,
		map[string]any{"ekeys": []any{[]any{"leaf-new", "LOCATED_IN", "hub"}}}, neo4jdrv.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}
	ops := fmt.Sprint(operators(res.Summary.Plan()))
	t.Logf("plan: %s", ops)
	var into, all bool
	for _, op := range operators(res.Summary.Plan()) {
		switch op {
		case "Expand(Into)", "Expand(Into)@neo4j":
			into = true
		case "Expand(All)", "Expand(All)@neo4j":
			all = true
		}
	}
	if !into || all {
		t.Errorf("the edge lookup does not expand between both ends: %s", ops)
	}
}

// BenchmarkIntegrationApplyDenseTarget applies batches of 100 new
// StreetLights, each LOCATED_IN a district that already holds
// denseLeaves, with the edge lookup's hints and without them (planned on
// that graph).
func BenchmarkIntegrationApplyDenseTarget(b *testing.B) {
	for _, hints := range []bool{true, false} {
		b.Run(fmt.Sprintf("hints=%v", hints), func(b *testing.B) {
			s := denseTarget(b)
			neo4j.SetEdgeLookupHints(s, hints)
			n := 0
			for b.Loop() {
				var batch graph.Batch
				for range 100 {
					n++
					id := fmt.Sprintf("new-%d", n)
					batch.Nodes = append(batch.Nodes, graph.Node{ID: id, Class: "StreetLight", Props: map[string]any{"name": id}})
					batch.Edges = append(batch.Edges, graph.Edge{From: id, Rel: "LOCATED_IN", To: "hub"})
				}
				if _, err := s.Apply(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
