package cityhub

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/cityhub/cityhub"

// TestImportDirections keeps direct imports pointing one way: the ontology imports
// nothing of ours; the graph adds only the ontology; connector sources know
// the connector framework and the ontology but not the graph or each other;
// nothing but cmd/ imports the GraphQL server wiring.
func TestImportDirections(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, list, _ := strings.Cut(line, ":")
		deps[pkg] = nil
		for _, d := range strings.Fields(list) {
			if strings.HasPrefix(d, module) {
				deps[pkg] = append(deps[pkg], strings.TrimPrefix(d, module+"/"))
			}
		}
	}
	rules := []struct {
		pkg     string   // package path below the module (prefix match)
		allowed []string // our packages it may depend on (prefix match)
	}{
		{"ontology", []string{"ontology"}},
		{"graph", []string{"graph", "ontology"}},
		{"connectors/csv", []string{"connectors", "ontology", "graph"}},
		{"connectors/geojson", []string{"connectors", "ontology", "graph"}},
		{"connectors/json", []string{"connectors", "ontology", "graph"}},
		{"resolvers/core", []string{"resolvers/core", "graph", "ontology", "events"}},
		{"events", []string{"events", "graph", "ontology"}},
		{"residents", []string{"residents", "graph", "ontology", "connectors"}},
		{"web", []string{}},
	}
	for _, r := range rules {
		checked := 0
		for pkg, ds := range deps {
			rel := strings.TrimPrefix(pkg, module+"/")
			if rel != r.pkg && !strings.HasPrefix(rel, r.pkg+"/") {
				continue
			}
			if r.pkg == "graph" && strings.HasPrefix(rel, "graph/graphtest") {
				continue // the conformance suite may use test helpers of its own
			}
			checked++
			for _, d := range ds {
				ok := false
				for _, a := range r.allowed {
					if d == a || strings.HasPrefix(d, a+"/") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s; allowed: %v", rel, d, r.allowed)
				}
			}
		}
		if checked == 0 {
			t.Errorf("no package matches %q; update the rule", r.pkg)
		}
	}
	// connector sources must not import each other or the graph backends
	for pkg, ds := range deps {
		rel := strings.TrimPrefix(pkg, module+"/")
		if src, ok := sourceKind(rel); ok {
			for _, d := range ds {
				shared := d == "connectors" || d == "connectors/fetch" || d == "connectors/paging"
				if strings.HasPrefix(d, "graph/sqlite") || strings.HasPrefix(d, "graph/neo4j") ||
					(strings.HasPrefix(d, "connectors/") && !shared && d != src && !strings.HasPrefix(d, src+"/")) {
					t.Errorf("%s imports %s", rel, d)
				}
			}
		}
		if strings.HasPrefix(rel, "cmd/") {
			continue
		}
		for _, d := range ds {
			if d == "server" && rel != "server" && !strings.HasPrefix(rel, "e2e") {
				t.Errorf("%s imports the server wiring; only cmd/ may", rel)
			}
		}
	}
}

// sourceKind returns the source-kind package a package belongs to: every
// package below connectors/ except the framework's shared ones.
func sourceKind(rel string) (string, bool) {
	rest, ok := strings.CutPrefix(rel, "connectors/")
	if !ok {
		return "", false
	}
	top, _, _ := strings.Cut(rest, "/")
	switch top {
	case "all", "connectortest", "fetch", "paging", "ingestbench":
		return "", false
	}
	return "connectors/" + top, true
}
