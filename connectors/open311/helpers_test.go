package open311

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
)

const (
	servicesFile = "testdata/bloomington_services.json"
	requestsFile = "testdata/bloomington_requests.json"
	basePath     = "/open311/v2"
)

// MustRead returns a file's bytes.
func MustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// MustElements splits a JSON array into its elements, bytes unchanged.
func MustElements(t testing.TB, data []byte) []stdjson.RawMessage {
	t.Helper()
	var out []stdjson.RawMessage
	if err := stdjson.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func joinArray(elems []stdjson.RawMessage) []byte {
	return append(append([]byte("["), bytes.Join(toBytes(elems), []byte(","))...), ']')
}

func toBytes(elems []stdjson.RawMessage) [][]byte {
	out := make([][]byte, len(elems))
	for i, e := range elems {
		out[i] = e
	}
	return out
}

// server is a GeoReport endpoint on httptest serving the real Bloomington
// files: services.json as stored; requests.json as stored when asked
// without page, else the page of page_size elements. Its data can be
// changed between reads.
type server struct {
	*httptest.Server
	mu sync.Mutex
	// services and requests are the bodies served.
	services []byte
	requests []byte
	// filterUpdated makes the server honour updated_after.
	filterUpdated bool
	// ignorePaging serves every page as the whole list.
	ignorePaging bool
	// statuses are answered, one per request, before the data.
	statuses []int
	// hook, when set, answers instead of the data.
	hook func(w http.ResponseWriter, r *http.Request) bool
	// queries received, in order.
	queries []url.Values
	paths   []string
}

// MustServer starts a server with the real files.
func MustServer(t testing.TB) *server {
	t.Helper()
	s := &server{services: MustRead(t, servicesFile), requests: MustRead(t, requestsFile)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *server) url() string { return s.URL + basePath }

func (s *server) setRequests(elems []stdjson.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = joinArray(elems)
}

func (s *server) received() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.queries...)
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = append(s.queries, r.URL.Query())
	s.paths = append(s.paths, r.URL.Path)
	if len(s.statuses) > 0 {
		st := s.statuses[0]
		s.statuses = s.statuses[1:]
		http.Error(w, `[{"code":`+strconv.Itoa(st)+`,"description":"`+http.StatusText(st)+`"}]`, st)
		return
	}
	if s.hook != nil && s.hook(w, r) {
		return
	}
	switch r.URL.Path {
	case basePath + "/services.json":
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.services)
	case basePath + "/requests.json":
		w.Header().Set("Content-Type", "application/json")
		q := r.URL.Query()
		if !s.filterUpdated && (s.ignorePaging || q.Get("page") == "") {
			w.Write(s.requests)
			return
		}
		var elems []stdjson.RawMessage
		if err := stdjson.Unmarshal(s.requests, &elems); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if after := q.Get("updated_after"); s.filterUpdated && after != "" {
			at, err := time.Parse(time.RFC3339, after)
			if err != nil {
				http.Error(w, `[{"code":400,"description":"bad updated_after"}]`, 400)
				return
			}
			var kept []stdjson.RawMessage
			for _, e := range elems {
				var r struct {
					Updated time.Time `json:"updated_datetime"`
				}
				if err := stdjson.Unmarshal(e, &r); err == nil && r.Updated.After(at) {
					kept = append(kept, e)
				}
			}
			elems = kept
		}
		if page, _ := strconv.Atoi(q.Get("page")); page > 0 && !s.ignorePaging {
			size, _ := strconv.Atoi(q.Get("page_size"))
			lo, hi := min((page-1)*size, len(elems)), min(page*size, len(elems))
			elems = elems[lo:hi]
		}
		w.Write(joinArray(elems))
	default:
		http.Error(w, `[{"code":404,"description":"not found"}]`, 404)
	}
}

// MustSource builds a source from cfg (on top of DefaultConfig).
func MustSource(t testing.TB, cfg Config, opts ...Option) connectors.Source {
	t.Helper()
	src, err := NewSource(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func config(url string, res Resource) Config {
	cfg := DefaultConfig()
	cfg.URL, cfg.Resource = url, res
	return cfg
}

// read reads src from checkpoint ("" with Read) and returns the records.
func read(t testing.TB, src connectors.Source, checkpoint string) ([]connectors.Record, error) {
	t.Helper()
	var out []connectors.Record
	emit := func(r connectors.Record) error {
		if (r.Err == nil) == (r.Fields == nil) {
			t.Errorf("record %s: exactly one of Err (%v) and Fields must be set", r.Pos, r.Err)
		}
		out = append(out, r)
		return nil
	}
	var err error
	if checkpoint == "" {
		err = src.Read(context.Background(), emit)
	} else {
		err = src.(connectors.Resumer).ReadFrom(context.Background(), checkpoint, emit)
	}
	return out, err
}

func ids(recs []connectors.Record) []string {
	var out []string
	for _, r := range recs {
		id, _ := idText(r.Fields["service_request_id"])
		out = append(out, id)
	}
	return out
}
