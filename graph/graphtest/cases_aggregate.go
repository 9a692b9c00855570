package graphtest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// groupString renders groups for comparison: key:count min/max/avg/sum.
func groupString(gs []graph.Group) string {
	f := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%g", math.Round(*p*1000)/1000)
	}
	s := ""
	for _, g := range gs {
		key := g.Key
		if t, ok := key.(time.Time); ok {
			key = t.UTC().Format(time.RFC3339Nano)
		}
		s += fmt.Sprintf("[%v(%T):%d %s/%s/%s/%s]", key, g.Key, g.Count, f(g.Min), f(g.Max), f(g.Avg), f(g.Sum))
	}
	return s
}

func aggregateCases() []testCase {
	return []testCase{
		{"Aggregate/Groups", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			for _, c := range []struct {
				q    graph.AggregateQuery
				want string
			}{
				{graph.AggregateQuery{Class: "StreetLight", GroupBy: "status", Field: "powerRatingW"},
					"[FAULTY(string):2 60.5/60.5/60.5/60.5][OK(string):2 100/100/100/100][UNKNOWN(string):1 100/100/100/100][<nil>(<nil>):1 150/150/150/150]"},
				{graph.AggregateQuery{Class: "StreetLight", Field: "lampCount"},
					"[<nil>(<nil>):6 1/3/2/8]"},
				{graph.AggregateQuery{Class: "StreetLight"},
					"[<nil>(<nil>):6 -/-/-/-]"},
				{graph.AggregateQuery{Class: "StreetLight", GroupBy: "lit"},
					"[false(bool):1 -/-/-/-][true(bool):1 -/-/-/-][<nil>(<nil>):4 -/-/-/-]"},
				{graph.AggregateQuery{Class: "StreetLight", GroupBy: "lampCount", Field: "powerRatingW"},
					"[1(int64):1 150/150/150/150][2(int64):2 60.5/100/80.25/160.5][3(int64):1 -/-/-/-][<nil>(<nil>):2 100/100/100/100]"},
				{graph.AggregateQuery{Class: "StreetLight", GroupBy: "powerRatingW"},
					"[60.5(float64):1 -/-/-/-][100(float64):2 -/-/-/-][150(float64):1 -/-/-/-][<nil>(<nil>):2 -/-/-/-]"},
				{graph.AggregateQuery{Class: "StreetLight", GroupBy: "installedAt"},
					"[2020-01-01T00:00:00Z(time.Time):2 -/-/-/-][2021-06-15T12:00:00.000001Z(time.Time):1 -/-/-/-][<nil>(<nil>):3 -/-/-/-]"},
				{graph.AggregateQuery{Class: "Asset", GroupBy: "class"},
					"[Camera(string):1 -/-/-/-][StreetLight(string):6 -/-/-/-]"},
				{graph.AggregateQuery{Class: "StreetLight", GroupBy: "_source"},
					"[gis(string):2 -/-/-/-][survey(string):1 -/-/-/-][<nil>(<nil>):3 -/-/-/-]"},
				{graph.AggregateQuery{Class: "StreetLight", Filter: cmp("status", graph.OpEq, "OK"), Field: "powerRatingW"},
					"[<nil>(<nil>):2 100/100/100/100]"},
				{graph.AggregateQuery{Class: "StreetLight", Filter: cmp("status", graph.OpEq, "NONE"), Field: "powerRatingW"},
					"[<nil>(<nil>):0 -/-/-/-]"},
				{graph.AggregateQuery{Class: "StreetLight", Filter: cmp("status", graph.OpEq, "NONE"), GroupBy: "status"},
					""},
				{graph.AggregateQuery{Class: "District", GroupBy: "population"},
					""},
			} {
				if got := groupString(MustAggregate(t, s, c.q)); got != c.want {
					t.Errorf("Aggregate(%+v)\n got %s\nwant %s", c.q, got, c.want)
				}
			}
		}},
		{"Aggregate/Invalid", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			for name, q := range map[string]graph.AggregateQuery{
				"unknown-class":   {Class: "Nope"},
				"unknown-group":   {Class: "StreetLight", GroupBy: "nope"},
				"group-by-list":   {Class: "StreetLight", GroupBy: "externalIds"},
				"group-by-json":   {Class: "StreetLight", GroupBy: "attributes"},
				"unknown-field":   {Class: "StreetLight", Field: "nope"},
				"string-field":    {Class: "StreetLight", Field: "name"},
				"list-field":      {Class: "StreetLight", Field: "readings"},
				"time-field":      {Class: "StreetLight", Field: "installedAt"},
				"bad-filter":      {Class: "StreetLight", Filter: cmp("nope", graph.OpEq, "x")},
				"field-elsewhere": {Class: "Camera", Field: "powerRatingW"},
			} {
				_, err := s.Aggregate(t.Context(), q)
				MustFail(t, "Aggregate "+name, err, graph.ErrInvalid)
			}
		}},
	}
}
