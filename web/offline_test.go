package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

// The page must load nothing from another host. The Content-Security-Policy
// enforces that in the browser; these tests keep the files from asking in the
// first place. They look for absolute URLs (http, https, ws, wss and
// protocol-relative //host) where a browser would load them:
//
//   - HTML: src, srcset, href, poster, data, manifest, background, action,
//     formaction, ping attributes; inline scripts; CSS url() and @import.
//   - CSS: every url() must be a data: URL or a fragment (anything else is
//     not bundled); no @import; no absolute URL outside comments.
//   - JS: a URL literal handed to import, import(), importScripts, Worker,
//     fetch, WebSocket, EventSource, sendBeacon, XMLHttpRequest.open,
//     require, setAttribute, or set as a src/srcset/href/data/... property;
//     a URL inside CSS text (url(...), @import) or an HTML src=/href= in a
//     string; any sourceMappingURL.
//
// Absolute URLs elsewhere are not fetched and are allowed: the licence block
// esbuild writes at the end of the file, XML namespace names, links in
// anchors (href on an "a" element), and URLs quoted in messages and docs.

// finding is one URL a browser would load, with a little context.
type finding struct {
	url     string
	context string
}

var (
	// absURL matches an absolute URL with a host.
	absURL = regexp.MustCompile(`(?i)\b(?:https?|wss?)://[a-z0-9][a-z0-9.\-]*(?::[0-9]+)?`)
	// protoRelURL matches a protocol-relative URL that starts a string.
	protoRelURL = regexp.MustCompile(`(?i)["'\x60]//[a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)+`)

	// Code right before a JS string literal that makes the literal a URL
	// the browser loads.
	jsSinks = []*regexp.Regexp{
		// import("…"), importScripts("…"), new Worker("…"), fetch("…"), …
		regexp.MustCompile(`\b(?:import|importScripts|Worker|SharedWorker|fetch|WebSocket|EventSource|sendBeacon|require|loadScript|Audio|Image)\s*\(\s*$`),
		// xhr.open("GET","…")
		regexp.MustCompile(`\.open\s*\(\s*["'\x60][A-Za-z]+["'\x60]\s*,\s*$`),
		// import x from"…", export * from"…", import"…"
		regexp.MustCompile(`(?:\bfrom|\bimport)\s*$`),
		// el.src="…", {src:"…"}, el.href="…" (navigation or <link>)
		regexp.MustCompile(`\.(?:src|srcset|href|data|action|formAction|poster|background)\s*=\s*$`),
		regexp.MustCompile(`(?i)\b(?:src|srcset|poster|data|action|formaction|background|manifest|ping|xlinkhref)\s*:\s*$`),
		// el.setAttribute("src","…")
		regexp.MustCompile(`(?i)setAttribute(?:NS)?\s*\([^()]*["'\x60](?:src|srcset|href|xlink:href|data|action|poster|background)["'\x60]\s*,\s*$`),
	}
	// hrefProp is a props-object href, allowed only on an anchor element.
	hrefProp = regexp.MustCompile(`\bhref\s*:\s*$`)
	// anchorProps is the start of an "a" element's props object with no
	// nested object between it and the href.
	anchorProps = regexp.MustCompile(`\(\s*["'\x60]a["'\x60]\s*,\s*\{[^{}]*$`)
	// embeddedSinks precede a URL inside a string of CSS or HTML text.
	// HTML href counts on <link> and <base>, not on anchors.
	embeddedSinks = regexp.MustCompile(`(?i)(?:url\(\s*["']?|@import\s+(?:url\(\s*)?["']?|\s(?:src|srcset|poster|data|action|background)\s*=\s*["']?|<(?:link|base)\b[^<>]*\shref\s*=\s*["']?)$`)

	htmlAttr     = regexp.MustCompile(`(?i)\s(src|srcset|href|poster|data|manifest|background|action|formaction|ping|xlink:href)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)`)
	htmlScript   = regexp.MustCompile(`(?is)<script\b([^>]*)>`)
	htmlSrcAttr  = regexp.MustCompile(`(?i)\ssrc\s*=`)
	htmlStyle    = regexp.MustCompile(`(?is)<style\b[^>]*>(.*?)</style>|\sstyle\s*=\s*("[^"]*"|'[^']*')`)
	cssImport    = regexp.MustCompile(`(?i)@import\b`)
	externalRef  = regexp.MustCompile(`(?i)^(?:[a-z][a-z0-9+.\-]*:)?//`)
	cssComment   = regexp.MustCompile(`(?s)/\*.*?\*/`)
	sourceMapRef = regexp.MustCompile(`sourceMappingURL`)
)

// isExternal reports whether a URL names a host: it has an authority
// ("scheme://host" or protocol-relative "//host").
func isExternal(u string) bool {
	return externalRef.MatchString(strings.TrimSpace(u))
}

// trailingComment returns where the licence block esbuild appends
// (legalComments: "eof") starts, or len(src) if there is none. It is the only
// comment in minified output; comments elsewhere are not recognised, so a URL
// in them counts.
func trailingComment(src string) int {
	trimmed := strings.TrimRight(src, "\n")
	if !strings.HasSuffix(trimmed, "*/") {
		return len(src)
	}
	i := strings.LastIndex(src, "\n/*")
	if i < 0 {
		if strings.HasPrefix(src, "/*") {
			return 0
		}
		return len(src)
	}
	if strings.Contains(src[i+3:len(trimmed)-2], "*/") {
		return len(src) // the last comment is not one block reaching the end
	}
	return i + 1
}

// jsLoads returns the external URLs a browser would load because of a JS
// file.
func jsLoads(src string) []finding {
	var out []finding
	code := src[:trailingComment(src)]
	for _, loc := range sourceMapRef.FindAllStringIndex(src, -1) {
		out = append(out, finding{"sourceMappingURL", excerpt(src, loc[0], loc[1])})
	}
	check := func(start, end int) {
		u := code[start:end]
		before := code[max(0, start-300):start]
		if start > 0 && strings.ContainsRune("\"'`", rune(code[start-1])) {
			lead := strings.TrimRight(before[:len(before)-1], " \t\n")
			for _, re := range jsSinks {
				if re.MatchString(lead) {
					out = append(out, finding{u, excerpt(code, start, end)})
					return
				}
			}
			if hrefProp.MatchString(lead) && !anchorProps.MatchString(lead) || embeddedSinks.MatchString(before) {
				out = append(out, finding{u, excerpt(code, start, end)})
			}
			return
		}
		if embeddedSinks.MatchString(before) {
			out = append(out, finding{u, excerpt(code, start, end)})
		}
	}
	for _, loc := range absURL.FindAllStringIndex(code, -1) {
		check(loc[0], loc[1])
	}
	for _, loc := range protoRelURL.FindAllStringIndex(code, -1) {
		check(loc[0]+1, loc[1]) // after the quote
	}
	return out
}

// cssLoads returns the url() references that are not inlined, @imports and
// absolute URLs outside comments of a CSS text. It also serves for HTML.
func cssLoads(src string) []finding {
	var out []finding
	var rest strings.Builder
	lower := strings.ToLower(src)
	i := 0
	for {
		j := strings.Index(lower[i:], "url(")
		if j < 0 {
			rest.WriteString(src[i:])
			break
		}
		j += i
		rest.WriteString(src[i:j])
		arg, end := cssURLArg(src, j+len("url("))
		if a := strings.ToLower(arg); !strings.HasPrefix(a, "data:") && !strings.HasPrefix(a, "#") {
			out = append(out, finding{arg, excerpt(src, j, end)})
		}
		rest.WriteString(" ")
		i = end
	}
	text := cssComment.ReplaceAllString(rest.String(), " ")
	for _, loc := range cssImport.FindAllStringIndex(text, -1) {
		out = append(out, finding{"@import", excerpt(text, loc[0], loc[1])})
	}
	for _, loc := range absURL.FindAllStringIndex(text, -1) {
		out = append(out, finding{text[loc[0]:loc[1]], excerpt(text, loc[0], loc[1])})
	}
	for _, loc := range protoRelURL.FindAllStringIndex(text, -1) {
		out = append(out, finding{text[loc[0]+1 : loc[1]], excerpt(text, loc[0], loc[1])})
	}
	for _, loc := range sourceMapRef.FindAllStringIndex(src, -1) {
		out = append(out, finding{"sourceMappingURL", excerpt(src, loc[0], loc[1])})
	}
	return out
}

// cssURLArg reads the argument of url( starting at i and returns it with
// the index after the closing parenthesis.
func cssURLArg(src string, i int) (string, int) {
	for i < len(src) && strings.ContainsRune(" \t\n\r\f", rune(src[i])) {
		i++
	}
	if i < len(src) && (src[i] == '"' || src[i] == '\'') {
		q := src[i]
		j := i + 1
		for j < len(src) && src[j] != q {
			if src[j] == '\\' {
				j++
			}
			j++
		}
		arg := src[i+1 : min(j, len(src))]
		k := strings.IndexByte(src[min(j, len(src)):], ')')
		if k < 0 {
			return arg, len(src)
		}
		return arg, min(j, len(src)) + k + 1
	}
	k := strings.IndexByte(src[i:], ')')
	if k < 0 {
		return strings.TrimSpace(src[i:]), len(src)
	}
	return strings.TrimSpace(src[i : i+k]), i + k + 1
}

// htmlLoads returns the external URLs an HTML page would load: URL
// attributes, inline scripts (which the CSP blocks anyway) and CSS in
// style elements and attributes.
func htmlLoads(src string) []finding {
	var out []finding
	for _, m := range htmlAttr.FindAllStringSubmatchIndex(src, -1) {
		name := strings.ToLower(src[m[2]:m[3]])
		val := strings.Trim(src[m[4]:m[5]], `"'`)
		urls := []string{val}
		if name == "srcset" {
			urls = nil
			for c := range strings.SplitSeq(val, ",") {
				if f := strings.Fields(c); len(f) > 0 {
					urls = append(urls, f[0])
				}
			}
		}
		for _, u := range urls {
			if isExternal(u) {
				out = append(out, finding{u, excerpt(src, m[0], m[1])})
			}
		}
	}
	for _, m := range htmlScript.FindAllStringSubmatchIndex(src, -1) {
		if !htmlSrcAttr.MatchString(src[m[2]:m[3]]) {
			out = append(out, finding{"inline script", excerpt(src, m[0], m[1])})
		}
	}
	// CSS in style elements and attributes: a relative url() stays on this
	// host, so only external references count here.
	for _, m := range htmlStyle.FindAllStringSubmatch(src, -1) {
		css := m[1] + strings.Trim(m[2], `"'`)
		for _, f := range cssLoads(css) {
			if isExternal(f.url) || absURL.MatchString(f.url) || f.url == "@import" {
				out = append(out, f)
			}
		}
	}
	return out
}

// excerpt returns src around [start,end) for error messages.
func excerpt(src string, start, end int) string {
	return strings.ReplaceAll(src[max(0, start-60):min(len(src), end+40)], "\n", `\n`)
}

func TestExternalLoadsDetected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		scan func(string) []finding
		src  string
		want int // number of findings
	}{
		// CSS
		{"css url absolute", cssLoads, `a{background:url(https://x.example/a.png)}`, 1},
		{"css url protocol-relative quoted", cssLoads, `@font-face{src:url("//fonts.gstatic.com/x.woff2")}`, 1},
		{"css url relative not inlined", cssLoads, `@font-face{src:url(fonts/a.woff2)}`, 1},
		{"css import", cssLoads, `@import "https://fonts.googleapis.com/css?family=Roboto";a{}`, 2},
		{"css image-set string", cssLoads, `a{background:image-set("https://x.example/a.png" 1x)}`, 1},
		{"css source map", cssLoads, "a{}\n/*# sourceMappingURL=graphiql.css.map */", 1},
		{"css data svg with namespace", cssLoads, `a{background:url("data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>")}`, 0},
		{"css data font", cssLoads, `@font-face{src:url(data:font/woff2;base64,d09GMg==)}`, 0},
		{"css svg fragment", cssLoads, `a{filter:url(#shadow)}`, 0},
		{"css licence comment", cssLoads, `a{}/*! see https://github.com/graphql/graphiql */`, 0},
		// HTML
		{"html cdn script", htmlLoads, `<script src="https://cdn.jsdelivr.net/npm/graphiql/graphiql.min.js"></script>`, 1},
		{"html protocol-relative stylesheet", htmlLoads, `<link rel=stylesheet href=//unpkg.com/graphiql/graphiql.css>`, 1},
		{"html srcset", htmlLoads, `<img srcset="/a.png 1x, https://x.example/b.png 2x">`, 1},
		{"html inline script", htmlLoads, `<script>import("/x.js")</script>`, 1},
		{"html style attribute", htmlLoads, `<div style="background:url(https://x.example/a.png)"></div>`, 1},
		{"html style element import", htmlLoads, `<style>@import url(https://fonts.googleapis.com/css);</style>`, 2},
		{"html local assets", htmlLoads, `<link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/graphiql.css?v=1"><script src="/assets/graphiql.js?v=1" defer></script>`, 0},
		{"html data attribute is not a load", htmlLoads, `<div data-endpoint="/graphql" data-default-query="&#34;{ a }&#34;"></div>`, 0},
		// JS
		{"js dynamic import", jsLoads, `async function f(){await import("https://esm.sh/graphql-ws")}`, 1},
		{"js static import", jsLoads, `import{createClient as c}from"https://esm.sh/graphql-ws";`, 1},
		{"js fetch", jsLoads, `fetch("https://api.example.com/graphql",{method:"POST"})`, 1},
		{"js websocket", jsLoads, `new WebSocket("wss://api.example.com/graphql")`, 1},
		{"js worker", jsLoads, `new Worker("https://cdn.example.com/editor.worker.js")`, 1},
		{"js xhr open", jsLoads, `x.open("GET", "https://cdn.example.com/schema.json")`, 1},
		{"js script src property", jsLoads, `var s=document.createElement("script");s.src="https://cdn.example.com/x.js";`, 1},
		{"js protocol-relative src", jsLoads, `s.src='//cdn.example.com/x.js'`, 1},
		{"js react script props", jsLoads, `R.createElement("script",{src:"https://cdn.example.com/x.js"})`, 1},
		{"js link stylesheet props", jsLoads, `R.createElement("link",{rel:"stylesheet",href:"https://fonts.googleapis.com/css"})`, 1},
		{"js setAttribute", jsLoads, `l.setAttribute("href","https://fonts.googleapis.com/css")`, 1},
		{"js css text", jsLoads, `const c="@font-face{src:url(https://fonts.gstatic.com/a.woff2)}";`, 1},
		{"js html text", jsLoads, "el.innerHTML=`<img src=\"https://x.example/a.png\">`", 1},
		{"js source map", jsLoads, "var a=1;\n//# sourceMappingURL=https://x.example/graphiql.js.map\n", 1},
		{"js html link text", jsLoads, `h='<link rel="stylesheet" href="https://fonts.googleapis.com/css">'`, 1},
		{"js html anchor text", jsLoads, `h='<a href="https://github.com/graphql/graphiql">GitHub</a>'`, 0},
		{"js anchor href", jsLoads, `R.createElement("a",{href:"https://github.com/graphql/graphiql"},"GitHub")`, 0},
		{"js jsx anchor href", jsLoads, `(0,g.jsx)("a",{className:"logo",href:"https://codemirror.net/5/doc/manual.html",target:"_blank"})`, 0},
		{"js svg namespace", jsLoads, `document.createElementNS("http://www.w3.org/2000/svg","svg");R.createElement("svg",{xmlns:"http://www.w3.org/2000/svg"})`, 0},
		{"js error text", jsLoads, `var u="https://reactjs.org/docs/error-decoder.html?invariant="+e;throw Error("see https://yarnpkg.com/en/docs")`, 0},
		{"js scheme only", jsLoads, "t=`http://${t.url}`;T=n(\"http://\"+T)", 0},
		{"js licence block", jsLoads, "var a=1;\n/*! Bundled license information:\n\nx/index.js:\n  (*! x <https://github.com/jonschlinkert/x> *)\n*/\n", 0},
		{"js fetch after a comment", jsLoads, "/*! https://github.com/x */\nfetch(\"https://api.example.com/\");\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.scan(tt.src)
			if len(got) != tt.want {
				t.Errorf("scan(%q) = %d findings %+v, want %d", tt.src, len(got), got, tt.want)
			}
		})
	}
}

func TestEmbeddedFilesLoadNothingExternal(t *testing.T) {
	t.Parallel()
	scanners := map[string]func(string) []finding{
		".js":   jsLoads,
		".css":  cssLoads,
		".html": htmlLoads,
	}
	var names []string
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 3 {
		t.Fatalf("embedded files = %v, want index.html and dist/graphiql.{js,css}", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			scan, ok := scanners[path.Ext(name)]
			if !ok {
				t.Fatalf("no scanner for embedded file %s; teach this test its loads", name)
			}
			b, err := files.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range scan(string(b)) {
				t.Errorf("%s loads %s: …%s…", name, f.url, f.context)
			}
		})
	}
}

func TestRenderedPageLoadsNothingExternal(t *testing.T) {
	t.Parallel()
	h := Handler(Config{DefaultQuery: "{ a }\n# see https://example.com/docs"})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	page := rec.Body.String()
	for _, f := range htmlLoads(page) {
		t.Errorf("page loads %s: …%s…", f.url, f.context)
	}
	for _, m := range htmlAttr.FindAllStringSubmatch(page, -1) {
		v := strings.Trim(m[2], `"'`)
		if v != "data:," && !strings.HasPrefix(v, "/assets/graphiql.") {
			t.Errorf("page references %s=%s, want only /assets/graphiql.{js,css}", m[1], v)
		}
	}
}
