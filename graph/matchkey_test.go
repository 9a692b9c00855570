package graph_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cityhub/cityhub/graph"
)

func TestMatcherKey(t *testing.T) {
	tests := []struct {
		name   string
		f      graph.Filter
		field  string
		values []string // sorted; nil: no key
		prefix bool
	}{
		{"id eq", cmpf("id", graph.OpEq, "l1"), "id", []string{"l1"}, false},
		{"status in", cmpf("status", graph.OpIn, []any{"FAULTY", "OK"}), "status", []string{"FAULTY", "OK"}, false},
		{"eq preferred inside and", graph.And{cmpf("name", graph.OpStartsWith, "Lamp"), cmpf("status", graph.OpEq, "OK")}, "status", []string{"OK"}, false},
		{"nested and", graph.And{graph.And{cmpf("id", graph.OpIn, []any{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"})}},
			"id", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"}, false},
		{"startsWith", cmpf("name", graph.OpStartsWith, "Lamp"), "name", []string{"Lamp"}, true},
		{"startsWith inside and", graph.And{cmpf("powerRatingW", graph.OpGt, 3.0), cmpf("id", graph.OpStartsWith, "urn:")}, "id", []string{"urn:"}, true},
		{"or", graph.Or{cmpf("id", graph.OpEq, "a"), cmpf("id", graph.OpEq, "b")}, "", nil, false},
		{"not", graph.Not{F: cmpf("id", graph.OpEq, "a")}, "", nil, false},
		{"ne", cmpf("status", graph.OpNe, "OK"), "", nil, false},
		{"contains", cmpf("name", graph.OpContains, "amp"), "", nil, false},
		{"number", cmpf("powerRatingW", graph.OpEq, 60.0), "", nil, false},
		{"class", cmpf("class", graph.OpEq, "StreetLight"), "", nil, false},
		{"none", nil, "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, ok := mustCompile(t, "StreetLight", tt.f).Key()
			slices.Sort(k.Values)
			if ok != (tt.values != nil) || k.Field != tt.field || !slices.Equal(k.Values, tt.values) || k.Prefix != tt.prefix {
				t.Errorf("Key() = %+v %v, want %q %v prefix %v", k, ok, tt.field, tt.values, tt.prefix)
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
		cmpf("name", graph.OpStartsWith, "Lamp 2"),
	} {
		m := mustCompile(t, "StreetLight", f)
		k, ok := m.Key()
		if !ok {
			t.Fatalf("%s: no key", graph.KeyOf(f))
		}
		for _, n := range nodes {
			held := false
			graph.KeyValues(n, k.Field, func(v string) {
				for _, w := range k.Values {
					held = held || v == w || (k.Prefix && strings.HasPrefix(v, w))
				}
			})
			if m.Match(n, nil) && !held {
				t.Errorf("%s matches %s, which holds none of %+v", graph.KeyOf(f), n.ID, k)
			}
		}
	}
	var got []string
	graph.KeyValues(&graph.Node{ID: "x", Props: map[string]any{"tags": []any{"a", 1.0, "b"}}}, "tags", func(v string) { got = append(got, v) })
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("list values %v", got)
	}
}

// A node a regional filter matches lies in the filter's region: random
// points around near, within and withinArea filters, at the equator, in
// Cambridge and close to a pole.
func TestRegionHoldsEveryMatch(t *testing.T) {
	areas := graph.AreaMap{"sq": graph.AreaShape(squareArea("sq", 42, -71, 0.01, 0.0005))}
	filters := []graph.Filter{
		graph.Near{Center: graph.Point{Lat: 42.37, Lon: -71.11}, Meters: 500},
		graph.Near{Center: graph.Point{Lat: 0, Lon: 179.99}, Meters: 200},
		graph.Near{Center: graph.Point{Lat: 70, Lon: 20}, Meters: 20_000},
		graph.Within{Box: graph.BBox{MinLat: 42.3, MinLon: -71.2, MaxLat: 42.4, MaxLon: -71.0}},
		graph.WithinArea{AreaID: "sq"},
		graph.And{cmpf("name", graph.OpStartsWith, "L"), graph.Near{Center: graph.Point{Lat: 42, Lon: -71}, Meters: 3000}},
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, f := range filters {
		m := mustCompile(t, "StreetLight", f)
		box, ok := m.Region(areas)
		if !ok {
			t.Fatalf("%s: no region", graph.KeyOf(f))
		}
		matched := 0
		for i := range 20_000 {
			// points within a few radii of the box
			lat := box.MinLat + (box.MaxLat-box.MinLat)*(rnd.Float64()*3-1)
			lon := box.MinLon + (box.MaxLon-box.MinLon)*(rnd.Float64()*3-1)
			n := located(light(fmt.Sprint(i), "name", "Lamp"), lat, lon)
			if m.Match(n, areas) {
				matched++
				if !box.Contains(n.Geometry.Point) {
					t.Fatalf("%s matches (%v, %v), outside its region %+v", graph.KeyOf(f), lat, lon, box)
				}
			}
		}
		if matched == 0 {
			t.Errorf("%s: no random point matched; the test shows nothing", graph.KeyOf(f))
		}
	}
	for _, f := range []graph.Filter{
		graph.Or{graph.Near{Center: graph.Point{Lat: 1, Lon: 1}, Meters: 10}, cmpf("id", graph.OpEq, "x")},
		graph.Near{Center: graph.Point{Lat: 89.99, Lon: 0}, Meters: 5000},
		graph.WithinArea{AreaID: "unknown"},
		cmpf("name", graph.OpEq, "x"),
	} {
		if box, ok := mustCompile(t, "StreetLight", f).Region(areas); ok {
			t.Errorf("%s: region %+v, want none", graph.KeyOf(f), box)
		}
	}
}
