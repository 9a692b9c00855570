package geojson

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

const keyEnv = "CITYHUB_GEOJSON_TEST_KEY"

// geoServer serves the real files of testdata/ (/streetlights.geojson,
// ...), failing variants of neighborhoods.geojson, and a few documents
// that are not FeatureCollections. /arcgis/... requires an API key in
// the X-Esri-Authorization header.
func geoServer(t testing.TB) *httptest.Server {
	t.Helper()
	hoods, err := os.ReadFile("testdata/neighborhoods.geojson")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		half := len(hoods) / 2
		switch r.URL.Path {
		case "/busy":
			http.Error(w, "rate limited", http.StatusTooManyRequests)
		case "/cut":
			w.Header().Set("Content-Length", strconv.Itoa(len(hoods)))
			w.Write(hoods[:half])
		case "/closed":
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/geo+json\r\nConnection: close\r\n\r\n")
			buf.Write(hoods[:half])
			buf.Flush()
		case "/stall":
			w.Write(hoods[:half])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "/feature":
			w.Write([]byte(`{"type":"Feature","properties":{},"geometry":null}`))
		case "/maintenance.html":
			w.Write([]byte("<html><body>Down for maintenance</body></html>"))
		case "/no-features":
			w.Write([]byte(`{"type":"FeatureCollection","bbox":[0,0,1,1]}`))
		case "/arcgis/streetlights.geojson":
			if r.Header.Get("X-Esri-Authorization") != "Bearer t-7" {
				http.Error(w, "token required", http.StatusUnauthorized)
				return
			}
			http.ServeFile(w, r, "testdata/streetlights.geojson")
		default:
			http.ServeFile(w, r, filepath.Join("testdata", filepath.Base(r.URL.Path)))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newSource(t testing.TB, block string) *Source {
	t.Helper()
	raw, err := connectors.ParseRawConfig(filepath.Join(t.TempDir(), "c.yaml"), []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	src, err := New(raw)
	if err != nil {
		t.Fatalf("New(%s): %v", block, err)
	}
	return src.(*Source)
}

func collect(ctx context.Context, s connectors.Source) ([]connectors.Record, error) {
	var out []connectors.Record
	err := s.Read(ctx, func(r connectors.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// TestReadURL reads each real file from the server and from disk: the
// features are the same (fields, geometry, raw bytes, positions), only
// Pos.File names the URL.
func TestReadURL(t *testing.T) {
	srv := geoServer(t)
	for _, tt := range []struct {
		name string
		n    int
	}{{"neighborhoods.geojson", 3}, {"streetlights.geojson", 12}, {"metered_parking.geojson", 7}} {
		t.Run(tt.name, func(t *testing.T) {
			abs, _ := filepath.Abs(filepath.Join("testdata", tt.name))
			fromFile, err := collect(t.Context(), newSource(t, "path: "+abs+"\nid_field: fid"))
			if err != nil {
				t.Fatal(err)
			}
			u := srv.URL + "/" + tt.name
			fromURL, err := collect(t.Context(), newSource(t, "url: "+u+"\nid_field: fid"))
			if err != nil {
				t.Fatal(err)
			}
			if len(fromURL) != tt.n || len(fromFile) != tt.n {
				t.Fatalf("%d features over HTTP, %d from the file, want %d", len(fromURL), len(fromFile), tt.n)
			}
			for i := range fromFile {
				f, h := fromFile[i], fromURL[i]
				if h.Pos.File != u || f.Pos.File != abs {
					t.Errorf("feature %d: files %q and %q", i, h.Pos.File, f.Pos.File)
				}
				h.Pos.File = f.Pos.File
				if fmt.Sprint(f.Fields, f.Err, f.Pos) != fmt.Sprint(h.Fields, h.Err, h.Pos) || string(f.Raw) != string(h.Raw) || string(f.Geometry) != string(h.Geometry) {
					t.Errorf("feature %d differs:\nHTTP %+v\nfile %+v", i, h, f)
				}
			}
		})
	}
}

func TestURLFailures(t *testing.T) {
	srv := geoServer(t)
	tests := []struct {
		name      string
		block     string
		want      string
		transient bool
	}{
		{"429", "url: %s/busy", "geojson: GET %s/busy: HTTP 429 Too Many Requests: rate limited", true},
		{"404", "url: %s/gone.geojson", "geojson: GET %s/gone.geojson: HTTP 404 Not Found", false},
		{"cut before its Content-Length", "url: %s/cut", "geojson: %s/cut: offset ", true},
		{"cut by a closed connection", "url: %s/closed", "unexpected EOF", true},
		{"stalled", "url: %s/stall\ntimeout: 100ms", "GET %s/stall: no data for 100ms (timeout)", true},
		{"token refused", "url: %s/arcgis/streetlights.geojson", "HTTP 401 Unauthorized: token required", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := collect(t.Context(), newSource(t, strings.ReplaceAll(tt.block, "%s", srv.URL)))
			want := strings.ReplaceAll(tt.want, "%s", srv.URL)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want %q", err, want)
			}
			if connectors.IsTransient(err) != tt.transient {
				t.Errorf("IsTransient(%v) = %v", err, !tt.transient)
			}
			if len(recs) > 2 {
				t.Errorf("%d features read from half of a 3-feature file", len(recs))
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	srv := geoServer(t)
	t.Setenv(keyEnv, "Bearer t-7")
	src := newSource(t, fmt.Sprintf("url: %s/arcgis/streetlights.geojson\napi_key_env: %s\napi_key_header: X-Esri-Authorization\nheaders: {Accept: application/geo+json}", srv.URL, keyEnv))
	recs, err := collect(t.Context(), src)
	if err != nil || len(recs) != 12 || recs[0].Fields["PoleID"] != "791-2" {
		t.Fatalf("%d features, err %v", len(recs), err)
	}
	if err := src.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestCheck(t *testing.T) {
	srv := geoServer(t)
	abs, _ := filepath.Abs("testdata/neighborhoods.geojson")
	tests := []struct{ name, block, want string }{
		{"file", "path: " + abs, ""},
		{"URL", "url: %s/metered_parking.geojson", ""},
		{"missing file", "path: " + abs + ".gone", "no such file or directory"},
		{"404", "url: %s/gone.geojson", "HTTP 404"},
		{"a Feature", "url: %s/feature", `geojson: %s/feature: offset 17: type is "Feature", want FeatureCollection`},
		{"no features", "url: %s/no-features", "geojson: %s/no-features: offset 44: no features member"},
		{"not GeoJSON", "url: %s/maintenance.html", "geojson: %s/maintenance.html: offset 0: not a GeoJSON object: invalid character '<'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newSource(t, strings.ReplaceAll(tt.block, "%s", srv.URL)).Check(t.Context())
			want := strings.ReplaceAll(tt.want, "%s", srv.URL)
			switch {
			case want == "" && err != nil:
				t.Errorf("Check: %v", err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("Check error %v, want %q", err, want)
			}
		})
	}
}

func TestHTTPConfigErrors(t *testing.T) {
	tests := []struct{ cfg, want string }{
		{"{path: a.geojson, url: 'https://h/a.geojson'}", `f.yaml:5: connectors[0].config.url: give path or url, not both`},
		{"{url: 'https://h/a.geojson#x'}", `connectors[0].config.url: url "https://h/a.geojson#x" has a fragment`},
		{"{path: a.geojson, timeout: 1s}", `connectors[0].config.timeout: timeout applies to url only`},
		{"{url: 'https://h/a.geojson', headers: {'Bad Name': x}}", `connectors[0].config.headers.Bad Name: header name "Bad Name" is not a valid HTTP token`},
		{"{url: 'https://h/a.geojson', api_key_env: K, timeout: 2m}", ""},
	}
	reg := connectors.NewRegistry()
	Register(reg)
	for _, tt := range tests {
		src := "connectors:\n  - name: x\n    source: xx\n    kind: geojson\n    config: " + tt.cfg + "\n    mapping: {nodes: [{class: Neighbourhood, key: x, properties: {officialCode: x}}]}\n"
		_, err := connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("config %s: %v", tt.cfg, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("config %s: error = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestConnectorsOverHTTP runs the sample's two connectors with URLs
// instead of paths into a real SQLite graph store: the neighbourhood
// polygons first, then the street lights located in them.
func TestConnectorsOverHTTP(t *testing.T) {
	srv := geoServer(t)
	file := strings.NewReplacer(
		"path: testdata/neighborhoods.geojson", "url: "+srv.URL+"/neighborhoods.geojson",
		"path: testdata/streetlights.geojson", "url: "+srv.URL+"/streetlights.geojson",
	).Replace(string(sample))
	if strings.Contains(file, "path: testdata") {
		t.Fatal("the sample has paths this test does not replace")
	}
	reg := connectors.NewRegistry()
	Register(reg)
	ont := ontology.Default()
	conns, err := connectors.Parse("sample-http.yaml", []byte(file), ont, reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "city.db")
	store, err := sqlite.Open(t.Context(), cfg, ont)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dead := &connectortest.DeadLetters{}
	r := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), Now: connectortest.Now, DeadLetters: dead})
	stats, err := r.RunAll(t.Context(), conns, store)
	if err != nil {
		t.Fatal(err)
	}
	if stats[0].Written != 3 || stats[1].Written != 12 || stats[1].Located != 12 || len(dead.Letters) != 0 {
		t.Errorf("stats %+v, dead letters %v", stats, dead.Letters)
	}
	for class, want := range map[string]int{"Neighbourhood": 3, "StreetLight": 12} {
		page, err := store.Find(t.Context(), graph.FindQuery{Class: class, First: 1, Count: true})
		if err != nil || page.Total != want {
			t.Errorf("%s count = %+v, %v; want %d", class, page, err, want)
		}
	}
	nodes, err := store.Nodes(t.Context(), []string{"urn:city:neighbourhood:cambridge-gis:4"})
	if err != nil || len(nodes) != 1 || nodes[0] == nil || nodes[0].Props["name"] != "The Port" || nodes[0].Geometry == nil || nodes[0].Geometry.Kind != "Polygon" {
		t.Errorf("neighbourhood 4 = %+v, %v", nodes, err)
	}
}

// BenchmarkReadURL reads the real neighbourhood polygons (78 kB, three
// features) over HTTP from a local server.
func BenchmarkReadURL(b *testing.B) {
	srv := geoServer(b)
	src := newSource(b, "url: "+srv.URL+"/neighborhoods.geojson")
	fi, err := os.Stat("testdata/neighborhoods.geojson")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := src.Read(context.Background(), func(connectors.Record) error { n++; return nil }); err != nil || n != 3 {
			b.Fatal(err, n)
		}
	}
}
