package graphtest

import (
	"slices"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// nasty is a value full of characters that mean something to SQL, Cypher,
// LIKE patterns, JSON paths and Go format strings.
const nasty = "O'Brien \"Quote\" `tick` {brace} [x] 100% a_b \\ $1 ?; DROP TABLE nodes; -- */ MATCH (n) DETACH DELETE n //"

// seedFilter stores the nodes the filter and order cases use.
//
//	id     class        name                 status  powerRatingW lampCount lit   installedAt
//	cam-1  Camera       Main Cam             OK      -            -         -     -
//	inc-1  Incident     Crash on Main        -       -            -         -     -
//	sl-1   StreetLight  Main Street 1        OK      100          -         true  2020-01-01
//	sl-2   StreetLight  main street 2        FAULTY  60.5         2         false 2021-06-15T12:00:00.000001
//	sl-3   StreetLight  Ärztehaus Straße     OK      -            3         -     -
//	sl-4   StreetLight  -                    -       150          1         -     -
//	sl-5   StreetLight  GROẞE WIESE          UNKNOWN 100          2         -     2020-01-01 (another zone)
//	sl-q   StreetLight  nasty                FAULTY  -            -         -     -
func seedFilter(t testing.TB, s graph.Store) {
	t.Helper()
	sl1 := at(node("StreetLight", "sl-1", "name", "Main Street 1", "description", "Near the park", "status", "OK",
		"powerRatingW", 100.0, "lit", true, "installedAt", ts("2020-01-01T00:00:00Z"),
		"externalIds", list("A-1", "x-9"), "readings", list(1.5, 2.5), "poleNumber", "P-001",
		"serviceDates", list(ts("2022-03-01T00:00:00Z")), "attributes", map[string]any{"k": "v"}), 42.37, -71.11)
	sl1.Prov = graph.Provenance{Source: "gis", FetchedAt: ts("2024-01-01T00:00:00Z"), ValidFrom: ts("2020-01-01T00:00:00Z")}
	sl2 := at(node("StreetLight", "sl-2", "name", "main street 2", "status", "FAULTY", "powerRatingW", 60.5,
		"lampCount", int64(2), "lit", false, "installedAt", ts("2021-06-15T12:00:00.000001Z"),
		"externalIds", list("B-2"), "readings", list(0.5)), 42.38, -71.12)
	sl2.Prov = graph.Provenance{Source: "gis", FetchedAt: ts("2024-02-01T00:00:00Z")}
	sl3 := at(node("StreetLight", "sl-3", "name", "Ärztehaus Straße", "status", "OK", "lampCount", int64(3)), 42.39, -71.13)
	sl3.Prov = graph.Provenance{Source: "survey"}
	sl4 := node("StreetLight", "sl-4", "powerRatingW", 150.0, "lampCount", int64(1))
	sl5 := node("StreetLight", "sl-5", "name", "GROẞE WIESE", "status", "UNKNOWN", "powerRatingW", 100.0, "lampCount", int64(2),
		"installedAt", time.Date(2019, 12, 31, 19, 0, 0, 0, time.FixedZone("EST", -5*3600)))
	slq := node("StreetLight", "sl-q", "name", nasty, "status", "FAULTY", "description", "50% off_peak")
	cam := at(node("Camera", "cam-1", "name", "Main Cam", "status", "OK", "streamRef", "rtsp://cam/1"), 42.371, -71.111)
	inc := at(node("Incident", "inc-1", "name", "Crash on Main", "severity", "HIGH", "reportedAt", ts("2024-05-01T08:00:00Z"),
		"casualties", int64(2), "categories", list("HIGH", "LOW"), "counts", list(int64(1), int64(7)), "urgent", true), 42.372, -71.112)
	MustApply(t, s, graph.Batch{Nodes: []graph.Node{sl1, sl2, sl3, sl4, sl5, slq, cam, inc}})
}

type filterCase struct {
	name   string
	class  string
	filter graph.Filter
	want   []string // IDs, sorted
}

func cmp(f string, op graph.CmpOp, v any) graph.Cmp { return graph.Cmp{Field: f, Op: op, Value: v} }

var lights = []string{"sl-1", "sl-2", "sl-3", "sl-4", "sl-5", "sl-q"}

func except(all []string, drop ...string) []string {
	var out []string
	for _, id := range all {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}

func filterTable() []filterCase {
	const SL = "StreetLight"
	jan1 := ts("2020-01-01T00:00:00Z")
	return []filterCase{
		// equality and nulls
		{"eq/string", SL, cmp("name", graph.OpEq, "main street 2"), []string{"sl-2"}},
		{"eq/case-sensitive", SL, cmp("name", graph.OpEq, "MAIN STREET 2"), nil},
		{"eq/enum", SL, cmp("status", graph.OpEq, "OK"), []string{"sl-1", "sl-3"}},
		{"eq/enum-on-abstract-class", "Asset", cmp("status", graph.OpEq, "OK"), []string{"cam-1", "sl-1", "sl-3"}},
		{"ne/excludes-null", SL, cmp("status", graph.OpNe, "OK"), []string{"sl-2", "sl-5", "sl-q"}},
		{"not-eq/includes-null", SL, graph.Not{F: cmp("status", graph.OpEq, "OK")}, []string{"sl-2", "sl-4", "sl-5", "sl-q"}},
		{"not-ne/includes-null", SL, graph.Not{F: cmp("status", graph.OpNe, "OK")}, []string{"sl-1", "sl-3", "sl-4"}},
		{"not-not", SL, graph.Not{F: graph.Not{F: cmp("status", graph.OpEq, "OK")}}, []string{"sl-1", "sl-3"}},
		{"not-and-with-null", SL, graph.Not{F: graph.And{cmp("status", graph.OpEq, "OK"), cmp("lampCount", graph.OpGt, int64(0))}}, except(lights, "sl-3")},
		{"isNull/true", SL, cmp("powerRatingW", graph.OpIsNull, true), []string{"sl-3", "sl-q"}},
		{"isNull/false", SL, cmp("powerRatingW", graph.OpIsNull, false), []string{"sl-1", "sl-2", "sl-4", "sl-5"}},
		{"isNull/list", SL, cmp("externalIds", graph.OpIsNull, false), []string{"sl-1", "sl-2"}},
		{"isNull/json", SL, cmp("attributes", graph.OpIsNull, false), []string{"sl-1"}},
		// numbers
		{"gt/float-field-int-value", SL, cmp("powerRatingW", graph.OpGt, int64(60)), []string{"sl-1", "sl-2", "sl-4", "sl-5"}},
		{"lt/float", SL, cmp("powerRatingW", graph.OpLt, 100.0), []string{"sl-2"}},
		{"lte/float-field-int-value", SL, cmp("powerRatingW", graph.OpLte, int64(100)), []string{"sl-1", "sl-2", "sl-5"}},
		{"gte/float", SL, cmp("powerRatingW", graph.OpGte, 150.0), []string{"sl-4"}},
		{"eq/float-field-int-value", SL, cmp("powerRatingW", graph.OpEq, int64(100)), []string{"sl-1", "sl-5"}},
		{"gt/int-field-float-value", SL, cmp("lampCount", graph.OpGt, 1.5), []string{"sl-2", "sl-3", "sl-5"}},
		{"eq/int-field-float-value", SL, cmp("lampCount", graph.OpEq, 2.0), []string{"sl-2", "sl-5"}},
		{"eq/int-field-fraction", SL, cmp("lampCount", graph.OpEq, 2.5), nil},
		{"not-lt/includes-null", SL, graph.Not{F: cmp("lampCount", graph.OpLt, int64(3))}, []string{"sl-1", "sl-3", "sl-q"}},
		// time
		{"eq/time-other-zone", SL, cmp("installedAt", graph.OpEq, time.Date(2019, 12, 31, 16, 0, 0, 0, time.FixedZone("PST", -8*3600))), []string{"sl-1", "sl-5"}},
		{"gt/time", SL, cmp("installedAt", graph.OpGt, jan1), []string{"sl-2"}},
		{"gt/time-microsecond", SL, cmp("installedAt", graph.OpGt, ts("2021-06-15T12:00:00Z")), []string{"sl-2"}},
		{"lte/time", SL, cmp("installedAt", graph.OpLte, jan1), []string{"sl-1", "sl-5"}},
		{"lt/time-excludes-null", SL, cmp("installedAt", graph.OpLt, ts("2100-01-01T00:00:00Z")), []string{"sl-1", "sl-2", "sl-5"}},
		// strings
		{"lt/string-code-point", SL, cmp("name", graph.OpLt, "N"), []string{"sl-1", "sl-5"}},
		{"gte/string-code-point", SL, cmp("name", graph.OpGte, "a"), []string{"sl-2", "sl-3"}},
		// in
		{"in/enum", SL, cmp("status", graph.OpIn, list("OK", "UNKNOWN")), []string{"sl-1", "sl-3", "sl-5"}},
		{"in/empty", SL, cmp("status", graph.OpIn, list()), nil},
		{"not-in/empty", SL, graph.Not{F: cmp("status", graph.OpIn, list())}, lights},
		{"in/numbers-mixed", SL, cmp("lampCount", graph.OpIn, list(int64(1), 3.0)), []string{"sl-3", "sl-4"}},
		{"in/time", SL, cmp("installedAt", graph.OpIn, list(jan1)), []string{"sl-1", "sl-5"}},
		{"not-in/includes-null", SL, graph.Not{F: cmp("status", graph.OpIn, list("OK"))}, []string{"sl-2", "sl-4", "sl-5", "sl-q"}},
		// contains / startsWith
		{"contains/case-insensitive", SL, cmp("name", graph.OpContains, "STREET"), []string{"sl-1", "sl-2"}},
		{"contains/umlaut-upper-in-data", SL, cmp("name", graph.OpContains, "ärzte"), []string{"sl-3"}},
		{"contains/umlaut-upper-in-value", SL, cmp("name", graph.OpContains, "ÄRZTE"), []string{"sl-3"}},
		{"contains/sharp-s", SL, cmp("name", graph.OpContains, "straße"), []string{"sl-3"}},
		{"contains/capital-sharp-s", SL, cmp("name", graph.OpContains, "große"), []string{"sl-5"}},
		{"contains/no-full-folding", SL, cmp("name", graph.OpContains, "STRASSE"), nil},
		{"contains/empty", SL, cmp("name", graph.OpContains, ""), []string{"sl-1", "sl-2", "sl-3", "sl-5", "sl-q"}},
		{"contains/percent-literal", SL, cmp("description", graph.OpContains, "%"), []string{"sl-q"}},
		{"contains/underscore-literal", SL, cmp("description", graph.OpContains, "f_p"), []string{"sl-q"}},
		{"contains/percent-not-wildcard", SL, cmp("name", graph.OpContains, "Main%1"), nil},
		{"contains/underscore-not-wildcard", SL, cmp("name", graph.OpContains, "Main_Street"), nil},
		{"contains/id", SL, cmp("id", graph.OpContains, "SL-"), lights},
		{"startsWith/case-sensitive", SL, cmp("name", graph.OpStartsWith, "Main"), []string{"sl-1"}},
		{"startsWith/lower", SL, cmp("name", graph.OpStartsWith, "main"), []string{"sl-2"}},
		{"startsWith/unicode", SL, cmp("name", graph.OpStartsWith, "Ä"), []string{"sl-3"}},
		{"startsWith/empty", SL, cmp("name", graph.OpStartsWith, ""), []string{"sl-1", "sl-2", "sl-3", "sl-5", "sl-q"}},
		{"startsWith/whole", SL, cmp("name", graph.OpStartsWith, "main street 2"), []string{"sl-2"}},
		{"startsWith/longer", SL, cmp("name", graph.OpStartsWith, "main street 22"), nil},
		{"startsWith/underscore-literal", SL, cmp("poleNumber", graph.OpStartsWith, "P_"), nil},
		// literal values
		{"eq/nasty", SL, cmp("name", graph.OpEq, nasty), []string{"sl-q"}},
		{"in/nasty", SL, cmp("name", graph.OpIn, list("x", nasty)), []string{"sl-q"}},
		{"contains/nasty", SL, cmp("name", graph.OpContains, "; drop TABLE nodes; --"), []string{"sl-q"}},
		{"contains/backtick-brace", SL, cmp("name", graph.OpContains, "`TICK` {BRACE}"), []string{"sl-q"}},
		{"contains/backslash", SL, cmp("name", graph.OpContains, `a_b \ $1`), []string{"sl-q"}},
		{"startsWith/quote", SL, cmp("name", graph.OpStartsWith, "O'Brien \"Quote\""), []string{"sl-q"}},
		{"eq/injection", SL, cmp("name", graph.OpEq, "x' OR '1'='1"), nil},
		{"eq/cypher-injection", SL, cmp("name", graph.OpEq, "x\"}) RETURN n //"), nil},
		{"search/nasty", SL, graph.Search{Text: "drop table"}, []string{"sl-q"}},
		// booleans
		{"eq/bool-true", SL, cmp("lit", graph.OpEq, true), []string{"sl-1"}},
		{"eq/bool-false", SL, cmp("lit", graph.OpEq, false), []string{"sl-2"}},
		{"ne/bool", SL, cmp("lit", graph.OpNe, true), []string{"sl-2"}},
		{"not-eq/bool", SL, graph.Not{F: cmp("lit", graph.OpEq, true)}, except(lights, "sl-1")},
		{"in/bool", SL, cmp("lit", graph.OpIn, list(false)), []string{"sl-2"}},
		// lists: any element
		{"list/eq", SL, cmp("externalIds", graph.OpEq, "B-2"), []string{"sl-2"}},
		{"list/eq-second", SL, cmp("externalIds", graph.OpEq, "x-9"), []string{"sl-1"}},
		{"list/in", SL, cmp("externalIds", graph.OpIn, list("zz", "B-2", "A-1")), []string{"sl-1", "sl-2"}},
		{"list/contains", SL, cmp("externalIds", graph.OpContains, "X-"), []string{"sl-1"}},
		{"list/startsWith", SL, cmp("externalIds", graph.OpStartsWith, "A"), []string{"sl-1"}},
		{"list/ne", SL, cmp("externalIds", graph.OpNe, "A-1"), []string{"sl-2"}},
		{"list/not-eq", SL, graph.Not{F: cmp("externalIds", graph.OpEq, "A-1")}, except(lights, "sl-1")},
		{"list/gt-number", SL, cmp("readings", graph.OpGt, 2.0), []string{"sl-1"}},
		{"list/lt-number", SL, cmp("readings", graph.OpLt, int64(1)), []string{"sl-2"}},
		{"list/time", SL, cmp("serviceDates", graph.OpGte, ts("2022-01-01T00:00:00Z")), []string{"sl-1"}},
		{"list/enum", "Incident", cmp("categories", graph.OpEq, "LOW"), []string{"inc-1"}},
		{"list/int-in", "Incident", cmp("counts", graph.OpIn, list(int64(7))), []string{"inc-1"}},
		{"list/int-float-value", "Incident", cmp("counts", graph.OpEq, 7.0), []string{"inc-1"}},
		// logic
		{"and", SL, graph.And{cmp("status", graph.OpEq, "OK"), cmp("lampCount", graph.OpIsNull, true)}, []string{"sl-1"}},
		{"or", SL, graph.Or{cmp("status", graph.OpEq, "FAULTY"), cmp("lampCount", graph.OpEq, int64(1))}, []string{"sl-2", "sl-4", "sl-q"}},
		{"or-with-null-branch", SL, graph.Or{cmp("status", graph.OpEq, "NONE"), cmp("lampCount", graph.OpGte, int64(3))}, []string{"sl-3"}},
		{"and/empty", SL, graph.And{}, lights},
		{"or/empty", SL, graph.Or{}, nil},
		{"not-or/empty", SL, graph.Not{F: graph.Or{}}, lights},
		{"nil", SL, nil, lights},
		{"nested", SL, graph.And{graph.Or{cmp("status", graph.OpEq, "OK"), cmp("status", graph.OpEq, "UNKNOWN")}, graph.Not{F: cmp("name", graph.OpContains, "straße")}}, []string{"sl-1", "sl-5"}},
		// built-in fields
		{"id/eq", SL, cmp("id", graph.OpEq, "sl-2"), []string{"sl-2"}},
		{"id/in", "Entity", cmp("id", graph.OpIn, list("sl-2", "cam-1", "nope")), []string{"cam-1", "sl-2"}},
		{"id/startsWith", "Entity", cmp("id", graph.OpStartsWith, "inc"), []string{"inc-1"}},
		{"class/eq", "Asset", cmp("class", graph.OpEq, "Camera"), []string{"cam-1"}},
		{"class/ne", "Asset", cmp("class", graph.OpNe, "Camera"), lights},
		{"source/eq", SL, cmp("_source", graph.OpEq, "gis"), []string{"sl-1", "sl-2"}},
		{"source/isNull", SL, cmp("_source", graph.OpIsNull, true), []string{"sl-4", "sl-5", "sl-q"}},
		{"source/not-eq", SL, graph.Not{F: cmp("_source", graph.OpEq, "gis")}, []string{"sl-3", "sl-4", "sl-5", "sl-q"}},
		{"fetchedAt/gt", SL, cmp("_fetchedAt", graph.OpGt, ts("2024-01-15T00:00:00Z")), []string{"sl-2"}},
		{"validFrom/isNull", SL, cmp("_validFrom", graph.OpIsNull, false), []string{"sl-1"}},
		{"validTo/isNull", SL, cmp("_validTo", graph.OpIsNull, true), lights},
		{"ingestedAt/lt", SL, cmp("_ingestedAt", graph.OpLt, time.Now().Add(time.Hour)), lights},
		// subclasses
		{"class/abstract-entity", "Entity", cmp("name", graph.OpContains, "main"), []string{"cam-1", "inc-1", "sl-1", "sl-2"}},
		{"class/abstract-place", "Place", nil, nil},
		{"class/subclass-property-on-parent", "Asset", cmp("powerRatingW", graph.OpGt, 120.0), []string{"sl-4"}},
		// search
		{"search/one-word", "Asset", graph.Search{Text: "MAIN"}, []string{"cam-1", "sl-1", "sl-2"}},
		{"search/all-words", SL, graph.Search{Text: "main 2"}, []string{"sl-2"}},
		{"search/across-properties", SL, graph.Search{Text: "street park"}, []string{"sl-1"}},
		{"search/substring", SL, graph.Search{Text: "stre"}, []string{"sl-1", "sl-2"}},
		{"search/unicode", SL, graph.Search{Text: "ÄRZTEHAUS"}, []string{"sl-3"}},
		{"search/no-match", SL, graph.Search{Text: "main nowhere"}, nil},
		{"search/blank", SL, graph.Search{Text: "  "}, lights},
		{"search/not-searchable-property", SL, graph.Search{Text: "P-001"}, nil},
		{"search/percent", SL, graph.Search{Text: "50%"}, []string{"sl-q"}},
		{"search/and-filter", SL, graph.And{graph.Search{Text: "main"}, cmp("status", graph.OpEq, "FAULTY")}, []string{"sl-2"}},
		{"not-search", SL, graph.Not{F: graph.Search{Text: "main"}}, []string{"sl-3", "sl-4", "sl-5", "sl-q"}},
	}
}

func filterCases() []testCase {
	return []testCase{
		{"Filter/Operators", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			for _, c := range filterTable() {
				t.Run(c.name, func(t *testing.T) {
					got := findIDs(t, s, c.class, c.filter)
					want := c.want
					if want == nil {
						want = []string{}
					}
					if !slices.Equal(got, want) {
						t.Errorf("Find(%s, %s) = %q, want %q", c.class, key(c.filter), got, want)
					}
				})
			}
			// the store survived the nasty values
			if got := findIDs(t, s, "Entity", nil); len(got) != 8 {
				t.Errorf("after the filter cases the store holds %q", got)
			}
		}},
		{"Filter/Invalid", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			bad := []struct {
				name  string
				class string
				f     graph.Filter
			}{
				{"unknown-field", "StreetLight", cmp("nope", graph.OpEq, "x")},
				{"field-of-other-class", "Camera", cmp("powerRatingW", graph.OpEq, 1.0)},
				{"unknown-op", "StreetLight", cmp("name", graph.CmpOp("like"), "x")},
				{"string-for-number", "StreetLight", cmp("powerRatingW", graph.OpGt, "100")},
				{"number-for-string", "StreetLight", cmp("name", graph.OpEq, int64(1))},
				{"string-for-time", "StreetLight", cmp("installedAt", graph.OpGt, "2020-01-01T00:00:00Z")},
				{"nil-value", "StreetLight", cmp("name", graph.OpEq, nil)},
				{"contains-number", "StreetLight", cmp("powerRatingW", graph.OpContains, "1")},
				{"in-not-list", "StreetLight", cmp("status", graph.OpIn, "OK")},
				{"in-bad-element", "StreetLight", cmp("lampCount", graph.OpIn, list(int64(1), "2"))},
				{"isNull-not-bool", "StreetLight", cmp("name", graph.OpIsNull, "yes")},
				{"lt-bool", "StreetLight", cmp("lit", graph.OpLt, true)},
				{"eq-json", "StreetLight", cmp("attributes", graph.OpEq, "x")},
				{"nested-unknown", "StreetLight", graph.Or{cmp("name", graph.OpEq, "x"), graph.Not{F: cmp("nope", graph.OpEq, "x")}}},
			}
			for _, c := range bad {
				_, err := s.Find(t.Context(), graph.FindQuery{Class: c.class, Filter: c.f, First: 10})
				MustFail(t, "Find "+c.name, err, graph.ErrInvalid)
			}
			_, err := s.Find(t.Context(), graph.FindQuery{Class: "Nope", First: 10})
			MustFail(t, "Find unknown class", err, graph.ErrInvalid)
			_, err = s.Find(t.Context(), graph.FindQuery{Class: "StreetLight", First: 0})
			MustFail(t, "Find first 0", err, graph.ErrInvalid)
		}},
	}
}
