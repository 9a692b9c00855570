package json

import (
	"bytes"
	"context"
	"encoding/base64"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/connectors/paging"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

const (
	infoFile   = "testdata/boston_hubway_station_information.json"
	statusFile = "testdata/boston_hubway_station_status.json"
	apiKeyEnv  = "CITYHUB_JSON_TEST_KEY"
)

// stationAPI serves the 195 real Hubway stations of infoFile as a paged
// API, one path per pagination strategy, each page a GBFS-shaped document
// holding a slice of the real records byte for byte:
//
//	/offset?offset=O&limit=L   records O..O+L
//	/page?p=P&per_page=L       page P from 0
//	/next?after=K              25 records from K; links.next after the data
//	/link?after=K              25 records from K; Link header rel="next"
//	/cursor?cursor=C           25 records; meta.next_cursor before the data
//	/info, /status             the two real files, whole
//
// hook, when set, may answer a request instead (returning true).
type stationAPI struct {
	t        testing.TB
	srv      *httptest.Server
	info     []byte
	status   []byte
	stations []stdjson.RawMessage
	key      string // required X-API-Key value, "" for none

	mu       sync.Mutex
	requests []string
	hook     func(w http.ResponseWriter, r *http.Request, n int) bool // n: 0-based request number
}

func newStationAPI(t testing.TB) *stationAPI {
	t.Helper()
	a := &stationAPI{t: t}
	var err error
	if a.info, err = os.ReadFile(infoFile); err != nil {
		t.Fatal(err)
	}
	if a.status, err = os.ReadFile(statusFile); err != nil {
		t.Fatal(err)
	}
	a.stations = stationsOf(t, a.info)
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func stationsOf(t testing.TB, doc []byte) []stdjson.RawMessage {
	t.Helper()
	var d struct {
		Data struct{ Stations []stdjson.RawMessage }
	}
	if err := stdjson.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	return d.Data.Stations
}

func (a *stationAPI) url(path string) string { return a.srv.URL + path }

func (a *stationAPI) served() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.requests...)
}

// page renders records from..to as a GBFS document with extra members
// before and after data.
func (a *stationAPI) page(from, to int, before, after string) []byte {
	from, to = min(from, len(a.stations)), min(to, len(a.stations))
	var b bytes.Buffer
	b.WriteString(`{"last_updated":1513095720,"ttl":10,` + before + `"data":{"stations":[`)
	for i, s := range a.stations[from:to] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(s)
	}
	b.WriteString(`]}` + after + `}`)
	return b.Bytes()
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func cursorFor(i int) string {
	return base64.URLEncoding.EncodeToString([]byte("station-index:" + strconv.Itoa(i)))
}

func cursorIndex(c string) int {
	b, _ := base64.URLEncoding.DecodeString(c)
	return atoi(strings.TrimPrefix(string(b), "station-index:"))
}

func (a *stationAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	n := len(a.requests)
	a.requests = append(a.requests, a.srv.URL+r.URL.RequestURI())
	hook := a.hook
	a.mu.Unlock()
	if a.key != "" && r.Header.Get("X-API-Key") != a.key {
		http.Error(w, "bad key", http.StatusUnauthorized)
		return
	}
	if hook != nil && hook(w, r, n) {
		return
	}
	q := r.URL.Query()
	const size = 25
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/info":
		w.Write(a.info)
	case "/status":
		w.Write(a.status)
	case "/offset":
		o, l := atoi(q.Get("offset")), atoi(q.Get("limit"))
		w.Write(a.page(o, o+l, "", ""))
	case "/page":
		p, l := atoi(q.Get("p")), atoi(q.Get("per_page"))
		w.Write(a.page(p*l, p*l+l, "", ""))
	case "/next":
		k := atoi(q.Get("after"))
		next := "null"
		if k+size < len(a.stations) {
			next = strconv.Quote("next?after=" + strconv.Itoa(k+size)) // relative to the page
		}
		w.Write(a.page(k, k+size, "", `,"links":{"self":"x","next":`+next+`}`))
	case "/link":
		k := atoi(q.Get("after"))
		if k+size < len(a.stations) {
			w.Header().Set("Link", fmt.Sprintf(`<%s/link?after=%d>; rel="next", <%s/link>; rel="first"`, a.srv.URL, k+size, a.srv.URL))
		}
		w.Write(a.page(k, k+size, "", ""))
	case "/cursor":
		k := 0
		if c := q.Get("cursor"); c != "" {
			k = cursorIndex(c)
		}
		next := "null"
		if k+size < len(a.stations) {
			next = strconv.Quote(cursorFor(k + size))
		}
		w.Write(a.page(k, k+size, `"meta":{"next_cursor":`+next+`},`, ""))
	default:
		http.NotFound(w, r)
	}
}

// source builds a json source from a config block.
func source(t testing.TB, block string) *Source {
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

func TestPagination(t *testing.T) {
	api := newStationAPI(t)
	n := len(api.stations)
	if n != 195 {
		t.Fatalf("%s holds %d stations, want 195", infoFile, n)
	}
	tests := []struct {
		name  string
		block string
		pages []string // URLs requested, in order (the last may be empty)
	}{
		{"none", "url: %s/info\nrecords: data.stations", []string{"/info"}},
		{"offset, short last page", "url: %s/offset?lang=en\nrecords: data.stations\npagination: offset\nlimit: 25",
			[]string{"/offset?lang=en&offset=0&limit=25", "/offset?lang=en&offset=25&limit=25", "/offset?lang=en&offset=50&limit=25", "/offset?lang=en&offset=75&limit=25",
				"/offset?lang=en&offset=100&limit=25", "/offset?lang=en&offset=125&limit=25", "/offset?lang=en&offset=150&limit=25", "/offset?lang=en&offset=175&limit=25"}},
		{"offset, empty last page (195 = 5 x 39)", "url: %s/offset\nrecords: data.stations\npagination: offset\nlimit: 39",
			[]string{"/offset?offset=0&limit=39", "/offset?offset=39&limit=39", "/offset?offset=78&limit=39", "/offset?offset=117&limit=39", "/offset?offset=156&limit=39", "/offset?offset=195&limit=39"}},
		{"page from 0", "url: %s/page\nrecords: data.stations\npagination: page\npage_param: p\nstart_page: 0\nlimit_param: per_page\nlimit: 50",
			[]string{"/page?p=0&per_page=50", "/page?p=1&per_page=50", "/page?p=2&per_page=50", "/page?p=3&per_page=50"}},
		{"next link in the body", "url: %s/next\nrecords: data.stations\npagination: next_link\nnext_link_path: links.next",
			[]string{"/next", "/next?after=25", "/next?after=50", "/next?after=75", "/next?after=100", "/next?after=125", "/next?after=150", "/next?after=175"}},
		{"next link in the Link header", "url: %s/link\nrecords: data.stations\npagination: next_link",
			[]string{"/link", "/link?after=25", "/link?after=50", "/link?after=75", "/link?after=100", "/link?after=125", "/link?after=150", "/link?after=175"}},
		{"cursor", "url: %s/cursor\nrecords: data.stations\npagination: cursor\ncursor_path: meta.next_cursor\ncursor_param: cursor",
			[]string{"/cursor", "/cursor?cursor=" + url.QueryEscape(cursorFor(25)), "/cursor?cursor=" + url.QueryEscape(cursorFor(50)), "/cursor?cursor=" + url.QueryEscape(cursorFor(75)),
				"/cursor?cursor=" + url.QueryEscape(cursorFor(100)), "/cursor?cursor=" + url.QueryEscape(cursorFor(125)), "/cursor?cursor=" + url.QueryEscape(cursorFor(150)), "/cursor?cursor=" + url.QueryEscape(cursorFor(175))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(api.served())
			recs, err := collect(t.Context(), source(t, fmt.Sprintf(tt.block, api.srv.URL)))
			if err != nil {
				t.Fatal(err)
			}
			served := api.served()[before:]
			var want []string
			for _, p := range tt.pages {
				want = append(want, api.url(p))
			}
			if strings.Join(served, "\n") != strings.Join(want, "\n") {
				t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(served, "\n"), strings.Join(want, "\n"))
			}
			if len(recs) != n {
				t.Fatalf("%d records, want %d", len(recs), n)
			}
			// every record in file order, byte for byte, positioned on its page
			page, inPage := -1, 0
			for i, r := range recs {
				if r.Err != nil || !bytes.Equal(r.Raw, api.stations[i]) {
					t.Fatalf("record %d = %s (err %v), want %s", i, r.Raw, r.Err, api.stations[i])
				}
				if page < 0 || r.Pos.Message != served[page] {
					page, inPage = page+1, 0
				}
				if page >= len(served) || r.Pos.Message != served[page] || r.Pos.Index != i || r.Pos.Path != fmt.Sprintf("data.stations[%d]", inPage) || r.Pos.File != "" {
					t.Fatalf("record %d position %+v, want page %d of %q at index %d", i, r.Pos, page, served, inPage)
				}
				inPage++
			}
			if recs[0].Fields["station_id"] != "3" || recs[n-1].Fields["station_id"] != "228" {
				t.Errorf("first and last stations = %v, %v", recs[0].Fields["station_id"], recs[n-1].Fields["station_id"])
			}
		})
	}
}

// TestPagingFailures injects failures into the paged API: each case
// fails the read in a given way after the records before it were emitted.
func TestPagingFailures(t *testing.T) {
	const offset25 = "url: %s/offset\nrecords: data.stations\npagination: offset\nlimit: 25"
	cutWithLength := func(api *stationAPI) func(http.ResponseWriter, *http.Request, int) bool {
		return func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n != 1 {
				return false
			}
			body := api.page(25, 50, "", "")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:len(body)/2])
			return true
		}
	}
	cutAndClose := func(api *stationAPI) func(http.ResponseWriter, *http.Request, int) bool {
		return func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n != 1 {
				return false
			}
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return true
			}
			defer conn.Close()
			body := api.page(25, 50, "", "")
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
			buf.Write(body[:len(body)/2])
			buf.Flush()
			return true
		}
	}
	tests := []struct {
		name      string
		block     string
		hook      func(api *stationAPI) func(http.ResponseWriter, *http.Request, int) bool
		records   int // emitted before the failure (at least, for cuts)
		cut       bool
		want      string
		transient bool
		maxPages  bool
	}{
		{"503 on page 2", offset25, func(*stationAPI) func(http.ResponseWriter, *http.Request, int) bool {
			return func(w http.ResponseWriter, r *http.Request, n int) bool {
				if n == 1 {
					http.Error(w, "upstream busy", http.StatusServiceUnavailable)
					return true
				}
				return false
			}
		}, 25, false, "/offset?offset=25&limit=25: HTTP 503 Service Unavailable: upstream busy", true, false},
		{"404 on page 3", offset25, func(*stationAPI) func(http.ResponseWriter, *http.Request, int) bool {
			return func(w http.ResponseWriter, r *http.Request, n int) bool {
				if n == 2 {
					http.NotFound(w, r)
					return true
				}
				return false
			}
		}, 50, false, "/offset?offset=50&limit=25: HTTP 404 Not Found", false, false},
		{"page 2 cut off before its Content-Length", offset25, cutWithLength, 25, true, "/offset?offset=25&limit=25: body broke off: unexpected EOF", true, false},
		{"page 2 cut off by a closed connection", offset25, cutAndClose, 25, true, "/offset?offset=25&limit=25: offset ", true, false},
		{"a next link back to page 2", "url: %s/next\nrecords: data.stations\npagination: next_link\nnext_link_path: links.next",
			func(api *stationAPI) func(http.ResponseWriter, *http.Request, int) bool {
				return func(w http.ResponseWriter, r *http.Request, n int) bool {
					if n == 2 {
						w.Write(api.page(50, 75, `"links":{"next":"/next?after=25"},`, ""))
						return true
					}
					return false
				}
			}, 75, false, "/next?after=50: next link " + "%s/next?after=25 repeats a page already read (a loop)", false, false},
		{"a cursor that comes back", "url: %s/cursor\nrecords: data.stations\npagination: cursor\ncursor_path: meta.next_cursor\ncursor_param: cursor",
			func(api *stationAPI) func(http.ResponseWriter, *http.Request, int) bool {
				return func(w http.ResponseWriter, r *http.Request, n int) bool {
					if n == 2 {
						w.Write(api.page(50, 75, `"meta":{"next_cursor":"`+cursorFor(25)+`"},`, ""))
						return true
					}
					return false
				}
			}, 75, false, fmt.Sprintf("cursor %q repeats one already followed (a loop)", cursorFor(25)), false, false},
		{"max_pages reached", offset25 + "\nmax_pages: 3", nil, 75, false, "max_pages reached: read 3 pages and %s/offset has more (next: %s/offset?offset=75&limit=25); raise max_pages", false, true},
		{"a next link that is an object", "url: %s/next\nrecords: data.stations\npagination: next_link\nnext_link_path: links",
			nil, 25, false, "/next: offset 7517: links is an object, want a string, a number or null", false, false},
		{"a page that is not JSON", offset25, func(*stationAPI) func(http.ResponseWriter, *http.Request, int) bool {
			return func(w http.ResponseWriter, r *http.Request, n int) bool {
				if n == 1 {
					w.Write([]byte("<html>maintenance</html>"))
					return true
				}
				return false
			}
		}, 25, false, "/offset?offset=25&limit=25: offset 0: $: invalid character '<' looking for beginning of value", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newStationAPI(t)
			if tt.hook != nil {
				api.hook = tt.hook(api)
			}
			recs, err := collect(t.Context(), source(t, fmt.Sprintf(tt.block, api.srv.URL)))
			want := strings.ReplaceAll(tt.want, "%s", api.srv.URL)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want %q", err, want)
			}
			if got := connectors.IsTransient(err); got != tt.transient {
				t.Errorf("IsTransient = %v, want %v", got, tt.transient)
			}
			if got := errors.Is(err, paging.ErrMaxPages); got != tt.maxPages {
				t.Errorf("errors.Is(ErrMaxPages) = %v", got)
			}
			if tt.cut {
				if len(recs) < tt.records || len(recs) >= tt.records+25 {
					t.Errorf("%d records before the cut, want %d..%d", len(recs), tt.records, tt.records+24)
				}
			} else if len(recs) != tt.records {
				t.Errorf("%d records before the failure, want %d", len(recs), tt.records)
			}
			for i, r := range recs {
				if r.Err != nil || !bytes.Equal(r.Raw, api.stations[i]) {
					t.Fatalf("record %d = %s, %v", i, r.Raw, r.Err)
				}
			}
		})
	}
}

// TestRetryAfter503 reads a paged URL whose second page is unavailable
// once: the first read fails transient, the retry reads all 195 stations.
func TestRetryAfter503(t *testing.T) {
	api := newStationAPI(t)
	api.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	src := source(t, fmt.Sprintf("url: %s/offset\nrecords: data.stations\npagination: offset\nlimit: 50", api.srv.URL))
	recs, err := collect(t.Context(), src)
	if !connectors.IsTransient(err) || len(recs) != 50 {
		t.Fatalf("first read: %d records, error %v (want 50 and a transient error)", len(recs), err)
	}
	recs, err = collect(t.Context(), src)
	if err != nil || len(recs) != 195 {
		t.Fatalf("retry: %d records, error %v", len(recs), err)
	}
	if got := len(api.served()); got != 2+4 {
		t.Errorf("%d requests, want 2 for the failed read and 4 for the retry", got)
	}
}

// TestJoinURL reads the paged station information joined with the real
// station status over HTTP, with an API key from the environment.
func TestJoinURL(t *testing.T) {
	api := newStationAPI(t)
	api.key = "hubway-k"
	t.Setenv(apiKeyEnv, api.key)
	block := fmt.Sprintf(`url: %[1]s/offset
records: data.stations
pagination: offset
limit: 100
api_key_env: %[2]s
headers: {Accept: application/json}
timeout: 5s
join: {url: %[1]s/status, records: data.stations, key: station_id, prefix: "s_", required: true}`, api.srv.URL, apiKeyEnv)
	recs, err := collect(t.Context(), source(t, block))
	if err != nil {
		t.Fatal(err)
	}
	var status struct {
		Data struct {
			Stations []struct {
				ID    string `json:"station_id"`
				Bikes int64  `json:"num_bikes_available"`
			}
		}
	}
	if err := stdjson.Unmarshal(api.status, &status); err != nil {
		t.Fatal(err)
	}
	bikes := map[string]int64{}
	var total int64
	for _, s := range status.Data.Stations {
		bikes[s.ID] = s.Bikes
		total += s.Bikes
	}
	var sum int64
	for _, r := range recs {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Pos, r.Err)
		}
		id := r.Fields["station_id"].(string)
		if got := r.Fields["s_num_bikes_available"]; got != bikes[id] {
			t.Errorf("station %s: s_num_bikes_available = %v, want %d", id, got, bikes[id])
		}
		sum += r.Fields["s_num_bikes_available"].(int64)
	}
	if len(recs) != 195 || sum != total || total != 1332 {
		t.Errorf("%d records with %d bikes, want 195 with %d (1332 in the snapshot)", len(recs), sum, total)
	}

	// without the key every request is refused, the join first
	os.Unsetenv(apiKeyEnv)
	_, err = collect(t.Context(), source(t, block))
	if err == nil || !strings.Contains(err.Error(), "json: join: GET "+api.srv.URL+"/status: api_key_env: environment variable "+apiKeyEnv+" is not set") {
		t.Errorf("without the key: %v", err)
	}
}

// TestConnectorOverHTTP loads a connector file reading the paged API
// joined with the status document, runs it into a real SQLite graph store
// and checks what landed.
func TestConnectorOverHTTP(t *testing.T) {
	api := newStationAPI(t)
	file := fmt.Sprintf(`connectors:
  - name: hubway-http
    source: hubway-gbfs
    kind: json
    config:
      url: %[1]s/next
      records: data.stations
      pagination: next_link
      next_link_path: links.next
      join: {url: %[1]s/status, records: data.stations, key: station_id}
    mapping:
      nodes:
        - class: BikeShareStation
          key: "{station_id}"
          name: "{name}"
          properties:
            stationCode: "{short_name}"
            capacity: "{capacity}"
            availableBikes: "{num_bikes_available}"
          location: {lat: lat, lon: lon}
`, api.srv.URL)
	reg := connectors.NewRegistry()
	Register(reg)
	ont := ontology.Default()
	conns, err := connectors.Parse("hubway.yaml", []byte(file), ont, reg)
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
	if stats[0].Read != 195 || stats[0].Written != 195 || len(dead.Letters) != 0 {
		t.Errorf("stats %+v, dead letters %v", stats[0], dead.Letters)
	}
	page, err := store.Find(t.Context(), graph.FindQuery{Class: "BikeShareStation", First: 1, Count: true})
	if err != nil || page.Total != 195 {
		t.Fatalf("BikeShareStation count = %v, %v", page, err)
	}
	nodes, err := store.Nodes(t.Context(), []string{"urn:city:bike-share-station:hubway-gbfs:67"})
	if err != nil || len(nodes) != 1 || nodes[0] == nil {
		t.Fatalf("station 67: %v %v", nodes, err)
	}
	n := nodes[0]
	if n.Props["name"] != "MIT at Mass Ave / Amherst St" || n.Props["capacity"] != int64(27) || n.Props["availableBikes"] != int64(23) || n.Geometry == nil || n.Geometry.Point.Lat != 42.3581 {
		t.Errorf("station 67 = %+v %+v", n.Props, n.Geometry)
	}
}

// TestSampleOverHTTP runs the sample with its two paths replaced by URLs
// of the full real feeds: all 195 stations land, joined.
func TestSampleOverHTTP(t *testing.T) {
	api := newStationAPI(t)
	k := Kind()
	k.Sample = []byte(strings.NewReplacer(
		"path: testdata/station_information.json", "url: "+api.url("/info"),
		"path: testdata/station_status.json", "url: "+api.url("/status"),
	).Replace(string(k.Sample)))
	if bytes.Contains(k.Sample, []byte("path: testdata")) {
		t.Fatal("the sample has paths this test does not replace")
	}
	store, stats, dead := connectortest.CheckSample(t, k, ontology.Default())
	if stats[0].Written != 195 || len(dead.Letters) != 0 || store.Count("BikeShareStation") != 195 {
		t.Fatalf("stats = %+v, dead letters = %+v", stats, dead.Letters)
	}
	s := store.Nodes["urn:city:bike-share-station:hubway-gbfs:67"]
	if s.Props["availableBikes"] != int64(23) || s.Props["stationCode"] != "M32006" || s.Props["regionId"] != "8" {
		t.Errorf("station 67 = %+v", s.Props)
	}
	if got := api.served(); len(got) != 2 || got[0] != api.url("/status") || got[1] != api.url("/info") {
		t.Errorf("requests %v: want the join document, then the stations", got)
	}
}

func TestCheck(t *testing.T) {
	api := newStationAPI(t)
	tests := []struct {
		name, block, want string // want "" for success
		requests          int
	}{
		{"file", "path: " + mustAbs(t, infoFile) + "\nrecords: data.stations", "", 0},
		{"paged URL reads one page", "url: %s/offset\nrecords: data.stations\npagination: offset\nlimit: 10", "", 1},
		{"join checked too", "url: %s/info\nrecords: data.stations\njoin: {url: %s/status, records: data.stations, key: station_id}", "", 2},
		{"missing records path", "url: %s/info\nrecords: data.bikes", `no member "bikes" at $.data`, 1},
		{"records path through an array", "url: %s/info\nrecords: data.stations.0", `data.stations: expected "{", found [`, 1},
		{"404", "url: %s/gone.json\nrecords: data.stations", "HTTP 404 Not Found", 1},
		{"join 404", "url: %s/info\nrecords: data.stations\njoin: {url: %s/gone, key: station_id}", "json: join: GET %s/gone: HTTP 404", 1},
		{"missing file", "path: " + mustAbs(t, "testdata/nope.json"), "no such file", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(api.served())
			block := strings.ReplaceAll(tt.block, "%s", api.srv.URL)
			err := source(t, block).Check(t.Context())
			want := strings.ReplaceAll(tt.want, "%s", api.srv.URL)
			switch {
			case want == "" && err != nil:
				t.Errorf("Check: %v", err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("Check error %v, want %q", err, want)
			}
			if got := len(api.served()) - before; got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
		})
	}
	// a first record that is not an object
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"data":{"stations":[17]}}`))
	}))
	defer srv.Close()
	err := source(t, "url: "+srv.URL+"\nrecords: data.stations").Check(t.Context())
	if err == nil || !strings.Contains(err.Error(), "data.stations[0]: record is not an object") {
		t.Errorf("Check of numbers: %v", err)
	}
}

func mustAbs(t testing.TB, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestHTTPConfigErrors(t *testing.T) {
	tests := []struct{ cfg, want string }{
		{"{path: a.json, url: 'http://h/x'}", `f.yaml:6: connectors[0].config.url: give path or url, not both`},
		{"{records: x}", `connectors[0].config.path: path is required (or url for an HTTP resource)`},
		{"{path: a.json, pagination: offset}", `connectors[0].config.pagination: pagination applies to url only`},
		{"{url: 'http://h/x', pagination: pages}", `connectors[0].config.pagination: pagination must be one of none, offset, page, next_link, cursor, got "pages"`},
		{"{url: 'http://h/x', records: data.stations, pagination: cursor, cursor_param: after}", `connectors[0].config.cursor_path: cursor_path is required with pagination: cursor`},
		{"{url: 'http://h/x', pagination: next_link, next_link_path: links.next}", `connectors[0].config.next_link_path: records is empty (the document is the array), so no next_link_path can be found in it`},
		{"{url: 'http://h/x', records: data.stations, pagination: cursor, cursor_path: data.stations.next, cursor_param: c}", `connectors[0].config.cursor_path: cursor_path "data.stations.next" overlaps records "data.stations"`},
		{"{url: 'http://h/x', limit: 10}", `connectors[0].config.limit: limit does not apply to pagination: none`},
		{"{path: a.json, headers: {Accept: x}}", `connectors[0].config.headers: headers applies to url only`},
		{"{path: a.json, headers: {Accept: x}, join: {url: 'http://h/s', key: id}}", ""},
		{"{url: 'http://h/x', timeout: 5}", `connectors[0].config.timeout:`},
		{"{url: 'http://h/x', join: {path: a.json, url: 'http://h/s', key: id}}", `connectors[0].config.join.url: give path or url, not both`},
	}
	reg := connectors.NewRegistry()
	Register(reg)
	for _, tt := range tests {
		src := "connectors:\n  - name: x\n    source: xx\n    kind: json\n    mapping: {nodes: [{class: Neighbourhood, key: x, properties: {officialCode: x}}]}\n    config: " + tt.cfg + "\n"
		_, err := connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
		if tt.want == "" {
			if err != nil {
				t.Errorf("config %s: %v", tt.cfg, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %s: error = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// FuzzReadPage reads any bytes as a page with a records path and a next
// link path: it never panics, every record's offset locates its raw bytes
// in the input, the count it returns is the number emitted, and a value is
// only returned from a document that parsed.
func FuzzReadPage(f *testing.F) {
	for _, name := range []string{infoFile, statusFile, "testdata/station_information.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"links":{"next":"/p?after=2"},"data":{"stations":[{"a":1},2]}}`))
	f.Add([]byte(`{"data":{"stations":[]},"links":{"next":{"href":"x"}}}`))
	f.Add([]byte(`{"data":{"stations":[{}]},"links":null,"links":{"next":12}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		o := docOpts{name: "http://h/p", isURL: true, records: "data.stations", value: "links.next", base: 7, maxBytes: 1 << 16}
		res, err := readDoc(context.Background(), bytes.NewReader(data), o, func(r connectors.Record) error {
			if r.Pos.Index != 7+n || r.Pos.Message != "http://h/p" || r.Pos.Offset < 0 || r.Pos.Offset+int64(len(r.Raw)) > int64(len(data)) ||
				!bytes.Equal(data[r.Pos.Offset:r.Pos.Offset+int64(len(r.Raw))], r.Raw) {
				t.Fatalf("record %d: position %+v does not locate %q", n, r.Pos, r.Raw)
			}
			if (r.Err == nil) == (r.Fields == nil) {
				t.Fatalf("record %+v: exactly one of Err and Fields must be set", r)
			}
			n++
			return nil
		})
		if res.records != n {
			t.Fatalf("readDoc counted %d records, emitted %d", res.records, n)
		}
		// compare the value with encoding/json's reading of a valid
		// document (keys written once and plainly: encoding/json keeps the
		// last of duplicate keys where readDoc keeps the first)
		if err != nil || bytes.Count(data, []byte(`"links"`)) > 1 || bytes.Count(data, []byte(`"next"`)) > 1 || bytes.IndexByte(data, '\\') >= 0 {
			return
		}
		d := stdjson.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var doc struct {
			Links *struct{ Next any } `json:"links"`
		}
		if d.Decode(&doc) != nil {
			return
		}
		want := ""
		if doc.Links != nil && doc.Links.Next != nil {
			want = fmt.Sprint(doc.Links.Next)
		}
		if res.value != want {
			t.Fatalf("value %q, encoding/json finds %q", res.value, want)
		}
	})
}

// BenchmarkReadPages reads the 195 real stations over HTTP from a local
// server, 25 a page (8 pages a read), joined with the status document.
func BenchmarkReadPages(b *testing.B) {
	api := newStationAPI(b)
	for _, bc := range []struct{ name, block string }{
		{"offset", "url: %s/offset\nrecords: data.stations\npagination: offset\nlimit: 25"},
		{"next_link", "url: %s/next\nrecords: data.stations\npagination: next_link\nnext_link_path: links.next"},
		{"offset_join", "url: %s/offset\nrecords: data.stations\npagination: offset\nlimit: 25\njoin: {url: %s/status, records: data.stations, key: station_id}"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := source(b, strings.ReplaceAll(bc.block, "%s", api.srv.URL))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n = 0
				if err := src.Read(context.Background(), func(connectors.Record) error { n++; return nil }); err != nil || n != 195 {
					b.Fatal(err, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
