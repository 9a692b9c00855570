package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/resolvers/core"
	"github.com/cityhub/cityhub/server/socket"
)

// liveServer is a server with subscriptions over a fresh store; writes
// go through the publishing store.
type liveServer struct {
	srv    *Server
	url    string
	writes *events.Store
	hub    *events.Hub
	store  *sqlite.Store
}

func newLiveServer(t testing.TB, ecfg events.Config) *liveServer {
	t.Helper()
	scfg := DefaultConfig()
	scfg.RequestTimeout = 2 * time.Second // must not cut streams
	return newLiveServerConfig(t, ecfg, scfg)
}

func newLiveServerConfig(t testing.TB, ecfg events.Config, scfg Config) *liveServer {
	t.Helper()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "city.db")
	store, err := sqlite.Open(t.Context(), cfg, ontology.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ecfg.Poll = -1
	hub := events.NewHub(store, store, ecfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = hub.Run(ctx) }()
	<-hub.Ready()
	engine := core.NewEngine(store, ontology.Default(), core.DefaultConfig(), nil)
	engine.SetLive(hub)
	srv := New(scfg, engine, store, nil, nil)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		cancel()
		<-done
	})
	return &liveServer{srv: srv, url: ts.URL + "/graphql", writes: events.Publishing(store, hub, nil), hub: hub, store: store}
}

func (s *liveServer) apply(t *testing.T, nodes ...graph.Node) {
	t.Helper()
	if _, err := s.writes.Apply(t.Context(), graph.Batch{Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
}

func lamp(id, status string) graph.Node {
	return graph.Node{ID: id, Class: "StreetLight", Props: map[string]any{"status": status, "name": "Lamp " + id}}
}

// wsClient speaks one of the two websocket protocols.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialWS(t *testing.T, url, protocol string) *wsClient {
	t.Helper()
	return dialWSInit(t, url, protocol, nil)
}

// dialWSInit connects with a connection_init payload.
func dialWSInit(t *testing.T, url, protocol string, init map[string]any) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"), &websocket.DialOptions{Subprotocols: []string{protocol}})
	if err != nil {
		t.Fatalf("dial %s: %v", protocol, err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != protocol {
		t.Fatalf("negotiated %q, want %q", got, protocol)
	}
	t.Cleanup(func() { conn.CloseNow() })
	c := &wsClient{t: t, conn: conn}
	msg := map[string]any{"type": "connection_init"}
	if init != nil {
		msg["payload"] = init
	}
	c.send(msg)
	if m := c.read(); m["type"] != "connection_ack" {
		t.Fatalf("after connection_init: %v", m)
	}
	return c
}

func (c *wsClient) send(m map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(m)
	if err := c.conn.Write(c.t.Context(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next message that is not a keep-alive.
func (c *wsClient) read() map[string]any {
	c.t.Helper()
	for {
		ctx, cancel := context.WithTimeout(c.t.Context(), 5*time.Second)
		_, b, err := c.conn.Read(ctx)
		cancel()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("message %s: %v", b, err)
		}
		switch m["type"] {
		case "ka", "ping", "pong":
			continue
		}
		return m
	}
}

func payloadJSON(m map[string]any) string {
	b, _ := json.Marshal(m["payload"])
	return string(b)
}

// norm renders a JSON text with sorted keys, as payloadJSON does.
func norm(s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

const faultyLights = `subscription { streetLightChanged(where: {status: {eq: FAULTY}}) { op cursor changed node { id status name } } }`

func TestSubscriptionGraphQLTransportWS(t *testing.T) {
	s := newLiveServer(t, events.Config{})
	c := dialWS(t, s.url, "graphql-transport-ws")
	c.send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": faultyLights}})
	// a bad filter is an error for that subscription only
	c.send(map[string]any{"id": "2", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { streetLightChanged(where: {near: {lat: 95, lon: 0, meters: 10}}) { op } }`}})
	m := c.read()
	if m["id"] != "2" || !strings.Contains(payloadJSON(m), "where.near") || !strings.Contains(payloadJSON(m), "BAD_USER_INPUT") {
		t.Fatalf("bad filter answered %v", m)
	}
	if m["type"] == "next" {
		if m := c.read(); m["id"] != "2" || m["type"] != "complete" {
			t.Fatalf("after the bad filter: %v", m)
		}
	}
	time.Sleep(50 * time.Millisecond) // let the subscription register
	s.apply(t, lamp("a", "OK"), lamp("b", "FAULTY"))
	// the hub reads a node's state after its commit: let it read these
	// before a changes again
	for s.hub.Last() < 2 {
		time.Sleep(time.Millisecond)
	}
	s.apply(t, lamp("a", "FAULTY"))
	want := []string{
		`{"data":{"streetLightChanged":{"op":"CREATE","cursor":"2","changed":["name","status"],"node":{"id":"b","status":"FAULTY","name":"Lamp b"}}}}`,
		`{"data":{"streetLightChanged":{"op":"UPDATE","cursor":"3","changed":["status"],"node":{"id":"a","status":"FAULTY","name":"Lamp a"}}}}`,
	}
	for _, w := range want {
		m := c.read()
		if m["type"] != "next" || m["id"] != "1" || payloadJSON(m) != norm(w) {
			t.Fatalf("got %v\nwant next %s", m, w)
		}
	}
	// the connection stays usable: a query over the same socket
	c.send(map[string]any{"id": "3", "type": "subscribe", "payload": map[string]any{"query": `{ streetLight(id: "a") { status } }`}})
	if m := c.read(); m["id"] != "3" || payloadJSON(m) != norm(`{"data":{"streetLight":{"status":"FAULTY"}}}`) {
		t.Fatalf("query over the socket: %v", m)
	}
	// a malformed message closes the socket with the protocol's code
	if err := c.conn.Write(t.Context(), websocket.MessageText, []byte(`{"type":"subscribe","id":"4"`)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != 4400 {
				t.Fatalf("closed with %v (%d), want 4400", err, code)
			}
			break
		}
		if !bytes.Contains(b, []byte(`"id":"3"`)) && !bytes.Contains(b, []byte(`"ka"`)) {
			t.Fatalf("after a malformed message: %s", b)
		}
	}
}

func TestSubscriptionLegacyGraphQLWS(t *testing.T) {
	s := newLiveServer(t, events.Config{})
	c := dialWS(t, s.url, "graphql-ws")
	c.send(map[string]any{"id": "1", "type": "start", "payload": map[string]any{"query": faultyLights}})
	time.Sleep(50 * time.Millisecond)
	s.apply(t, lamp("b", "FAULTY"))
	m := c.read()
	if m["type"] != "data" || m["id"] != "1" || !strings.Contains(payloadJSON(m), `"id":"b"`) {
		t.Fatalf("legacy protocol: %v", m)
	}
	c.send(map[string]any{"id": "1", "type": "stop"})
	if m := c.read(); m["type"] != "complete" {
		t.Fatalf("after stop: %v", m)
	}
}

func TestSubscriptionSSEWithResume(t *testing.T) {
	s := newLiveServer(t, events.Config{})
	s.apply(t, lamp("a", "FAULTY"), lamp("b", "FAULTY"), lamp("c", "OK"))
	for s.hub.Last() < 3 {
		time.Sleep(time.Millisecond)
	}
	body, _ := json.Marshal(map[string]any{"query": `subscription { changes(classes: [STREET_LIGHT], since: "1") { op cursor id class } }`})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	time.Sleep(2500 * time.Millisecond) // past the request timeout: the stream stays
	s.apply(t, lamp("d", "OK"))
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for len(got) < 3 && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			got = append(got, data)
		}
	}
	want := []string{
		`{"data":{"changes":{"op":"CREATE","cursor":"2","id":"b","class":"StreetLight"}}}`,
		`{"data":{"changes":{"op":"CREATE","cursor":"3","id":"c","class":"StreetLight"}}}`,
		`{"data":{"changes":{"op":"CREATE","cursor":"4","id":"d","class":"StreetLight"}}}`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SSE data:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A burst larger than the buffer reaches a websocket client whole and in
// order: its execution catches up from the hub's memory, and the client's
// own queue bounds what waits for it.
func TestSubscriptionBurstReachesWebsocketWhole(t *testing.T) {
	s := newLiveServer(t, events.Config{Buffer: 1})
	c := dialWS(t, s.url, "graphql-transport-ws")
	c.send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { streetLightChanged { cursor node { id name locatedIn { totalCount } } } }`}})
	for s.srv.WebsocketStats().Executions < 1 {
		time.Sleep(time.Millisecond)
	}
	var burst []graph.Node
	for i := range 200 {
		burst = append(burst, lamp(fmt.Sprintf("l%03d", i), "OK"))
	}
	s.apply(t, burst...)
	for i := range 200 {
		m := c.read()
		if want := fmt.Sprintf(`"cursor":"%d"`, i+1); m["type"] != "next" || !strings.Contains(payloadJSON(m), want) {
			t.Fatalf("response %d: %v, want %s", i, m, want)
		}
	}
}

// A subscriber that cannot keep up gets the events it could take, then an
// error with the cursor to resume from, then the end of the stream (SSE:
// the hub's buffer bounds it).
func TestSubscriptionOverflowNamesResumeCursor(t *testing.T) {
	s := newLiveServer(t, events.Config{Buffer: 1})
	body, _ := json.Marshal(map[string]any{"query": `subscription { streetLightChanged { cursor node { id name locatedIn { totalCount } } } }`})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(100 * time.Millisecond) // the subscription registers
	var burst []graph.Node
	for i := range 200 {
		burst = append(burst, lamp(fmt.Sprintf("l%03d", i), "OK"))
	}
	s.apply(t, burst...)
	sc := bufio.NewScanner(resp.Body)
	last := ""
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var p struct {
			Data   map[string]map[string]any
			Errors []struct {
				Message    string
				Extensions map[string]any
			}
		}
		if err := json.Unmarshal([]byte(data), &p); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if len(p.Errors) > 0 {
			e := p.Errors[0]
			if e.Extensions["code"] != core.CodeSubscriptionEnded || e.Extensions["resumeCursor"] != last ||
				!strings.Contains(e.Message, "resume with since: \""+last+"\"") {
				t.Fatalf("end error %+v; last cursor received %q", e, last)
			}
			return
		}
		last = p.Data["streetLightChanged"]["cursor"].(string)
	}
	t.Fatalf("the stream ended after cursor %q without the end error (%v)", last, sc.Err())
}

// A cursor older than what the store still keeps ends the subscription
// with CURSOR_EXPIRED, naming the oldest cursor that resumes.
func TestSubscriptionExpiredCursor(t *testing.T) {
	s := newLiveServer(t, events.Config{Ring: 2})
	for i := range 4 {
		s.apply(t, lamp(fmt.Sprintf("l%d", i), "OK"))
	}
	for s.hub.Last() < 4 {
		time.Sleep(time.Millisecond)
	}
	if _, err := s.store.PruneChanges(t.Context(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	c := dialWS(t, s.url, "graphql-transport-ws")
	c.send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { streetLightChanged(since: "1") { cursor } }`}})
	m := c.read()
	if m["type"] != "next" || !strings.Contains(payloadJSON(m), `"code":"CURSOR_EXPIRED"`) || !strings.Contains(payloadJSON(m), "cursor expired") {
		t.Fatalf("expired cursor answered %v", m)
	}
	if m := c.read(); m["type"] != "complete" {
		t.Fatalf("after the error: %v", m)
	}
}

// Clients with the same subscription and role share one execution: each
// event is resolved once and every client receives the same response.
// Another role, or a since cursor, gets an execution of its own; one
// client leaving does not end the others'.
func TestSubscriptionsShareOneExecution(t *testing.T) {
	scfg := DefaultConfig()
	scfg.OperatorToken = "op-token"
	s := newLiveServerConfig(t, events.Config{}, scfg)
	const q = `subscription { personChanged { op cursor node { id pseudonym } } }`
	subscribe := func(c *wsClient, query string) {
		c.send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query}})
	}
	a, b := dialWS(t, s.url, "graphql-transport-ws"), dialWS(t, s.url, "graphql-ws")
	op := dialWSInit(t, s.url, "graphql-transport-ws", map[string]any{"Authorization": "Bearer op-token"})
	subscribe(a, q)
	b.send(map[string]any{"id": "1", "type": "start", "payload": map[string]any{"query": q}})
	subscribe(op, q)
	wait := func(want socket.Stats) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); s.srv.WebsocketStats() != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("websocket stats %+v, want %+v", s.srv.WebsocketStats(), want)
			}
		}
	}
	wait(socket.Stats{Connections: 3, Subscriptions: 3, Executions: 2})
	s.apply(t, graph.Node{ID: "p1", Class: "Person", Props: map[string]any{"pseudonym": "h1"}})
	var public []string
	for _, c := range []*wsClient{a, b} {
		m := c.read()
		public = append(public, payloadJSON(m))
		if p := payloadJSON(m); !strings.Contains(p, `"node":{"id":"p1","pseudonym":null}`) || !strings.Contains(p, `"code":"FORBIDDEN"`) {
			t.Fatalf("public client got %v", m)
		}
	}
	if public[0] != public[1] {
		t.Fatalf("the clients of one execution got\n%s\n%s", public[0], public[1])
	}
	if m := op.read(); payloadJSON(m) != norm(`{"data":{"personChanged":{"op":"CREATE","cursor":"1","node":{"id":"p1","pseudonym":"h1"}}}}`) {
		t.Fatalf("operator got %v", m)
	}
	// a resuming client replays from its cursor: not shared
	r := dialWS(t, s.url, "graphql-transport-ws")
	subscribe(r, `subscription { personChanged(since: "0") { op cursor node { id pseudonym } } }`)
	if m := r.read(); !strings.Contains(payloadJSON(m), `"cursor":"1"`) {
		t.Fatalf("resumed client got %v", m)
	}
	wait(socket.Stats{Connections: 4, Subscriptions: 4, Executions: 3})
	// a leaves; b goes on
	a.send(map[string]any{"id": "1", "type": "complete"})
	wait(socket.Stats{Connections: 4, Subscriptions: 3, Executions: 3})
	s.apply(t, graph.Node{ID: "p2", Class: "Person", Props: map[string]any{"pseudonym": "h2"}})
	if m := b.read(); m["type"] != "data" || !strings.Contains(payloadJSON(m), `"id":"p2"`) {
		t.Fatalf("after a left, b got %v", m)
	}
	// the last client of an execution leaving ends it
	b.conn.CloseNow()
	wait(socket.Stats{Connections: 3, Subscriptions: 2, Executions: 2})
	// a new client of the same operation starts a new execution
	a2 := dialWS(t, s.url, "graphql-transport-ws")
	subscribe(a2, q)
	wait(socket.Stats{Connections: 4, Subscriptions: 3, Executions: 3})
}

// A second subscribe with an id in use closes the socket with 4409.
func TestSubscriptionDuplicateID(t *testing.T) {
	s := newLiveServer(t, events.Config{})
	c := dialWS(t, s.url, "graphql-transport-ws")
	c.send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": faultyLights}})
	c.send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": faultyLights}})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != 4409 {
				t.Fatalf("closed with %v (%d), want 4409", err, code)
			}
			return
		}
		t.Fatalf("unexpected %s", b)
	}
}
