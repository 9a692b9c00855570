package paging

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Strategy is how a paged API says where the next page is.
type Strategy string

// The strategies.
const (
	// None reads the URL once.
	None Strategy = "none"
	// Offset sends offset_param (0, then the number of records read so
	// far) and limit_param=limit.
	Offset Strategy = "offset"
	// Page sends page_param (start_page, start_page+1, ...) and
	// limit_param=limit.
	Page Strategy = "page"
	// NextLink follows the URL found at next_link_path in the body, or in
	// the Link response header (rel="next") when next_link_path is empty.
	NextLink Strategy = "next_link"
	// Cursor sends the value found at cursor_path in the body as
	// cursor_param of the next request.
	Cursor Strategy = "cursor"
)

// Strategies returns the strategies in documentation order.
func Strategies() []Strategy { return []Strategy{None, Offset, Page, NextLink, Cursor} }

// Defaults of the parameters a config leaves unset.
const (
	DefaultOffsetParam = "offset"
	DefaultPageParam   = "page"
	DefaultLimitParam  = "limit"
	DefaultLimit       = 100
	DefaultStartPage   = 1
	DefaultMaxPages    = 1000
)

// Config configures pagination. Kinds inline it in their Config, so the
// keys sit beside url. Unset fields take the defaults above; a field that
// does not apply to the chosen strategy is a configuration error.
type Config struct {
	// Pagination is the strategy: none (default), offset, page, next_link
	// or cursor.
	Pagination Strategy `yaml:"pagination"`
	// OffsetParam is the query parameter carrying the offset (offset).
	OffsetParam string `yaml:"offset_param"`
	// PageParam is the query parameter carrying the page number (page).
	PageParam string `yaml:"page_param"`
	// StartPage is the number of the first page (page; default 1).
	StartPage *int `yaml:"start_page"`
	// LimitParam is the query parameter carrying the page size (offset,
	// page).
	LimitParam string `yaml:"limit_param"`
	// Limit is the page size asked for (offset, page). A page with fewer
	// records is the last, so it must not exceed the server's largest page.
	Limit int `yaml:"limit"`
	// NextLinkPath is the dotted path of the next page's URL in the body,
	// e.g. links.next (next_link); empty reads the Link header.
	NextLinkPath string `yaml:"next_link_path"`
	// CursorPath is the dotted path of the next cursor in the body
	// (cursor).
	CursorPath string `yaml:"cursor_path"`
	// CursorParam is the query parameter the cursor is sent in (cursor).
	CursorParam string `yaml:"cursor_param"`
	// MaxPages bounds the pages of one read (default 1000); a resource
	// with more fails the read with an error saying so.
	MaxPages int `yaml:"max_pages"`
}

// Validate checks the configuration; hasURL says whether the block reads
// a URL (files are never paged).
func (c Config) Validate(report Report, hasURL bool) {
	s := c.Pagination
	if s == "" {
		s = None
	}
	known := false
	for _, k := range Strategies() {
		known = known || s == k
	}
	if !known {
		report("pagination", "pagination must be one of %s, got %q", strategyList(), c.Pagination)
		return
	}
	if s != None && !hasURL {
		report("pagination", "pagination applies to url only")
	}
	uses := map[Strategy][]string{
		Offset:   {"offset_param", "limit_param", "limit", "max_pages"},
		Page:     {"page_param", "start_page", "limit_param", "limit", "max_pages"},
		NextLink: {"next_link_path", "max_pages"},
		Cursor:   {"cursor_path", "cursor_param", "max_pages"},
	}
	set := []struct {
		name string
		on   bool
	}{
		{"offset_param", c.OffsetParam != ""}, {"page_param", c.PageParam != ""}, {"start_page", c.StartPage != nil},
		{"limit_param", c.LimitParam != ""}, {"limit", c.Limit != 0}, {"next_link_path", c.NextLinkPath != ""},
		{"cursor_path", c.CursorPath != ""}, {"cursor_param", c.CursorParam != ""}, {"max_pages", c.MaxPages != 0},
	}
	for _, f := range set {
		if f.on && !contains(uses[s], f.name) {
			report(f.name, "%s does not apply to pagination: %s", f.name, s)
		}
	}
	eff := c.effective()
	if c.Limit < 0 {
		report("limit", "limit must be positive, got %d", c.Limit)
	}
	if c.MaxPages < 0 {
		report("max_pages", "max_pages must be positive, got %d", c.MaxPages)
	}
	if c.StartPage != nil && *c.StartPage < 0 {
		report("start_page", "start_page must be 0 or more, got %d", *c.StartPage)
	}
	for _, p := range []struct{ field, v string }{{"offset_param", c.OffsetParam}, {"page_param", c.PageParam}, {"limit_param", c.LimitParam}, {"cursor_param", c.CursorParam}} {
		if p.v != "" && strings.ContainsAny(p.v, "&=#? \t\r\n") {
			report(p.field, "%s %q holds a character not allowed in a query parameter name", p.field, p.v)
		}
	}
	switch s {
	case Offset:
		if eff.OffsetParam == eff.LimitParam {
			report("limit_param", "limit_param and offset_param are both %q", eff.LimitParam)
		}
	case Page:
		if eff.PageParam == eff.LimitParam {
			report("limit_param", "limit_param and page_param are both %q", eff.LimitParam)
		}
	case NextLink:
		if msg := badDotted(c.NextLinkPath); msg != "" {
			report("next_link_path", "%s", msg)
		}
	case Cursor:
		if c.CursorPath == "" {
			report("cursor_path", "cursor_path is required with pagination: cursor")
		} else if msg := badDotted(c.CursorPath); msg != "" {
			report("cursor_path", "%s", msg)
		}
		if c.CursorParam == "" {
			report("cursor_param", "cursor_param is required with pagination: cursor")
		}
	}
}

func strategyList() string {
	var out []string
	for _, s := range Strategies() {
		out = append(out, string(s))
	}
	return strings.Join(out, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func badDotted(p string) string {
	if p == "" {
		return ""
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Sprintf("path %q has an empty segment", p)
		}
	}
	return ""
}

// effective returns c with the defaults filled in.
func (c Config) effective() Config {
	if c.Pagination == "" {
		c.Pagination = None
	}
	if c.OffsetParam == "" {
		c.OffsetParam = DefaultOffsetParam
	}
	if c.PageParam == "" {
		c.PageParam = DefaultPageParam
	}
	if c.LimitParam == "" {
		c.LimitParam = DefaultLimitParam
	}
	if c.Limit == 0 {
		c.Limit = DefaultLimit
	}
	if c.StartPage == nil {
		sp := DefaultStartPage
		c.StartPage = &sp
	}
	if c.MaxPages == 0 {
		c.MaxPages = DefaultMaxPages
	}
	return c
}

// BodyPath returns the dotted path of the value a page's body must yield
// for the strategy (the next link or the cursor), or "" when the body
// holds none (the Link header, offset and page strategies).
func (c Config) BodyPath() string {
	switch c.Pagination {
	case NextLink:
		return c.NextLinkPath
	case Cursor:
		return c.CursorPath
	}
	return ""
}

// Result is what reading one page found.
type Result struct {
	// Records is the number of records on the page.
	Records int
	// Value is the text at BodyPath in the body ("" when absent or null).
	Value string
	// Header is the HTTP response header (for the Link header).
	Header http.Header
}

// ErrMaxPages is returned (wrapped) when a read reaches max_pages while
// the resource has more pages.
var ErrMaxPages = errors.New("max_pages reached")

// Pager walks the pages of one read: Next gives the URL to fetch, Advance
// takes what the page held. It is not safe for concurrent use.
type Pager struct {
	cfg    Config
	base   *url.URL
	cur    string // URL of the page being read
	next   string
	pages  int
	offset int
	done   bool
	seen   map[string]bool // next links or cursors already followed
}

// NewPager returns a pager starting at first, an http(s) URL.
func (c Config) NewPager(first string) (*Pager, error) {
	u, err := url.Parse(first)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", first, err)
	}
	p := &Pager{cfg: c.effective(), base: u, seen: map[string]bool{}}
	switch p.cfg.Pagination {
	case Offset:
		p.next = withQuery(u, p.cfg.OffsetParam, "0", p.cfg.LimitParam, strconv.Itoa(p.cfg.Limit))
	case Page:
		p.next = withQuery(u, p.cfg.PageParam, strconv.Itoa(*p.cfg.StartPage), p.cfg.LimitParam, strconv.Itoa(p.cfg.Limit))
	default:
		p.next = u.String()
	}
	if p.cfg.Pagination == NextLink {
		p.seen[p.next] = true
	}
	return p, nil
}

// Next returns the URL of the next page, or "" when the read is complete.
// It fails (wrapping ErrMaxPages) when the next page would be beyond
// max_pages.
func (p *Pager) Next() (string, error) {
	if p.done {
		return "", nil
	}
	if p.pages >= p.cfg.MaxPages {
		return "", fmt.Errorf("%w: read %d pages and %s has more (next: %s); raise max_pages", ErrMaxPages, p.pages, p.base.Redacted(), p.next)
	}
	p.cur = p.next
	return p.cur, nil
}

// Advance records the page just read (the one Next returned last). It
// fails when the page points back at a page already read (a next link or
// cursor seen before) or when its next link is not an http(s) URL.
func (p *Pager) Advance(r Result) error {
	p.pages++
	if r.Records == 0 || p.cfg.Pagination == None {
		p.done = true
		return nil
	}
	switch p.cfg.Pagination {
	case Offset:
		if r.Records < p.cfg.Limit {
			p.done = true
			return nil
		}
		p.offset += r.Records
		p.next = withQuery(p.base, p.cfg.OffsetParam, strconv.Itoa(p.offset), p.cfg.LimitParam, strconv.Itoa(p.cfg.Limit))
	case Page:
		if r.Records < p.cfg.Limit {
			p.done = true
			return nil
		}
		p.next = withQuery(p.base, p.cfg.PageParam, strconv.Itoa(*p.cfg.StartPage+p.pages), p.cfg.LimitParam, strconv.Itoa(p.cfg.Limit))
	case NextLink:
		link := r.Value
		if p.cfg.NextLinkPath == "" {
			link = NextFromLinkHeader(r.Header)
		}
		if link == "" {
			p.done = true
			return nil
		}
		next, err := resolve(p.cur, link)
		if err != nil {
			return err
		}
		if p.seen[next] {
			return fmt.Errorf("next link %s repeats a page already read (a loop)", next)
		}
		p.seen[next] = true
		p.next = next
	case Cursor:
		if r.Value == "" {
			p.done = true
			return nil
		}
		if p.seen[r.Value] {
			return fmt.Errorf("cursor %q repeats one already followed (a loop)", r.Value)
		}
		p.seen[r.Value] = true
		p.next = withQuery(p.base, p.cfg.CursorParam, r.Value)
	}
	return nil
}

// resolve resolves a next link against the page it was found on.
func resolve(page, link string) (string, error) {
	base, err := url.Parse(page)
	if err != nil {
		return "", fmt.Errorf("page url %q: %w", page, err)
	}
	ref, err := url.Parse(strings.TrimSpace(link))
	if err != nil {
		return "", fmt.Errorf("next link %q: %w", link, err)
	}
	u := base.ResolveReference(ref)
	u.Fragment, u.RawFragment = "", ""
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("next link %q is not an http(s) URL", link)
	}
	return u.String(), nil
}

// withQuery returns u with the query parameters kv (name, value pairs)
// set: earlier occurrences of those names are dropped, every other part
// of the query is kept byte for byte, and the pairs are appended.
func withQuery(u *url.URL, kv ...string) string {
	c := *u
	c.RawQuery = SetParams(u.RawQuery, kv...)
	return c.String()
}

// SetParams returns the raw query q with the parameters kv (name, value
// pairs, unescaped) set: segments whose name is one of them are dropped,
// the others kept byte for byte in their order, and the pairs appended,
// escaped. A name is compared after unescaping, so "page" also replaces
// "p%61ge".
func SetParams(q string, kv ...string) string {
	names := map[string]bool{}
	for i := 0; i+1 < len(kv); i += 2 {
		names[kv[i]] = true
	}
	var parts []string
	for _, seg := range strings.Split(q, "&") {
		if seg == "" {
			continue
		}
		name, _, _ := strings.Cut(seg, "=")
		if un, err := url.QueryUnescape(name); err == nil {
			name = un
		}
		if !names[name] {
			parts = append(parts, seg)
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, url.QueryEscape(kv[i])+"="+url.QueryEscape(kv[i+1]))
	}
	return strings.Join(parts, "&")
}
