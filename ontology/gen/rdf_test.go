package gen

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cityhub/cityhub/ontology"
)

// update rewrites the golden files: go test ./ontology/gen -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// MustLoadMini loads the test ontology shared with the ontology package.
func MustLoadMini(tb testing.TB) *ontology.Ontology {
	tb.Helper()
	o, err := ontology.LoadFile(filepath.Join("..", "testdata", "mini.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ontology/gen -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs at line %d:\n got: %q\nwant: %q\n(run go test ./ontology/gen -update and review the diff)", path, i+1, g, w)
		}
	}
}

func TestRDFDefault(t *testing.T) {
	o := ontology.Default()
	j1, err := JSONLD(o)
	if err != nil {
		t.Fatalf("JSONLD(Default()): %v", err)
	}
	t1, err := Turtle(o)
	if err != nil {
		t.Fatalf("Turtle(Default()): %v", err)
	}
	j2, _ := JSONLD(o)
	t2, _ := Turtle(o)
	if !bytes.Equal(j1, j2) || !bytes.Equal(t1, t2) {
		t.Fatal("rendering the default ontology twice gave different output")
	}

	var doc struct {
		Context map[string]any   `json:"@context"`
		Graph   []map[string]any `json:"@graph"`
	}
	if err := json.Unmarshal(j1, &doc); err != nil {
		t.Fatalf("JSONLD output is not JSON: %v", err)
	}
	// Every class, enum, property and relation field is a context term.
	var names []string
	for _, c := range o.Classes {
		names = append(names, c.Name)
		for _, p := range c.Own {
			names = append(names, p.Name)
		}
	}
	for _, e := range o.Enums {
		names = append(names, e.Name)
	}
	for _, r := range o.Relations {
		names = append(names, r.Field, r.Inverse)
		for _, p := range r.Props {
			names = append(names, p.Name)
		}
	}
	for p := range o.Prefixes {
		names = append(names, p)
	}
	for _, n := range names {
		if _, ok := doc.Context[n]; !ok {
			t.Errorf("@context has no term %q", n)
		}
	}
	if got := doc.Context["locatedIn"]; !contextTerm(got, "schema:containedInPlace", "@id") {
		t.Errorf("@context locatedIn = %v, want schema:containedInPlace with @type @id", got)
	}
	if got := doc.Context["reportedAt"]; !contextTerm(got, "cdf:reportedAt", "xsd:dateTime") {
		t.Errorf("@context reportedAt = %v, want cdf:reportedAt with @type xsd:dateTime", got)
	}

	// Both syntaxes describe the same subjects.
	ids := map[string]bool{}
	for _, n := range doc.Graph {
		id, _ := n["@id"].(string)
		if id == "" {
			t.Fatalf("@graph node without @id: %v", n)
		}
		ids[id] = true
	}
	subjects := 0
	for _, line := range strings.Split(string(t1), "\n") {
		if line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "@prefix") {
			subjects++
		}
	}
	if subjects != len(ids) || subjects != len(doc.Graph) {
		t.Errorf("Turtle has %d subjects, JSON-LD %d nodes (%d distinct)", subjects, len(doc.Graph), len(ids))
	}
	for _, c := range o.Classes {
		if !ids["cdf:"+c.Name] {
			t.Errorf("class %s is not described in @graph", c.Name)
		}
		if !strings.Contains(string(t1), "\ncdf:"+c.Name+" a owl:Class ;") {
			t.Errorf("class %s is not described in Turtle", c.Name)
		}
	}
}

func contextTerm(v any, id, typ string) bool {
	m, ok := v.(map[string]any)
	return ok && m["@id"] == id && m["@type"] == typ
}

func TestRDFErrors(t *testing.T) {
	head := "namespace: https://example.org/def#\nprefixes: {ex: https://example.org/ext/}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"undeclared class prefix", head + "classes:\n  Thing: {iris: [\"nope:Thing\"]}\n", `undeclared prefix "nope"`},
		{"bad property IRI", head + "classes:\n  Thing:\n    properties:\n      size: {type: Int, iri: \"just words\"}\n", "neither a CURIE nor an absolute IRI"},
		{"one name, two IRIs", head + "classes:\n  Thing: {abstract: true}\n  A:\n    parent: Thing\n    properties: {code: {type: String, iri: \"ex:code\"}}\n  B:\n    parent: Thing\n    properties: {code: String}\n", `name "code" maps to https://example.org/def#code`},
		{"one name, two types", head + "classes:\n  Thing: {abstract: true}\n  A:\n    parent: Thing\n    properties: {size: Int}\n  B:\n    parent: Thing\n    properties: {size: String}\n", `name "size" maps to`},
		{"property and relation share an IRI", head + "classes:\n  Thing:\n    properties: {owner: {type: String, iri: \"ex:owner\"}}\nrelations:\n  OWNED_BY: {from: Thing, to: Thing, field: ownedBy, iri: \"ex:owner\"}\n", "used both for a property and for a relation"},
		{"one field, two relations", head + "classes:\n  Thing: {abstract: true}\n  X: {parent: Thing}\n  Y: {parent: Thing}\nrelations:\n  A: {from: X, to: X, field: link}\n  B: {from: Y, to: Y, field: other, inverse: link}\n", `field "link" names several relation ends (A, B (inverse))`},
		{"hub prefix taken", "namespace: https://example.org/def#\nprefixes: {cdf: https://elsewhere.org/}\nclasses:\n  Thing: {}\n", `prefix "cdf" is declared as https://elsewhere.org/`},
		{"prefix named like a term", head + "classes:\n  Thing:\n    properties: {ex: String}\n", `prefix "ex" is also the name of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ontology.Parse("f.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for name, render := range map[string]func(*ontology.Ontology) ([]byte, error){"JSONLD": JSONLD, "Turtle": Turtle} {
				_, err := render(o)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s error = %v, want it to contain %q", name, err, tt.want)
				}
			}
		})
	}
}
