package paging

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// walk drives a pager over a simulated API: pages[i] is what the i-th
// request returns. It returns the URLs requested and Next's or Advance's
// error.
func walk(t *testing.T, cfg Config, first string, pages []Result) ([]string, error) {
	t.Helper()
	p, err := cfg.NewPager(first)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		u, err := p.Next()
		if err != nil || u == "" {
			return got, err
		}
		if len(got) == len(pages) {
			t.Fatalf("pager asked for page %d (%s) after %v; only %d pages exist", len(got)+1, u, got, len(pages))
		}
		got = append(got, u)
		if err := p.Advance(pages[len(got)-1]); err != nil {
			return got, err
		}
	}
}

func intp(i int) *int { return &i }

func link(v string) http.Header { return http.Header{"Link": {v}} }

func TestPager(t *testing.T) {
	const base = "http://api.test/v1/stations?city=cambridge&fields=a%2Cb"
	tests := []struct {
		name  string
		cfg   Config
		first string
		pages []Result
		want  []string
		err   string
	}{
		{"none reads once", Config{}, base, []Result{{Records: 500}}, []string{base}, ""},
		{"offset stops at a short page", Config{Pagination: Offset, Limit: 25}, base,
			[]Result{{Records: 25}, {Records: 25}, {Records: 7}},
			[]string{
				"http://api.test/v1/stations?city=cambridge&fields=a%2Cb&offset=0&limit=25",
				"http://api.test/v1/stations?city=cambridge&fields=a%2Cb&offset=25&limit=25",
				"http://api.test/v1/stations?city=cambridge&fields=a%2Cb&offset=50&limit=25",
			}, ""},
		{"offset stops at an empty page, replaces the URL's own offset", Config{Pagination: Offset, OffsetParam: "$offset", LimitParam: "$limit", Limit: 2},
			"http://api.test/x.json?$offset=40&$where=a%3D1",
			[]Result{{Records: 2}, {Records: 0}},
			[]string{"http://api.test/x.json?$where=a%3D1&%24offset=0&%24limit=2", "http://api.test/x.json?$where=a%3D1&%24offset=2&%24limit=2"}, ""},
		{"page from 0 with its own size parameter", Config{Pagination: Page, PageParam: "p", StartPage: intp(0), LimitParam: "per_page", Limit: 10}, "http://api.test/x",
			[]Result{{Records: 10}, {Records: 10}, {Records: 3}},
			[]string{"http://api.test/x?p=0&per_page=10", "http://api.test/x?p=1&per_page=10", "http://api.test/x?p=2&per_page=10"}, ""},
		{"page from 1 by default", Config{Pagination: Page, Limit: 5}, "http://api.test/x",
			[]Result{{Records: 5}, {Records: 0}},
			[]string{"http://api.test/x?page=1&limit=5", "http://api.test/x?page=2&limit=5"}, ""},
		{"next link in the body, relative and absolute", Config{Pagination: NextLink, NextLinkPath: "links.next"}, "http://api.test/a/list",
			[]Result{{Records: 3, Value: "list?after=3"}, {Records: 3, Value: "/a/list?after=6#frag"}, {Records: 1, Value: "https://other.test/a?after=7"}, {Records: 1}},
			[]string{"http://api.test/a/list", "http://api.test/a/list?after=3", "http://api.test/a/list?after=6", "https://other.test/a?after=7"}, ""},
		{"next link in the Link header", Config{Pagination: NextLink}, "http://api.test/a",
			[]Result{{Records: 2, Header: link(`<http://api.test/a?page=2>; rel="next", <http://api.test/a?page=9>; rel="last"`)}, {Records: 2, Header: link(`<http://api.test/a?page=1>; rel="prev first"`)}},
			[]string{"http://api.test/a", "http://api.test/a?page=2"}, ""},
		{"a next link back to the first page is a loop", Config{Pagination: NextLink}, "http://api.test/a",
			[]Result{{Records: 2, Header: link(`</a?page=2>; rel=next`)}, {Records: 2, Header: link(`</a>; rel=next`)}},
			[]string{"http://api.test/a", "http://api.test/a?page=2"}, "next link http://api.test/a repeats a page already read (a loop)"},
		{"a next link that is not http", Config{Pagination: NextLink, NextLinkPath: "next"}, "http://api.test/a",
			[]Result{{Records: 2, Value: "ftp://api.test/b"}},
			[]string{"http://api.test/a"}, `next link "ftp://api.test/b" is not an http(s) URL`},
		{"next link stops at an empty page even with a link", Config{Pagination: NextLink, NextLinkPath: "n"}, "http://api.test/a",
			[]Result{{Records: 0, Value: "/b"}},
			[]string{"http://api.test/a"}, ""},
		{"cursor", Config{Pagination: Cursor, CursorPath: "meta.next", CursorParam: "after"}, "http://api.test/a?after=old&x=1",
			[]Result{{Records: 2, Value: "c/2 +"}, {Records: 2, Value: "c4"}, {Records: 1}},
			[]string{"http://api.test/a?after=old&x=1", "http://api.test/a?x=1&after=c%2F2+%2B", "http://api.test/a?x=1&after=c4"}, ""},
		{"a repeated cursor is a loop", Config{Pagination: Cursor, CursorPath: "c", CursorParam: "c"}, "http://api.test/a",
			[]Result{{Records: 2, Value: "x"}, {Records: 2, Value: "y"}, {Records: 2, Value: "x"}},
			[]string{"http://api.test/a", "http://api.test/a?c=x", "http://api.test/a?c=y"}, `cursor "x" repeats one already followed (a loop)`},
		{"max_pages reached is an error", Config{Pagination: Offset, Limit: 1, MaxPages: 2}, "http://api.test/a",
			[]Result{{Records: 1}, {Records: 1}, {Records: 1}},
			[]string{"http://api.test/a?offset=0&limit=1", "http://api.test/a?offset=1&limit=1"}, "max_pages reached: read 2 pages and http://api.test/a has more (next: http://api.test/a?offset=2&limit=1); raise max_pages"},
		{"max_pages not reached when the last allowed page is short", Config{Pagination: Offset, Limit: 2, MaxPages: 2}, "http://api.test/a",
			[]Result{{Records: 2}, {Records: 1}},
			[]string{"http://api.test/a?offset=0&limit=2", "http://api.test/a?offset=2&limit=2"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := walk(t, tt.cfg, tt.first, tt.pages)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("URLs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
	_, err := walk(t, Config{Pagination: Page, Limit: 1, MaxPages: 1}, "http://api.test/a", []Result{{Records: 1}})
	if !errors.Is(err, ErrMaxPages) {
		t.Errorf("max_pages error %v does not wrap ErrMaxPages", err)
	}
}

func TestParseLinkHeader(t *testing.T) {
	tests := []struct {
		in   string
		want string // URL|rels ... ; space separated links
	}{
		{`<https://api.github.test/repos?page=2>; rel="next", <https://api.github.test/repos?page=5>; rel="last"`,
			"https://api.github.test/repos?page=2|next https://api.github.test/repos?page=5|last"},
		{`</a,b;c>;rel=next;title="x, y; \"z\"" ,</d>; REL="Prev First"`, "/a,b;c|next /d|prev,first"},
		{`<u1>; title=next; rel=alternate`, "u1|alternate"},
		{`<u1>; rel="next"; rel="prev"`, "u1|next"},
		{`<u1>, garbage, <u2>; rel=next`, "u1|"},
		{`<u1>; rel="unterminated`, ""},
		{`<unclosed; rel=next`, ""},
		{``, ""},
		{`<u1>;rel=next<u2>`, "u1|next<u2>"},
	}
	for _, tt := range tests {
		var got []string
		for _, l := range ParseLinkHeader(tt.in) {
			got = append(got, l.URL+"|"+strings.Join(l.Rel, ","))
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("ParseLinkHeader(%s) = %q, want %q", tt.in, strings.Join(got, " "), tt.want)
		}
	}
	h := http.Header{}
	h.Add("Link", `<a>; rel=prev`)
	h.Add("Link", `<b>; rel="last next"`)
	if got := NextFromLinkHeader(h); got != "b" {
		t.Errorf("NextFromLinkHeader over two fields = %q", got)
	}
	if got := NextFromLinkHeader(nil); got != "" {
		t.Errorf("NextFromLinkHeader(nil) = %q", got)
	}
}

func TestSetParams(t *testing.T) {
	tests := []struct {
		q    string
		kv   []string
		want string
	}{
		{"", []string{"offset", "0"}, "offset=0"},
		{"a=1&offset=9&b=x+y&offset=3", []string{"offset", "10", "limit", "5"}, "a=1&b=x+y&offset=10&limit=5"},
		{"p%61ge=4&&z", []string{"page", "5"}, "z&page=5"},
		{"%zz=1", []string{"a", "b c&d"}, "%zz=1&a=b+c%26d"},
	}
	for _, tt := range tests {
		if got := SetParams(tt.q, tt.kv...); got != tt.want {
			t.Errorf("SetParams(%q, %q) = %q, want %q", tt.q, tt.kv, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		http   HTTP
		path   string
		hasURL bool
		want   []string // field: message (substring), in order
	}{
		{"file, no paging", Config{}, HTTP{}, "a.json", false, nil},
		{"neither path nor url", Config{}, HTTP{}, "", false, []string{"path: path is required (or url for an HTTP resource)"}},
		{"both", Config{}, HTTP{URL: "http://h/x"}, "a.json", true, []string{"url: give path or url, not both"}},
		{"url in path", Config{}, HTTP{}, "https://h/x", false, []string{`path: path "https://h/x" is a URL: set url instead`}},
		{"bad url", Config{}, HTTP{URL: "ftp://h/x"}, "", true, []string{`url: url "ftp://h/x" must start with http:// or https://`}},
		{"no host", Config{}, HTTP{URL: "http:///x"}, "", true, []string{`url: url "http:///x" has no host`}},
		{"http settings on a file", Config{Pagination: Offset}, HTTP{Headers: map[string]string{"A": "b"}, Timeout: 5}, "a.json", false,
			[]string{"headers: headers applies to url only", "timeout: timeout applies to url only", "pagination: pagination applies to url only"}},
		{"key header without env, bad header", Config{}, HTTP{URL: "http://h/x", APIKeyHeader: "X Key", Headers: map[string]string{"Accept": "a\r\nb"}}, "", true,
			[]string{`headers.Accept: header value holds a line break or NUL`, `api_key_header: header name "X Key" is not a valid HTTP token`, "api_key_header: api_key_header needs api_key_env"}},
		{"unknown strategy", Config{Pagination: "link"}, HTTP{URL: "http://h/x"}, "", true, []string{`pagination: pagination must be one of none, offset, page, next_link, cursor, got "link"`}},
		{"parameters of another strategy", Config{Pagination: Page, OffsetParam: "o", CursorPath: "c"}, HTTP{URL: "http://h/x"}, "", true,
			[]string{"offset_param: offset_param does not apply to pagination: page", "cursor_path: cursor_path does not apply to pagination: page"}},
		{"parameters without pagination", Config{Limit: 50}, HTTP{URL: "http://h/x"}, "", true, []string{"limit: limit does not apply to pagination: none"}},
		{"cursor needs path and param", Config{Pagination: Cursor}, HTTP{URL: "http://h/x"}, "", true,
			[]string{"cursor_path: cursor_path is required with pagination: cursor", "cursor_param: cursor_param is required with pagination: cursor"}},
		{"bad numbers and names", Config{Pagination: Offset, Limit: -1, MaxPages: -2, OffsetParam: "limit"}, HTTP{URL: "http://h/x", Timeout: -1}, "", true,
			[]string{"timeout: timeout must be positive", "limit: limit must be positive, got -1", "max_pages: max_pages must be positive, got -2", `limit_param: limit_param and offset_param are both "limit"`}},
		{"dotted path", Config{Pagination: NextLink, NextLinkPath: "links..next"}, HTTP{URL: "http://h/x"}, "", true, []string{`next_link_path: path "links..next" has an empty segment`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			report := func(field, format string, args ...any) { got = append(got, field+": "+fmt.Sprintf(format, args...)) }
			ValidateLocation(report, "", tt.path, tt.http.URL)
			tt.http.Validate(report, tt.hasURL)
			tt.cfg.Validate(report, tt.hasURL)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems %q, want %q", len(got), got, tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// FuzzParseLinkHeader checks the Link header parser on any input: it
// never panics, every target it returns was written between < and > in
// the input, and a well-formed next link appended to the input after a
// comma is always found when nothing before it was malformed.
func FuzzParseLinkHeader(f *testing.F) {
	f.Add(`<https://api.test/x?page=2>; rel="next", <https://api.test/x?page=9>; rel="last"`, "/x?cursor=abc")
	f.Add(`</a,b>; title="x\"y, z"; rel=next`, "http://h/p?q=1")
	f.Add(`<u>; rel="unterminated`, "v")
	f.Fuzz(func(t *testing.T, header, target string) {
		for _, l := range ParseLinkHeader(header) {
			if !strings.Contains(header, "<"+l.URL+">") {
				t.Fatalf("link %q is not in %q", l.URL, header)
			}
			for _, r := range l.Rel {
				if r == "" || strings.ToLower(r) != r || strings.ContainsAny(r, " \t") {
					t.Fatalf("bad rel %q from %q", r, header)
				}
			}
		}
		if target = strings.TrimSpace(target); target == "" || strings.ContainsAny(target, "<>\t ") {
			return
		}
		alone := `<` + target + `>; rel="next"`
		if got := NextFromLinkHeader(http.Header{"Link": {alone}}); got != target {
			t.Fatalf("NextFromLinkHeader(%q) = %q", alone, got)
		}
	})
}

// FuzzSetParams checks the query rewriting of the offset, page and cursor
// strategies on any query and value: the set parameters parse back to the
// exact values, each once, and every other parameter is kept in order.
func FuzzSetParams(f *testing.F) {
	f.Add("city=cambridge&offset=20&$where=a%3D1", "offset", "40")
	f.Add("a=%zz&&b", "cursor", "eyJpZCI6IjMifQ==/+&x")
	f.Add("", "page", "0")
	f.Fuzz(func(t *testing.T, q, name, value string) {
		if name == "" {
			return
		}
		out := SetParams(q, name, value)
		vals, err := url.ParseQuery(out)
		if err == nil && (len(vals[name]) != 1 || vals[name][0] != value) {
			t.Fatalf("SetParams(%q, %q, %q) = %q: %q parses to %q", q, name, value, out, name, vals[name])
		}
		var kept []string
		for _, seg := range strings.Split(q, "&") {
			n, _, _ := strings.Cut(seg, "=")
			if un, err := url.QueryUnescape(n); err == nil {
				n = un
			}
			if seg != "" && n != name {
				kept = append(kept, seg)
			}
		}
		want := strings.Join(append(kept, url.QueryEscape(name)+"="+url.QueryEscape(value)), "&")
		if out != want {
			t.Fatalf("SetParams(%q, %q, %q) = %q, want %q", q, name, value, out, want)
		}
	})
}
