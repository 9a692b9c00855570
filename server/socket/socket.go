// Package socket is cityhub's GraphQL websocket transport for gqlgen:
// graphql-transport-ws (the graphql-ws library) and the legacy graphql-ws
// protocol of subscriptions-transport-ws, negotiated by subprotocol.
//
// It is built for many idle dashboards: one goroutine per connection (its
// reader), no buffers held between messages, and writes from a short-lived
// goroutine that puts every queued frame on the wire in one system call.
// Subscriptions with the same document, variables and sharing key (the
// caller's role) that start now share one execution: each change event is
// resolved and rendered once, and the same bytes are written to every
// client (core.Feed tells the transport which event a response renders,
// and whether the operation may be shared). A client that cannot keep up
// has its own bounded queue; on overflow its subscription ends with an
// error naming the cursor to resume from, and the others go on.
package socket

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gobwas/ws"
)

// Config sets the transport's limits.
type Config struct {
	// InitFunc authenticates a connection by its connection_init payload
	// and returns the context its operations run in; an error refuses the
	// connection (closed with 4403).
	InitFunc func(ctx context.Context, payload transport.InitPayload) (context.Context, error)
	// ShareKey names who a context's operations run as; subscriptions
	// share an execution only with the same key (nil: never across
	// connections).
	ShareKey func(ctx context.Context) string
	// InitTimeout bounds the wait for connection_init (default 10 s).
	InitTimeout time.Duration
	// KeepAlive is the interval of keep-alives on an idle connection: the
	// legacy protocol's "ka" messages, websocket pings for
	// graphql-transport-ws (default 15 s).
	KeepAlive time.Duration
	// ReadLimit bounds one client message (default 1 MiB).
	ReadLimit int64
	// Buffer bounds the responses queued for one subscription of a slow
	// client; beyond it the subscription ends (default 256).
	Buffer int
	// WriteTimeout bounds one write to a client (default 10 s).
	WriteTimeout time.Duration
	// Log receives connection errors (nil: discarded).
	Log *slog.Logger
}

func (c *Config) defaults() {
	if c.InitTimeout <= 0 {
		c.InitTimeout = 10 * time.Second
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = 1 << 20
	}
	if c.Buffer <= 0 {
		c.Buffer = 256
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Transport is a graphql.Transport for websockets. Use one per server.
type Transport struct {
	cfg Config

	mu      sync.Mutex
	groups  map[string]*group
	conns   map[*conn]struct{}
	kaOnce  sync.Once
	seq     atomic.Uint64 // connections opened
	running atomic.Int64  // executions running
	closed  bool
	stop    chan struct{}
}

var _ graphql.Transport = (*Transport)(nil)

// New returns a transport.
func New(cfg Config) *Transport {
	cfg.defaults()
	return &Transport{cfg: cfg, groups: map[string]*group{}, conns: map[*conn]struct{}{}, stop: make(chan struct{})}
}

// Stats counts what the transport holds.
type Stats struct {
	Connections   int // open websockets
	Subscriptions int // subscriptions of those
	Executions    int // subscription executions serving them (shared or not)
}

// Stats returns the current counts.
func (t *Transport) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{Connections: len(t.conns), Executions: int(t.running.Load())}
	for c := range t.conns {
		c.omu.Lock()
		s.Subscriptions += len(c.ops)
		c.omu.Unlock()
	}
	return s
}

// Supports implements graphql.Transport: websocket upgrade requests.
func (t *Transport) Supports(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// Do implements graphql.Transport: it upgrades the request and leaves the
// connection to its own goroutine (the request's goroutine, with the
// HTTP server's stack under it, ends).
func (t *Transport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if err := sameOrigin(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	var proto *protocol
	up := ws.HTTPUpgrader{
		Timeout: t.cfg.WriteTimeout,
		Protocol: func(p string) bool {
			if proto == nil {
				proto = protocols[p]
			}
			return proto != nil
		},
	}
	nc, rw, _, err := up.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			_ = nc.Close()
		}
		t.cfg.Log.DebugContext(r.Context(), "websocket upgrade refused", "err", err)
		return
	}
	if proto == nil {
		proto = protocols[protoLegacy]
	}
	c := &conn{t: t, nc: nc, proto: proto, exec: exec, headers: r.Header, ops: map[string]*op{},
		slot: int(t.seq.Add(1) % keepAliveSlots)}
	c.in = nc
	if n := rw.Reader.Buffered(); n > 0 {
		// the client wrote before it read the handshake answer
		pre, _ := rw.Reader.Peek(n)
		c.in = &prefixReader{pre: append([]byte(nil), pre...), r: nc}
	}
	// the request's context ends with this handler; its values (the role
	// the upgrade request was authenticated with) stay
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(r.Context()))
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_, _ = nc.Write(closeFrame(closeGoingAway, "server shutting down"))
		_ = nc.Close()
		return
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	t.kaOnce.Do(func() { go t.keepAlive() })
	go c.serve()
}

// Close closes every connection (1001, going away) and refuses new ones.
func (t *Transport) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	close(t.stop)
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.close(closeGoingAway, "server shutting down")
	}
}

// keepAlive keeps idle connections alive through proxies: the legacy
// protocol's "ka" message, a websocket ping for graphql-transport-ws
// (clients answer it themselves). The connections are pinged in
// keepAliveSlots turns over the interval, not all at once.
func (t *Transport) keepAlive() {
	tick := time.NewTicker(t.cfg.KeepAlive / keepAliveSlots)
	defer tick.Stop()
	ka := rawFrame(envelope(nil, nil, "ka", false))
	ping := frame{head: controlFrame(ws.OpPing, nil)}
	var due []*conn
	for slot := 0; ; slot = (slot + 1) % keepAliveSlots {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		for c := range t.conns {
			if c.slot == slot {
				due = append(due, c)
			}
		}
		t.mu.Unlock()
		for _, c := range due {
			switch {
			case !c.acked.Load():
			case c.proto.legacy:
				c.enqueue(ka, nil)
			default:
				c.enqueue(ping, nil)
			}
		}
		clear(due)
		due = due[:0]
	}
}

const keepAliveSlots = 16

func (t *Transport) forget(c *conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// shareKey is the key of executions an operation may share: who runs it
// and what it is, variables included. "" when it may not be shared.
func (t *Transport) shareKey(ctx context.Context, rc *graphql.OperationContext) string {
	if t.cfg.ShareKey == nil {
		return ""
	}
	vars, err := json.Marshal(rc.Variables) // sorted keys
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%q %q %q %s", t.cfg.ShareKey(ctx), rc.RawQuery, rc.OperationName, vars)
}

// sameOrigin refuses a websocket opened by a page of another site: a
// browser always sends Origin, and it must name the host the request was
// sent to (other clients send none).
func sameOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return fmt.Errorf("websocket Origin %q is not a URL with a host", o)
	}
	if !strings.EqualFold(u.Host, r.Host) {
		return fmt.Errorf("websocket Origin %q is not this server (%s)", o, r.Host)
	}
	return nil
}

// prefixReader reads pre, then r.
type prefixReader struct {
	pre []byte
	r   interface{ Read([]byte) (int, error) }
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.r.Read(b)
}
