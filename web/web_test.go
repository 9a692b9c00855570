package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// MustServe runs one request through h and returns the recorded response.
func MustServe(t testing.TB, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// MustBody reads the whole body of res.
func MustBody(t testing.TB, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

// MustAsset returns an embedded dist file.
func MustAsset(t testing.TB, name string) []byte {
	t.Helper()
	b, err := files.ReadFile("dist/" + name)
	if err != nil {
		t.Fatalf("embedded dist/%s: %v", name, err)
	}
	return b
}

// assetHref finds the versioned URL the page gives for an asset.
func assetHref(t testing.TB, page, name string) string {
	t.Helper()
	m := regexp.MustCompile(`"(/assets/` + regexp.QuoteMeta(name) + `\?v=[0-9a-f]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page has no versioned link to %s:\n%s", name, page)
	}
	return m[1]
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h := Handler(DefaultConfig())
	page := string(MustBody(t, MustServe(t, h, http.MethodGet, "/", nil)))
	jsHref, cssHref := assetHref(t, page, "graphiql.js"), assetHref(t, page, "graphiql.css")

	tests := []struct {
		name       string
		method     string
		target     string
		header     http.Header
		wantStatus int
		wantHeader map[string]string // "" means absent
		wantBody   []byte            // nil: not checked
		wantGzip   []byte            // nil: not checked; else the decoded body
	}{
		{
			name: "page", method: http.MethodGet, target: "/",
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{
				"Content-Type":            "text/html; charset=utf-8",
				"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
				"Cache-Control":           "no-cache",
				"X-Content-Type-Options":  "nosniff",
			},
		},
		{
			name: "page head", method: http.MethodHead, target: "/",
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{"Content-Type": "text/html; charset=utf-8"},
			wantBody:   []byte{},
		},
		{
			name: "js versioned", method: http.MethodGet, target: jsHref,
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{
				"Content-Type":     "text/javascript; charset=utf-8",
				"Cache-Control":    "public, max-age=31536000, immutable",
				"Content-Encoding": "",
			},
			wantBody: MustAsset(t, "graphiql.js"),
		},
		{
			name: "css versioned", method: http.MethodGet, target: cssHref,
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{
				"Content-Type":  "text/css; charset=utf-8",
				"Cache-Control": "public, max-age=31536000, immutable",
			},
			wantBody: MustAsset(t, "graphiql.css"),
		},
		{
			name: "css unversioned revalidates", method: http.MethodGet, target: "/assets/graphiql.css",
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{"Content-Type": "text/css; charset=utf-8", "Cache-Control": "no-cache"},
			wantBody:   MustAsset(t, "graphiql.css"),
		},
		{
			name: "css stale version revalidates", method: http.MethodGet, target: "/assets/graphiql.css?v=0000000000000000",
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{"Cache-Control": "no-cache"},
		},
		{
			name: "js gzip", method: http.MethodGet, target: jsHref,
			header:     http.Header{"Accept-Encoding": {"br, gzip;q=0.8"}},
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
			wantGzip:   MustAsset(t, "graphiql.js"),
		},
		{
			name: "js gzip refused", method: http.MethodGet, target: jsHref,
			header:     http.Header{"Accept-Encoding": {"gzip;q=0"}},
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{"Content-Encoding": ""},
			wantBody:   MustAsset(t, "graphiql.js"),
		},
		{
			name: "asset head", method: http.MethodHead, target: jsHref,
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{"Content-Type": "text/javascript; charset=utf-8"},
			wantBody:   []byte{},
		},
		{
			name: "unknown asset", method: http.MethodGet, target: "/assets/graphiql.js.map",
			wantStatus: http.StatusNotFound,
		},
		{
			name: "assets index", method: http.MethodGet, target: "/assets/",
			wantStatus: http.StatusNotFound,
		},
		{
			name: "template not served", method: http.MethodGet, target: "/index.html",
			wantStatus: http.StatusNotFound,
		},
		{
			name: "post page", method: http.MethodPost, target: "/",
			wantStatus: http.StatusMethodNotAllowed,
			wantHeader: map[string]string{"Allow": "GET, HEAD"},
		},
		{
			name: "delete asset", method: http.MethodDelete, target: "/assets/graphiql.js",
			wantStatus: http.StatusMethodNotAllowed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := MustServe(t, h, tt.method, tt.target, tt.header)
			body := MustBody(t, res)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s: status = %d, want %d", tt.method, tt.target, res.StatusCode, tt.wantStatus)
			}
			for k, want := range tt.wantHeader {
				if got := res.Header.Get(k); got != want {
					t.Errorf("%s %s: %s = %q, want %q", tt.method, tt.target, k, got, want)
				}
			}
			if tt.wantBody != nil && !bytes.Equal(body, tt.wantBody) {
				t.Errorf("%s %s: body is %d bytes, want the %d bytes expected", tt.method, tt.target, len(body), len(tt.wantBody))
			}
			if tt.wantGzip != nil {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("%s %s: gzip: %v", tt.method, tt.target, err)
				}
				plain, err := io.ReadAll(zr)
				if err != nil || !bytes.Equal(plain, tt.wantGzip) {
					t.Errorf("%s %s: gunzipped body differs from the asset (err %v)", tt.method, tt.target, err)
				}
			}
		})
	}
}

func TestAssetETag(t *testing.T) {
	t.Parallel()
	h := Handler(Config{})
	for _, enc := range []string{"", "gzip"} {
		t.Run("encoding="+enc, func(t *testing.T) {
			t.Parallel()
			res := MustServe(t, h, http.MethodGet, "/assets/graphiql.css", http.Header{"Accept-Encoding": {enc}})
			etag := res.Header.Get("ETag")
			if !regexp.MustCompile(`^"[0-9a-f]{16}(-gz)?"$`).MatchString(etag) {
				t.Fatalf("ETag = %q, want a quoted content hash", etag)
			}
			for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
				res := MustServe(t, h, http.MethodGet, "/assets/graphiql.css", http.Header{"Accept-Encoding": {enc}, "If-None-Match": {inm}})
				if body := MustBody(t, res); res.StatusCode != http.StatusNotModified || len(body) != 0 {
					t.Errorf("If-None-Match %s: status = %d with %d bytes, want 304 and none", inm, res.StatusCode, len(body))
				}
			}
			res = MustServe(t, h, http.MethodGet, "/assets/graphiql.css", http.Header{"Accept-Encoding": {enc}, "If-None-Match": {`"stale"`}})
			if res.StatusCode != http.StatusOK {
				t.Errorf("stale If-None-Match: status = %d, want 200", res.StatusCode)
			}
		})
	}
}

// pageAttr returns the decoded value of an attribute of the #graphiql
// element, and whether it is present.
func pageAttr(t testing.TB, page, name string) (string, bool) {
	t.Helper()
	m := regexp.MustCompile(`<div id="graphiql"[^>]*\s` + regexp.QuoteMeta(name) + `="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		return "", false
	}
	return html.UnescapeString(m[1]), true
}

func TestPageConfig(t *testing.T) {
	t.Parallel()
	hostile := "\"><script>alert(1)</script><!-- '&amp; </title>\n{ a }"
	tests := []struct {
		name         string
		cfg          Config
		wantTitle    string
		wantEndpoint string
		wantQuery    *string // nil: attribute absent
		wantConnect  string
	}{
		{
			name:         "defaults",
			cfg:          Config{},
			wantTitle:    "cityhub GraphiQL",
			wantEndpoint: "/graphql",
			wantConnect:  "connect-src 'self';",
		},
		{
			name:         "query and title escaped",
			cfg:          Config{Endpoint: "/api/graphql?x=1&y=\"2\"", DefaultQuery: hostile, Title: hostile},
			wantTitle:    hostile,
			wantEndpoint: "/api/graphql?x=1&y=\"2\"",
			wantQuery:    &hostile,
			wantConnect:  "connect-src 'self';",
		},
		{
			name:         "absolute endpoint allowed by csp",
			cfg:          Config{Endpoint: "https://api.city.example:8443/graphql"},
			wantTitle:    "cityhub GraphiQL",
			wantEndpoint: "https://api.city.example:8443/graphql",
			wantConnect:  "connect-src 'self' https://api.city.example:8443 wss://api.city.example:8443;",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := MustServe(t, Handler(tt.cfg), http.MethodGet, "/", nil)
			page := string(MustBody(t, res))
			if strings.Contains(page, "<script>alert") || strings.Contains(page, "<!--") || strings.Count(page, "</title>") != 1 {
				t.Errorf("page carries unescaped config text:\n%s", page)
			}
			m := regexp.MustCompile(`<title>([^<]*)</title>`).FindStringSubmatch(page)
			if m == nil || html.UnescapeString(m[1]) != tt.wantTitle {
				t.Errorf("title = %q, want %q", m, tt.wantTitle)
			}
			if got, _ := pageAttr(t, page, "data-endpoint"); got != tt.wantEndpoint {
				t.Errorf("data-endpoint = %q, want %q", got, tt.wantEndpoint)
			}
			raw, ok := pageAttr(t, page, "data-default-query")
			switch {
			case tt.wantQuery == nil && ok:
				t.Errorf("data-default-query = %q, want absent", raw)
			case tt.wantQuery != nil:
				var got string
				if err := json.Unmarshal([]byte(raw), &got); err != nil || got != *tt.wantQuery {
					t.Errorf("data-default-query = %q decodes to %q (err %v), want %q", raw, got, err, *tt.wantQuery)
				}
			}
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, tt.wantConnect) {
				t.Errorf("Content-Security-Policy = %q, want it to contain %q", csp, tt.wantConnect)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		endpoint string
		wantErr  bool
	}{
		{"", false},
		{"/graphql", false},
		{"/api/v1/graphql?debug=1", false},
		{"http://localhost:8080/graphql", false},
		{"https://[::1]:8443/graphql", false},
		{"graphql", true},
		{"//cdn.example.com/graphql", true},
		{"ftp://example.com/graphql", true},
		{"javascript:alert(1)", true},
		{"https://user:pw@example.com/graphql", true},
		{"https:///graphql", true},
		{"http://exa mple.com/graphql", true},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			t.Parallel()
			err := Config{Endpoint: tt.endpoint}.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Config{Endpoint: %q}.Validate() = %v, want error %v", tt.endpoint, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate() = %v, want it to wrap ErrInvalidConfig", err)
			}
		})
	}
}

func TestHandlerPanicsOnInvalidConfig(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("Handler(Config{Endpoint: \"//evil.example\"}) did not panic")
		}
	}()
	Handler(Config{Endpoint: "//evil.example"})
}
