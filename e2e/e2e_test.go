// Package e2e tests cityhub as a user meets it: the real binary, started on
// a random loopback port with the demo configuration and a fresh data
// directory, queried over HTTP.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the cityhub binary built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cityhub-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cityhub")
	build := exec.Command("go", "build", "-o", binary, "../cmd/cityhub")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cityhub:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Server is a running cityhub process.
type Server struct {
	URL      string
	cmd      *exec.Cmd
	log      *syncBuffer
	stopOnce sync.Once
}

// syncBuffer is the process's output, safe to read while it writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Log returns what the process has printed so far.
func (s *Server) Log() string { return s.log.String() }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// MustStart starts cityhub serve from the repository root with extra flags
// and waits until /readyz answers 200.
func MustStart(t testing.TB, dataDir string, args ...string) *Server {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := &Server{URL: "http://" + addr, log: &syncBuffer{}}
	s.cmd = exec.Command(binary, append([]string{"serve", "--listen", addr, "--data-dir", dataDir}, args...)...)
	s.cmd.Dir = ".."
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(t) })
	deadline := time.Now().Add(8 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if s.cmd.ProcessState != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("cityhub did not become ready\n%s", s.log)
	return nil
}

// Stop ends the server with SIGTERM and waits for it (once).
func (s *Server) Stop(t testing.TB) {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			t.Errorf("cityhub did not stop on SIGTERM\n%s", s.log)
		}
	})
}

// MustPush posts records to a connector's push endpoint with the operator
// token and requires 200.
func (s *Server) MustPush(t testing.TB, connector, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/push/"+connector, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("push to %s: %s", s.URL, resp.Status)
	}
}

// Response is a GraphQL response.
type Response struct {
	Status int
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string           `json:"message"`
		Locations  []map[string]int `json:"locations"`
		Path       []any            `json:"path"`
		Extensions map[string]any   `json:"extensions"`
	} `json:"errors"`
	Raw string
}

// MustQuery posts a query and decodes the response.
func (s *Server) MustQuery(t testing.TB, query string, vars map[string]any) Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /graphql: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Response{Status: resp.StatusCode, Raw: string(raw)}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("response is not JSON (status %d): %v\n%s", resp.StatusCode, err, raw)
	}
	return r
}

// at walks a decoded JSON value along a path of keys and indexes.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// backends lists the stores the end-to-end tests run against: the
// embedded store always, Neo4j when CITYHUB_NEO4J_URI names one (the test
// script starts it; CITYHUB_REQUIRE_INTEGRATION=1 makes its absence a
// failure).
func backends(t *testing.T) map[string][]string {
	out := map[string][]string{"sqlite": nil}
	uri := os.Getenv("CITYHUB_NEO4J_URI")
	switch {
	case uri != "":
		out["neo4j"] = []string{"--store", uri}
	case os.Getenv("CITYHUB_REQUIRE_INTEGRATION") == "1":
		t.Error("CITYHUB_NEO4J_URI is not set but CITYHUB_REQUIRE_INTEGRATION=1: the Neo4j end-to-end tests cannot run")
	default:
		t.Log("CITYHUB_NEO4J_URI not set: end-to-end tests run on the embedded store only")
	}
	return out
}

// MustPrepareNeo4j empties the Neo4j database and migrates its schema to
// the city ontology, as an operator would before the first serve.
func MustPrepareNeo4j(t testing.TB, uri string) {
	t.Helper()
	MustWipeNeo4j(t, uri)
	cmd := exec.Command(binary, "migrate", "--store", uri)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cityhub migrate: %v\n%s", err, out)
	}
}

func TestServeDemoCity(t *testing.T) {
	t.Setenv("CITYHUB_OPERATOR_TOKEN", operatorToken)
	for name, args := range backends(t) {
		t.Run(name, func(t *testing.T) {
			if name == "neo4j" {
				MustPrepareNeo4j(t, args[1])
			}
			testServeDemoCity(t, MustStart(t, t.TempDir(), args...))
		})
	}
}

func testServeDemoCity(t *testing.T, s *Server) {
	t.Run("a resident's report reaches the dashboard and its status the resident, live", func(t *testing.T) {
		testResidentReport(t, s)
	})

	t.Run("cross-domain query answers with real rows", func(t *testing.T) {
		r := s.MustQuery(t, mustRead(t, "../demo/cambridge/cross-domain.graphql"), nil)
		if len(r.Errors) > 0 {
			t.Fatalf("errors: %s", r.Raw)
		}
		hood := at(r.Data, "neighbourhoods", "nodes", 0)
		if at(hood, "name") != "Cambridgeport" {
			t.Fatalf("neighbourhood = %v, want Cambridgeport\n%s", at(hood, "name"), r.Raw)
		}
		total, _ := at(hood, "crashes", "totalCount").(float64)
		crashes, _ := at(hood, "crashes", "nodes").([]any)
		if total < 100 || len(crashes) == 0 {
			t.Fatalf("crashes in Cambridgeport: total %v, page %d; want hundreds\n%s", total, len(crashes), r.Raw)
		}
		for _, want := range []string{"nearestSignal", "nearestLight", "parking", "bikeShare", "trafficCount"} {
			found := false
			for _, c := range crashes {
				if edges, _ := at(c, want, "edges").([]any); len(edges) > 0 {
					found = true
					if d, _ := at(edges[0], "distanceMeters").(float64); d <= 0 {
						t.Errorf("%s: distance %v", want, d)
					}
				}
			}
			if !found {
				t.Errorf("no crash has %s\n%s", want, r.Raw)
			}
		}
	})

	t.Run("filters, geo, search, order and aggregates on the demo city", func(t *testing.T) {
		r := s.MustQuery(t, `{
  hood: neighbourhoods(where: {name: {eq: "Cambridgeport"}}) { nodes { id lights: contains(where: {class: STREET_LIGHT}, first: 0) { totalCount } } }
  all: streetLights(first: 0) { totalCount }
  nearHarvardSquare: trafficSignals(where: {near: {lat: 42.3733, lon: -71.1189, meters: 150}}) { totalCount }
  box: incidents(where: {within: {minLat: 42.36, minLon: -71.11, maxLat: 42.37, maxLon: -71.10}}, first: 0) { totalCount }
  hospital: entities(where: {search: "cambridge hospital"}) { nodes { __typename ... on Hospital { name } } }
  latest: incidents(first: 1, orderBy: [{field: REPORTED_AT, direction: DESC}]) { nodes { reportedAt _provenance { source connector fetchedAt } } }
  byType: incidentsAggregate(groupBy: INCIDENT_TYPE) { key count }
  faulty: parkingSpotsAggregate(groupBy: STATUS) { key count }
  bikes: bikeShareStationsAggregate(field: AVAILABLE_BIKES) { count sum min max }
}`, nil)
		if len(r.Errors) > 0 {
			t.Fatalf("errors: %s", r.Raw)
		}
		hoodID, _ := at(r.Data, "hood", "nodes", 0, "id").(string)
		inHood := at(r.Data, "hood", "nodes", 0, "lights", "totalCount").(float64)
		// the same question two ways: LOCATED_IN edges computed at ingest,
		// and point-in-polygon at query time
		r2 := s.MustQuery(t, `query($id: ID!) { streetLights(where: {withinArea: $id}, first: 0) { totalCount } }`, map[string]any{"id": hoodID})
		if got := at(r2.Data, "streetLights", "totalCount"); got != inHood || inHood < 100 {
			t.Errorf("street lights in Cambridgeport: %v by edges, %v by polygon (%s)", inHood, got, r2.Raw)
		}
		if n := at(r.Data, "all", "totalCount"); n != 6117.0 {
			t.Errorf("street lights = %v, want 6117", n)
		}
		if n, _ := at(r.Data, "nearHarvardSquare", "totalCount").(float64); n < 1 || n > 30 {
			t.Errorf("signals within 150 m of Harvard Square = %v", n)
		}
		if n, _ := at(r.Data, "box", "totalCount").(float64); n < 50 {
			t.Errorf("crashes in the box = %v", n)
		}
		found := false
		for _, n := range at(r.Data, "hospital", "nodes").([]any) {
			found = found || at(n, "name") == "Cambridge Hospital"
		}
		if !found {
			t.Errorf("search did not find Cambridge Hospital: %v", at(r.Data, "hospital"))
		}
		if ts := at(r.Data, "latest", "nodes", 0, "reportedAt"); ts != "2016-06-30T21:25:00Z" && !strings.HasPrefix(fmt.Sprint(ts), "2016-06-") {
			t.Errorf("latest crash at %v, want late June 2016", ts)
		}
		if src := at(r.Data, "latest", "nodes", 0, "_provenance", "source"); src != "cambridge-police" {
			t.Errorf("provenance source = %v", src)
		}
		if at(r.Data, "byType", 0, "key") != "ROAD_ACCIDENT" || at(r.Data, "byType", 0, "count") != 10335.0 {
			t.Errorf("incidents by type = %v", at(r.Data, "byType"))
		}
		if g, _ := at(r.Data, "faulty").([]any); len(g) < 2 {
			t.Errorf("parking spots by status = %v", g)
		}
		if sum, _ := at(r.Data, "bikes", 0, "sum").(float64); sum != 1332 {
			t.Errorf("bikes available = %v, want 1332 (the GBFS snapshot's total)", sum)
		}
	})

	badInput := []struct {
		name       string
		query      string
		vars       map[string]any
		wantMsg    string
		wantArg    string // extensions.argument, when the error is about an argument
		wantLocate bool   // the error carries a location
	}{
		{name: "malformed query", query: `{ streetLights { totalCount }`, wantMsg: "Expected Name, found <EOF>", wantLocate: true},
		{name: "unknown field", query: `{ streetLights { totalCount wattage } }`, wantMsg: `Cannot query field "wattage"`, wantLocate: true},
		{name: "unknown class", query: `{ unicorns { totalCount } }`, wantMsg: `Cannot query field "unicorns" on type "Query"`, wantLocate: true},
		{name: "latitude 200", query: `{ streetLights(where: {near: {lat: 200, lon: -71.1, meters: 50}}) { totalCount } }`, wantMsg: "latitude 200 is outside [-90, 90]", wantArg: "where.near.lat"},
		{name: "latitude 200 in a variable", query: `query($w: StreetLightWhere) { streetLights(where: $w) { totalCount } }`,
			vars: map[string]any{"w": map[string]any{"within": map[string]any{"minLat": 42, "minLon": -72, "maxLat": 200, "maxLon": -71}}}, wantMsg: "latitude 200 is outside", wantArg: "where.within.maxLat"},
		{name: "negative first", query: `{ streetLights(first: -1) { totalCount } }`, wantMsg: "must not be negative", wantArg: "first"},
		{name: "nested negative first", query: `{ neighbourhoods { nodes { contains(first: -5) { totalCount } } } }`, wantMsg: "must not be negative", wantArg: "contains.first"},
		{name: "unknown enum", query: `{ streetLights(where: {status: {eq: BROKEN}}) { totalCount } }`, wantMsg: `Value "BROKEN" does not exist in "AssetStatus" enum`, wantLocate: true},
		{name: "bad cursor", query: `{ streetLights(after: "not-a-cursor") { totalCount } }`, wantMsg: "cursor"},
		{name: "bad date", query: `{ incidents(where: {reportedAt: {gt: "yesterday"}}) { totalCount } }`, wantMsg: `"yesterday" is not an RFC 3339 date-time`, wantArg: "where.reportedAt.gt"},
	}
	for _, tt := range badInput {
		t.Run(tt.name, func(t *testing.T) {
			r := s.MustQuery(t, tt.query, tt.vars)
			if len(r.Errors) == 0 {
				t.Fatalf("no error; response %s", r.Raw)
			}
			e := r.Errors[0]
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", e.Message, tt.wantMsg)
			}
			if tt.wantArg != "" && e.Extensions["argument"] != tt.wantArg {
				t.Errorf("extensions.argument = %v, want %q (%s)", e.Extensions["argument"], tt.wantArg, r.Raw)
			}
			if tt.wantLocate && len(e.Locations) == 0 {
				t.Errorf("error has no location: %s", r.Raw)
			}
			if r.Status >= 500 {
				t.Errorf("HTTP status %d for bad input", r.Status)
			}
		})
	}

	t.Run("still healthy after bad input", func(t *testing.T) {
		resp, err := http.Get(s.URL + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		resp.Body.Close()
	})

	t.Run("GraphiQL is served from the binary", func(t *testing.T) {
		resp, err := http.Get(s.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "/assets/graphiql.js") {
			t.Fatalf("GET / = %d\n%s", resp.StatusCode, page)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") && !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	})
}
