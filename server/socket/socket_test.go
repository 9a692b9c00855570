package socket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// serve runs the transport alone (no executor: these tests never reach an
// operation).
func serve(t *testing.T, cfg Config) (*Transport, string) {
	t.Helper()
	tr := New(cfg)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tr.Supports(r) {
			http.Error(w, "websockets only", http.StatusBadRequest)
			return
		}
		tr.Do(w, r, nil)
	}))
	t.Cleanup(func() { tr.Close(); ts.Close() })
	return tr, "ws" + strings.TrimPrefix(ts.URL, "http")
}

func dial(t *testing.T, url, proto string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var opts websocket.DialOptions
	if proto != "" {
		opts.Subprotocols = []string{proto}
	}
	c, resp, err := websocket.Dial(ctx, url, &opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != proto {
		t.Fatalf("negotiated %q, want %q", got, proto)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// exchange sends msgs and reads until the socket closes: the text
// messages received and the close code and reason.
func exchange(t *testing.T, c *websocket.Conn, msgs ...string) (got []string, code websocket.StatusCode, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for _, m := range msgs {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatalf("write %s: %v", m, err)
		}
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("after %v: %v, want a close", got, err)
			}
			return got, ce.Code, ce.Reason
		}
		got = append(got, string(b))
	}
}

func TestProtocolErrorsClose(t *testing.T) {
	initFunc := func(ctx context.Context, p transport.InitPayload) (context.Context, error) {
		if p.Authorization() == "Bearer wrong" {
			return nil, errors.New("invalid bearer token")
		}
		return ctx, nil
	}
	_, url := serve(t, Config{InitFunc: initFunc, InitTimeout: 300 * time.Millisecond})
	tests := []struct {
		name   string
		proto  string
		msgs   []string
		got    []string // messages before the close
		code   websocket.StatusCode
		reason string
	}{
		{name: "no init in time", proto: protoTransportWS, code: 4408, reason: "Connection initialisation timeout"},
		{name: "subscribe before init", proto: protoTransportWS, msgs: []string{`{"type":"subscribe","id":"1","payload":{"query":"{ a }"}}`},
			code: 4401, reason: "Unauthorized"},
		{name: "second init", proto: protoTransportWS, msgs: []string{`{"type":"connection_init"}`, `{"type":"connection_init"}`},
			got: []string{`{"type":"connection_ack"}`}, code: 4429, reason: "Too many initialisation requests"},
		{name: "wrong token", proto: protoTransportWS, msgs: []string{`{"type":"connection_init","payload":{"Authorization":"Bearer wrong"}}`},
			code: 4403, reason: "Forbidden: invalid bearer token"},
		{name: "wrong token, legacy", proto: protoLegacy, msgs: []string{`{"type":"connection_init","payload":{"Authorization":"Bearer wrong"}}`},
			got: []string{`{"type":"connection_error","payload":{"message":"invalid bearer token"}}`}, code: 4403, reason: "Forbidden: invalid bearer token"},
		{name: "ping and pong, then an unknown type", proto: protoTransportWS,
			msgs: []string{`{"type":"connection_init"}`, `{"type":"ping","payload":{"t":1}}`, `{"type":"pong"}`, `{"type":"start","id":"1","payload":{}}`},
			got:  []string{`{"type":"connection_ack"}`, `{"type":"pong","payload":{"t":1}}`}, code: 4400, reason: `Unknown message type "start"`},
		{name: "legacy terminate", proto: protoLegacy, msgs: []string{`{"type":"connection_init"}`, `{"type":"connection_terminate"}`},
			got: []string{`{"type":"connection_ack"}`, `{"type":"ka"}`}, code: 1000, reason: "terminated"},
		{name: "no subprotocol speaks the legacy one", proto: "", msgs: []string{`{"type":"connection_init"}`, `{"type":"subscribe","id":"1","payload":{}}`},
			got: []string{`{"type":"connection_ack"}`, `{"type":"ka"}`}, code: 4400, reason: `Unknown message type "subscribe"`},
		{name: "malformed", proto: protoTransportWS, msgs: []string{`{"type":"connection_init"}`, `{"type":"subscribe","id":"4"`},
			got: []string{`{"type":"connection_ack"}`}, code: 4400, reason: "Invalid message received"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, url, tt.proto)
			got, code, reason := exchange(t, c, tt.msgs...)
			if strings.Join(got, "\n") != strings.Join(tt.got, "\n") || code != tt.code || reason != tt.reason {
				t.Errorf("got %v, closed %d %q\nwant %v, closed %d %q", got, code, reason, tt.got, tt.code, tt.reason)
			}
		})
	}
}

// Close closes every websocket with 1001 and refuses new ones.
func TestCloseGoesAway(t *testing.T) {
	tr, url := serve(t, Config{})
	c := dial(t, url, protoTransportWS)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_init"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != `{"type":"connection_ack"}` {
		t.Fatalf("ack: %s %v", b, err)
	}
	if s := tr.Stats(); s.Connections != 1 {
		t.Fatalf("stats %+v", s)
	}
	tr.Close()
	_, code, reason := exchange(t, c)
	if code != websocket.StatusGoingAway || reason != "server shutting down" {
		t.Fatalf("closed %d %q", code, reason)
	}
	for deadline := time.Now().Add(5 * time.Second); tr.Stats().Connections != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stats after close: %+v", tr.Stats())
		}
	}
	late := dial(t, url, protoTransportWS)
	if _, code, _ := exchange(t, late); code != websocket.StatusGoingAway {
		t.Fatalf("a connection after Close: %d", code)
	}
}

// Idle connections get keep-alives: a websocket ping on
// graphql-transport-ws, "ka" on the legacy protocol.
func TestKeepAlive(t *testing.T) {
	_, url := serve(t, Config{KeepAlive: 160 * time.Millisecond})
	for _, tt := range []struct {
		proto string
		want  func(ws.Frame) bool
	}{
		{protoTransportWS, func(f ws.Frame) bool { return f.Header.OpCode == ws.OpPing }},
		{protoLegacy, func(f ws.Frame) bool { return f.Header.OpCode == ws.OpText && string(f.Payload) == `{"type":"ka"}` }},
	} {
		d := ws.Dialer{Protocols: []string{tt.proto}}
		nc, br, _, err := d.Dial(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		var r io.Reader = nc
		if br != nil {
			r = br
		}
		if err := wsutil.WriteClientText(nc, []byte(`{"type":"connection_init"}`)); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var seen []string
		for n := 0; n < 2; {
			f, err := ws.ReadFrame(r)
			if err != nil {
				t.Fatalf("%s: after %v: %v", tt.proto, seen, err)
			}
			seen = append(seen, fmt.Sprintf("%d %s", f.Header.OpCode, f.Payload))
			if tt.want(f) {
				n++
			}
		}
	}
}

// A browser page of another site cannot open a websocket.
func TestOrigin(t *testing.T) {
	_, url := serve(t, Config{})
	host := strings.TrimPrefix(url, "ws://")
	for origin, want := range map[string]int{"http://" + host: http.StatusSwitchingProtocols, "http://elsewhere.example": http.StatusForbidden, "null": http.StatusForbidden} {
		_, resp, err := websocket.Dial(t.Context(), url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		if resp == nil || resp.StatusCode != want {
			t.Errorf("Origin %s: %v %v, want %d", origin, resp, err, want)
		}
	}
}
