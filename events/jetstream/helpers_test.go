package jetstream

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

// natsServer is a real NATS server with JetStream, in this process, on a
// loopback port and a temporary store directory; it can be stopped and
// started again on the same port and directory.
type natsServer struct {
	t          testing.TB
	dir        string
	port       int
	maxPayload int32
	srv        *server.Server
}

func mustStartNATS(t testing.TB, maxPayload int32) *natsServer {
	t.Helper()
	n := &natsServer{t: t, dir: t.TempDir(), port: server.RANDOM_PORT, maxPayload: maxPayload}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	opts := &server.Options{
		ServerName: "cityhub-test",
		Host:       "127.0.0.1",
		Port:       n.port,
		JetStream:  true,
		StoreDir:   n.dir,
		MaxPayload: n.maxPayload,
		NoLog:      true,
		NoSigs:     true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		n.t.Fatalf("nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		n.t.Fatal("nats server not ready within 10s")
	}
	n.srv = srv
	n.port = srv.Addr().(*net.TCPAddr).Port
}

func (n *natsServer) stop() {
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func mustOpenStore(t testing.TB) *sqlite.Store {
	t.Helper()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	s, err := sqlite.Open(context.Background(), cfg, ontology.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// logRecorder keeps the messages logged to it (tests assert on them).
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// replica is one cityhub process: its own hub and bus over the shared
// store, and a publishing store writing through the bus.
type replica struct {
	hub  *events.Hub
	bus  *Bus
	pub  *events.Store
	logs *logRecorder
}

func mustStartReplica(t testing.TB, store *sqlite.Store, url string, hcfg events.Config, bcfg Config) *replica {
	t.Helper()
	logs := &logRecorder{}
	log := slog.New(logs)
	if hcfg.Poll == 0 {
		hcfg.Poll = -1 // only the bus delivers, unless the test says otherwise
	}
	hcfg.Logger = log
	hub := events.NewHub(store, store, hcfg)
	bcfg.URL, bcfg.Hub, bcfg.Logger = url, hub, log
	if bcfg.ReconnectWait == 0 {
		bcfg.ReconnectWait = 50 * time.Millisecond
	}
	bus, err := Open(t.Context(), bcfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var hubErr, busErr error
	wg.Add(2)
	go func() { defer wg.Done(); hubErr = hub.Run(ctx) }()
	go func() { defer wg.Done(); busErr = bus.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		bus.Close()
		if hubErr != nil || busErr != nil {
			t.Errorf("replica stopped with hub: %v, bus: %v", hubErr, busErr)
		}
	})
	select {
	case <-hub.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("hub did not start")
	}
	return &replica{hub: hub, bus: bus, pub: events.Publishing(store, bus, log), logs: logs}
}

// streetLight is a street light of Cambridge's register (real pole IDs and
// positions from shared/data/assets/cambridge_INFRA_StreetLights.geojson).
func streetLight(id, pole string, lat, lon float64, lamps int64) graph.Node {
	return graph.Node{ID: id, Class: "StreetLight",
		Props:    map[string]any{"status": "OK", "poleNumber": pole, "fixtureType": "Cobrahead", "lampCount": lamps},
		Geometry: graph.PointGeometry(lat, lon)}
}

func mustApply(t testing.TB, s graph.Store, b graph.Batch) []graph.Change {
	t.Helper()
	ch, err := s.Apply(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func mustSubscribe(t testing.TB, h *events.Hub, spec events.Spec) *events.Sub {
	t.Helper()
	s, err := h.Subscribe(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// mustReceive receives n events within the timeout or fails.
func mustReceive(t testing.TB, s *events.Sub, n int, timeout time.Duration) []*events.Event {
	t.Helper()
	var out []*events.Event
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case ev, ok := <-s.C():
			if !ok {
				t.Fatalf("subscription ended after %d of %d events: %v", len(out), n, s.Err())
			}
			out = append(out, ev)
		case <-deadline:
			t.Fatalf("%d of %d events within %s; last %v", len(out), n, timeout, seqs(out[max(0, len(out)-5):]))
		}
	}
	return out
}

// mustBeQuiet requires that no event arrives for a while.
func mustBeQuiet(t testing.TB, s *events.Sub) {
	t.Helper()
	select {
	case ev, ok := <-s.C():
		if ok {
			t.Fatalf("unexpected event %d %s %s", ev.Seq, ev.Op, ev.ID)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

func seqs(evs []*events.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

// checkConsecutive fails unless evs are the sequence numbers from..from+len-1.
func checkConsecutive(t testing.TB, who string, evs []*events.Event, from uint64) {
	t.Helper()
	for i, ev := range evs {
		if want := from + uint64(i); ev.Seq != want {
			t.Fatalf("%s: event %d has sequence %d, want %d (a gap, a duplicate or out of order); around it: %v",
				who, i, ev.Seq, want, seqs(evs[max(0, i-3):min(len(evs), i+3)]))
		}
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
