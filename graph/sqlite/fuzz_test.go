package sqlite_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/graphtest"
)

// FuzzCursor feeds arbitrary cursors to Find: the answer is a page or
// ErrInvalid, never another error or a panic.
func FuzzCursor(f *testing.F) {
	order := []graph.Order{{Field: "name"}, {Field: "lampCount", Desc: true}}
	for _, seed := range []string{
		"", "x", "eyJ4IjoxfQ",
		graph.EncodeCursor(order, []any{"a", 1.0}, "id"),
		graph.EncodeCursor(order, []any{nil, nil}, "id"),
		graph.EncodeCursor(order, []any{1.0, "a"}, "id"),
		graph.EncodeCursor(order, []any{[]any{1}, map[string]any{}}, "id"),
		graph.EncodeCursor(nil, nil, "id"),
	} {
		f.Add(seed)
	}
	s := open(f)
	graphtest.MustApply(f, s, graph.Batch{Nodes: []graph.Node{
		{ID: "a", Class: "StreetLight", Props: map[string]any{"name": "A", "lampCount": int64(1)}},
		{ID: "b", Class: "StreetLight", Props: map[string]any{"name": "B"}},
	}})
	f.Fuzz(func(t *testing.T, cursor string) {
		_, err := s.Find(t.Context(), graph.FindQuery{Class: "StreetLight", Order: order, First: 5, After: cursor})
		if err != nil && !errors.Is(err, graph.ErrInvalid) {
			t.Fatalf("Find(after %q): %v", cursor, err)
		}
	})
}

// FuzzStringFilter stores a node with an arbitrary name and checks eq,
// contains, startsWith and search against their definitions in Go.
func FuzzStringFilter(f *testing.F) {
	for _, seed := range [][2]string{
		{"Main Street", "street"}, {"Ärztehaus", "ä"}, {"GROẞE", "ß"}, {"50%_off", "%"}, {"a_b", "_"},
		{"O'Brien", "'"}, {"x`y", "`"}, {"{}", "{"}, {`back\slash`, `\`}, {"İstanbul", "i"}, {"ΣΑΣ", "σας"},
		{"", ""}, {"abc", ""}, {"a\x00b", "\x00"}, {"DROP TABLE nodes", "drop table"},
	} {
		f.Add(seed[0], seed[1])
	}
	s := open(f)
	f.Fuzz(func(t *testing.T, name, value string) {
		if !utf8.ValidString(name) || !utf8.ValidString(value) {
			return
		}
		graphtest.MustApply(t, s, graph.Batch{Nodes: []graph.Node{{ID: "n", Class: "StreetLight", Props: map[string]any{"name": name}}}})
		for _, c := range []struct {
			f    graph.Filter
			want bool
		}{
			{graph.Cmp{Field: "name", Op: graph.OpEq, Value: value}, name == value},
			{graph.Cmp{Field: "name", Op: graph.OpContains, Value: value}, strings.Contains(strings.ToLower(name), strings.ToLower(value))},
			{graph.Cmp{Field: "name", Op: graph.OpStartsWith, Value: value}, strings.HasPrefix(name, value)},
			{graph.Cmp{Field: "name", Op: graph.OpLt, Value: value}, name < value},
			{graph.Search{Text: value}, searchMatches(name, value)},
		} {
			p, err := s.Find(t.Context(), graph.FindQuery{Class: "StreetLight", Filter: c.f, First: 1})
			if err != nil {
				t.Fatalf("Find(%s): %v", c.f.Key(), err)
			}
			if got := len(p.Nodes) == 1; got != c.want {
				t.Errorf("name %q, filter %s: match %v, want %v", name, c.f.Key(), got, c.want)
			}
		}
	})
}

func searchMatches(text, query string) bool {
	text = strings.ToLower(text)
	for _, w := range strings.Fields(strings.ToLower(query)) {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}
