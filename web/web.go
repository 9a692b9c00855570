package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

//go:embed dist index.html
var files embed.FS

// Defaults used when a Config field is empty.
const (
	DefaultEndpoint = "/graphql"
	DefaultTitle    = "cityhub GraphiQL"
)

// Cache-Control values: versioned asset URLs never change, anything else is
// revalidated with its ETag.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// contentTypes maps the extensions build.mjs writes to their media types. A
// fixed table, so the answer does not depend on the host's mime database.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
}

// Config is what the page says to GraphiQL.
type Config struct {
	// Endpoint is the GraphQL endpoint: a path on this host ("/graphql",
	// the default) or an absolute http(s) URL, whose origin the page's
	// Content-Security-Policy then allows for connections. Subscriptions
	// use the same URL with the ws(s) scheme.
	Endpoint string
	// DefaultQuery is the query shown on a first visit; GraphiQL keeps the
	// user's own editor contents in local storage after that. Empty means
	// GraphiQL's welcome text.
	DefaultQuery string
	// Title is the page title; empty means DefaultTitle.
	Title string
}

// DefaultConfig returns the configuration cityhub serves by default.
func DefaultConfig() Config {
	return Config{Endpoint: DefaultEndpoint, Title: DefaultTitle}
}

// withDefaults fills the empty fields of c.
func (c Config) withDefaults() Config {
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
	}
	if c.Title == "" {
		c.Title = DefaultTitle
	}
	return c
}

// ErrInvalidConfig is wrapped by the errors Validate returns.
var ErrInvalidConfig = errors.New("web: invalid config")

// originPattern is what an endpoint origin may look like to be written into
// the Content-Security-Policy header: host names, IPv4 and IPv6 literals and
// a port, nothing that could end a CSP directive.
var originPattern = regexp.MustCompile(`^https?://[A-Za-z0-9.\-]+(:[0-9]+)?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]+)?$`)

// Validate reports whether c can be served; an empty field is valid and
// takes its default.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, err := endpointOrigin(c.Endpoint); err != nil {
		return err
	}
	return nil
}

// endpointOrigin returns "" for an endpoint on this host (a path) and the
// origin (scheme://host[:port]) of an absolute http(s) endpoint.
func endpointOrigin(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("%w: endpoint %q: %v", ErrInvalidConfig, endpoint, err)
	}
	switch {
	case u.Scheme == "" && u.Host == "":
		if !strings.HasPrefix(endpoint, "/") {
			return "", fmt.Errorf("%w: endpoint %q: want a path starting with / or an http(s) URL", ErrInvalidConfig, endpoint)
		}
		return "", nil
	case u.Scheme == "http" || u.Scheme == "https":
		origin := u.Scheme + "://" + u.Host
		if u.Host == "" || u.User != nil || !originPattern.MatchString(origin) {
			return "", fmt.Errorf("%w: endpoint %q: want http(s)://host[:port]/path", ErrInvalidConfig, endpoint)
		}
		return origin, nil
	default:
		// Includes protocol-relative "//host/path", which has no scheme.
		return "", fmt.Errorf("%w: endpoint %q: want a path starting with / or an http(s) URL", ErrInvalidConfig, endpoint)
	}
}

// contentSecurityPolicy allows the page only its own assets, inline styles
// (GraphiQL's editor and popovers set them), data: fonts and images (inlined
// by the bundle), and connections to this host (HTTP and, through 'self',
// websockets) plus the origin of an absolute endpoint.
func contentSecurityPolicy(origin string) string {
	connect := "'self'"
	if origin != "" {
		ws := "ws" + strings.TrimPrefix(origin, "http")
		connect += " " + origin + " " + ws
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self' 'unsafe-inline'",
		"img-src 'self' data:",
		"font-src 'self' data:",
		"connect-src " + connect,
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

// asset is one embedded file of dist/, ready to serve.
type asset struct {
	body        []byte
	contentType string
	version     string // hex prefix of the SHA-256 of body
	etag        string
	gzipped     func() []byte // computed on first use
}

func newAsset(name string, body []byte) *asset {
	sum := sha256.Sum256(body)
	version := hex.EncodeToString(sum[:8])
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	return &asset{
		body:        body,
		contentType: ct,
		version:     version,
		etag:        `"` + version + `"`,
		gzipped: sync.OnceValue(func() []byte {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(body) // writes to a bytes.Buffer do not fail
			zw.Close()
			return buf.Bytes()
		}),
	}
}

// handler serves the page and the assets.
type handler struct {
	page   []byte
	csp    string
	assets map[string]*asset
}

// pageData is what index.html is executed with.
type pageData struct {
	Title        string
	Endpoint     string
	DefaultQuery string // a JSON string literal, or "" for none
	JSVersion    string
	CSSVersion   string
}

// Handler returns the handler for GraphiQL: the page on "/" and the bundle
// on "/assets/{name}", for GET and HEAD only (other methods get 405, other
// paths 404). Mount it at the root of the server, next to the endpoint.
//
// Handler panics if cfg does not pass Validate: configuration is checked when
// it is loaded, so a bad one reaching here is a programming error.
func Handler(cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	origin, err := endpointOrigin(cfg.Endpoint)
	if err != nil {
		panic(err)
	}
	h := &handler{
		csp:    contentSecurityPolicy(origin),
		assets: map[string]*asset{},
	}
	err = fs.WalkDir(files, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		h.assets[strings.TrimPrefix(p, "dist/")] = newAsset(p, body)
		return nil
	})
	if err != nil {
		panic(fmt.Errorf("web: read embedded dist: %w", err))
	}
	js, css := h.assets["graphiql.js"], h.assets["graphiql.css"]
	if js == nil || css == nil {
		panic("web: embedded dist lacks graphiql.js or graphiql.css; run go generate ./web")
	}
	data := pageData{
		Title:      cfg.Title,
		Endpoint:   cfg.Endpoint,
		JSVersion:  js.version,
		CSSVersion: css.version,
	}
	if cfg.DefaultQuery != "" {
		q, _ := json.Marshal(cfg.DefaultQuery) // a string always marshals
		data.DefaultQuery = string(q)
	}
	h.page = renderPage(data)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.servePage) // GET patterns also match HEAD
	mux.HandleFunc("GET /assets/{name}", h.serveAsset)
	return mux
}

// renderPage executes the embedded index.html template.
func renderPage(data pageData) []byte {
	tmpl := template.Must(template.ParseFS(files, "index.html"))
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		panic(fmt.Errorf("web: render index.html: %w", err))
	}
	return buf.Bytes()
}

func (h *handler) servePage(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Security-Policy", h.csp)
	hdr.Set("Cache-Control", cacheRevalidate)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Content-Length", strconv.Itoa(len(h.page)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(h.page)
}

func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	body, etag := a.body, a.etag
	hdr := w.Header()
	hdr.Set("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag = a.gzipped(), `"`+a.version+`-gz"`
		hdr.Set("Content-Encoding", "gzip")
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("ETag", etag)
	if r.URL.Query().Get("v") == a.version {
		hdr.Set("Cache-Control", cacheImmutable)
	} else {
		hdr.Set("Cache-Control", cacheRevalidate)
	}
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		hdr.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, found := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !found {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}

// etagMatches implements the weak comparison of If-None-Match.
func etagMatches(header, etag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		tag := strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}
