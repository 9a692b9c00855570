package csv

import (
	"context"
	"fmt"
	"net"
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

const keyEnv = "CITYHUB_CSV_TEST_KEY"

// csvServer serves the real files of testdata/ (/crashes.csv, ...), the
// same behind a key (/secure/...), and failing variants of crashes.csv.
func csvServer(t testing.TB) *httptest.Server {
	t.Helper()
	crashes, err := os.ReadFile("testdata/crashes.csv")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		half := len(crashes) / 2
		switch {
		case strings.HasPrefix(r.URL.Path, "/secure/"):
			if r.Header.Get("X-City-Key") != "c-42" || r.Header.Get("Accept") != "text/csv" {
				http.Error(w, "forbidden", http.StatusForbidden)
				return
			}
			http.ServeFile(w, r, filepath.Join("testdata", strings.TrimPrefix(r.URL.Path, "/secure/")))
		case r.URL.Path == "/busy":
			http.Error(w, "try again", http.StatusServiceUnavailable)
		case r.URL.Path == "/cut":
			w.Header().Set("Content-Length", strconv.Itoa(len(crashes)))
			w.Write(crashes[:half])
		case r.URL.Path == "/chunked-cut": // chunked, the connection dropped mid-body
			w.Write(crashes[:half])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case r.URL.Path == "/stall":
			w.Write(crashes[:half])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case r.URL.Path == "/empty":
		case r.URL.Path == "/header-only":
			w.Write(crashes[:strings.IndexByte(string(crashes), '\r')+1])
		case r.URL.Path == "/duplicate-header":
			w.Write([]byte("Latitude,Longitude,Latitude\r42.3,-71.1,42.3\r"))
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
// records are the same (fields, raw bytes, lines, offsets, errors), only
// Pos.File names the URL.
func TestReadURL(t *testing.T) {
	srv := csvServer(t)
	for _, name := range []string{"crashes.csv", "traffic_counts.csv", "malformed.csv"} {
		t.Run(name, func(t *testing.T) {
			abs, _ := filepath.Abs(filepath.Join("testdata", name))
			fromFile, err := collect(t.Context(), newSource(t, "path: "+abs))
			if err != nil {
				t.Fatal(err)
			}
			u := srv.URL + "/" + name
			fromURL, err := collect(t.Context(), newSource(t, "url: "+u))
			if err != nil {
				t.Fatal(err)
			}
			if len(fromURL) != len(fromFile) || len(fromURL) == 0 {
				t.Fatalf("%d records over HTTP, %d from the file", len(fromURL), len(fromFile))
			}
			for i := range fromFile {
				f, h := fromFile[i], fromURL[i]
				if h.Pos.File != u || f.Pos.File != abs {
					t.Errorf("record %d: files %q and %q", i, h.Pos.File, f.Pos.File)
				}
				h.Pos.File = f.Pos.File
				if fmt.Sprint(f.Fields, f.Err, f.Pos) != fmt.Sprint(h.Fields, h.Err, h.Pos) || string(f.Raw) != string(h.Raw) {
					t.Errorf("record %d:\nHTTP %+v\nfile %+v", i, h, f)
				}
			}
		})
	}
}

func TestURLFailures(t *testing.T) {
	srv := csvServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/crashes.csv"
	ln.Close()
	tests := []struct {
		name      string
		block     string
		want      string
		transient bool
		records   int // emitted before the failure, at most
	}{
		{"503", "url: %s/busy", "csv: GET %s/busy: HTTP 503 Service Unavailable: try again", true, 0},
		{"404", "url: %s/missing.csv", "csv: GET %s/missing.csv: HTTP 404 Not Found", false, 0},
		{"refused", "url: " + refused, "csv: GET " + refused, true, 0},
		{"cut off", "url: %s/cut", "csv: %s/cut: GET %s/cut: body broke off: unexpected EOF", true, 19},
		{"chunked body cut off", "url: %s/chunked-cut", "csv: %s/chunked-cut: GET %s/chunked-cut: body broke off: unexpected EOF", true, 19},
		{"stalled", "url: %s/stall\ntimeout: 100ms", "csv: %s/stall: GET %s/stall: no data for 100ms (timeout)", true, 19},
		{"no key", "url: %s/secure/crashes.csv\napi_key_env: " + keyEnv, "api_key_env: environment variable " + keyEnv + " is not set", false, 0},
		{"key refused", "url: %s/secure/crashes.csv", "HTTP 403 Forbidden", false, 0},
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
			if len(recs) > tt.records {
				t.Errorf("%d records, want at most %d", len(recs), tt.records)
			}
			for _, r := range recs {
				if r.Err != nil {
					t.Errorf("record before the failure: %v", r.Err)
				}
			}
		})
	}
}

func TestAPIKeyAndHeaders(t *testing.T) {
	srv := csvServer(t)
	t.Setenv(keyEnv, "c-42")
	src := newSource(t, fmt.Sprintf("url: %s/secure/crashes.csv\napi_key_env: %s\napi_key_header: X-City-Key\nheaders: {Accept: text/csv}\ntimeout: 10s", srv.URL, keyEnv))
	recs, err := collect(t.Context(), src)
	if err != nil || len(recs) != 20 || recs[0].Fields["Crash Number"] != "24029" {
		t.Fatalf("%d records, err %v", len(recs), err)
	}
	if err := src.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestCheck(t *testing.T) {
	srv := csvServer(t)
	abs, _ := filepath.Abs("testdata/crashes.csv")
	tests := []struct{ name, block, want string }{
		{"file", "path: " + abs, ""},
		{"URL", "url: %s/traffic_counts.csv", ""},
		{"header only is fine", "url: %s/header-only", ""},
		{"missing file", "path: " + abs + ".gone", "no such file or directory"},
		{"404", "url: %s/gone.csv", "HTTP 404"},
		{"503", "url: %s/busy", "HTTP 503"},
		{"empty", "url: %s/empty", "csv: %s/empty: no header row (the document is empty)"},
		{"duplicate header", "url: %s/duplicate-header", `csv: %s/duplicate-header: line 1: duplicate header column "Latitude"`},
		{"columns do not match", "url: %s/crashes.csv\ncolumns: [a, b]", "csv: %s/crashes.csv: line 1: header has 12 columns, config columns has 2"},
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
		{"{path: a.csv, url: 'http://h/a.csv'}", `f.yaml:7: connectors[0].config.url: give path or url, not both`},
		{"{url: 'file:///a.csv'}", `connectors[0].config.url: url "file:///a.csv" must start with http:// or https://`},
		{"{path: 'https://h/a.csv'}", `connectors[0].config.path: path "https://h/a.csv" is a URL: set url instead`},
		{"{path: a.csv, api_key_env: K}", `connectors[0].config.api_key_env: api_key_env applies to url only`},
		{"{url: 'http://h/a.csv', api_key_header: X-Key}", `connectors[0].config.api_key_header: api_key_header needs api_key_env`},
		{"{url: 'http://h/a.csv', timeout: soon}", `connectors[0].config.timeout`},
		{"{url: 'http://h/a.csv', headers: {Accept: text/csv}, timeout: 1m}", ""},
	}
	reg := connectors.NewRegistry()
	Register(reg)
	for _, tt := range tests {
		src := "connectors:\n  - name: x\n    source: xx\n    kind: csv\n    mapping: {nodes: [{class: Neighbourhood, key: x, properties: {officialCode: x}}]}\n    config:\n      " + tt.cfg + "\n"
		_, err := connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("config %s: %v", tt.cfg, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("config %s: error = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestConnectorOverHTTP runs a connector reading the crash reports over
// HTTP into a real SQLite graph store.
func TestConnectorOverHTTP(t *testing.T) {
	srv := csvServer(t)
	file := fmt.Sprintf(`connectors:
  - name: crashes-http
    source: cambridge-police
    kind: csv
    config: {url: %s/crashes.csv, timeout: 30s}
    mapping:
      nodes:
        - class: Incident
          key: "{Crash Number}"
          name: "Crash {Crash Number}"
          properties:
            incidentNumber: "{Crash Number}"
            incidentType: ROAD_ACCIDENT
            category: TRAFFIC
            status: CLOSED
            reportedAt: {field: Date Time, layout: "1/2/06 15:04", timezone: America/New_York}
            street: "{Steet Name}"
          location: {lat: Latitude, lon: Longitude}
`, srv.URL)
	reg := connectors.NewRegistry()
	Register(reg)
	ont := ontology.Default()
	conns, err := connectors.Parse("crashes.yaml", []byte(file), ont, reg)
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
	if stats[0].Written != 20 || len(dead.Letters) != 0 {
		t.Errorf("stats %+v, dead letters %v", stats[0], dead.Letters)
	}
	page, err := store.Find(t.Context(), graph.FindQuery{Class: "Incident", First: 1, Count: true})
	if err != nil || page.Total != 20 {
		t.Fatalf("Incident count = %+v, %v", page, err)
	}
	nodes, err := store.Nodes(t.Context(), []string{"urn:city:incident:cambridge-police:24029"})
	if err != nil || len(nodes) != 1 || nodes[0] == nil {
		t.Fatalf("crash 24029: %v %v", nodes, err)
	}
	want := time.Date(2010, 4, 10, 13, 39, 0, 0, time.UTC) // 9:39 EDT
	if got, _ := nodes[0].Props["reportedAt"].(time.Time); !got.Equal(want) || nodes[0].Props["incidentType"] != "ROAD_ACCIDENT" {
		t.Errorf("crash 24029 = %+v", nodes[0].Props)
	}
}

// BenchmarkReadURL reads the real traffic counts slice (quoted line
// breaks, 91 columns) over HTTP from a local server.
func BenchmarkReadURL(b *testing.B) {
	srv := csvServer(b)
	src := newSource(b, "url: "+srv.URL+"/traffic_counts.csv")
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		if err := src.Read(context.Background(), func(connectors.Record) error { n++; return nil }); err != nil || n != 5 {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
