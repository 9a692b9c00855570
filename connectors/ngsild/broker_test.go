package ngsild

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
)

// brokerEntity is one entity a test broker holds: both published forms of
// one model and the time the broker last modified it.
type brokerEntity struct {
	model, id, typ        string
	normalized, keyValues map[string]any
	mod                   time.Time
}

// brokerClock gives the modification time of each model's entity: later
// models in file order were modified earlier, so the resume order reverses
// the broker's order, and Device and DeviceMeasurement share a time (their
// ids break the tie).
func brokerClock(model string) time.Time {
	base := time.Date(2024, 5, 1, 10, 9, 0, 0, time.UTC)
	i := slices.Index(models, model)
	if model == "Device" {
		i = 3
	}
	return base.Add(-time.Duration(i) * time.Minute)
}

// resumeOrder is the expected (modification time, id) order of the models.
var resumeOrder = []string{"WaterQualityObserved", "WasteContainer", "TrafficFlowObserved", "Streetlight", "ParkingSpot",
	"OffStreetParking", "Device", "DeviceMeasurement", "Alert", "AirQualityObserved"}

// testBroker is a context broker serving the published examples of the ten
// models through the NGSI-LD or NGSI v2 query API: type filter, limit and
// offset paging, key-values option, system attributes (NGSI-LD
// options=sysAttrs, NGSI v2 builtin dateModified) and the modification-time
// q filter. It records what it was asked.
type testBroker struct {
	api      API
	entities []brokerEntity

	mu       sync.Mutex
	requests []*http.Request
	served   int                  // entities sent
	fail     map[int]int          // request number (1-based) → HTTP status
	truncate map[int]bool         // request number → body cut in the middle
	ignoreOf bool                 // answer every page from offset 0
	noCount  bool                 // never announce the count
	mutate   func(map[string]any) // applied to each entity sent
}

func newTestBroker(t testing.TB, api API) (*testBroker, *httptest.Server) {
	t.Helper()
	b := &testBroker{api: api, fail: map[int]int{}, truncate: map[int]bool{}}
	kvFile, normFile := ldKeyValues, ldNormalized
	if api == APIV2 {
		kvFile, normFile = v2KeyValues, v2Normalized
	}
	for _, m := range models {
		e := brokerEntity{model: m, mod: brokerClock(m)}
		for file, dst := range map[string]*map[string]any{kvFile: &e.keyValues, normFile: &e.normalized} {
			if err := json.Unmarshal(mustRead(t, m, file), dst); err != nil {
				t.Fatal(err)
			}
		}
		e.id, e.typ = e.normalized["id"].(string), e.normalized["type"].(string)
		b.entities = append(b.entities, e)
	}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return b, srv
}

var (
	ldModifiedQ = regexp.MustCompile(`^modifiedAt>="([^"]+)"$`)
	v2ModifiedQ = regexp.MustCompile(`^dateModified>=(\S+)$`)
)

func (b *testBroker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests = append(b.requests, r.Clone(r.Context()))
	n := len(b.requests)
	if st := b.fail[n]; st != 0 {
		http.Error(w, `{"type":"https://uri.etsi.org/ngsi-ld/errors/InternalError","title":"busy"}`, st)
		return
	}
	path := "/ngsi-ld/v1/entities"
	if b.api == APIV2 {
		path = "/v2/entities"
	}
	if r.URL.Path != path {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	types := map[string]bool{}
	for _, t := range strings.Split(q.Get("type"), ",") {
		if t != "" {
			types[t] = true
		}
	}
	if b.api == APILD && len(types) == 0 && q.Get("q") == "" {
		http.Error(w, "type or q required", http.StatusBadRequest)
		return
	}
	limit, err1 := strconv.Atoi(q.Get("limit"))
	offset, err2 := strconv.Atoi(q.Get("offset"))
	if err1 != nil || err2 != nil || limit < 1 || limit > 1000 || offset < 0 {
		http.Error(w, "bad limit or offset", http.StatusBadRequest)
		return
	}
	if b.ignoreOf {
		offset = 0
	}
	opts := strings.Split(q.Get("options"), ",")
	var since time.Time
	if expr := q.Get("q"); expr != "" {
		re := ldModifiedQ
		if b.api == APIV2 {
			re = v2ModifiedQ
		}
		m := re.FindStringSubmatch(expr)
		if m == nil {
			http.Error(w, "unsupported q "+expr, http.StatusBadRequest)
			return
		}
		var err error
		if since, err = time.Parse(time.RFC3339Nano, m[1]); err != nil {
			http.Error(w, "bad date in q", http.StatusBadRequest)
			return
		}
	}
	var match []map[string]any
	for _, e := range b.entities {
		if (len(types) > 0 && !types[e.typ]) || e.mod.Before(since) {
			continue
		}
		src := e.normalized
		if slices.Contains(opts, "keyValues") {
			src = e.keyValues
		}
		out := maps.Clone(src)
		mod := e.mod.Format(time.RFC3339)
		switch b.api {
		case APILD:
			if slices.Contains(opts, "sysAttrs") {
				out["createdAt"], out["modifiedAt"] = "2024-01-01T00:00:00Z", mod
			}
			if r.Header.Get("Accept") == mediaJSON {
				delete(out, "@context")
			}
		case APIV2:
			if strings.Contains(q.Get("attrs"), "dateModified") { // the builtin attribute
				if slices.Contains(opts, "keyValues") {
					out["dateModified"] = mod
				} else {
					out["dateModified"] = map[string]any{"type": "DateTime", "value": mod, "metadata": map[string]any{}}
				}
			}
		}
		if b.mutate != nil {
			b.mutate(out)
		}
		match = append(match, out)
	}
	switch {
	case b.noCount:
	case b.api == APIV2 && slices.Contains(opts, "count"):
		w.Header().Set("Fiware-Total-Count", strconv.Itoa(len(match)))
	case b.api == APILD && q.Get("count") == "true":
		w.Header().Set("NGSILD-Results-Count", strconv.Itoa(len(match)))
	}
	page := match[min(offset, len(match)):min(offset+limit, len(match))]
	b.served += len(page)
	body, _ := json.Marshal(page)
	w.Header().Set("Content-Type", r.Header.Get("Accept"))
	if b.truncate[n] {
		body = body[:len(body)/2]
	}
	w.Write(body)
}

func (b *testBroker) log() (offsets []string, last *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.requests {
		offsets = append(offsets, r.URL.Query().Get("offset")+"+"+r.URL.Query().Get("limit"))
	}
	return offsets, b.requests[len(b.requests)-1]
}

func (b *testBroker) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests, b.served = nil, 0
}

func ids(recs []connectors.Record) []string {
	var out []string
	for _, r := range recs {
		if r.Err != nil {
			out = append(out, "error: "+r.Err.Error())
			continue
		}
		out = append(out, r.Fields["id"].(string))
	}
	return out
}

func (b *testBroker) idsOf(order []string) []string {
	var out []string
	for _, m := range order {
		for _, e := range b.entities {
			if e.model == m {
				out = append(out, e.id)
			}
		}
	}
	return out
}

const allTypes = "AirQualityObserved,Alert,Device,DeviceMeasurement,OffStreetParking,ParkingSpot,Streetlight,TrafficFlowObserved,WasteContainer,WaterQualityObserved"

func TestBrokerLD(t *testing.T) {
	b, srv := newTestBroker(t, APILD)
	ctxURL := "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
	src := mustSource(t, ".", fmt.Sprintf("broker: %s/\ntype: %q\npage_size: 3\ncontext: %s\ntenant: madrid", srv.URL, allTypes, ctxURL))

	recs, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(recs), b.idsOf(models); !slices.Equal(got, want) {
		t.Fatalf("Read = %q,\nwant %q", got, want)
	}
	offsets, last := b.log()
	if strings.Join(offsets, " ") != "0+3 3+3 6+3 9+3" {
		t.Errorf("pages asked = %q, want 0+3 3+3 6+3 9+3 (stop at the short page)", offsets)
	}
	h := last.Header
	if h.Get("Accept") != mediaLD || h.Get("NGSILD-Tenant") != "madrid" ||
		h.Get("Link") != "<"+ctxURL+`>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"` {
		t.Errorf("headers = %v", h)
	}
	if q := last.URL.Query(); q.Get("type") != allTypes || q.Get("options") != "sysAttrs" || q.Get("count") != "true" || q.Has("q") {
		t.Errorf("query = %s", last.URL.RawQuery)
	}
	for i, r := range recs {
		m := models[i]
		want, geom := mustFlatten(t, m, ldNormalized, FormatAuto)
		want["createdAt"], want["modifiedAt"] = "2024-01-01T00:00:00Z", brokerClock(m).Format(time.RFC3339)
		if !sameValue(r.Fields, want) || !sameGeometry(r.Geometry, geom) {
			t.Errorf("%s: fields differ from the file's", m)
		}
		if r.Pos.Index != i || r.Pos.Path != "$["+strconv.Itoa(i%3)+"]" || !strings.Contains(r.Pos.File, "offset="+strconv.Itoa(i/3*3)) {
			t.Errorf("%s: position %+v", m, r.Pos)
		}
		if r.Checkpoint != "" {
			t.Errorf("Read set checkpoint %q", r.Checkpoint)
		}
	}

	// resume: sorted by (modifiedAt, id), checkpoints increasing
	b.reset()
	all, err := readFrom(t, src, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(all), b.idsOf(resumeOrder); !slices.Equal(got, want) {
		t.Fatalf("ReadFrom(\"\") = %q,\nwant %q", got, want)
	}
	device := all[6].Checkpoint // ties with DeviceMeasurement
	if device != "2024-05-01T10:06:00Z|urn:ngsi-ld:Device:device-9845A" || all[7].Checkpoint != "2024-05-01T10:06:00Z|urn:ngsi-ld:MEASUREMENT:id:PMZY:77452386" {
		t.Errorf("checkpoints %q, %q", device, all[7].Checkpoint)
	}
	b.reset()
	rest, err := readFrom(t, src, device)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(rest), b.idsOf(resumeOrder[7:]); !slices.Equal(got, want) {
		t.Errorf("ReadFrom(Device) = %q, want %q", got, want)
	}
	if b.served != 10 {
		t.Errorf("client-side resume: broker sent %d entities, want all 10", b.served)
	}

	// resume_filter: query asks the broker for modifiedAt >= the checkpoint time
	qsrc := mustSource(t, ".", fmt.Sprintf("broker: %s\ntype: %q\npage_size: 3\nresume_filter: query\nq: 'modifiedAt>=\"2024-05-01T10:06:00Z\"'", srv.URL, allTypes))
	if _, err := readFrom(t, qsrc, device); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Errorf("the test broker takes one q expression; with q joined: %v", err)
	}
	qsrc = mustSource(t, ".", fmt.Sprintf("broker: %s\ntype: %q\npage_size: 3\nresume_filter: query", srv.URL, allTypes))
	b.reset()
	rest, err = readFrom(t, qsrc, device)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(rest), b.idsOf(resumeOrder[7:]); !slices.Equal(got, want) {
		t.Errorf("ReadFrom(Device) with query = %q, want %q", got, want)
	}
	_, last = b.log()
	if q := last.URL.Query().Get("q"); q != `modifiedAt>="2024-05-01T10:06:00Z"` || b.served != 4 {
		t.Errorf("q = %s, broker sent %d entities, want 4 (Device, DeviceMeasurement, Alert, AirQualityObserved)", q, b.served)
	}
}

func TestBrokerV2(t *testing.T) {
	b, srv := newTestBroker(t, APIV2)
	t.Setenv("CITYHUB_TEST_ORION_TOKEN", "tok-1")
	src := mustSource(t, ".", fmt.Sprintf("broker: %s\napi: ngsi_v2\npage_size: 5\ntenant: porto\nservice_path: /parking\napi_key_env: CITYHUB_TEST_ORION_TOKEN\napi_key_header: X-Auth-Token", srv.URL))
	recs, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(recs), b.idsOf(models); !slices.Equal(got, want) {
		t.Fatalf("Read = %q,\nwant %q", got, want)
	}
	offsets, last := b.log()
	if strings.Join(offsets, " ") != "0+5 5+5" {
		t.Errorf("pages asked = %q: the count (Fiware-Total-Count: 10) ends the read after two pages of five", offsets)
	}
	h, q := last.Header, last.URL.Query()
	if h.Get("Accept") != mediaJSON || h.Get("Fiware-Service") != "porto" || h.Get("Fiware-ServicePath") != "/parking" || h.Get("NGSILD-Tenant") != "" || h.Get("X-Auth-Token") != "tok-1" {
		t.Errorf("headers = %v", h)
	}
	if q.Get("options") != "count" || q.Get("attrs") != "dateCreated,dateModified,*" || q.Has("type") {
		t.Errorf("query = %s", last.URL.RawQuery)
	}
	for i, r := range recs {
		want, _ := mustFlatten(t, models[i], v2Normalized, FormatAuto)
		want["dateModified"] = brokerClock(models[i]).Format(time.RFC3339)
		if !sameValue(r.Fields, want) {
			t.Errorf("%s: fields differ from the file's", models[i])
		}
	}
	// without the count, ten entities in pages of five end with an empty page
	b.reset()
	b.noCount = true
	if recs, err := readAll(t, src); err != nil || len(recs) != 10 {
		t.Fatalf("without count: %d records, %v", len(recs), err)
	}
	if offsets, _ := b.log(); strings.Join(offsets, " ") != "0+5 5+5 10+5" {
		t.Errorf("pages asked without count = %q", offsets)
	}
	b.noCount = false
	// NGSI v2 resumes with q=dateModified>= by default
	b.reset()
	rest, err := readFrom(t, src, "2024-05-01T10:06:00Z|device-9845A")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(rest), b.idsOf(resumeOrder[7:]); !slices.Equal(got, want) {
		t.Errorf("ReadFrom = %q, want %q", got, want)
	}
	if _, last = b.log(); last.URL.Query().Get("q") != "dateModified>=2024-05-01T10:06:00Z" || b.served != 4 {
		t.Errorf("q = %q, served %d", last.URL.Query().Get("q"), b.served)
	}
	if rest[0].Checkpoint != "2024-05-01T10:06:00Z|urn:ngsi-ld:MEASUREMENT:id:PMZY:77452386" {
		t.Errorf("checkpoint %q", rest[0].Checkpoint)
	}
}

func TestBrokerKeyValues(t *testing.T) {
	for _, api := range []API{APILD, APIV2} {
		b, srv := newTestBroker(t, api)
		src := mustSource(t, ".", fmt.Sprintf("broker: %s\napi: %s\ntype: ParkingSpot,OffStreetParking\nformat: key_values\naccept: application/json", srv.URL, api))
		recs, err := readAll(t, src)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(recs), b.idsOf([]string{"OffStreetParking", "ParkingSpot"}); !slices.Equal(got, want) {
			t.Fatalf("%s: Read = %q, want %q", api, got, want)
		}
		_, last := b.log()
		if !strings.Contains(last.URL.Query().Get("options"), "keyValues") || last.Header.Get("Accept") != mediaJSON {
			t.Errorf("%s: query %s, Accept %s", api, last.URL.RawQuery, last.Header.Get("Accept"))
		}
		file := ldKeyValues
		if api == APIV2 {
			file = v2KeyValues
		}
		want, _ := mustFlatten(t, "ParkingSpot", file, FormatKeyValues)
		for _, k := range []string{"createdAt", "modifiedAt", "dateModified"} {
			delete(recs[1].Fields, k)
		}
		if !sameValue(recs[1].Fields, want) {
			t.Errorf("%s: ParkingSpot = %v, want %v", api, recs[1].Fields, want)
		}
	}
}

func TestBrokerErrors(t *testing.T) {
	b, srv := newTestBroker(t, APILD)
	cfg := fmt.Sprintf("broker: %s\ntype: %q\npage_size: 3", srv.URL, allTypes)

	// a 503 on the second page: the first page was emitted, the error is transient
	b.fail[2] = http.StatusServiceUnavailable
	recs, err := readAll(t, mustSource(t, ".", cfg))
	if len(recs) != 3 || !connectors.IsTransient(err) || !strings.Contains(err.Error(), "HTTP 503") {
		t.Errorf("503: %d records, error %v", len(recs), err)
	}
	// a body cut short: transient
	b.reset()
	b.fail, b.truncate = map[int]int{}, map[int]bool{1: true}
	if _, err := readAll(t, mustSource(t, ".", cfg)); !connectors.IsTransient(err) {
		t.Errorf("truncated page: error %v, want transient", err)
	}
	// a 404 (wrong base URL): not transient
	b.reset()
	b.truncate = map[int]bool{}
	_, err = readAll(t, mustSource(t, ".", fmt.Sprintf("broker: %s/wrong\ntype: T", srv.URL)))
	if err == nil || connectors.IsTransient(err) || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("404: error %v", err)
	}
	// a broker that ignores offset would page forever: max_entities stops it
	b.reset()
	b.ignoreOf = true
	_, err = readAll(t, mustSource(t, ".", cfg+"\nmax_entities: 7"))
	if err == nil || !strings.Contains(err.Error(), "more than max_entities (7)") {
		t.Errorf("endless paging: %v", err)
	}
	b.ignoreOf = false
	// a malformed entity on a page is an error record at its position
	b.reset()
	b.mutate = func(m map[string]any) {
		if m["type"] == "Device" {
			m["batteryLevel"] = map[string]any{"type": "Property", "unitCode": "P1"}
		}
	}
	recs, err = readAll(t, mustSource(t, ".", cfg))
	if err != nil || len(recs) != 10 || recs[2].Err == nil || recs[2].Pos.Index != 2 ||
		recs[2].Err.Error() != `entity "urn:ngsi-ld:Device:device-9845A": attribute "batteryLevel": neither value nor object` {
		t.Errorf("malformed entity: %d records, %v, record 2 = %v at %+v", len(recs), err, recs[2].Err, recs[2].Pos)
	}
	// Check: one entity, the first; it is malformed here
	b.reset()
	b.mutate = func(m map[string]any) { delete(m, "id") }
	err = mustSource(t, ".", cfg).Check(t.Context())
	if _, last := b.log(); err == nil || !strings.Contains(err.Error(), "entity has no id") || last.URL.Query().Get("limit") != "1" {
		t.Errorf("Check = %v", err)
	}
	b.mutate = nil
	if err := mustSource(t, ".", cfg).Check(t.Context()); err != nil {
		t.Errorf("Check = %v", err)
	}
	if err := mustSource(t, ".", fmt.Sprintf("broker: %s/wrong\ntype: T", srv.URL)).Check(t.Context()); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("Check(wrong URL) = %v", err)
	}
}

// TestURLOrigin reads a file served over HTTP.
func TestURLOrigin(t *testing.T) {
	data := mustRead(t, "AirQualityObserved", ldNormalized)
	var accept, trace string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept, trace = r.Header.Get("Accept"), r.Header.Get("X-Trace")
		w.Write(data)
	}))
	defer srv.Close()
	recs, err := readAll(t, mustSource(t, ".", "url: "+srv.URL+"/aqo.jsonld\nheaders: {X-Trace: t1}"))
	if err != nil || len(recs) != 1 || recs[0].Fields["no2_unitCode"] != "GQ" || recs[0].Pos.File != srv.URL+"/aqo.jsonld" || accept != mediaLD || trace != "t1" {
		t.Errorf("URL read: %v, %v, Accept %q, X-Trace %q", recs, err, accept, trace)
	}
}
