package connectors

import (
	"strings"
	"testing"
	"time"
)

func TestTemplate(t *testing.T) {
	rec := &Record{Fields: map[string]any{
		"ID": int64(7), "Name": "a/b c", "GlobalID": "{AB-12}", "n": 449.0, "obj": map[string]any{"k": "v"}, "blank": " ",
	}, Pos: Position{Line: 3, Index: 1}}
	ts := time.Date(1999, 1, 1, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		tmpl   string
		escape bool
		want   any
		miss   string
	}{
		{"{ID}", false, int64(7), ""},
		{"{ID}~x", false, "7~x", ""},
		{"{n}", true, "449", ""},
		{"{Name}", true, "a%2Fb%20c", ""},
		{"{Name}~{ID}", true, "a%2Fb%20c~7", ""},
		{"{GlobalID|guid|lower}", false, "ab-12", ""},
		{"{obj.k}", false, "v", ""},
		{"{{literal}}", false, "{literal}", ""},
		{"x{blank}", false, nil, "{blank}"},
		{"{nope}", false, nil, "{nope}"},
		{"{$index}/{$line}", false, "1/3", ""},
		{"{@t|unixms}", false, ts.UnixMilli(), ""},
		{"{$1}{$field}", false, "99y99", ""},
	}
	for _, tt := range tests {
		tp, err := parseTemplate(tt.tmpl)
		if err != nil {
			t.Fatalf("parseTemplate(%q): %v", tt.tmpl, err)
		}
		ec := &evalCtx{rec: rec, props: map[string]any{"t": ts}, caps: []string{"y99", "99"}, iter: true}
		got, ok, miss, err := tp.eval(ec, tt.escape)
		if err != nil || got != tt.want || miss != tt.miss || ok != (tt.miss == "") {
			t.Errorf("eval(%q) = %#v, %v, %q, %v; want %#v, miss %q", tt.tmpl, got, ok, miss, err, tt.want, tt.miss)
		}
	}
	for _, bad := range []string{"{", "}", "{a{b}}", "{}", "{$0}", "{$x}", "{a|nope}", "{@}"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("parseTemplate(%q) succeeded", bad)
		}
	}
}

func TestEscapeKey(t *testing.T) {
	tests := map[string]string{
		"SL-004512":     "SL-004512",
		"a:b/c?d#e%f g": "a%3Ab%2Fc%3Fd%23e%25f%20g",
		"x~y":           "x%7Ey",
		"café":          "caf%C3%A9",
		"{AB}":          "%7BAB%7D",
	}
	for in, want := range tests {
		if got := EscapeKey(in); got != want {
			t.Errorf("EscapeKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNaturalLess(t *testing.T) {
	in := []string{"AM10", "AM2", "2017", "1999", "1972", "AM Peak 2015", "x", "01999"}
	want := "1972 1999 01999 2017 AM Peak 2015 AM2 AM10 x"
	sorted := append([]string(nil), in...)
	for i := range sorted {
		for j := i + 1; j < len(sorted); j++ {
			if naturalLess(sorted[j], sorted[i]) {
				sorted[i], sorted[j] = sorted[j], sorted[i]
			}
		}
	}
	if got := strings.Join(sorted, " "); got != want {
		t.Errorf("natural order = %q, want %q", got, want)
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"{PoleID}", "{ID}~adt~{@phenomenonTime|unixms}", "{{x}}{$1}", "{Date Time|trim}"} {
		f.Add(s)
	}
	rec := &Record{Fields: map[string]any{"PoleID": "1", "ID": int64(2)}}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := parseTemplate(s)
		if err != nil {
			return
		}
		_, _, _, _ = tp.eval(&evalCtx{rec: rec, caps: []string{"a"}}, true)
	})
}
