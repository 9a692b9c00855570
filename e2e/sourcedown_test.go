package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// endpoint is an Open311 GeoReport v2 endpoint run by the test: it serves
// the City of Bloomington's services and requests (e2e/testdata/sourcedown/)
// with page/page_size paging, and can be taken down in three ways:
// answering HTTP 503 to every request, answering 503 from the second page
// of requests on (a read that breaks midway), or closing its listener
// (connection refused) and reopening it later on the same port. Like many GeoReport servers it
// ignores updated_after (it records it), so a run reads only what changed
// because cityhub itself drops requests at or before its checkpoint.
type endpoint struct {
	t        testing.TB
	services []byte

	mu       sync.Mutex
	requests []json.RawMessage
	downFrom int          // 0: healthy; 1: 503 to everything; n > 1: 503 to requests.json pages ≥ n
	hits     int          // HTTP requests received
	queries  []url.Values // query strings of requests.json, in order
	srv      *httptest.Server
	addr     string // host:port, kept across close and reopen
}

const endpointBase = "/open311/v2"

// newEndpoint starts the endpoint on a free loopback port.
func newEndpoint(t testing.TB, services []byte, requests []json.RawMessage) *endpoint {
	t.Helper()
	e := &endpoint{t: t, services: services, requests: requests, addr: "127.0.0.1:0"}
	e.open()
	t.Cleanup(e.close)
	return e
}

// URL is the endpoint base for the connector file.
func (e *endpoint) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return "http://" + e.addr + endpointBase
}

// open listens on e.addr (the same port again after close).
func (e *endpoint) open() {
	e.t.Helper()
	l, err := net.Listen("tcp", e.addr)
	if err != nil {
		e.t.Fatalf("endpoint: listen on %s: %v", e.addr, err)
	}
	srv := httptest.NewUnstartedServer(e)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	e.mu.Lock()
	e.srv, e.addr = srv, l.Addr().String()
	e.mu.Unlock()
}

// close stops listening: connections are refused until open.
func (e *endpoint) close() {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// setDown makes the endpoint answer 503 from page n of requests.json on
// (1: to every request); 0 makes it healthy.
func (e *endpoint) setDown(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.downFrom = n
}

func (e *endpoint) setRequests(requests []json.RawMessage) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = requests
}

// counters returns the HTTP requests received so far and the query
// strings of the requests.json pages.
func (e *endpoint) counters() (hits int, queries []url.Values) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits, slices.Clone(e.queries)
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hits++
	unavailable := func() { http.Error(w, "the 311 database is under maintenance", http.StatusServiceUnavailable) }
	if e.downFrom == 1 {
		unavailable()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case endpointBase + "/services.json":
		_, _ = w.Write(e.services)
	case endpointBase + "/requests.json":
		q := r.URL.Query()
		e.queries = append(e.queries, q)
		if n, _ := strconv.Atoi(q.Get("page")); e.downFrom > 1 && n >= e.downFrom {
			unavailable()
			return
		}
		page := e.requests
		if size, err := strconv.Atoi(q.Get("page_size")); err == nil && size > 0 {
			n, err := strconv.Atoi(q.Get("page"))
			if err != nil || n < 1 {
				http.Error(w, "bad page", http.StatusBadRequest)
				return
			}
			from, to := min((n-1)*size, len(page)), min(n*size, len(page))
			page = page[from:to]
		}
		b, err := json.Marshal(page)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// sourceFault is a way for the source to be down during a run.
type sourceFault struct {
	name    string
	down    func(e *endpoint)
	up      func(e *endpoint)
	wantErr []string // in the failed run's error, besides the URL
	// hits is how many HTTP requests the endpoint answers per attempt of
	// the failed run
	hits int
	// changedBefore: the source changes before it goes down, and the
	// failed run reads (and writes) these requests of page 1 in each
	// attempt before the read breaks
	changedBefore []string
}

// TestSourceDown is the source-down acceptance test of the connector
// runs: a run against a source that is down is retried, then fails with
// the reason, and the connector's checkpoint stays where it was; the next
// run, once the source is back, catches up with exactly what changed in
// the meantime. It runs the real binary against an Open311 endpoint
// serving Bloomington's requests, with the source answering HTTP 503, with
// it answering 503 from the second page on (after a first page holding
// the newest change), and with it refusing connections.
func TestSourceDown(t *testing.T) {
	t.Setenv("CITYHUB_OPERATOR_TOKEN", operatorToken)
	faults := []sourceFault{
		{
			name:    "HTTP 503",
			down:    func(e *endpoint) { e.setDown(1) },
			up:      func(e *endpoint) { e.setDown(0) },
			wantErr: []string{"HTTP 503 Service Unavailable", "the 311 database is under maintenance"},
			hits:    1,
		},
		{
			// the worst case for the checkpoint: the read breaks after a
			// page holding the newest request; moving the checkpoint to
			// it would skip the older change on page 2 for good
			name:          "HTTP 503 from page 2",
			down:          func(e *endpoint) { e.setDown(2) },
			up:            func(e *endpoint) { e.setDown(0) },
			wantErr:       []string{"page=2&", "HTTP 503 Service Unavailable"},
			hits:          2,
			changedBefore: []string{newRequest, closedLater1},
		},
		{
			name:    "connection refused",
			down:    (*endpoint).close,
			up:      (*endpoint).open,
			wantErr: []string{"connect: connection refused"},
		},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			testSourceDown(t, f)
		})
	}
}

// request names in the real data that the "source changed" document
// modifies, and the new request it adds.
const (
	closedLater1 = "4fbd3beeb1fe2c9f5c000001" // Graffiti, open on 2012-05-23
	closedLater2 = "4fbcdd89b1fe2cd142000000" // Weeds, open on 2012-05-23
	copiedFrom   = "4fbd2b76b1fe2c195f000000" // Weeds: the new request is a copy
	newRequest   = "4fbe1c2ab1fe2c0e31000000"
)

func testSourceDown(t *testing.T, f sourceFault) {
	services := []byte(mustRead(t, "testdata/sourcedown/bloomington_services.json"))
	var original []json.RawMessage
	if err := json.Unmarshal([]byte(mustRead(t, "testdata/sourcedown/bloomington_requests.json")), &original); err != nil {
		t.Fatal(err)
	}
	changed := changedRequests(t, original)

	src := newEndpoint(t, services, original)
	conf := mustConnectorFile(t, src.URL())
	s := MustStart(t, t.TempDir(), "--connectors", conf, "--load-on-start", "never")

	// the services first, so that the requests' FOR_SERVICE edges land
	if r := mustRun(t, s, "sourcedown-services"); r.status != "SUCCEEDED" || r.read != 46 {
		t.Fatalf("services run: %+v", r)
	}

	// run 1: everything
	run1 := mustRun(t, s, "sourcedown-requests")
	if run1.status != "SUCCEEDED" || run1.read != len(original) || run1.written != len(original) || run1.attempts != 1 {
		t.Fatalf("run 1 = %+v, want SUCCEEDED, %d read and written in 1 attempt", run1, len(original))
	}
	wantCP1 := newestCheckpoint(t, original)
	st1 := mustStatus(t, s, "sourcedown-requests")
	if st1.Checkpoint != wantCP1 || st1.LastStatus != "SUCCEEDED" || st1.LastSuccessAt == "" || st1.Running {
		t.Fatalf("status after run 1 = %+v, want SUCCEEDED with checkpoint %q", st1, wantCP1)
	}
	if n := countRequests(t, s); n != len(original) {
		t.Fatalf("%d service requests after run 1, want %d", n, len(original))
	}
	_, q1 := src.counters()
	if pages := pagesAsked(q1); !slices.Equal(pages, []string{"1", "2", "3"}) || q1[0].Has("updated_after") {
		t.Errorf("run 1 asked %v (pages %v), want pages 1, 2, 3 without updated_after", q1, pages)
	}
	t.Logf("run 1: read %d in %d attempt, checkpoint %q", run1.read, run1.attempts, st1.Checkpoint)

	// run 2: the source is down (and, in one case, changed before)
	if f.changedBefore != nil {
		src.setRequests(changed)
	}
	f.down(src)
	hits0, _ := src.counters()
	began := time.Now()
	run2 := mustRun(t, s, "sourcedown-requests")
	took := time.Since(began)
	hits1, _ := src.counters()
	reqURL := src.URL() + "/requests.json"
	// counted over every attempt
	wantRead2 := 3 * len(f.changedBefore)
	if run2.status != "FAILED" || run2.attempts != 3 || run2.read != wantRead2 || run2.written != wantRead2 {
		t.Errorf("run 2 with the source down = %+v, want FAILED after 3 attempts, %d read and written", run2, wantRead2)
	}
	for _, want := range append([]string{reqURL, "gave up after 3 attempts"}, f.wantErr...) {
		if !strings.Contains(run2.err, want) {
			t.Errorf("run 2 error %q does not say %q", run2.err, want)
		}
	}
	if hits1-hits0 != 3*f.hits {
		t.Errorf("the source saw %d requests during run 2, want %d (%d per attempt)", hits1-hits0, 3*f.hits, f.hits)
	}
	// backoff ceilings 200 ms and 400 ms: the run gives up quickly
	if took > 5*time.Second {
		t.Errorf("run 2 took %v, want it to give up within the retry budget (< 1 s of backoff)", took)
	}
	if n := retriesLogged(s.Log(), run2.run); n != 2 {
		t.Errorf("%d retries logged for run 2, want 2 (3 attempts)\n%s", n, s.Log())
	}
	st2 := mustStatus(t, s, "sourcedown-requests")
	if st2.Checkpoint != st1.Checkpoint {
		t.Errorf("checkpoint moved by the failed run: %q, was %q", st2.Checkpoint, st1.Checkpoint)
	}
	if st2.LastStatus != "FAILED" || st2.LastSuccessAt != st1.LastSuccessAt || !strings.Contains(st2.LastError, f.wantErr[0]) {
		t.Errorf("status after run 2 = %+v, want FAILED, lastSuccessAt %s and the reason", st2, st1.LastSuccessAt)
	}
	rec2 := mustIngestRun(t, s, run2.run)
	if rec2.Status != "FAILED" || rec2.Attempts != 3 || rec2.RecordsRead != wantRead2 || rec2.Watermark != st1.Checkpoint ||
		!strings.Contains(rec2.Error, f.wantErr[0]) || !strings.Contains(rec2.Error, reqURL) {
		t.Errorf("IngestRun of run 2 = %+v", rec2)
	}
	wantCount2 := len(original)
	if slices.Contains(f.changedBefore, newRequest) {
		wantCount2++
	}
	if n := countRequests(t, s); n != wantCount2 {
		t.Errorf("%d service requests after the failed run, want %d", n, wantCount2)
	}
	t.Logf("run 2 (%s): %s after %d attempts in %v, the source saw %d requests: %s",
		f.name, run2.status, run2.attempts, took.Round(time.Millisecond), hits1-hits0, run2.err)

	// meanwhile the source changed; it comes back
	src.setRequests(changed)
	f.up(src)
	_, qBefore := src.counters()
	run3 := mustRun(t, s, "sourcedown-requests")
	if run3.status != "SUCCEEDED" || run3.read != 3 || run3.written != 3 || run3.attempts != 1 {
		t.Errorf("run 3 after the source came back = %+v, want SUCCEEDED, 3 read and written (2 changed, 1 new)", run3)
	}
	_, q3 := src.counters()
	q3 = q3[len(qBefore):]
	wantAfter := checkpointTime(t, wantCP1).Add(-time.Second).Format(time.RFC3339)
	if pages := pagesAsked(q3); !slices.Equal(pages, []string{"1", "2", "3"}) {
		t.Errorf("run 3 asked pages %v, want 1, 2, 3", pages)
	}
	for _, q := range q3 {
		if q.Get("updated_after") != wantAfter {
			t.Errorf("run 3 sent updated_after=%q, want the checkpoint less 1 s, %q", q.Get("updated_after"), wantAfter)
		}
	}
	wantCP3 := newestCheckpoint(t, changed)
	st3 := mustStatus(t, s, "sourcedown-requests")
	if st3.Checkpoint != wantCP3 || st3.LastStatus != "SUCCEEDED" || !later(st3.LastSuccessAt, st1.LastSuccessAt) || st3.LastError != "" {
		t.Errorf("status after run 3 = %+v, want SUCCEEDED with checkpoint %q and a later lastSuccessAt than %s", st3, wantCP3, st1.LastSuccessAt)
	}
	rec3 := mustIngestRun(t, s, run3.run)
	if rec3.Status != "SUCCEEDED" || rec3.RecordsRead != 3 || rec3.RecordsWritten != 3 || rec3.Watermark != wantCP3 || rec3.Error != "" {
		t.Errorf("IngestRun of run 3 = %+v", rec3)
	}
	// which run wrote each new version: run 3, but the versions the failed
	// run already wrote stay its own (the same srcUpdatedAt does not
	// replace a node)
	writtenBy := map[string]string{closedLater1: run3.run, closedLater2: run3.run, newRequest: run3.run}
	for _, id := range f.changedBefore {
		writtenBy[id] = run2.run
	}
	checkCaughtUp(t, s, changed, run1.run, writtenBy)

	// the journal: three runs, in order
	r := s.MustQueryAs(t, operatorToken, `{
	  ingestRuns(where: {connectorCode: {eq: "sourcedown-requests"}}, orderBy: [{field: STARTED_AT}]) {
	    nodes { id status recordsRead attempts }
	  }
	}`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("ingestRuns: %s", r.Raw)
	}
	var got []string
	for _, n := range at(r.Data, "ingestRuns", "nodes").([]any) {
		got = append(got, fmt.Sprintf("%v %v read=%v attempts=%v", at(n, "id"), at(n, "status"), at(n, "recordsRead"), at(n, "attempts")))
	}
	want := []string{
		fmt.Sprintf("%s SUCCEEDED read=%d attempts=1", run1.run, len(original)),
		fmt.Sprintf("%s FAILED read=%d attempts=3", run2.run, wantRead2),
		run3.run + " SUCCEEDED read=3 attempts=1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("runs on record:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("run 3: read %d, checkpoint %q -> %q, %d requests in the store", run3.read, st1.Checkpoint, st3.Checkpoint, len(changed))
}

// changedRequests returns the requests as the source has them after the
// outage: two of the open requests closed later that day, and a new
// request (a copy of another with its own id and time) at the head of the
// list, where GeoReport servers put the newest.
func changedRequests(t testing.TB, original []json.RawMessage) []json.RawMessage {
	t.Helper()
	edit := func(raw json.RawMessage, change map[string]any) json.RawMessage {
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		for k, v := range change {
			if _, ok := m[k]; !ok && k != "status_notes" {
				t.Fatalf("request %s has no %q", m["service_request_id"], k)
			}
			m[k] = v
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	out := make([]json.RawMessage, 0, len(original)+1)
	var copied json.RawMessage
	edited := 0
	for _, raw := range original {
		var r struct {
			ID string `json:"service_request_id"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		switch r.ID {
		case closedLater1:
			raw = edit(raw, map[string]any{"status": "closed", "status_notes": "Graffiti removed.", "updated_datetime": "2012-05-24T09:12:44-04:00"})
			edited++
		case closedLater2:
			raw = edit(raw, map[string]any{"status": "closed", "status_notes": "Lot mowed.", "updated_datetime": "2012-05-24T10:03:19-04:00"})
			edited++
		case copiedFrom:
			copied = raw
		}
		out = append(out, raw)
	}
	if edited != 2 || copied == nil {
		t.Fatalf("the real requests lack %s, %s or %s", closedLater1, closedLater2, copiedFrom)
	}
	added := edit(copied, map[string]any{"service_request_id": newRequest,
		"requested_datetime": "2012-05-24T10:41:05-04:00", "updated_datetime": "2012-05-24T10:41:07-04:00"})
	return append([]json.RawMessage{added}, out...)
}

// newestCheckpoint is the checkpoint the open311 source commits after
// reading all of requests: the greatest (updated_datetime, id).
func newestCheckpoint(t testing.TB, requests []json.RawMessage) string {
	t.Helper()
	var best time.Time
	var bestID string
	for _, raw := range requests {
		var r struct {
			ID      string `json:"service_request_id"`
			Updated string `json:"updated_datetime"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		tm, err := time.Parse(time.RFC3339, r.Updated)
		if err != nil {
			t.Fatalf("request %s: %v", r.ID, err)
		}
		if tm.After(best) || tm.Equal(best) && r.ID > bestID {
			best, bestID = tm, r.ID
		}
	}
	return best.Format(time.RFC3339) + " " + bestID
}

func checkpointTime(t testing.TB, cp string) time.Time {
	t.Helper()
	ts, _, _ := strings.Cut(cp, " ")
	tm, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		t.Fatalf("checkpoint %q: %v", cp, err)
	}
	return tm
}

// checkCaughtUp checks the store after run 3: every request of the
// changed source once, the two changed and the new one with their new
// status and time written by the runs in writtenBy, the other 19
// untouched since run 1.
func checkCaughtUp(t testing.TB, s *Server, changed []json.RawMessage, run1 string, writtenBy map[string]string) {
	t.Helper()
	want := map[string]struct{ status, updated string }{}
	for _, raw := range changed {
		var r struct {
			ID      string `json:"service_request_id"`
			Status  string `json:"status"`
			Updated string `json:"updated_datetime"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		// the mapping's status map
		status := map[string]string{"open": "SUBMITTED", "closed": "CLOSED"}[r.Status]
		if status == "" {
			t.Fatalf("request %s: status %q", r.ID, r.Status)
		}
		want[r.ID] = struct{ status, updated string }{status, r.Updated}
	}
	r := s.MustQuery(t, `{
	  serviceRequests(first: 100) {
	    totalCount
	    nodes { requestNumber status statusNotes _provenance { run srcUpdatedAt } }
	  }
	}`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("serviceRequests: %s", r.Raw)
	}
	if n := at(r.Data, "serviceRequests", "totalCount"); n != float64(len(changed)) {
		t.Errorf("%v service requests after run 3, want %d", n, len(changed))
	}
	byRun := map[string]int{}
	seen := map[string]bool{}
	for _, n := range at(r.Data, "serviceRequests", "nodes").([]any) {
		id, _ := at(n, "requestNumber").(string)
		w, ok := want[id]
		if !ok || seen[id] {
			t.Errorf("request %q unknown to the source or present twice", id)
			continue
		}
		seen[id] = true
		run, _ := at(n, "_provenance", "run").(string)
		byRun[run]++
		wantRun := writtenBy[id]
		if wantRun == "" {
			wantRun = run1
		}
		upd, err := time.Parse(time.RFC3339, fmt.Sprint(at(n, "_provenance", "srcUpdatedAt")))
		wantUpd, _ := time.Parse(time.RFC3339, w.updated)
		if at(n, "status") != w.status || run != wantRun || err != nil || !upd.Equal(wantUpd) {
			t.Errorf("request %s: status %v, run %s, srcUpdatedAt %v; want %s, %s, %s",
				id, at(n, "status"), run, at(n, "_provenance", "srcUpdatedAt"), w.status, wantRun, w.updated)
		}
		if id == closedLater1 && at(n, "statusNotes") != "Graffiti removed." {
			t.Errorf("request %s: statusNotes %v", id, at(n, "statusNotes"))
		}
	}
	if byRun[run1] != len(changed)-len(writtenBy) {
		t.Errorf("requests by the run that wrote them: %v, want %d by run 1", byRun, len(changed)-len(writtenBy))
	}
}

// mustConnectorFile writes testdata/sourcedown.yaml with the endpoint's
// URL into a temporary directory and returns its path.
func mustConnectorFile(t testing.TB, base string) string {
	t.Helper()
	const placeholder = "url: http://sourcedown.invalid/open311/v2\n"
	tmpl := mustRead(t, "testdata/sourcedown.yaml")
	if n := strings.Count(tmpl, placeholder); n != 2 {
		t.Fatalf("testdata/sourcedown.yaml holds %q %d times, want 2", placeholder, n)
	}
	path := filepath.Join(t.TempDir(), "sourcedown.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(tmpl, placeholder, "url: "+base+"\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// connectorRun is runConnector's answer.
type connectorRun struct {
	run, status, err        string
	read, written, attempts int
}

func mustRun(t testing.TB, s *Server, name string) connectorRun {
	t.Helper()
	r := s.MustQueryAs(t, operatorToken, `mutation($name: String!) {
	  runConnector(name: $name) { run status read written attempts error }
	}`, map[string]any{"name": name})
	if len(r.Errors) > 0 {
		t.Fatalf("runConnector %s: %s", name, r.Raw)
	}
	c := at(r.Data, "runConnector")
	num := func(k string) int { f, _ := at(c, k).(float64); return int(f) }
	str := func(k string) string { v, _ := at(c, k).(string); return v }
	return connectorRun{run: str("run"), status: str("status"), err: str("error"),
		read: num("read"), written: num("written"), attempts: num("attempts")}
}

// connStatus is a connector's entry in connectorStatus.
type connStatus struct {
	LastStatus    string `json:"lastStatus"`
	LastSuccessAt string `json:"lastSuccessAt"`
	LastError     string `json:"lastError"`
	Checkpoint    string `json:"checkpoint"`
	Running       bool   `json:"running"`
}

func mustStatus(t testing.TB, s *Server, name string) connStatus {
	t.Helper()
	r := s.MustQueryAs(t, operatorToken, `{ connectorStatus { name lastStatus lastSuccessAt lastError checkpoint running } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("connectorStatus: %s", r.Raw)
	}
	var all struct {
		Data struct {
			ConnectorStatus []struct {
				Name string `json:"name"`
				connStatus
			} `json:"connectorStatus"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.Raw), &all); err != nil {
		t.Fatal(err)
	}
	for _, c := range all.Data.ConnectorStatus {
		if c.Name == name {
			return c.connStatus
		}
	}
	t.Fatalf("no connector %s in connectorStatus: %s", name, r.Raw)
	return connStatus{}
}

// ingestRunRecord is an IngestRun node.
type ingestRunRecord struct {
	Status         string `json:"status"`
	RecordsRead    int    `json:"recordsRead"`
	RecordsWritten int    `json:"recordsWritten"`
	Attempts       int    `json:"attempts"`
	Watermark      string `json:"watermark"`
	Error          string `json:"error"`
}

func mustIngestRun(t testing.TB, s *Server, id string) ingestRunRecord {
	t.Helper()
	r := s.MustQueryAs(t, operatorToken, `query($id: ID!) {
	  ingestRun(id: $id) { status recordsRead recordsWritten attempts watermark error }
	}`, map[string]any{"id": id})
	if len(r.Errors) > 0 || at(r.Data, "ingestRun") == nil {
		t.Fatalf("ingestRun %s: %s", id, r.Raw)
	}
	var out struct {
		Data struct {
			IngestRun ingestRunRecord `json:"ingestRun"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.Raw), &out); err != nil {
		t.Fatal(err)
	}
	return out.Data.IngestRun
}

func countRequests(t testing.TB, s *Server) int {
	t.Helper()
	r := s.MustQuery(t, `{ serviceRequests(first: 0) { totalCount } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("serviceRequests: %s", r.Raw)
	}
	n, _ := at(r.Data, "serviceRequests", "totalCount").(float64)
	return int(n)
}

// pagesAsked lists the page parameter of each requests.json query.
func pagesAsked(qs []url.Values) []string {
	var out []string
	for _, q := range qs {
		out = append(out, q.Get("page"))
	}
	return out
}

// retriesLogged counts the "attempt failed, retrying" lines of a run.
func retriesLogged(log, run string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="attempt failed, retrying"`) && strings.Contains(line, run) {
			n++
		}
	}
	return n
}

// later reports whether date-time a is after b.
func later(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339, a)
	tb, errB := time.Parse(time.RFC3339, b)
	return errA == nil && errB == nil && ta.After(tb)
}
