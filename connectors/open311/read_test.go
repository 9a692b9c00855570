package open311

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/google/go-cmp/cmp"
)

// bloomington is what the real requests file says, decoded independently
// of the source.
type bloomRequest struct {
	ID      string   `json:"service_request_id"`
	Updated string   `json:"updated_datetime"`
	Lat     *float64 `json:"lat"`
	Long    *float64 `json:"long"`
}

func mustBloomington(t testing.TB) []bloomRequest {
	t.Helper()
	var out []bloomRequest
	if err := stdjson.Unmarshal(MustRead(t, requestsFile), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantOrder returns the ids of the real requests sorted by (updated, id).
func wantOrder(t testing.TB) []string {
	reqs := mustBloomington(t)
	sort.Slice(reqs, func(i, j int) bool {
		ti, _ := time.Parse(time.RFC3339, reqs[i].Updated)
		tj, _ := time.Parse(time.RFC3339, reqs[j].Updated)
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return reqs[i].ID < reqs[j].ID
	})
	var out []string
	for _, r := range reqs {
		out = append(out, r.ID)
	}
	return out
}

func TestServices(t *testing.T) {
	srv := MustServer(t)
	data := MustRead(t, servicesFile)
	for _, tt := range []struct{ name, url, file string }{
		{"http", srv.url(), srv.url() + "/services.json?jurisdiction_id=bloomington.in.gov"},
		{"file", servicesFile, servicesFile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(tt.url, Services)
			cfg.JurisdictionID = "bloomington.in.gov"
			recs, err := read(t, MustSource(t, cfg), "")
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 46 {
				t.Fatalf("read %d services, want 46", len(recs))
			}
			groups := map[string]bool{}
			for i, r := range recs {
				if r.Err != nil {
					t.Errorf("%s: %v", r.Pos, r.Err)
					continue
				}
				if got := string(data[r.Pos.Offset : r.Pos.Offset+int64(len(r.Raw))]); got != string(r.Raw) {
					t.Errorf("%s: offset %d does not locate the raw record", r.Pos, r.Pos.Offset)
				}
				if r.Pos.File != tt.file || r.Pos.Index != i || r.Checkpoint != "" {
					t.Errorf("record %d pos = %+v, checkpoint %q", i, r.Pos, r.Checkpoint)
				}
				groups[r.Fields["group"].(string)] = true
			}
			first := recs[0].Fields
			want := map[string]any{"service_code": "4e09c863992b94b915000000", "service_name": "City Performance", "type": "realtime",
				"metadata": false, "keywords": "", "group": "Most Popular",
				"description": "Report issues or concerns about the City of Bloomington's performance in serving the public."}
			if diff := cmp.Diff(want, first); diff != "" {
				t.Errorf("first service (-want +got):\n%s", diff)
			}
			if len(groups) != 7 {
				t.Errorf("%d groups, want 7: %v", len(groups), groups)
			}
		})
	}
	if q := srv.received(); len(q) != 1 || q[0].Encode() != "jurisdiction_id=bloomington.in.gov" || srv.paths[0] != "/open311/v2/services.json" {
		t.Errorf("server got %v %v", srv.paths, q)
	}
}

func TestRequests(t *testing.T) {
	srv := MustServer(t)
	recs, err := read(t, MustSource(t, config(srv.url(), Requests)), "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantOrder(t), ids(recs)); diff != "" {
		t.Fatalf("ids in checkpoint order (-want +got):\n%s", diff)
	}
	located := 0
	var prev cursor
	for i, r := range recs {
		lat, lon := r.Fields["lat"], r.Fields["long"]
		if lat != nil && lon != nil && (lat != int64(0) || lon != int64(0)) {
			located++
		}
		c, err := parseCheckpoint(r.Checkpoint)
		if err != nil {
			t.Fatalf("record %d checkpoint %q: %v", i, r.Checkpoint, err)
		}
		if i > 0 && !c.after(prev) {
			t.Errorf("checkpoint %q does not come after %q", r.Checkpoint, prev)
		}
		if !strings.HasPrefix(r.Checkpoint, r.Fields["updated_datetime"].(string)+" ") {
			t.Errorf("checkpoint %q is not the record's updated_datetime %v", r.Checkpoint, r.Fields["updated_datetime"])
		}
		prev = c
	}
	if len(recs) != 21 || located != 13 {
		t.Errorf("%d requests, %d located; want 21, 13", len(recs), located)
	}
	// null lat/long is a plain record, not an error
	for _, r := range recs {
		if r.Fields["service_request_id"] == "4fbd40b2b1fe2c4b02000001" && (r.Err != nil || r.Fields["lat"] != nil) {
			t.Errorf("request without position: %+v", r)
		}
	}
	// one page: 21 < page_size 100
	if q := srv.received(); len(q) != 1 || q[0].Get("page") != "1" || q[0].Get("page_size") != "100" || q[0].Has("updated_after") {
		t.Errorf("queries = %v", q)
	}
}

func TestIncremental(t *testing.T) {
	for _, filter := range []bool{false, true} {
		name := "server ignores updated_after"
		if filter {
			name = "server honours updated_after"
		}
		t.Run(name, func(t *testing.T) {
			srv := MustServer(t)
			srv.filterUpdated = filter
			src := MustSource(t, config(srv.url(), Requests))
			all, err := read(t, src, "")
			if err != nil || len(all) != 21 {
				t.Fatalf("first read: %d records, %v", len(all), err)
			}
			cp := all[20].Checkpoint
			if cp != "2012-05-23T15:55:30-04:00 4fbd40b2b1fe2c4b02000001" {
				t.Errorf("last checkpoint = %q", cp)
			}

			// nothing changed: nothing new
			again, err := read(t, src, cp)
			if err != nil || len(again) != 0 {
				t.Fatalf("read from %q: %v, %v; want nothing", cp, ids(again), err)
			}
			q := srv.received()
			if got := q[len(q)-1].Get("updated_after"); got != "2012-05-23T15:55:29-04:00" {
				t.Errorf("updated_after = %q, want the checkpoint less one second", got)
			}

			// resuming after any record yields exactly the ones after it
			for _, k := range []int{0, 7, 19} {
				got, err := read(t, src, all[k].Checkpoint)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(ids(all[k+1:]), ids(got)); diff != "" {
					t.Errorf("read from record %d (-want +got):\n%s", k, diff)
				}
			}

			// one request updated on the server: only that one comes
			elems := MustElements(t, MustRead(t, requestsFile))
			const changed = "4fbcf0f9b1fe2c706f000000"
			for i, e := range elems {
				if bytes.Contains(e, []byte(changed)) {
					e = bytes.Replace(e, []byte(`"updated_datetime":"2012-05-23T10:15:21-04:00"`), []byte(`"updated_datetime":"2012-05-24T08:00:00-04:00"`), 1)
					elems[i] = bytes.Replace(e, []byte(`"status":"open"`), []byte(`"status":"closed"`), 1)
				}
			}
			srv.setRequests(elems)
			news, err := read(t, src, cp)
			if err != nil {
				t.Fatal(err)
			}
			if len(news) != 1 || news[0].Fields["service_request_id"] != changed || news[0].Fields["status"] != "closed" ||
				news[0].Checkpoint != "2012-05-24T08:00:00-04:00 "+changed {
				t.Fatalf("after the change: %v (%+v)", ids(news), news)
			}
			if after, err := read(t, src, news[0].Checkpoint); err != nil || len(after) != 0 {
				t.Errorf("read after the change's checkpoint: %v, %v", ids(after), err)
			}
		})
	}
}

// Two requests with the same updated_datetime: resuming after the first
// yields the second, not the first again.
func TestCheckpointTies(t *testing.T) {
	srv := MustServer(t)
	srv.filterUpdated = true // strictly after: the overlap second matters
	elems := MustElements(t, MustRead(t, requestsFile))
	// 4fbd1463… (12:46:31) gets the time of 4fbd149c… (12:47:28)
	for i, e := range elems {
		if bytes.Contains(e, []byte(`"4fbd1463b1fe2cc40c000000"`)) {
			elems[i] = bytes.Replace(e, []byte(`"updated_datetime":"2012-05-23T12:46:31-04:00"`), []byte(`"updated_datetime":"2012-05-23T12:47:28-04:00"`), 1)
		}
	}
	srv.setRequests(elems)
	src := MustSource(t, config(srv.url(), Requests))
	all, err := read(t, src, "")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(ids(all), "4fbd1463b1fe2cc40c000000")
	if i < 0 || ids(all)[i+1] != "4fbd149cb1fe2cff13000000" {
		t.Fatalf("tied requests not adjacent in id order: %v", ids(all))
	}
	got, err := read(t, src, all[i].Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids(all[i+1:]), ids(got)); diff != "" {
		t.Errorf("resume inside a tie (-want +got):\n%s", diff)
	}
}

func TestPaging(t *testing.T) {
	tests := []struct {
		name         string
		pageSize     int
		maxPages     int
		ignorePaging bool
		wantPages    []string // page parameter of each request
		wantRecords  int
		wantErr      string
	}{
		{"short last page", 5, 100, false, []string{"1", "2", "3", "4", "5"}, 21, ""},
		{"empty last page", 7, 100, false, []string{"1", "2", "3", "4"}, 21, ""},
		{"paging off", 0, 100, false, []string{""}, 21, ""},
		{"server ignores paging", 5, 100, true, []string{"1", "2"}, 21, ""},
		{"max_pages on a full page", 5, 2, false, []string{"1", "2"}, 10, "max_pages (2) reached and the last page was full"},
		{"max_pages on the short page", 5, 5, false, []string{"1", "2", "3", "4", "5"}, 21, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := MustServer(t)
			srv.ignorePaging = tt.ignorePaging
			cfg := config(srv.url(), Requests)
			cfg.PageSize, cfg.MaxPages = tt.pageSize, tt.maxPages
			recs, err := read(t, MustSource(t, cfg), "")
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			var pages []string
			for _, q := range srv.received() {
				pages = append(pages, q.Get("page"))
				if tt.pageSize > 0 && q.Get("page_size") != "5" && q.Get("page_size") != "7" {
					t.Errorf("page_size = %q", q.Get("page_size"))
				}
			}
			if diff := cmp.Diff(tt.wantPages, pages); diff != "" {
				t.Errorf("pages requested (-want +got):\n%s", diff)
			}
			if len(recs) != tt.wantRecords || len(slices.Compact(slices.Sorted(slices.Values(ids(recs))))) != tt.wantRecords {
				t.Errorf("%d records (%d distinct), want %d", len(recs), len(slices.Compact(slices.Sorted(slices.Values(ids(recs))))), tt.wantRecords)
			}
			for _, r := range recs {
				// a cut read does not move the checkpoint
				if (tt.wantErr != "") != (r.Checkpoint == "") {
					t.Errorf("record %s checkpoint %q after error %v", r.Pos, r.Checkpoint, err)
				}
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		path      string
		transient bool
		want      string
	}{
		{"503", []int{503}, basePath, true, "HTTP 503 Service Unavailable"},
		{"429", []int{429}, basePath, true, "HTTP 429 Too Many Requests"},
		{"404", nil, "/nothing/here", false, "GET http://"},
		{"403 names the server's reason", []int{403}, basePath, false, `"description":"Forbidden"`},
	}
	for _, tt := range tests {
		for _, res := range []Resource{Services, Requests} {
			t.Run(tt.name+"/"+string(res), func(t *testing.T) {
				srv := MustServer(t)
				srv.statuses = tt.statuses
				src := MustSource(t, config(srv.URL+tt.path, res))
				recs, err := read(t, src, "")
				if err == nil || len(recs) != 0 {
					t.Fatalf("read = %d records, %v; want an error", len(recs), err)
				}
				if connectors.IsTransient(err) != tt.transient || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "/"+string(res)+".json") {
					t.Errorf("error = %v (transient %v), want %q, transient %v", err, connectors.IsTransient(err), tt.want, tt.transient)
				}
				if tt.transient { // the next try succeeds
					recs, err := read(t, src, "")
					if err != nil || (len(recs) != 46 && len(recs) != 21) {
						t.Errorf("retry: %d records, %v", len(recs), err)
					}
				}
				if err := src.(connectors.Checker).Check(context.Background()); (err != nil) != (tt.path != basePath) {
					t.Errorf("Check after the failure = %v", err)
				}
			})
		}
	}
}

func TestBadResponses(t *testing.T) {
	data := MustRead(t, requestsFile)
	fourth := bytes.Index(data, []byte(`{"service_request_id":"4fbd1835`)) // the 5th element
	tests := []struct {
		name      string
		body      []byte
		records   int
		transient bool
		want      []string
	}{
		{"truncated", data[:fourth+40], 4, false, []string{"/requests.json?page=1&page_size=100: line 1, offset", "the JSON document ends early (truncated response)", "4 records read before it"}},
		{"syntax error", append(append([]byte{}, data[:fourth]...), []byte(`{"service_request_id":x}]`)...), 4, false, []string{"offset " + itoa(fourth) + ": $[4]: invalid character 'x'"}},
		{"object", []byte(`{"error":"no such endpoint"}`), 0, false, []string{"expected a JSON array of records, found an object"}},
		{"html", []byte("<html><body>Maintenance</body></html>"), 0, false, []string{"looks like XML or HTML: set format: xml"}},
		{"empty", nil, 0, false, []string{"empty response"}},
		{"broken connection", nil, 0, true, []string{"unexpected EOF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := MustServer(t)
			srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
				if tt.transient {
					w.Header().Set("Content-Length", itoa(len(data)))
					w.Write(data[:100])
					return true
				}
				w.Write(tt.body)
				return true
			}
			recs, err := read(t, MustSource(t, config(srv.url(), Requests)), "")
			if err == nil || len(recs) != tt.records || connectors.IsTransient(err) != tt.transient {
				t.Fatalf("read = %d records, %v (transient %v)", len(recs), err, connectors.IsTransient(err))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want %q", err, w)
				}
			}
			var fe *FormatError
			if !tt.transient && !errors.As(err, &fe) {
				t.Errorf("error %v is not a *FormatError", err)
			}
			for _, r := range recs {
				if r.Checkpoint != "" {
					t.Errorf("record %s of a broken read has checkpoint %q", r.Pos, r.Checkpoint)
				}
			}
		})
	}
}

func TestRecordErrors(t *testing.T) {
	body := `[{"service_request_id":"1","updated_datetime":"2012-05-23T10:00:00Z"},` +
		`7,` +
		`{"token":"12345","requested_datetime":"2012-05-23T09:00:00Z"},` +
		`{"service_request_id":"2","updated_datetime":"yesterday"},` +
		`{"service_request_id":3,"requested_datetime":"2012-05-23 08:00:00","updated_datetime":null},` +
		`{"service_request_id":"4"},` +
		`{"service_request_id":"1","updated_datetime":"2012-05-23T11:00:00Z","status":"closed"}]`
	srv := MustServer(t)
	srv.hook = func(w http.ResponseWriter, r *http.Request) bool { w.Write([]byte(body)); return true }
	cfg := config(srv.url(), Requests)
	cfg.Timezone = "America/Chicago"
	recs, err := read(t, MustSource(t, cfg), "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		if r.Err != nil {
			got = append(got, r.Pos.Path+" err: "+r.Err.Error()+" cp="+r.Checkpoint)
		} else {
			got = append(got, r.Pos.Path+" "+r.Checkpoint)
		}
	}
	want := []string{
		"$[1] err: record is not a JSON object cp=",
		"$[2] err: request has no service_request_id yet (token 12345): the server has not accepted it cp=",
		`$[3] err: service request 2: updated_datetime: "yesterday" is not a date-time (RFC 3339, e.g. 2012-05-23T15:55:30-04:00) cp=`,
		"$[5] err: service request 4: neither updated_datetime nor requested_datetime is set cp=",
		"$[6] 2012-05-23T11:00:00Z 1",      // the later of the two versions of request 1
		"$[4] 2012-05-23T08:00:00-05:00 3", // zoneless requested_datetime, in the configured zone (13:00Z)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestAPIKey(t *testing.T) {
	const secret = "s3cr&t key"
	env := func(name string) (string, bool) {
		if name == "CITYHUB_OPEN311_KEY" {
			return secret, true
		}
		return "", false
	}
	srv := MustServer(t)
	cfg := config(srv.url(), Requests)
	cfg.APIKeyEnv = "CITYHUB_OPEN311_KEY"
	src := MustSource(t, cfg, WithLookupEnv(env))
	recs, err := read(t, src, "")
	if err != nil || len(recs) != 21 {
		t.Fatalf("read: %d, %v", len(recs), err)
	}
	if got := srv.received()[0].Get("api_key"); got != secret {
		t.Errorf("server got api_key %q", got)
	}
	if strings.Contains(recs[0].Pos.File, "s3cr") || !strings.Contains(recs[0].Pos.File, "api_key=REDACTED") {
		t.Errorf("position shows %q", recs[0].Pos.File)
	}
	srv.statuses = []int{401}
	_, err = read(t, src, "")
	if err == nil || strings.Contains(err.Error(), "s3cr") || !strings.Contains(err.Error(), "api_key=REDACTED") || !strings.Contains(err.Error(), "401") {
		t.Errorf("error = %v; want 401 with the key masked", err)
	}
	cfg.APIKeyEnv = "CITYHUB_MISSING"
	_, err = read(t, MustSource(t, cfg, WithLookupEnv(env)), "")
	if err == nil || !strings.Contains(err.Error(), "environment variable CITYHUB_MISSING is not set") {
		t.Errorf("error = %v", err)
	}
}

func TestCheck(t *testing.T) {
	srv := MustServer(t)
	for _, tt := range []struct {
		name string
		cfg  Config
		want string // "" for success
	}{
		{"services", config(srv.url(), Services), ""},
		{"requests", config(srv.url(), Requests), ""},
		{"services file", config(servicesFile, Services), ""},
		{"xml services file", Config{URL: "testdata/sanfrancisco_services.xml", Resource: Services, Format: XML}, ""},
		{"malformed xml", Config{URL: "testdata/malformed/sanfrancisco_requests.xml", Resource: Requests, Format: XML}, "element <request> closed by </service_requests>"},
		{"missing file", config("testdata/nothing.json", Services), "no such file"},
		{"wrong resource file", config(servicesFile, Requests), ""}, // well-formed: records are checked at read
		{"404", config(srv.URL+"/v1", Services), "HTTP 404"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			def := DefaultConfig()
			if cfg.MaxPages == 0 {
				cfg.PageSize, cfg.MaxPages, cfg.Timeout, cfg.MaxResponseBytes, cfg.UpdatedAfterParam = 10, def.MaxPages, def.Timeout, def.MaxResponseBytes, def.UpdatedAfterParam
			}
			err := MustSource(t, cfg).(connectors.Checker).Check(t.Context())
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check = %v, want %q", err, tt.want)
			}
		})
	}
	if q := srv.received(); len(q) != 3 || q[1].Get("page") != "1" || q[1].Get("page_size") != "100" {
		t.Errorf("Check asked %v", q)
	}
}

func TestContextCancelled(t *testing.T) {
	srv := MustServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n := 0
	err := MustSource(t, config(srv.url(), Requests)).Read(ctx, func(connectors.Record) error { n++; return nil })
	if !errors.Is(err, context.Canceled) || n != 0 || connectors.IsTransient(err) {
		t.Errorf("Read on a cancelled context = %v, %d records", err, n)
	}
}

func TestEmitError(t *testing.T) {
	stop := errors.New("stop")
	for _, res := range []Resource{Services, Requests} {
		n := 0
		err := MustSource(t, config("testdata/bloomington_"+string(res)+".json", res)).Read(t.Context(), func(connectors.Record) error {
			n++
			if n == 3 {
				return stop
			}
			return nil
		})
		if err != stop || n != 3 {
			t.Errorf("%s: Read = %v after %d records; want emit's error unchanged after 3", res, err, n)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
