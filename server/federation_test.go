package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/resolvers/core"
)

// postVars posts a query with variables and decodes the response, failing
// on GraphQL errors.
func postVars(t testing.TB, url, query string, vars map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out["errors"] != nil {
		t.Fatalf("errors: %v", out["errors"])
	}
	return out
}

func hoodID(i int) string { return fmt.Sprintf("urn:city:neighbourhood:test:%03d", i) }

// TestFederationEntitiesBatch checks the Apollo Federation _entities field
// as a gateway calls it: every representation of a class in one request
// costs one store call, the answers come back in representation order, an
// unknown ID or an ID of another class answers null, and a relation field
// selected on the entities is one more store call for all of them.
func TestFederationEntitiesBatch(t *testing.T) {
	store := MustSeed(t, 100)
	cs := &countingStore{Reader: store, calls: map[string]int{}}
	engine := core.NewEngine(cs, ontology.Default(), core.DefaultConfig(), nil)
	srv := httptest.NewServer(New(DefaultConfig(), engine, nil, nil, nil))
	defer srv.Close()

	const query = `query($reps: [_Any!]!) { _entities(representations: $reps) {
		__typename
		... on Neighbourhood { id name crashes: contains(where: {class: INCIDENT}) { totalCount } }
		... on Incident { id incidentType }
	} }`
	type want struct {
		typename, id string // "" typename: null
		crashes      float64
	}
	// 100 neighbourhoods in reverse order, an unknown ID, the ID of a node
	// of another class, and a repeated ID
	var hoods []map[string]any
	var hoodsWant []want
	for i := 99; i >= 0; i-- {
		hoods = append(hoods, map[string]any{"__typename": "Neighbourhood", "id": hoodID(i)})
		hoodsWant = append(hoodsWant, want{"Neighbourhood", hoodID(i), 3})
	}
	hoods = append(hoods,
		map[string]any{"__typename": "Neighbourhood", "id": "urn:city:neighbourhood:test:nope"},
		map[string]any{"__typename": "Neighbourhood", "id": "urn:city:incident:test:000-0"},
		map[string]any{"__typename": "Neighbourhood", "id": hoodID(7)})
	hoodsWant = append(hoodsWant, want{}, want{}, want{"Neighbourhood", hoodID(7), 3})

	tests := []struct {
		name  string
		reps  []map[string]any
		want  []want
		calls map[string]int
	}{
		{
			name:  "one class: one store call for the batch, one for its relation",
			reps:  hoods,
			want:  hoodsWant,
			calls: map[string]int{"Nodes": 1, "Neighbors": 1},
		},
		{
			name: "two classes: one store call each",
			reps: []map[string]any{
				{"__typename": "Incident", "id": "urn:city:incident:test:042-1"},
				{"__typename": "Neighbourhood", "id": hoodID(42)},
				{"__typename": "Incident", "id": hoodID(43)},
			},
			want:  []want{{"Incident", "urn:city:incident:test:042-1", 0}, {"Neighbourhood", hoodID(42), 3}, {}},
			calls: map[string]int{"Nodes": 2, "Neighbors": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs.reset()
			out := postVars(t, srv.URL+"/graphql", query, map[string]any{"reps": tt.reps})
			if got := cs.reset(); fmt.Sprint(got) != fmt.Sprint(tt.calls) {
				t.Errorf("store calls = %v, want %v", got, tt.calls)
			}
			list, _ := at(out, "data", "_entities").([]any)
			if len(list) != len(tt.want) {
				t.Fatalf("_entities returned %d entries for %d representations", len(list), len(tt.want))
			}
			for i, w := range tt.want {
				e := list[i]
				if w.typename == "" {
					if e != nil {
						t.Errorf("_entities[%d] = %v, want null", i, e)
					}
					continue
				}
				if at(e, "__typename") != w.typename || at(e, "id") != w.id {
					t.Errorf("_entities[%d] = %v, want %s %s", i, e, w.typename, w.id)
				}
				if w.typename == "Neighbourhood" {
					if n := at(e, "crashes", "totalCount"); n != w.crashes {
						t.Errorf("_entities[%d] crashes = %v, want %v", i, n, w.crashes)
					}
					if name := at(e, "name"); !strings.HasPrefix(fmt.Sprint(name), "Hood ") {
						t.Errorf("_entities[%d] name = %v", i, name)
					}
				}
			}
		})
	}
}

// TestFederationService checks the subgraph schema a gateway composes:
// the Federation 2 link, and @key(fields: "id") on every concrete class
// and on no interface.
func TestFederationService(t *testing.T) {
	engine := core.NewEngine(MustSeed(t, 1), ontology.Default(), core.DefaultConfig(), nil)
	srv := httptest.NewServer(New(DefaultConfig(), engine, nil, nil, nil))
	defer srv.Close()
	out := post(t, srv.URL+"/graphql", `{ _service { sdl } }`)
	sdl, _ := at(out, "data", "_service", "sdl").(string)
	if !strings.Contains(sdl, `extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])`) {
		t.Errorf("sdl has no Federation 2 link:\n%.2000s", sdl)
	}
	ont := ontology.Default()
	for _, c := range ont.Classes {
		re := regexp.MustCompile(`(?m)^(type|interface) ` + c.Name + ` implements [A-Za-z& ]+?( @key\(fields: "id"\))? \{$`)
		m := re.FindStringSubmatch(sdl)
		switch {
		case m == nil:
			t.Errorf("sdl has no definition of %s", c.Name)
		case c.Abstract && m[2] != "":
			t.Errorf("interface %s is an entity: %q", c.Name, m[0])
		case !c.Abstract && m[2] == "":
			t.Errorf("type %s has no @key: %q", c.Name, m[0])
		}
	}
	// the gqlgen-internal type of the entity resolvers is not part of it
	if strings.Contains(sdl, "findMany") {
		t.Errorf("sdl exposes the entity resolvers")
	}
}
