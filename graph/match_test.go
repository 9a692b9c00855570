package graph_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
	"github.com/cityhub/cityhub/graph/graphtest"
)

// The conformance suite (graphtest, case Match/...) checks the matcher
// against Store.Find on every backend; these tests cover the edges its
// fixture does not reach and need no store.

// ont is the suite's ontology, parsed once (an Ontology is immutable).
var ont = graphtest.Ontology()

func mustCompile(tb testing.TB, class string, f graph.Filter) *graph.Matcher {
	tb.Helper()
	m, err := graph.CompileMatch(ont, class, f)
	if err != nil {
		tb.Fatalf("CompileMatch(%s, %s): %v", class, graph.KeyOf(f), err)
	}
	return m
}

func cmpf(field string, op graph.CmpOp, v any) graph.Cmp {
	return graph.Cmp{Field: field, Op: op, Value: v}
}

func light(id string, kv ...any) *graph.Node {
	n := &graph.Node{ID: id, Class: "StreetLight", Props: map[string]any{}}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Props[kv[i].(string)] = kv[i+1]
	}
	return n
}

func located(n *graph.Node, lat, lon float64) *graph.Node {
	n.Geometry = graph.PointGeometry(lat, lon)
	return n
}

// squareArea is a district polygon: the square of half-side d degrees
// around (lat, lon) with a square hole of half-side h.
func squareArea(id string, lat, lon, d, h float64) *graph.Node {
	ring := func(d float64) string {
		return fmt.Sprintf("[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]", lon-d, lat-d, lon+d, lat-d, lon+d, lat+d, lon-d, lat+d, lon-d, lat-d)
	}
	return &graph.Node{ID: id, Class: "District", Props: map[string]any{"officialCode": id}, Geometry: &graph.Geometry{
		Point: graph.Point{Lat: lat, Lon: lon}, Kind: "Polygon",
		GeoJSON: `{"type":"Polygon","coordinates":[` + ring(d) + "," + ring(h) + "]}",
	}}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	nodes := []*graph.Node{
		located(light("full", "name", "Große Straße 1", "description", "Near the PARK", "status", "OK",
			"powerRatingW", 100.0, "lampCount", int64(1<<53+1), "lit", true, "installedAt", t0,
			"externalIds", []any{"A-1", "x-9"}, "readings", []any{1.5, 2.5}, "serviceDates", []any{t0.Add(time.Hour)},
			"attributes", map[string]any{"k": "v"}), 42, -71),
		light("bare"),
		light("empty", "name", "", "externalIds", []any{}, "readings", []any{}),
		located(light("zero", "powerRatingW", 0.0, "lampCount", int64(0), "lit", false, "installedAt", time.Time{}), 42.001, -71),
		light("max", "lampCount", int64(math.MaxInt64), "powerRatingW", -1e300),
	}
	nodes[0].Prov = graph.Provenance{Source: "gis", FetchedAt: t0, ValidFrom: t0}
	nodes[0].Prov.IngestedAt = t0.Add(time.Minute)
	cam := &graph.Node{ID: "cam", Class: "Camera", Props: map[string]any{"status": "OK", "name": "Main Cam"}, Geometry: graph.PointGeometry(42, -71)}
	inc := &graph.Node{ID: "inc", Class: "Incident", Props: map[string]any{"categories": []any{"HIGH", "LOW"}, "counts": []any{int64(1), int64(7)}, "reportedAt": t0}}
	nodes = append(nodes, cam, inc)
	areas := graph.AreaMap{"sq": graph.AreaShape(squareArea("sq", 42, -71, 0.01, 0.0005))}
	dist := geo.Distance(42, -71, 42.001, -71)
	est := time.FixedZone("EST", -5*3600)

	cases := []struct {
		name  string
		class string
		f     graph.Filter
		want  []string
	}{
		// logic and classes
		{"nil matches the class", "StreetLight", nil, []string{"full", "bare", "empty", "zero", "max"}},
		{"nil on an abstract class takes subclasses", "Asset", nil, []string{"full", "bare", "empty", "zero", "max", "cam"}},
		{"class without concrete nodes here", "District", nil, nil},
		{"empty and matches all", "Entity", graph.And{}, []string{"full", "bare", "empty", "zero", "max", "cam", "inc"}},
		{"empty or matches nothing", "StreetLight", graph.Or{}, nil},
		{"not of empty or matches all", "StreetLight", graph.Not{F: graph.Or{}}, []string{"full", "bare", "empty", "zero", "max"}},
		{"not of nil matches nothing", "StreetLight", graph.Not{}, nil},
		{"or with a nil branch matches all", "StreetLight", graph.Or{nil, cmpf("status", graph.OpEq, "FAULTY")}, []string{"full", "bare", "empty", "zero", "max"}},
		{"nested empty and", "StreetLight", graph.And{graph.And{}, graph.And{nil}}, []string{"full", "bare", "empty", "zero", "max"}},
		// in
		{"empty in matches nothing", "StreetLight", cmpf("status", graph.OpIn, []any{}), nil},
		{"not of empty in matches all", "StreetLight", graph.Not{F: cmpf("status", graph.OpIn, []any{})}, []string{"full", "bare", "empty", "zero", "max"}},
		{"empty in on a boolean", "StreetLight", cmpf("lit", graph.OpIn, []any{}), nil},
		{"in with duplicates", "Asset", cmpf("status", graph.OpIn, []any{"OK", "OK"}), []string{"full", "cam"}},
		{"in over the scan size", "StreetLight", cmpf("name", graph.OpIn, []any{"a", "b", "c", "d", "e", "f", "g", "h", "i", "", "Große Straße 1"}), []string{"full", "empty"}},
		{"in numbers over the scan size", "StreetLight", cmpf("lampCount", graph.OpIn, []any{1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, -0.0, int64(math.MaxInt64)}), []string{"zero", "max"}},
		{"in float equal to an int", "Incident", cmpf("counts", graph.OpIn, []any{7.0}), []string{"inc"}},
		{"in booleans", "StreetLight", cmpf("lit", graph.OpIn, []any{false}), []string{"zero"}},
		{"in both booleans", "StreetLight", cmpf("lit", graph.OpIn, []any{false, true}), []string{"full", "zero"}},
		{"in times, another zone", "StreetLight", cmpf("installedAt", graph.OpIn, []any{t0.In(est)}), []string{"full"}},
		// isNull
		{"isNull true on missing", "StreetLight", cmpf("powerRatingW", graph.OpIsNull, true), []string{"bare", "empty"}},
		{"isNull false on present", "StreetLight", cmpf("powerRatingW", graph.OpIsNull, false), []string{"full", "zero", "max"}},
		{"isNull: the empty string is a value", "StreetLight", cmpf("name", graph.OpIsNull, false), []string{"full", "empty"}},
		{"isNull: an empty list is null", "StreetLight", cmpf("externalIds", graph.OpIsNull, true), []string{"bare", "empty", "zero", "max"}},
		{"isNull: the zero time of a property is a value", "StreetLight", cmpf("installedAt", graph.OpIsNull, false), []string{"full", "zero"}},
		{"isNull on JSON", "StreetLight", cmpf("attributes", graph.OpIsNull, false), []string{"full"}},
		{"isNull: empty _source is null", "StreetLight", cmpf("_source", graph.OpIsNull, true), []string{"bare", "empty", "zero", "max"}},
		{"isNull: zero provenance time is null", "StreetLight", cmpf("_validTo", graph.OpIsNull, false), nil},
		{"isNull: id is never null", "StreetLight", cmpf("id", graph.OpIsNull, true), nil},
		{"isNull on a subclass property", "Asset", cmpf("lampCount", graph.OpIsNull, true), []string{"bare", "empty", "cam"}},
		// nulls in comparisons
		{"ne excludes null", "StreetLight", cmpf("status", graph.OpNe, "FAULTY"), []string{"full"}},
		{"not eq includes null", "StreetLight", graph.Not{F: cmpf("status", graph.OpEq, "OK")}, []string{"bare", "empty", "zero", "max"}},
		{"ne on _source excludes null", "StreetLight", cmpf("_source", graph.OpNe, "x"), []string{"full"}},
		{"provenance time null", "StreetLight", cmpf("_fetchedAt", graph.OpLte, t0), []string{"full"}},
		{"ingestedAt", "StreetLight", cmpf("_ingestedAt", graph.OpGt, t0), []string{"full"}},
		// lists
		{"list eq any element", "StreetLight", cmpf("externalIds", graph.OpEq, "x-9"), []string{"full"}},
		{"list ne: no element equals", "StreetLight", cmpf("externalIds", graph.OpNe, "B"), []string{"full"}},
		{"list ne: one element equals", "StreetLight", cmpf("externalIds", graph.OpNe, "A-1"), nil},
		{"list ne on an empty list", "StreetLight", cmpf("readings", graph.OpNe, 3.0), []string{"full"}},
		{"list contains", "StreetLight", cmpf("externalIds", graph.OpContains, "X-"), []string{"full"}},
		{"list startsWith", "StreetLight", cmpf("externalIds", graph.OpStartsWith, "x"), []string{"full"}},
		{"list lt", "StreetLight", cmpf("readings", graph.OpLt, int64(2)), []string{"full"}},
		{"list gt none", "StreetLight", cmpf("readings", graph.OpGt, 2.5), nil},
		{"list of times", "StreetLight", cmpf("serviceDates", graph.OpGt, t0), []string{"full"}},
		{"list ne times", "StreetLight", cmpf("serviceDates", graph.OpNe, t0.Add(time.Hour).In(est)), nil},
		{"list of enums", "Incident", cmpf("categories", graph.OpEq, "LOW"), []string{"inc"}},
		{"list ne ints", "Incident", cmpf("counts", graph.OpNe, 7.0), nil},
		// numbers
		{"int beyond 2^53 against its rounded float", "StreetLight", cmpf("lampCount", graph.OpGt, float64(1<<53)), []string{"full", "max"}},
		{"int beyond 2^53 not equal to the float", "StreetLight", cmpf("lampCount", graph.OpEq, float64(1<<53)), nil},
		{"max int below 2^63", "StreetLight", cmpf("lampCount", graph.OpLt, 9223372036854775808.0), []string{"full", "zero", "max"}},
		{"int against a fraction", "StreetLight", cmpf("lampCount", graph.OpLte, 0.5), []string{"zero"}},
		{"int against a negative fraction", "StreetLight", cmpf("lampCount", graph.OpGt, -0.5), []string{"full", "zero", "max"}},
		{"minus zero equals zero", "StreetLight", cmpf("powerRatingW", graph.OpEq, math.Copysign(0, -1)), []string{"zero"}},
		{"float against an int", "StreetLight", cmpf("powerRatingW", graph.OpGte, int64(100)), []string{"full"}},
		{"below +Inf", "StreetLight", cmpf("powerRatingW", graph.OpLt, math.Inf(1)), []string{"full", "zero", "max"}},
		{"above -Inf", "StreetLight", cmpf("lampCount", graph.OpGt, math.Inf(-1)), []string{"full", "zero", "max"}},
		// times
		{"time in another zone", "StreetLight", cmpf("installedAt", graph.OpEq, t0.In(est)), []string{"full"}},
		{"time below the microsecond", "StreetLight", cmpf("installedAt", graph.OpEq, t0.Add(999*time.Nanosecond)), []string{"full"}},
		{"time one microsecond later", "StreetLight", cmpf("installedAt", graph.OpLt, t0.Add(time.Microsecond)), []string{"full", "zero"}},
		{"time before the epoch", "StreetLight", cmpf("installedAt", graph.OpLt, time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC)), []string{"zero"}},
		// booleans
		{"bool eq false", "StreetLight", cmpf("lit", graph.OpEq, false), []string{"zero"}},
		{"bool ne", "StreetLight", cmpf("lit", graph.OpNe, false), []string{"full"}},
		// strings
		{"contains folds Unicode", "StreetLight", cmpf("name", graph.OpContains, "GROSSE"), nil},
		{"contains lower-cases the value", "StreetLight", cmpf("name", graph.OpContains, "GROẞE"), []string{"full"}},
		{"contains the empty string on non-null", "StreetLight", cmpf("name", graph.OpContains, ""), []string{"full", "empty"}},
		{"startsWith is case-sensitive", "StreetLight", cmpf("name", graph.OpStartsWith, "große"), nil},
		{"startsWith the empty string", "StreetLight", cmpf("name", graph.OpStartsWith, ""), []string{"full", "empty"}},
		{"string order is byte order", "StreetLight", cmpf("name", graph.OpGt, "Grosz"), []string{"full"}},
		{"class field is the leaf class", "Asset", cmpf("class", graph.OpEq, "Asset"), nil},
		{"class field", "Asset", cmpf("class", graph.OpLt, "D"), []string{"cam"}},
		{"id contains", "Entity", cmpf("id", graph.OpContains, "A"), []string{"bare", "max", "cam"}},
		// search
		{"search across properties", "StreetLight", graph.Search{Text: "straße PARK"}, []string{"full"}},
		{"search misses a word", "StreetLight", graph.Search{Text: "straße nowhere"}, nil},
		{"search blank matches all", "StreetLight", graph.Search{Text: " \t\n"}, []string{"full", "bare", "empty", "zero", "max"}},
		{"search skips non-searchable properties", "StreetLight", graph.Search{Text: "a-1"}, nil},
		{"not search", "Asset", graph.Not{F: graph.Search{Text: "main"}}, []string{"full", "bare", "empty", "zero", "max"}},
		// geo
		{"near on the radius", "StreetLight", graph.Near{Center: graph.Point{Lat: 42, Lon: -71}, Meters: dist}, []string{"full", "zero"}},
		{"near just inside the radius", "StreetLight", graph.Near{Center: graph.Point{Lat: 42, Lon: -71}, Meters: math.Nextafter(dist, 0)}, []string{"full"}},
		{"near zero", "Asset", graph.Near{Center: graph.Point{Lat: 42, Lon: -71}, Meters: 0}, []string{"full", "cam"}},
		{"not near includes unlocated", "StreetLight", graph.Not{F: graph.Near{Center: graph.Point{Lat: 42, Lon: -71}, Meters: 1}}, []string{"bare", "empty", "zero", "max"}},
		{"within edges included", "StreetLight", graph.Within{Box: graph.BBox{MinLat: 42, MinLon: -71, MaxLat: 42.001, MaxLon: -71}}, []string{"full", "zero"}},
		{"within inverted box", "StreetLight", graph.Within{Box: graph.BBox{MinLat: 43, MinLon: -71, MaxLat: 41, MaxLon: -71}}, nil},
		{"within infinite box", "StreetLight", graph.Within{Box: graph.BBox{MinLat: math.Inf(-1), MinLon: math.Inf(-1), MaxLat: math.Inf(1), MaxLon: math.Inf(1)}}, []string{"full", "zero"}},
		{"within area, centre in the hole", "Asset", graph.WithinArea{AreaID: "sq"}, []string{"zero"}},
		{"within unknown area", "StreetLight", graph.WithinArea{AreaID: "nope"}, nil},
		{"not within unknown area", "StreetLight", graph.Not{F: graph.WithinArea{AreaID: "nope"}}, []string{"full", "bare", "empty", "zero", "max"}},
		{"combined", "Asset", graph.And{
			cmpf("status", graph.OpIn, []any{"OK", "FAULTY"}),
			graph.Or{graph.Near{Center: graph.Point{Lat: 42, Lon: -71}, Meters: 10}, graph.WithinArea{AreaID: "sq"}},
			graph.Not{F: cmpf("name", graph.OpContains, "cam")},
		}, []string{"full"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mustCompile(t, c.class, c.f)
			var got []string
			for _, n := range nodes {
				if m.Match(n, areas) {
					got = append(got, n.ID)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("match %s where %s = %q, want %q", c.class, graph.KeyOf(c.f), got, c.want)
			}
		})
	}
}

// A subscription compiles its filter once, loads the areas it names (with
// graph.LoadAreas from the store; none here) and matches each changed node.
func ExampleCompileMatch() {
	m, err := graph.CompileMatch(ont, "Asset", graph.And{
		graph.Cmp{Field: "status", Op: graph.OpIn, Value: []any{"OK", "FAULTY"}},
		graph.Cmp{Field: "powerRatingW", Op: graph.OpGte, Value: int64(100)},
		graph.Near{Center: graph.Point{Lat: 42.36, Lon: -71.06}, Meters: 500},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	lamp := &graph.Node{ID: "sl-1", Class: "StreetLight", Props: map[string]any{"status": "OK", "powerRatingW": 150.0},
		Geometry: graph.PointGeometry(42.362, -71.06)}
	camera := &graph.Node{ID: "cam-1", Class: "Camera", Props: map[string]any{"status": "OK"}, Geometry: graph.PointGeometry(42.36, -71.06)}
	incident := &graph.Node{ID: "inc-1", Class: "Incident", Geometry: graph.PointGeometry(42.36, -71.06)}
	fmt.Println(m.Match(lamp, nil), m.Match(camera, nil), m.Match(incident, nil), len(m.Areas()))

	_, err = graph.CompileMatch(ont, "Camera", graph.Cmp{Field: "powerRatingW", Op: graph.OpGte, Value: int64(100)})
	fmt.Println(errors.Is(err, graph.ErrInvalid))
	// Output:
	// true false false 0
	// true
}

func TestMatchNodeEdges(t *testing.T) {
	t.Parallel()
	m := mustCompile(t, "Asset", nil)
	for _, n := range []*graph.Node{nil, {ID: "x", Class: "Incident"}, {ID: "x", Class: "Nope"}, {ID: "x"}} {
		if m.Match(n, nil) {
			t.Errorf("Match(%+v) = true, want false", n)
		}
	}
	// a value the stores never hold (NaN, a wrong type) matches no comparison
	weird := light("w", "powerRatingW", math.NaN(), "lampCount", "3", "name", int64(1))
	for _, f := range []graph.Filter{
		cmpf("powerRatingW", graph.OpEq, 0.0), cmpf("powerRatingW", graph.OpLt, math.Inf(1)), cmpf("powerRatingW", graph.OpGte, math.Inf(-1)),
		cmpf("lampCount", graph.OpEq, int64(3)), cmpf("name", graph.OpEq, "1"),
	} {
		if mustCompile(t, "StreetLight", f).Match(weird, nil) {
			t.Errorf("%s matches %v", f.Key(), weird.Props)
		}
	}
	// a filter string that is not UTF-8: in compares it with every stray
	// byte replaced by U+FFFD (as the embedded store's JSON does), eq
	// compares its bytes
	repl := light("r", "name", "a\uFFFD\uFFFDb")
	for _, c := range []struct {
		f    graph.Filter
		want bool
	}{
		{cmpf("name", graph.OpIn, []any{"a\xff\xfeb"}), true},
		{cmpf("name", graph.OpIn, []any{"a\xe2\x82b"}), true},
		{cmpf("name", graph.OpIn, []any{"a\xffb"}), false},
		{cmpf("name", graph.OpIn, []any{"a\uFFFD\uFFFDb"}), true},
		{cmpf("name", graph.OpEq, "a\xff\xfeb"), false},
		{cmpf("name", graph.OpGt, "a\xff"), false},
		{cmpf("name", graph.OpLt, "a\xff"), true},
	} {
		if got := mustCompile(t, "StreetLight", c.f).Match(repl, nil); got != c.want {
			t.Errorf("%q %s: %v, want %v", repl.Props["name"], c.f.Key(), got, c.want)
		}
	}
	// WithinArea with no area source, or an area without polygons
	n := located(light("p"), 42, -71)
	wa := mustCompile(t, "StreetLight", graph.WithinArea{AreaID: "a"})
	pointArea := &graph.Node{ID: "a", Class: "District", Geometry: graph.PointGeometry(42, -71)}
	for _, src := range []graph.AreaSource{nil, graph.AreaMap{}, graph.AreaMap{"a": nil}, graph.AreaMap{"a": graph.AreaShape(pointArea)}} {
		if wa.Match(n, src) {
			t.Errorf("within an area from %v matches", src)
		}
	}
	if !wa.Match(n, graph.AreaMap{"a": graph.AreaShape(squareArea("a", 42, -71, 1, 0))}) {
		t.Error("within a square around the point does not match")
	}
}

func TestAreaShape(t *testing.T) {
	t.Parallel()
	bad := &graph.Node{ID: "b", Geometry: &graph.Geometry{Kind: "Polygon", GeoJSON: `{"type":"Polygon","coordinates":[[[0,0],[1,1]]]}`}}
	line := &graph.Node{ID: "l", Geometry: &graph.Geometry{Kind: "LineString", GeoJSON: `{"type":"LineString","coordinates":[[0,0],[1,1]]}`}}
	for _, n := range []*graph.Node{nil, {ID: "n"}, {ID: "p", Geometry: graph.PointGeometry(1, 2)}, bad, line} {
		if s := graph.AreaShape(n); s != nil {
			t.Errorf("AreaShape(%v) = %+v, want nil", n, s)
		}
	}
	s := graph.AreaShape(squareArea("sq", 42, -71, 0.01, 0.001))
	if s == nil || len(s.Polygons) != 1 || len(s.Polygons[0]) != 2 || !s.Contains(42.005, -71) || s.Contains(42, -71) {
		t.Errorf("AreaShape(square with hole) = %+v", s)
	}
}

func TestMatchAreas(t *testing.T) {
	t.Parallel()
	m := mustCompile(t, "Asset", graph.And{
		graph.WithinArea{AreaID: "b"}, graph.Not{F: graph.Or{graph.WithinArea{AreaID: "a"}, graph.WithinArea{AreaID: "b"}}},
	})
	if got := m.Areas(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Areas() = %q, want [a b]", got)
	}
	if m.Class() != "Asset" {
		t.Errorf("Class() = %q", m.Class())
	}
	// a branch the stores drop is not loaded
	m = mustCompile(t, "Asset", graph.Or{nil, graph.WithinArea{AreaID: "a"}})
	if got := m.Areas(); len(got) != 0 {
		t.Errorf("Areas() of a filter matching all = %q", got)
	}
}

func TestCompileMatchInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		class string
		f     graph.Filter
	}{
		{"unknown class", "Nope", nil},
		{"empty class", "", nil},
		{"unknown field", "StreetLight", cmpf("nope", graph.OpEq, "x")},
		{"field of a sibling class", "Camera", cmpf("powerRatingW", graph.OpEq, 1.0)},
		{"unknown op", "StreetLight", cmpf("name", graph.CmpOp("like"), "x")},
		{"empty op", "StreetLight", cmpf("name", "", "x")},
		{"string for number", "StreetLight", cmpf("powerRatingW", graph.OpGt, "100")},
		{"int for number", "StreetLight", cmpf("powerRatingW", graph.OpGt, 100)},
		{"float32 for number", "StreetLight", cmpf("powerRatingW", graph.OpGt, float32(1))},
		{"NaN", "StreetLight", cmpf("powerRatingW", graph.OpLt, math.NaN())},
		{"NaN in a list", "StreetLight", cmpf("powerRatingW", graph.OpIn, []any{1.0, math.NaN()})},
		{"number for string", "StreetLight", cmpf("name", graph.OpEq, int64(1))},
		{"string for time", "StreetLight", cmpf("installedAt", graph.OpGt, "2020-01-01T00:00:00Z")},
		{"string for bool", "StreetLight", cmpf("lit", graph.OpEq, "true")},
		{"nil value", "StreetLight", cmpf("name", graph.OpEq, nil)},
		{"ne nil", "StreetLight", cmpf("name", graph.OpNe, nil)},
		{"contains on a number", "StreetLight", cmpf("powerRatingW", graph.OpContains, "1")},
		{"contains on a time", "StreetLight", cmpf("installedAt", graph.OpStartsWith, "2")},
		{"contains a number", "StreetLight", cmpf("name", graph.OpContains, int64(1))},
		{"contains bad UTF-8", "StreetLight", cmpf("name", graph.OpContains, "a\xffb")},
		{"startsWith bad UTF-8", "StreetLight", cmpf("name", graph.OpStartsWith, "\xc3")},
		{"in not a list", "StreetLight", cmpf("status", graph.OpIn, "OK")},
		{"in []string", "StreetLight", cmpf("status", graph.OpIn, []string{"OK"})},
		{"in bad element", "StreetLight", cmpf("lampCount", graph.OpIn, []any{int64(1), "2"})},
		{"in bad bool element", "StreetLight", cmpf("lit", graph.OpIn, []any{true, 1.0})},
		{"in bad time element", "StreetLight", cmpf("installedAt", graph.OpIn, []any{time.Now(), "x"})},
		{"isNull not bool", "StreetLight", cmpf("name", graph.OpIsNull, "yes")},
		{"lt bool", "StreetLight", cmpf("lit", graph.OpLt, true)},
		{"eq JSON", "StreetLight", cmpf("attributes", graph.OpEq, "x")},
		{"in JSON, even empty", "StreetLight", cmpf("attributes", graph.OpIn, []any{})},
		{"nested unknown", "StreetLight", graph.Or{cmpf("name", graph.OpEq, "x"), graph.Not{F: cmpf("nope", graph.OpEq, "x")}}},
		{"near off the globe", "StreetLight", graph.Near{Center: graph.Point{Lat: 91}, Meters: 1}},
		{"near NaN centre", "StreetLight", graph.Near{Center: graph.Point{Lat: math.NaN()}, Meters: 1}},
		{"near negative", "StreetLight", graph.Near{Meters: -1}},
		{"near NaN", "StreetLight", graph.Near{Meters: math.NaN()}},
		{"near infinite", "StreetLight", graph.Near{Meters: math.Inf(1)}},
		{"within NaN", "StreetLight", graph.Within{Box: graph.BBox{MinLat: math.NaN()}}},
		{"pointer filter", "StreetLight", &graph.And{}},
	}
	for _, c := range cases {
		_, err := graph.CompileMatch(ont, c.class, c.f)
		if !errors.Is(err, graph.ErrInvalid) {
			t.Errorf("%s: CompileMatch(%s, %s) = %v, want ErrInvalid", c.name, c.class, graph.KeyOf(c.f), err)
		}
	}
	if _, err := graph.CompileMatch(nil, "StreetLight", nil); err == nil {
		t.Error("CompileMatch without an ontology: no error")
	}
	// what Simplify drops is not checked, as in the stores
	if _, err := graph.CompileMatch(ont, "StreetLight", graph.Or{nil, cmpf("nope", graph.OpEq, "x")}); err != nil {
		t.Errorf("CompileMatch of a branch Simplify drops: %v", err)
	}
}

// contains pairs with characters whose lower case changes length or is
// special: the matcher must agree with strings.ToLower on both sides.
var foldPairs = [][2]string{
	{"Main Street", "street"}, {"Ärztehaus", "ä"}, {"GROẞE", "ß"}, {"Straße", "STRASSE"}, {"İstanbul", "i"},
	{"İstanbul", "i̇"}, {"ΣΑΣ", "σας"}, {"ΣΑΣ", "σασ"}, {"KELVIN", "k"}, {"ǅ", "ǆ"}, {"ﬀ", "ff"},
	{"ᏣᎳᎩ", "ꮳ"}, {"𐐀", "𐐨"}, {"a\x00B", "\x00b"}, {"", ""}, {"abc", ""}, {"", "a"}, {"x\xffy", "\ufffdy"},
	{"\xe2\x82", "\ufffd\ufffd"}, {"ÀB", "àb"}, {"aAa", "aa"}, {"ababac", "abac"}, {"Ω", "ω"}, {"ſ", "s"},
}

func TestContainsFolding(t *testing.T) {
	t.Parallel()
	for _, p := range foldPairs {
		checkContains(t, p[0], p[1])
	}
}

// FuzzContainsFolding checks contains and search against their
// definitions with strings.ToLower.
func FuzzContainsFolding(f *testing.F) {
	for _, p := range foldPairs {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, s, v string) {
		if !utf8.ValidString(v) {
			return
		}
		checkContains(t, s, v)
	})
}

func checkContains(t *testing.T, s, v string) {
	t.Helper()
	n := light("n", "name", s, "description", "-")
	want := strings.Contains(strings.ToLower(s), strings.ToLower(v))
	if got := mustCompile(t, "StreetLight", cmpf("name", graph.OpContains, v)).Match(n, nil); got != want {
		t.Errorf("%q contains %q: %v, want %v", s, v, got, want)
	}
	want = true
	for _, w := range strings.Fields(strings.ToLower(v)) {
		if !strings.Contains(strings.ToLower(s), w) && !strings.Contains("-", w) {
			want = false
		}
	}
	if got := mustCompile(t, "StreetLight", graph.Search{Text: v}).Match(n, nil); got != want {
		t.Errorf("%q search %q: %v, want %v", s, v, got, want)
	}
}

// TestMatchNumberOrder checks that Int and Float values compare exactly,
// against a reference on their decimal expansions, with values around the
// edges of float64 precision.
func TestMatchNumberOrder(t *testing.T) {
	t.Parallel()
	ints := []int64{math.MinInt64, math.MinInt64 + 1, -(1 << 53) - 1, -1, 0, 1, 1<<53 - 1, 1 << 53, 1<<53 + 1, math.MaxInt64 - 1, math.MaxInt64}
	floats := []float64{math.Inf(-1), -9223372036854775808.0, -9007199254740993, -1.5, -0.5, math.Copysign(0, -1), 0, 0.5, 1, 9007199254740992, 9007199254740994, 9223372036854774784, 9223372036854775808.0, 1e300, math.Inf(1)}
	for _, i := range ints {
		for _, fv := range floats {
			want := refCompare(i, fv)
			for op, ok := range map[graph.CmpOp]bool{graph.OpEq: want == 0, graph.OpLt: want < 0, graph.OpGte: want >= 0, graph.OpNe: want != 0} {
				n := light("n", "lampCount", i, "powerRatingW", fv)
				if got := mustCompile(t, "StreetLight", cmpf("lampCount", op, fv)).Match(n, nil); got != ok {
					t.Errorf("int %d %s float %v = %v, want %v", i, op, fv, got, ok)
				}
				// and the mirror: a Float property against an Int value
				mirror := map[graph.CmpOp]bool{graph.OpEq: want == 0, graph.OpLt: want > 0, graph.OpGte: want <= 0, graph.OpNe: want != 0}[op]
				if got := mustCompile(t, "StreetLight", cmpf("powerRatingW", op, i)).Match(n, nil); got != mirror {
					t.Errorf("float %v %s int %d = %v, want %v", fv, op, i, got, mirror)
				}
			}
			in := mustCompile(t, "StreetLight", cmpf("lampCount", graph.OpIn, []any{fv})).Match(light("n", "lampCount", i), nil)
			if in != (want == 0) {
				t.Errorf("int %d in [%v] = %v, want %v", i, fv, in, want == 0)
			}
		}
	}
}

// refCompare compares i with f by their decimal expansions: exact for
// every finite float.
func refCompare(i int64, f float64) int {
	switch {
	case math.IsInf(f, 1):
		return -1
	case math.IsInf(f, -1):
		return 1
	}
	a := new(bigDec).setInt(i)
	b := new(bigDec).setFloat(f)
	return a.cmp(b)
}

// bigDec is a decimal number as sign, integer digits and fraction digits:
// enough to compare without rounding.
type bigDec struct {
	neg        bool
	int, fract string
}

func (d *bigDec) setInt(i int64) *bigDec {
	s := fmt.Sprint(i)
	d.neg = strings.HasPrefix(s, "-")
	d.int = strings.TrimPrefix(s, "-")
	return d.norm()
}

func (d *bigDec) setFloat(f float64) *bigDec {
	s := fmt.Sprintf("%.1100f", f) // every float64 has a finite decimal expansion this long
	d.neg = strings.HasPrefix(s, "-")
	d.int, d.fract, _ = strings.Cut(strings.TrimPrefix(s, "-"), ".")
	return d.norm()
}

func (d *bigDec) norm() *bigDec {
	d.int = strings.TrimLeft(d.int, "0")
	d.fract = strings.TrimRight(d.fract, "0")
	if d.int == "" && d.fract == "" {
		d.neg = false
	}
	return d
}

func (d *bigDec) cmp(e *bigDec) int {
	if d.neg != e.neg {
		if d.neg {
			return -1
		}
		return 1
	}
	c := 0
	switch {
	case len(d.int) < len(e.int):
		c = -1
	case len(d.int) > len(e.int):
		c = 1
	case d.int != e.int:
		c = strings.Compare(d.int, e.int)
	default:
		c = strings.Compare(d.fract, e.fract)
	}
	if d.neg {
		return -c
	}
	return c
}

func TestMatchDoesNotAllocate(t *testing.T) {
	nodes := benchNodes(64)
	areas := graph.AreaMap{"sq": graph.AreaShape(squareArea("sq", 42.36, -71.06, 0.01, 0.002))}
	for name, f := range benchFilters() {
		m := mustCompile(t, "StreetLight", f)
		i := 0
		if a := testing.AllocsPerRun(200, func() {
			m.Match(nodes[i%len(nodes)], areas)
			i++
		}); a != 0 {
			t.Errorf("%s: %v allocations per Match, want 0", name, a)
		}
	}
}

// benchNodes returns street lights shaped like the city's: a dozen
// properties, a point within a few kilometres.
func benchNodes(n int) []*graph.Node {
	r := rand.New(rand.NewPCG(7, 8))
	status := []string{"OK", "OK", "OK", "FAULTY", "UNKNOWN"}
	out := make([]*graph.Node, n)
	for i := range out {
		nd := located(light(fmt.Sprintf("urn:city:StreetLight:%05d", i),
			"name", fmt.Sprintf("Light %d on Main Street", i),
			"description", "Cobra-head LED luminaire",
			"status", status[r.IntN(len(status))],
			"poleNumber", fmt.Sprintf("P-%05d", i),
			"powerRatingW", float64(20+r.IntN(200)),
			"lampCount", int64(1+r.IntN(4)),
			"lit", r.IntN(2) == 0,
			"installedAt", time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(3000)),
			"externalIds", []any{fmt.Sprintf("EXT-%d", i)},
		), 42.33+r.Float64()*0.06, -71.1+r.Float64()*0.08)
		nd.Prov = graph.Provenance{Source: "cambridge-gis", FetchedAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
		out[i] = nd
	}
	return out
}

// benchFilters are the filters BenchmarkMatch measures; baseline is the
// reference of the ratios.
func benchFilters() map[string]graph.Filter {
	centre := graph.Point{Lat: 42.36, Lon: -71.06}
	return map[string]graph.Filter{
		"baseline": graph.And{cmpf("status", graph.OpEq, "OK")},
		"realistic": graph.And{
			cmpf("status", graph.OpIn, []any{"OK", "FAULTY"}),
			cmpf("powerRatingW", graph.OpGte, int64(100)),
			graph.Near{Center: centre, Meters: 1500},
		},
		"text": graph.Or{
			cmpf("name", graph.OpContains, "MAIN st"),
			graph.Search{Text: "luminaire led"},
		},
		"area-time": graph.And{
			graph.WithinArea{AreaID: "sq"},
			cmpf("installedAt", graph.OpGte, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)),
			graph.Not{F: cmpf("_source", graph.OpIn, []any{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"})},
		},
	}
}

// BenchmarkMatch measures Match per node for a baseline (an And of one eq)
// and heavier filters over the same nodes. Each heavier filter reports its
// time as a multiple of the baseline's (x_baseline), measured right after
// it with as many calls, so that both see the same machine load.
func BenchmarkMatch(b *testing.B) {
	nodes := benchNodes(1024)
	areas := graph.AreaMap{"sq": graph.AreaShape(squareArea("sq", 42.36, -71.06, 0.01, 0.002))}
	filters := benchFilters()
	base := mustCompile(b, "StreetLight", filters["baseline"])
	for _, name := range []string{"baseline", "realistic", "text", "area-time"} {
		m := mustCompile(b, "StreetLight", filters[name])
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i, hits := 0, 0
			for b.Loop() {
				if m.Match(nodes[i&(len(nodes)-1)], areas) {
					hits++
				}
				i++
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(i)
			b.ReportMetric(float64(hits)/float64(i), "hit_rate")
			if name == "baseline" {
				return
			}
			start := time.Now()
			for j := range i {
				if base.Match(nodes[j&(len(nodes)-1)], areas) {
					hits--
				}
			}
			baseNs := float64(time.Since(start).Nanoseconds()) / float64(i)
			b.ReportMetric(baseNs, "baseline_ns/op")
			b.ReportMetric(ns/baseNs, "x_baseline")
		})
	}
}
