package fetch

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cityhub/cityhub/connectors"
)

func TestOpen(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("X-Api-Key") != "k1" {
				http.Error(w, "no key", http.StatusUnauthorized)
				return
			}
			io.WriteString(w, `{"a":1}`)
		case "/busy":
			http.Error(w, "try later", http.StatusServiceUnavailable)
		case "/limit":
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/x"
	ln.Close()
	file := filepath.Join(t.TempDir(), "f.json")
	if err := os.WriteFile(file, []byte(`{"a":2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	hdr := http.Header{"X-Api-Key": {"k1"}}
	tests := []struct {
		name      string
		loc       string
		want      string // body, when no error
		errSub    string
		transient bool
	}{
		{name: "http ok", loc: srv.URL + "/ok", want: `{"a":1}`},
		{name: "file ok", loc: file, want: `{"a":2}`},
		{name: "503 is transient", loc: srv.URL + "/busy", errSub: "HTTP 503 Service Unavailable: try later", transient: true},
		{name: "429 is transient", loc: srv.URL + "/limit", errSub: "HTTP 429", transient: true},
		{name: "404 is not", loc: srv.URL + "/nope", errSub: "HTTP 404"},
		{name: "refused is transient", loc: closed, errSub: "GET " + closed, transient: true},
		{name: "missing file is not", loc: file + ".missing", errSub: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := Open(context.Background(), Request{Location: tt.loc, Header: hdr})
			if tt.errSub != "" {
				if err == nil {
					body.Close()
					t.Fatalf("no error, want %q", tt.errSub)
				}
				if !strings.Contains(err.Error(), tt.errSub) {
					t.Errorf("error %q does not contain %q", err, tt.errSub)
				}
				if got := connectors.IsTransient(err); got != tt.transient {
					t.Errorf("IsTransient = %v, want %v (%v)", got, tt.transient, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer body.Close()
			b, _ := io.ReadAll(body)
			if string(b) != tt.want {
				t.Errorf("body %q, want %q", b, tt.want)
			}
		})
	}
}

func TestJSONCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var v any
	err := JSON(ctx, Request{Location: srv.URL}, &v)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if connectors.IsTransient(err) {
		t.Errorf("a cancelled request must not be retried: %v", err)
	}
}
