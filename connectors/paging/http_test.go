package paging

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
)

const keyEnv = "CITYHUB_PAGING_TEST_KEY"

// gbfsServer serves the real Hubway GBFS discovery document in the ways
// the fetcher must handle, recording the headers of each request.
func gbfsServer(t *testing.T) (*httptest.Server, []byte, func() []http.Header) {
	t.Helper()
	doc, err := os.ReadFile("testdata/boston_hubway_gbfs.json")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		half := len(doc) / 2
		switch r.URL.Path {
		case "/gbfs.json":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Link", `</gbfs.json?page=2>; rel="next"`)
			w.Write(doc)
		case "/busy":
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		case "/cut": // promises the whole document, sends half
			w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
			w.Write(doc[:half])
		case "/stall": // sends half, then stays silent
			w.Write(doc[:half])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "/slow-headers":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "/trickle": // the whole document, 40 bytes every 10ms
			for i := 0; i < len(doc); i += 40 {
				w.Write(doc[i:min(i+40, len(doc))])
				w.(http.Flusher).Flush()
				time.Sleep(10 * time.Millisecond)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, doc, func() []http.Header {
		mu.Lock()
		defer mu.Unlock()
		return append([]http.Header(nil), seen...)
	}
}

func TestFetcher(t *testing.T) {
	srv, doc, seen := gbfsServer(t)
	other, _, otherSeen := gbfsServer(t)
	t.Setenv(keyEnv, "k-123")
	f := NewFetcher(HTTP{Headers: map[string]string{"Accept": "application/json"}, APIKeyEnv: keyEnv, Timeout: 60 * time.Millisecond}, srv.URL+"/gbfs.json")
	ctx := t.Context()

	body, err := f.Open(ctx, srv.URL+"/gbfs.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	body.Close()
	if err != nil || !bytes.Equal(got, doc) {
		t.Fatalf("body = %d bytes, err %v; want the %d bytes of the file", len(got), err, len(doc))
	}
	if NextFromLinkHeader(body.Header) != "/gbfs.json?page=2" {
		t.Errorf("response header not captured: %v", body.Header)
	}
	h := seen()[0]
	if h.Get("Accept") != "application/json" || h.Get(DefaultAPIKeyHeader) != "k-123" || h.Get("User-Agent") == "" {
		t.Errorf("request headers = %v", h)
	}

	// another host gets neither the headers nor the key
	body, err = f.Open(ctx, other.URL+"/gbfs.json")
	if err != nil {
		t.Fatal(err)
	}
	body.Close()
	if h := otherSeen()[0]; h.Get(DefaultAPIKeyHeader) != "" || h.Get("Accept") != "" {
		t.Errorf("headers leaked to another host: %v", h)
	}

	// a file
	body, err = f.Open(ctx, "testdata/boston_hubway_gbfs.json")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(body)
	body.Close()
	if !bytes.Equal(got, doc) || body.Header != nil {
		t.Errorf("file body = %d bytes, header %v", len(got), body.Header)
	}

	// a trickling body is slower in all than the timeout but never stalls
	body, err = f.Open(ctx, srv.URL+"/trickle")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err = io.ReadAll(body)
	body.Close()
	if err != nil || !bytes.Equal(got, doc) || time.Since(start) < 60*time.Millisecond {
		t.Errorf("trickle: %d bytes in %s, err %v", len(got), time.Since(start), err)
	}
}

func TestFetcherErrors(t *testing.T) {
	srv, _, _ := gbfsServer(t)
	f := NewFetcher(HTTP{Timeout: 80 * time.Millisecond}, srv.URL)
	tests := []struct {
		name      string
		path      string
		openErr   bool // the error comes from Open, not from reading
		want      string
		transient bool
	}{
		{"503", "/busy", true, "HTTP 503 Service Unavailable: maintenance", true},
		{"404", "/missing.json", true, "HTTP 404 Not Found", false},
		{"body cut off", "/cut", false, "/cut: body broke off: unexpected EOF", true},
		{"body stalls", "/stall", false, "/stall: no data for 80ms (timeout)", true},
		{"no response headers", "/slow-headers", true, "/slow-headers: no response within 80ms (timeout)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, err := f.Open(t.Context(), srv.URL+tt.path)
			if err == nil {
				if tt.openErr {
					body.Close()
					t.Fatal("Open succeeded")
				}
				_, err = io.ReadAll(body)
				body.Close()
			} else if !tt.openErr {
				t.Fatalf("Open: %v", err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if connectors.IsTransient(err) != tt.transient {
				t.Errorf("IsTransient(%v) = %v, want %v", err, !tt.transient, tt.transient)
			}
		})
	}
}

func TestFetcherKeyAndCancel(t *testing.T) {
	srv, _, _ := gbfsServer(t)
	f := NewFetcher(HTTP{APIKeyEnv: keyEnv, APIKeyHeader: "Authorization"}, srv.URL)
	_, err := f.Open(t.Context(), srv.URL+"/gbfs.json")
	if err == nil || !strings.Contains(err.Error(), "api_key_env: environment variable "+keyEnv+" is not set") || connectors.IsTransient(err) {
		t.Errorf("missing key: error %v", err)
	}

	t.Setenv(keyEnv, "k")
	ctx, cancel := context.WithCancel(t.Context())
	body, err := f.Open(ctx, srv.URL+"/stall")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	buf := make([]byte, 1<<10)
	if _, err := body.Read(buf); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = io.ReadAll(body)
	if !errors.Is(err, context.Canceled) || connectors.IsTransient(err) {
		t.Errorf("cancelled read: error %v (transient %v)", err, connectors.IsTransient(err))
	}
}
