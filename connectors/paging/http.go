// Package paging is what the document source kinds (csv, geojson, json)
// share to read over HTTP: the request settings of a connector's config
// block (url, headers, API key, timeout) and their validation; a Fetcher
// that opens a file or a URL through connectors/fetch with those settings,
// a stall timeout and classified body errors; and the pagination
// strategies of paged HTTP APIs (offset, page, next link, cursor) with
// their stop rules.
//
// It parses no record format: a kind reads each page and tells the Pager
// how many records it held and the next link or cursor it found.
package paging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
)

// DefaultTimeout is the HTTP timeout when a config sets none.
const DefaultTimeout = 30 * time.Second

// DefaultAPIKeyHeader carries the API key when api_key_header is not set.
const DefaultAPIKeyHeader = "X-API-Key"

// HTTP holds the request settings of a source that reads a URL. Kinds
// inline it in their Config (`yaml:",inline"`), so the keys sit beside
// path.
type HTTP struct {
	// URL of the resource, http or https; the alternative to path.
	URL string `yaml:"url"`
	// Headers are sent with every request to the configured host(s).
	Headers map[string]string `yaml:"headers"`
	// APIKeyEnv names the environment variable that holds an API key;
	// the key itself never appears in connector files. It is read when
	// the source opens the URL.
	APIKeyEnv string `yaml:"api_key_env"`
	// APIKeyHeader is the request header carrying the key (default
	// X-API-Key).
	APIKeyHeader string `yaml:"api_key_header"`
	// Timeout bounds every wait on the server: connecting and receiving
	// the response headers, then each read of the body. A body that keeps
	// arriving is never cut. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// Report receives one configuration problem: the field, a dotted path
// below the config block (e.g. "join.url"), and the message. Kinds turn
// it into a positioned error with connectors.RawConfig.Errorf.
type Report func(field, format string, args ...any)

// ValidateLocation checks that exactly one of a file path and a URL is
// set. prefix names the block ("" or "join.").
func ValidateLocation(report Report, prefix, path, rawURL string) {
	switch {
	case path == "" && rawURL == "":
		report(prefix+"path", "path is required (or url for an HTTP resource)")
	case path != "" && rawURL != "":
		report(prefix+"url", "give path or url, not both")
	case fetch.IsURL(path):
		report(prefix+"path", "path %q is a URL: set url instead", path)
	case rawURL != "":
		if err := checkURL(rawURL); err != nil {
			report(prefix+"url", "%v", err)
		}
	}
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("url %q: %v", raw, errors.Unwrap(err))
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("url %q must start with http:// or https://", raw)
	case u.Host == "":
		return fmt.Errorf("url %q has no host", raw)
	case u.Fragment != "":
		return fmt.Errorf("url %q has a fragment (#...), which is never sent", raw)
	}
	return nil
}

// Validate checks the settings; hasURL says whether the block reads any
// URL (the settings apply to URLs only).
func (h HTTP) Validate(report Report, hasURL bool) {
	if !hasURL {
		for _, f := range []struct {
			set  bool
			name string
		}{{len(h.Headers) > 0, "headers"}, {h.APIKeyEnv != "", "api_key_env"}, {h.APIKeyHeader != "", "api_key_header"}, {h.Timeout != 0, "timeout"}} {
			if f.set {
				report(f.name, "%s applies to url only", f.name)
			}
		}
		return
	}
	for name, v := range h.Headers {
		if !isToken(name) {
			report("headers."+name, "header name %q is not a valid HTTP token", name)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			report("headers."+name, "header value holds a line break or NUL")
		}
	}
	if h.APIKeyHeader != "" && !isToken(h.APIKeyHeader) {
		report("api_key_header", "header name %q is not a valid HTTP token", h.APIKeyHeader)
	}
	if h.APIKeyHeader != "" && h.APIKeyEnv == "" {
		report("api_key_header", "api_key_header needs api_key_env (the variable holding the key)")
	}
	if h.APIKeyEnv != "" && (strings.ContainsAny(h.APIKeyEnv, "= \t\r\n\x00")) {
		report("api_key_env", "api_key_env must name an environment variable, got %q", h.APIKeyEnv)
	}
	if h.Timeout < 0 {
		report("timeout", "timeout must be positive, got %s", h.Timeout)
	}
}

// isToken reports whether s is an RFC 9110 token (a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Fetcher opens a source's file or URLs with its request settings. Build
// one in a kind's New (it opens nothing until Open); it holds the
// source's own HTTP client and is safe for concurrent use.
type Fetcher struct {
	client    *http.Client
	header    http.Header
	keyEnv    string
	keyHeader string
	timeout   time.Duration
	hosts     map[string]bool // scheme://host the headers and key go to
}

// NewFetcher returns a Fetcher for the settings. Headers and the API key
// are sent only to the scheme and host of the given URLs (the configured
// url and join.url): a next link to another host gets neither.
func NewFetcher(h HTTP, urls ...string) *Fetcher {
	f := &Fetcher{
		client:    &http.Client{Transport: headerCapture{http.DefaultTransport.(*http.Transport).Clone()}},
		header:    http.Header{},
		keyEnv:    h.APIKeyEnv,
		keyHeader: h.APIKeyHeader,
		timeout:   h.Timeout,
		hosts:     map[string]bool{},
	}
	for k, v := range h.Headers {
		f.header.Set(k, v)
	}
	if f.keyHeader == "" {
		f.keyHeader = DefaultAPIKeyHeader
	}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	for _, u := range urls {
		if o := origin(u); o != "" {
			f.hosts[o] = true
		}
	}
	return f
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// errStalled is the cause given to a request's context when the server
// stays silent for longer than the timeout.
var errStalled = errors.New("stalled")

// Open opens loc, a file path or an http(s) URL. Errors are those of
// fetch.Open: transient for what may pass on a later try (refused
// connections, 408, 429, 5xx, a server silent past the timeout), permanent
// otherwise (a missing file, 404), each naming the file or URL.
func (f *Fetcher) Open(ctx context.Context, loc string) (*Body, error) {
	if !fetch.IsURL(loc) {
		rc, err := fetch.Open(ctx, fetch.Request{Location: loc})
		if err != nil {
			return nil, err
		}
		return &Body{loc: loc, rc: rc, ctx: ctx}, nil
	}
	hdr := http.Header{}
	if f.hosts[origin(loc)] {
		hdr = f.header.Clone()
		if f.keyEnv != "" {
			key, ok := os.LookupEnv(f.keyEnv)
			if !ok || key == "" {
				return nil, fmt.Errorf("GET %s: api_key_env: environment variable %s is not set", loc, f.keyEnv)
			}
			hdr.Set(f.keyHeader, key)
		}
	}
	rctx, cancel := context.WithCancelCause(ctx)
	var got http.Header
	rctx = context.WithValue(rctx, headerSlot{}, &got)
	timer := time.AfterFunc(f.timeout, func() { cancel(errStalled) })
	rc, err := fetch.Open(rctx, fetch.Request{Location: loc, Header: hdr, Client: f.client})
	timer.Stop()
	if err != nil {
		stalled := context.Cause(rctx) == errStalled && ctx.Err() == nil
		cancel(nil)
		if stalled {
			return nil, connectors.Transient(fmt.Errorf("GET %s: no response within %s (timeout)", loc, f.timeout))
		}
		return nil, err
	}
	return &Body{Header: got, loc: loc, rc: rc, ctx: ctx, reqCtx: rctx, cancel: cancel, timer: timer, timeout: f.timeout}, nil
}

// Body is an opened file or HTTP response body. Read errors of an HTTP
// body other than io.EOF (a connection reset, a body shorter than its
// Content-Length, a server silent past the timeout) are
// connectors.Transient and name the URL.
type Body struct {
	// Header is the HTTP response header; nil for files.
	Header http.Header

	loc     string
	rc      io.ReadCloser
	ctx     context.Context // the caller's
	reqCtx  context.Context // the request's, cancelled on a stall
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	timeout time.Duration
}

// Read implements io.Reader.
func (b *Body) Read(p []byte) (int, error) {
	if b.timer == nil {
		return b.rc.Read(p)
	}
	b.timer.Reset(b.timeout)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if err == nil || err == io.EOF {
		return n, err
	}
	switch {
	case b.ctx.Err() != nil:
		return n, b.ctx.Err()
	case context.Cause(b.reqCtx) == errStalled:
		return n, connectors.Transient(fmt.Errorf("GET %s: no data for %s (timeout)", b.loc, b.timeout))
	default:
		return n, connectors.Transient(fmt.Errorf("GET %s: body broke off: %w", b.loc, err))
	}
}

// Close releases the file or the connection.
func (b *Body) Close() error {
	if b.timer != nil {
		b.timer.Stop()
		b.cancel(nil)
	}
	return b.rc.Close()
}

// headerSlot is the context key under which Open asks headerCapture for
// the response header (fetch.Open returns the body only).
type headerSlot struct{}

// headerCapture is a RoundTripper that stores each response's header in
// the *http.Header its request's context carries; after redirects the
// slot holds the last response's.
type headerCapture struct{ base http.RoundTripper }

func (t headerCapture) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		if slot, ok := req.Context().Value(headerSlot{}).(*http.Header); ok {
			*slot = resp.Header
		}
	}
	return resp, err
}
