package graphtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cityhub/cityhub/graph"
)

type orderCase struct {
	name  string
	class string
	order []graph.Order
	want  []string
}

func orderTable() []orderCase {
	const SL = "StreetLight"
	return []orderCase{
		{"default-id", SL, nil, []string{"sl-1", "sl-2", "sl-3", "sl-4", "sl-5", "sl-q"}},
		{"id-desc", SL, byField("id", true), []string{"sl-q", "sl-5", "sl-4", "sl-3", "sl-2", "sl-1"}},
		{"float-asc-nulls-last-ties-by-id", SL, byField("powerRatingW", false), []string{"sl-2", "sl-1", "sl-5", "sl-4", "sl-3", "sl-q"}},
		{"float-desc-nulls-last-ties-by-id", SL, byField("powerRatingW", true), []string{"sl-4", "sl-1", "sl-5", "sl-2", "sl-3", "sl-q"}},
		{"int-asc", SL, byField("lampCount", false), []string{"sl-4", "sl-2", "sl-5", "sl-3", "sl-1", "sl-q"}},
		{"enum-asc", SL, byField("status", false), []string{"sl-2", "sl-q", "sl-1", "sl-3", "sl-5", "sl-4"}},
		{"enum-desc", SL, byField("status", true), []string{"sl-5", "sl-1", "sl-3", "sl-2", "sl-q", "sl-4"}},
		{"two-fields", SL, []graph.Order{{Field: "status"}, {Field: "powerRatingW", Desc: true}}, []string{"sl-2", "sl-q", "sl-1", "sl-3", "sl-5", "sl-4"}},
		{"string-code-point", SL, byField("name", false), []string{"sl-5", "sl-1", "sl-q", "sl-2", "sl-3", "sl-4"}},
		{"string-desc", SL, byField("name", true), []string{"sl-3", "sl-2", "sl-q", "sl-1", "sl-5", "sl-4"}},
		{"time-asc", SL, byField("installedAt", false), []string{"sl-1", "sl-5", "sl-2", "sl-3", "sl-4", "sl-q"}},
		{"time-desc", SL, byField("installedAt", true), []string{"sl-2", "sl-1", "sl-5", "sl-3", "sl-4", "sl-q"}},
		{"bool-asc", SL, byField("lit", false), []string{"sl-2", "sl-1", "sl-3", "sl-4", "sl-5", "sl-q"}},
		{"source", SL, byField("_source", false), []string{"sl-1", "sl-2", "sl-3", "sl-4", "sl-5", "sl-q"}},
		{"source-desc", SL, byField("_source", true), []string{"sl-3", "sl-1", "sl-2", "sl-4", "sl-5", "sl-q"}},
		{"fetchedAt-desc", SL, byField("_fetchedAt", true), []string{"sl-2", "sl-1", "sl-3", "sl-4", "sl-5", "sl-q"}},
		{"validFrom", SL, byField("_validFrom", false), []string{"sl-1", "sl-2", "sl-3", "sl-4", "sl-5", "sl-q"}},
		{"class", "Asset", byField("class", false), []string{"cam-1", "sl-1", "sl-2", "sl-3", "sl-4", "sl-5", "sl-q"}},
		{"class-desc", "Asset", byField("class", true), []string{"sl-1", "sl-2", "sl-3", "sl-4", "sl-5", "sl-q", "cam-1"}},
		{"subclass-field-on-parent", "Asset", []graph.Order{{Field: "powerRatingW", Desc: true}}, []string{"sl-4", "sl-1", "sl-5", "sl-2", "cam-1", "sl-3", "sl-q"}},
	}
}

func orderCases() []testCase {
	return []testCase{
		{"Order/CursorsExactBeyondFloat", func(t *testing.T, s graph.Store) {
			// integers above 2^53 differ by one: a cursor that rounds them
			// through float64 would repeat or skip rows
			const big = int64(1) << 53
			var b graph.Batch
			for i := range int64(4) {
				b.Nodes = append(b.Nodes, node("StreetLight", fmt.Sprintf("big-%d", i), "status", "OK", "lampCount", big+i))
			}
			MustApply(t, s, b)
			order := []graph.Order{{Field: "lampCount"}}
			var got []string
			after := ""
			for range 10 {
				p := MustFind(t, s, graph.FindQuery{Class: "StreetLight", Order: order, First: 1, After: after})
				for _, n := range p.Nodes {
					got = append(got, n.ID)
				}
				if !p.HasNext {
					break
				}
				after = p.Cursors[len(p.Cursors)-1]
			}
			if want := []string{"big-0", "big-1", "big-2", "big-3"}; !slices.Equal(got, want) {
				t.Errorf("paging by lampCount one at a time = %q, want %q", got, want)
			}
		}},
		{"Order/CodePointsAboveBMP", func(t *testing.T, s graph.Store) {
			// strings that differ first at a character above U+FFFF and one
			// in U+E000–U+FFFF: UTF-16 code units order them the other way
			// round from code points, so a backend that compares UTF-16
			// in its cursors or range filters skips or repeats rows
			names := map[string]string{
				"cp-a":    "a plain",
				"cp-lig":  "\uFB01le ligature", // ﬁ
				"cp-full": "\uFF46ullwidth",    // ｆ
				"cp-pua":  "\uE000 private use",
				"cp-jamo": "\uD7FF jamo",
				"cp-emo":  "\U0001F6A6 signal",      // 🚦
				"cp-emo2": "\U0001F6A6\uFB01 mixed", // 🚦ﬁ
				"cp-cjk":  "\U00020000 ext-b",
				"cp-hang": "\uAC00 hangul",
			}
			var b graph.Batch
			for id, name := range names {
				b.Nodes = append(b.Nodes, node("StreetLight", id, "status", "OK", "name", name, "externalIds", list("x:"+name)))
			}
			// an ID with such characters, for the ID tie-break
			b.Nodes = append(b.Nodes, node("StreetLight", "cp-\U0001F6A6", "status", "OK", "name", "\uFB01le ligature"))
			MustApply(t, s, b)
			all := make([]string, 0, len(names)+1)
			for id := range names {
				all = append(all, id)
			}
			all = append(all, "cp-\U0001F6A6")
			name := func(id string) string {
				if id == "cp-\U0001F6A6" {
					return "\uFB01le ligature"
				}
				return names[id]
			}
			// Go compares strings byte-wise in UTF-8: code-point order
			want := slices.Clone(all)
			slices.SortFunc(want, func(a, b string) int {
				if c := strings.Compare(name(a), name(b)); c != 0 {
					return c
				}
				return strings.Compare(a, b)
			})
			prefix := graph.Cmp{Field: "id", Op: graph.OpStartsWith, Value: "cp-"}
			for _, desc := range []bool{false, true} {
				w := slices.Clone(want)
				if desc {
					// descending by name, ties still ascending by ID
					slices.SortStableFunc(w, func(a, b string) int { return -strings.Compare(name(a), name(b)) })
				}
				q := graph.FindQuery{Class: "StreetLight", Filter: prefix, Order: byField("name", desc)}
				for _, n := range []int{1, 2, 3} {
					if got := allPages(t, s, q, n); !slices.Equal(got, w) {
						t.Errorf("pages of %d by name desc=%v = %q, want %q", n, desc, got, w)
					}
				}
			}
			byID := slices.Clone(all)
			slices.Sort(byID)
			if got := allPages(t, s, graph.FindQuery{Class: "StreetLight", Filter: prefix}, 1); !slices.Equal(got, byID) {
				t.Errorf("pages of 1 by id = %q, want %q", got, byID)
			}
			ops := map[graph.CmpOp]func(int) bool{
				graph.OpLt: func(c int) bool { return c < 0 }, graph.OpLte: func(c int) bool { return c <= 0 },
				graph.OpGt: func(c int) bool { return c > 0 }, graph.OpGte: func(c int) bool { return c >= 0 },
			}
			for op, holds := range ops {
				for _, pivot := range all {
					v := name(pivot)
					var wantIDs, wantList []string
					for _, id := range byID {
						if holds(strings.Compare(name(id), v)) {
							wantIDs = append(wantIDs, id)
							if id != "cp-\U0001F6A6" && holds(strings.Compare("x:"+name(id), "x:"+v)) {
								wantList = append(wantList, id)
							}
						}
					}
					f := graph.And{prefix, graph.Cmp{Field: "name", Op: op, Value: v}}
					if got := findIDs(t, s, "StreetLight", f); !slices.Equal(got, wantIDs) {
						t.Errorf("name %s %q = %q, want %q", op, v, got, wantIDs)
					}
					f = graph.And{prefix, graph.Cmp{Field: "externalIds", Op: op, Value: "x:" + v}}
					if got := findIDs(t, s, "StreetLight", f); !slices.Equal(got, wantList) {
						t.Errorf("externalIds %s %q = %q, want %q", op, "x:"+v, got, wantList)
					}
				}
			}
		}},
		{"Order/Fields", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			for _, c := range orderTable() {
				t.Run(c.name, func(t *testing.T) {
					p := MustFind(t, s, graph.FindQuery{Class: c.class, Order: c.order, First: 100})
					if got := ids(p.Nodes); !slices.Equal(got, c.want) {
						t.Errorf("Find(%s order %s) = %q, want %q", c.class, graph.OrderKey(c.order), got, c.want)
					}
					for _, n := range []int{1, 2, 4} {
						if got := allPages(t, s, graph.FindQuery{Class: c.class, Order: c.order}, n); !slices.Equal(got, c.want) {
							t.Errorf("paged by %d: Find(%s order %s) = %q, want %q", n, c.class, graph.OrderKey(c.order), got, c.want)
						}
					}
					// the same with a filter
					f := cmp("id", graph.OpNe, "sl-3")
					want := except(c.want, "sl-3")
					if got := allPages(t, s, graph.FindQuery{Class: c.class, Order: c.order, Filter: f}, 2); !slices.Equal(got, want) {
						t.Errorf("filtered, paged: %q, want %q", got, want)
					}
				})
			}
		}},
		{"Order/Invalid", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			for _, o := range []string{"nope", "externalIds", "attributes", "streamRef"} {
				_, err := s.Find(t.Context(), graph.FindQuery{Class: "StreetLight", Order: byField(o, false), First: 5})
				MustFail(t, "order by "+o, err, graph.ErrInvalid)
			}
		}},
	}
}

func pageCases() []testCase {
	return []testCase{
		{"Page/Flags", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			p := MustFind(t, s, graph.FindQuery{Class: "StreetLight", First: 2})
			if p.Total != -1 || p.HasPrev || !p.HasNext || len(p.Nodes) != 2 {
				t.Errorf("first page: Total %d HasPrev %v HasNext %v nodes %d; want -1 false true 2", p.Total, p.HasPrev, p.HasNext, len(p.Nodes))
			}
			p2 := MustFind(t, s, graph.FindQuery{Class: "StreetLight", First: 2, After: p.Cursors[1], Count: true})
			if p2.Total != 6 || !p2.HasPrev || !p2.HasNext {
				t.Errorf("second page: Total %d HasPrev %v HasNext %v; want 6 true true", p2.Total, p2.HasPrev, p2.HasNext)
			}
			sameIDs(t, "second page", p2.Nodes, "sl-3", "sl-4")
			p3 := MustFind(t, s, graph.FindQuery{Class: "StreetLight", First: 2, After: p2.Cursors[1]})
			if p3.HasNext || !p3.HasPrev {
				t.Errorf("last page: HasNext %v HasPrev %v", p3.HasNext, p3.HasPrev)
			}
			p4 := MustFind(t, s, graph.FindQuery{Class: "StreetLight", First: 2, After: p3.Cursors[1], Count: true})
			if len(p4.Nodes) != 0 || p4.HasNext || !p4.HasPrev || p4.Total != 6 {
				t.Errorf("past the end: %q HasNext %v HasPrev %v Total %d", ids(p4.Nodes), p4.HasNext, p4.HasPrev, p4.Total)
			}
			empty := MustFind(t, s, graph.FindQuery{Class: "District", First: 2, Count: true})
			if len(empty.Nodes) != 0 || empty.HasNext || empty.Total != 0 {
				t.Errorf("empty class: %q HasNext %v Total %d", ids(empty.Nodes), empty.HasNext, empty.Total)
			}
		}},
		{"Page/InsertBetweenPages", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			order := byField("name", false)
			p := MustFind(t, s, graph.FindQuery{Class: "StreetLight", Order: order, First: 2})
			sameIDs(t, "first page", p.Nodes, "sl-5", "sl-1")
			cur := p.Cursors[1]
			// rows before the cursor, tied with it on both sides, after it
			MustApply(t, s, graph.Batch{Nodes: []graph.Node{
				node("StreetLight", "sl-a", "name", "AAA"),
				node("StreetLight", "sl-0", "name", "Main Street 1"),
				node("StreetLight", "sl-11", "name", "Main Street 1"),
				node("StreetLight", "sl-b", "name", "Main Street 0"),
				node("StreetLight", "sl-z", "name", "Zed"),
			}})
			full := ids(MustFind(t, s, graph.FindQuery{Class: "StreetLight", Order: order, First: 100}).Nodes)
			i := slices.Index(full, "sl-1")
			want := full[i+1:]
			var got []string
			q := graph.FindQuery{Class: "StreetLight", Order: order, First: 2, After: cur}
			for {
				pg := MustFind(t, s, q)
				got = append(got, ids(pg.Nodes)...)
				if !pg.HasNext {
					break
				}
				q.After = pg.Cursors[len(pg.Cursors)-1]
			}
			if !slices.Equal(got, want) {
				t.Errorf("pages after the cursor = %q, want %q (full order %q)", got, want, full)
			}
			if got[0] != "sl-11" {
				t.Errorf("the page after the cursor starts with %s, want the tied row sl-11", got[0])
			}
		}},
		{"Page/CursorRowDeleted", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			order := byField("powerRatingW", true)
			p := MustFind(t, s, graph.FindQuery{Class: "StreetLight", Order: order, First: 2})
			sameIDs(t, "first page", p.Nodes, "sl-4", "sl-1")
			MustApply(t, s, graph.Batch{DeleteNodes: []string{"sl-1", "sl-4"}})
			p2 := MustFind(t, s, graph.FindQuery{Class: "StreetLight", Order: order, First: 10, After: p.Cursors[1]})
			sameIDs(t, "after the deleted cursor row", p2.Nodes, "sl-5", "sl-2", "sl-3", "sl-q")
		}},
		{"Page/BadCursor", func(t *testing.T, s graph.Store) {
			seedFilter(t, s)
			p := MustFind(t, s, graph.FindQuery{Class: "StreetLight", Order: byField("name", false), First: 2})
			for name, q := range map[string]graph.FindQuery{
				"garbage":        {Class: "StreetLight", First: 2, After: "!!not a cursor!!"},
				"base64-garbage": {Class: "StreetLight", First: 2, After: "eyJ4IjoxfQ"},
				"other-order":    {Class: "StreetLight", First: 2, After: p.Cursors[1], Order: byField("name", true)},
				"other-field":    {Class: "StreetLight", First: 2, After: p.Cursors[1], Order: byField("poleNumber", false)},
				"no-order":       {Class: "StreetLight", First: 2, After: p.Cursors[1]},
				"wrong-type":     {Class: "StreetLight", First: 2, After: graph.EncodeCursor(byField("name", false), []any{map[string]any{"a": 1}}, "sl-1"), Order: byField("name", false)},
			} {
				_, err := s.Find(t.Context(), q)
				MustFail(t, "cursor "+name, err, graph.ErrInvalid)
			}
		}},
	}
}
