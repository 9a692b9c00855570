package graphtest

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
)

// The Match cases check graph.Matcher, the in-memory filter evaluator that
// subscriptions use, against the store: for every filter of the filter
// table and of the geo cases, the nodes read back with Store.Nodes that
// the compiled matcher accepts must be exactly the case's expected IDs and
// the IDs Store.Find returns. The matcher runs over every stored node, so
// its class test (subclasses included, other classes excluded) is checked
// too. Areas for WithinArea are read back from the store (graph.LoadAreas).

func matchCases() []testCase {
	return []testCase{
		{"Match/Filter", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			checkMatch(t, s, append(filterTable(), matchExtraTable()...))
		}},
		{"Match/Geo", func(t *testing.T, s graph.Store) {
			seedGeo(t, s)
			checkMatch(t, s, geoMatchTable())
		}},
		{"Match/PolesAndAntimeridian", func(t *testing.T, s graph.Store) {
			seedPoles(t, s)
			checkMatch(t, s, polesMatchTable())
		}},
		{"Match/Invalid", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			for _, c := range matchInvalidTable() {
				_, err := graph.CompileMatch(Ontology(), c.class, c.filter)
				MustFail(t, "CompileMatch "+c.name, err, graph.ErrInvalid)
				_, err = s.Find(t.Context(), graph.FindQuery{Class: c.class, Filter: c.filter, First: 10})
				MustFail(t, "Find "+c.name, err, graph.ErrInvalid)
			}
		}},
	}
}

// checkMatch runs each case's compiled matcher over every stored node.
func checkMatch(t *testing.T, s graph.Store, table []filterCase) {
	t.Helper()
	o := Ontology()
	all := findIDs(t, s, o.Root().Name, nil) // by ID
	nodes := MustNodes(t, s, all...)
	for _, c := range table {
		t.Run(c.name, func(t *testing.T) {
			m, err := graph.CompileMatch(o, c.class, c.filter)
			if err != nil {
				t.Fatalf("CompileMatch(%s, %s): %v", c.class, key(c.filter), err)
			}
			areas, err := graph.LoadAreas(t.Context(), s, m.Areas())
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, n := range nodes {
				if m.Match(n, areas) {
					got = append(got, n.ID)
				}
			}
			want := c.want
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("Match(%s, %s) accepts %q, want %q", c.class, key(c.filter), got, want)
			}
			if found := findIDs(t, s, c.class, c.filter); !slices.Equal(got, found) {
				t.Errorf("Match(%s, %s) accepts %q, Find returns %q", c.class, key(c.filter), got, found)
			}
		})
	}
}

// matchExtraTable adds filters over the seedFilter fixture that the filter
// table leaves out: branches Simplify drops, large sets, exact numbers,
// times below the microsecond, nested negations.
func matchExtraTable() []filterCase {
	const SL = "StreetLight"
	many := list("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "main street 2", "Main Cam")
	return []filterCase{
		{"extra/or-nil-drops-invalid-branch", SL, graph.Or{nil, cmp("nope", graph.OpEq, "x")}, lights},
		{"extra/in-large-set", "Entity", cmp("name", graph.OpIn, many), []string{"cam-1", "sl-2"}},
		{"extra/in-large-number-set", SL, cmp("powerRatingW", graph.OpIn, list(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, int64(100), 60.5)), []string{"sl-1", "sl-2", "sl-5"}},
		{"extra/int-field-beyond-float", SL, cmp("lampCount", graph.OpLt, math.Inf(1)), []string{"sl-2", "sl-3", "sl-4", "sl-5"}},
		{"extra/float-field-minus-zero", SL, cmp("powerRatingW", graph.OpGt, math.Copysign(0, -1)), []string{"sl-1", "sl-2", "sl-4", "sl-5"}},
		{"extra/time-below-microsecond", SL, cmp("installedAt", graph.OpEq, ts("2021-06-15T12:00:00.000001999Z")), []string{"sl-2"}},
		{"extra/time-in-zone", SL, cmp("installedAt", graph.OpIn, list(time.Date(2020, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600)))), []string{"sl-1", "sl-5"}},
		{"extra/list-ne-number", SL, cmp("readings", graph.OpNe, 0.5), []string{"sl-1"}},
		{"extra/list-not-in", "Incident", graph.Not{F: cmp("categories", graph.OpIn, list("MEDIUM"))}, []string{"inc-1"}},
		{"extra/source-contains", SL, cmp("_source", graph.OpContains, "GI"), []string{"sl-1", "sl-2"}},
		{"extra/class-in-on-entity", "Entity", cmp("class", graph.OpIn, list("Camera", "Incident", "Asset")), []string{"cam-1", "inc-1"}},
		{"extra/not-not-or", SL, graph.Not{F: graph.Not{F: graph.Or{cmp("lit", graph.OpEq, true), cmp("lampCount", graph.OpGte, 3.0)}}}, []string{"sl-1", "sl-3"}},
		{"extra/search-on-entity", "Entity", graph.Search{Text: "MAIN"}, []string{"cam-1", "inc-1", "sl-1", "sl-2"}},
		{"extra/search-and-near", "Entity", graph.And{graph.Search{Text: "main"}, graph.Near{Center: graph.Point{Lat: 42.37, Lon: -71.11}, Meters: 300}}, []string{"cam-1", "inc-1", "sl-1"}},
		{"extra/not-search-or-within", SL, graph.Or{graph.Not{F: graph.Search{Text: "street"}}, graph.Within{Box: graph.BBox{MinLat: 42.375, MinLon: -71.2, MaxLat: 42.385, MaxLon: -71}}}, []string{"sl-2", "sl-3", "sl-4", "sl-5", "sl-q"}},
	}
}

// geoMatchTable holds the filters of the geo cases over the seedGeo
// fixture, and combinations of them with the other predicates.
func geoMatchTable() []filterCase {
	centre := graph.Point{Lat: cLat, Lon: cLon}
	d := geo.Distance(cLat, cLon, cLat-0.008, cLon) // to g-in2
	box := graph.BBox{MinLat: cLat - 0.01, MinLon: cLon - 0.01, MaxLat: cLat + 0.015, MaxLon: cLon + 0.003}
	near := graph.Near{Center: centre, Meters: 5000}
	geoLights := []string{"g-antimeridian", "g-antimeridian2", "g-centre", "g-edge", "g-far", "g-in", "g-in2", "g-nowhere", "g-out"}
	assets := append(slices.Clone(geoLights[:2]), append([]string{"g-cam"}, geoLights[2:]...)...)
	ok := cmp("status", graph.OpEq, "OK")
	return []filterCase{
		// Geo/AlwaysFalseWithGeo
		{"always-false/empty-or", "Asset", graph.And{graph.Or{}, near}, nil},
		{"always-false/empty-in", "StreetLight", graph.And{near, cmp("id", graph.OpIn, list())}, nil},
		{"always-false/unknown-area", "Asset", graph.And{graph.WithinArea{AreaID: "no-such-area"}, graph.WithinArea{AreaID: "d-1"}}, nil},
		{"always-false/within", "StreetLight", graph.And{graph.Or{}, graph.Within{Box: graph.BBox{MinLat: 41, MinLon: -72, MaxLat: 43, MaxLon: -70}}}, nil},
		// Geo/NearFilter
		{"near/on-the-radius", "StreetLight", graph.Near{Center: centre, Meters: d}, []string{"g-centre", "g-in", "g-in2"}},
		{"near/just-under-the-radius", "StreetLight", graph.Near{Center: centre, Meters: math.Nextafter(d, 0)}, []string{"g-centre", "g-in"}},
		{"near/zero", "StreetLight", graph.Near{Center: centre, Meters: 0}, []string{"g-centre"}},
		{"near/zero-entity", "Entity", graph.Near{Center: centre, Meters: 0}, []string{"d-1", "d-2", "g-centre"}},
		{"near/not", "StreetLight", graph.Not{F: graph.Near{Center: centre, Meters: 2000}}, []string{"g-antimeridian", "g-antimeridian2", "g-far", "g-nowhere", "g-out"}},
		{"near/antimeridian", "StreetLight", graph.Near{Center: graph.Point{Lat: 10, Lon: 180}, Meters: 100}, []string{"g-antimeridian", "g-antimeridian2"}},
		{"near/and-status", "Asset", graph.And{graph.Near{Center: centre, Meters: 1000}, ok}, []string{"g-cam", "g-centre", "g-in"}},
		{"near/status-5000", "Asset", graph.And{near, ok}, []string{"g-cam", "g-centre", "g-edge", "g-in", "g-out"}},
		{"near/within-area", "Asset", graph.And{near, graph.WithinArea{AreaID: "d-1"}}, []string{"g-cam", "g-in", "g-in2"}},
		// Geo/WithinBox
		{"within/box", "StreetLight", graph.Within{Box: box}, []string{"g-centre", "g-edge", "g-in2"}},
		{"within/point-box", "Entity", graph.Within{Box: graph.BBox{MinLat: cLat, MinLon: cLon, MaxLat: cLat, MaxLon: cLon}}, []string{"d-1", "d-2", "g-centre"}},
		{"within/not", "StreetLight", graph.Not{F: graph.Within{Box: box}}, []string{"g-antimeridian", "g-antimeridian2", "g-far", "g-in", "g-nowhere", "g-out"}},
		{"within/inverted", "StreetLight", graph.Within{Box: graph.BBox{MinLat: cLat + 1, MinLon: cLon, MaxLat: cLat - 1, MaxLon: cLon + 1}}, nil},
		{"within/across-antimeridian-box", "StreetLight", graph.Within{Box: graph.BBox{MinLat: 9, MinLon: 179, MaxLat: 11, MaxLon: 181}}, []string{"g-antimeridian"}},
		// Geo/WithinArea
		{"area/d-1", "Asset", graph.WithinArea{AreaID: "d-1"}, []string{"g-cam", "g-in", "g-in2"}},
		{"area/d-1-and-ok", "StreetLight", graph.And{graph.WithinArea{AreaID: "d-1"}, ok}, []string{"g-in"}},
		{"area/point-only", "Asset", graph.WithinArea{AreaID: "d-2"}, nil},
		{"area/unknown", "Asset", graph.WithinArea{AreaID: "nope"}, nil},
		{"area/not-an-area", "Asset", graph.WithinArea{AreaID: "g-in"}, nil},
		{"area/not-point-only", "StreetLight", graph.Not{F: graph.WithinArea{AreaID: "d-2"}}, geoLights},
		{"area/not-unknown", "StreetLight", graph.Not{F: graph.WithinArea{AreaID: "nope"}}, geoLights},
		{"area/not-not-an-area", "StreetLight", graph.Not{F: graph.WithinArea{AreaID: "g-in"}}, geoLights},
		{"area/or", "StreetLight", graph.Or{graph.WithinArea{AreaID: "d-1"}, graph.WithinArea{AreaID: "nope"}, cmp("id", graph.OpEq, "g-far")}, []string{"g-far", "g-in", "g-in2"}},
		// combinations
		{"combo/not-near-and-not-area", "Asset", graph.Not{F: graph.And{graph.Near{Center: centre, Meters: 1000}, graph.Not{F: graph.WithinArea{AreaID: "d-1"}}}}, except(assets, "g-centre")},
		{"combo/area-or-search", "Entity", graph.Or{graph.WithinArea{AreaID: "d-1"}, graph.Search{Text: "square"}}, []string{"d-1", "g-cam", "g-in", "g-in2"}},
		{"combo/search-point-only", "Place", graph.And{graph.Search{Text: "ONLY point"}, graph.Within{Box: graph.BBox{MinLat: 41, MinLon: -72, MaxLat: 43, MaxLon: -70}}}, []string{"d-2"}},
		{"combo/two-areas", "Asset", graph.Or{graph.WithinArea{AreaID: "d-1"}, graph.And{graph.WithinArea{AreaID: "d-2"}, ok}}, []string{"g-cam", "g-in", "g-in2"}},
		{"combo/class-and-box", "Asset", graph.And{graph.Within{Box: graph.BBox{MinLat: 41, MinLon: -72, MaxLat: 43, MaxLon: -70}}, graph.Not{F: cmp("class", graph.OpEq, "StreetLight")}}, []string{"g-cam"}},
	}
}

// seedPoles stores the points of Geo/PolesAndAntimeridian.
func seedPoles(t testing.TB, s graph.Store) {
	t.Helper()
	MustApply(t, s, graph.Batch{Nodes: []graph.Node{
		at(node("StreetLight", "pole-n", "status", "OK"), 89.9, 170),
		at(node("StreetLight", "pole-far", "status", "OK"), 60, 170),
		at(node("StreetLight", "am-east", "status", "OK"), -10, 179.9),
		at(node("StreetLight", "am-west", "status", "OK"), -10, -179.9),
		at(node("StreetLight", "am-far", "status", "OK"), -10, 170),
	}})
}

func polesMatchTable() []filterCase {
	near := func(lat, lon, m float64) graph.Near {
		return graph.Near{Center: graph.Point{Lat: lat, Lon: lon}, Meters: m}
	}
	return []filterCase{
		{"over-the-north-pole", "StreetLight", near(80, -10, 2e6), []string{"pole-n"}},
		{"antimeridian-from-the-east", "StreetLight", near(-10, 179.95, 2e4), []string{"am-east", "am-west"}},
		{"antimeridian-from-the-west", "StreetLight", near(-10, -179.99, 2e4), []string{"am-east", "am-west"}},
		{"half-the-earth", "StreetLight", near(0, 0, 2.2e7), []string{"am-east", "am-far", "am-west", "pole-far", "pole-n"}},
		{"south-pole", "Asset", near(-90, 0, 1e7), []string{"am-east", "am-far", "am-west"}},
		{"not-pole", "Asset", graph.Not{F: near(90, 0, 2e4)}, []string{"am-east", "am-far", "am-west", "pole-far"}},
	}
}

// matchInvalidTable holds filters that the stores and the matcher reject
// alike with graph.ErrInvalid.
func matchInvalidTable() []filterCase {
	const SL = "StreetLight"
	return []filterCase{
		{name: "unknown-class", class: "Nope"},
		{name: "unknown-field", class: SL, filter: cmp("nope", graph.OpEq, "x")},
		{name: "field-of-other-class", class: "Camera", filter: cmp("powerRatingW", graph.OpEq, 1.0)},
		{name: "unknown-op", class: SL, filter: cmp("name", graph.CmpOp("like"), "x")},
		{name: "string-for-number", class: SL, filter: cmp("powerRatingW", graph.OpGt, "100")},
		{name: "int-for-number", class: SL, filter: cmp("powerRatingW", graph.OpGt, 100)},
		{name: "nan", class: SL, filter: cmp("powerRatingW", graph.OpLt, math.NaN())},
		{name: "number-for-string", class: SL, filter: cmp("name", graph.OpEq, int64(1))},
		{name: "string-for-time", class: SL, filter: cmp("installedAt", graph.OpGt, "2020-01-01T00:00:00Z")},
		{name: "nil-value", class: SL, filter: cmp("name", graph.OpEq, nil)},
		{name: "contains-number", class: SL, filter: cmp("powerRatingW", graph.OpContains, "1")},
		{name: "contains-bad-utf8", class: SL, filter: cmp("name", graph.OpContains, "\xff")},
		{name: "in-not-list", class: SL, filter: cmp("status", graph.OpIn, "OK")},
		{name: "in-bad-element", class: SL, filter: cmp("lampCount", graph.OpIn, list(int64(1), "2"))},
		{name: "isNull-not-bool", class: SL, filter: cmp("name", graph.OpIsNull, "yes")},
		{name: "lt-bool", class: SL, filter: cmp("lit", graph.OpLt, true)},
		{name: "eq-json", class: SL, filter: cmp("attributes", graph.OpEq, "x")},
		{name: "in-json", class: SL, filter: cmp("attributes", graph.OpIn, list())},
		{name: "nested-unknown", class: SL, filter: graph.Or{cmp("name", graph.OpEq, "x"), graph.Not{F: cmp("nope", graph.OpEq, "x")}}},
		{name: "near-off-the-globe", class: SL, filter: graph.Near{Center: graph.Point{Lat: 91, Lon: 0}, Meters: 1}},
		{name: "near-negative", class: SL, filter: graph.Near{Center: graph.Point{Lat: 1, Lon: 1}, Meters: -1}},
		{name: "near-infinite", class: SL, filter: graph.Near{Center: graph.Point{Lat: 1, Lon: 1}, Meters: math.Inf(1)}},
		{name: "within-nan", class: SL, filter: graph.Within{Box: graph.BBox{MinLat: math.NaN()}}},
	}
}
