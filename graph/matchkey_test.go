package graph_test

import (
	"slices"
	"testing"

	"github.com/cityhub/cityhub/graph"
)

func TestMatcherKey(t *testing.T) {
	tests := []struct {
		name   string
		f      graph.Filter
		field  string
		values []string // sorted; nil: no key
	}{
		{"id eq", cmpf("id", graph.OpEq, "l1"), "id", []string{"l1"}},
		{"status in", cmpf("status", graph.OpIn, []any{"FAULTY", "OK"}), "status", []string{"FAULTY", "OK"}},
		{"eq inside and", graph.And{cmpf("name", graph.OpStartsWith, "Lamp"), cmpf("status", graph.OpEq, "OK")}, "status", []string{"OK"}},
		{"nested and", graph.And{graph.And{cmpf("id", graph.OpIn, []any{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"})}},
			"id", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"}},
		{"or", graph.Or{cmpf("id", graph.OpEq, "a"), cmpf("id", graph.OpEq, "b")}, "", nil},
		{"not", graph.Not{F: cmpf("id", graph.OpEq, "a")}, "", nil},
		{"ne", cmpf("status", graph.OpNe, "OK"), "", nil},
		{"startsWith", cmpf("name", graph.OpStartsWith, "Lamp"), "", nil},
		{"number", cmpf("powerRatingW", graph.OpEq, 60.0), "", nil},
		{"class", cmpf("class", graph.OpEq, "StreetLight"), "", nil},
		{"none", nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			field, values, ok := mustCompile(t, "StreetLight", tt.f).Key()
			slices.Sort(values)
			if ok != (tt.values != nil) || field != tt.field || !slices.Equal(values, tt.values) {
				t.Errorf("Key() = %q %v %v, want %q %v", field, values, ok, tt.field, tt.values)
			}
		})
	}
}

// A node a keyed filter matches holds one of the key's values, as
// KeyValues reads them.
func TestKeyValuesAgreeWithMatch(t *testing.T) {
	nodes := []*graph.Node{
		light("l1", "status", "OK", "name", "Lamp 1"),
		light("l2", "status", "FAULTY", "name", "Lamp 2"),
		light("l3", "name", "Lamp 3"),
		light("l4", "status", 3.0),
	}
	for _, f := range []graph.Filter{
		cmpf("id", graph.OpEq, "l2"),
		cmpf("status", graph.OpIn, []any{"FAULTY", "UNKNOWN"}),
		graph.And{cmpf("name", graph.OpStartsWith, "Lamp"), cmpf("status", graph.OpEq, "OK")},
	} {
		m := mustCompile(t, "StreetLight", f)
		field, values, ok := m.Key()
		if !ok {
			t.Fatalf("%s: no key", graph.KeyOf(f))
		}
		for _, n := range nodes {
			held := false
			graph.KeyValues(n, field, func(v string) { held = held || slices.Contains(values, v) })
			if m.Match(n, nil) && !held {
				t.Errorf("%s matches %s, which holds none of %s %v", graph.KeyOf(f), n.ID, field, values)
			}
		}
	}
	var got []string
	graph.KeyValues(&graph.Node{ID: "x", Props: map[string]any{"tags": []any{"a", 1.0, "b"}}}, "tags", func(v string) { got = append(got, v) })
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("list values %v", got)
	}
}
