package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// startNATS runs a NATS server with JetStream in the test process (the
// nats-server Go module) on a free loopback port.
func startNATS(t *testing.T) string { return startNATSOn(t, -1) }

// startNATSOn runs it on the given port (-1: a free one).
func startNATSOn(t *testing.T, port int) string {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

// Two cityhub processes on one Neo4j and one NATS JetStream: a write
// through either reaches the subscribers of both, in the same order, and
// a cursor from one resumes on the other.
func TestScaleOutThroughJetStream(t *testing.T) {
	uri := os.Getenv("CITYHUB_NEO4J_URI")
	if uri == "" {
		if os.Getenv("CITYHUB_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("CITYHUB_NEO4J_URI is not set but CITYHUB_REQUIRE_INTEGRATION=1")
		}
		t.Skip("CITYHUB_NEO4J_URI not set: replicas need a shared Neo4j")
	}
	wsClient(t)
	MustPrepareNeo4j(t, uri)
	t.Setenv("CITYHUB_NATS_URL", startNATS(t))
	t.Setenv("CITYHUB_OPERATOR_TOKEN", operatorToken)
	args := []string{"--store", uri, "--connectors", "e2e/testdata/push.yaml"}
	a := MustStart(t, t.TempDir(), args...)
	b := MustStart(t, t.TempDir(), args...)
	wsURL := func(s *Server) string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/graphql" }
	const q = `subscription { streetLightChanged { op cursor id node { status } } }`
	onA := startSubscriber(t, "graphql-ws", wsURL(a), q, 4)
	onB := startSubscriber(t, "graphql-ws", wsURL(b), q, 4)
	onA.ready()
	onB.ready()
	// real poles of the Cambridge register; one pole written through both
	a.MustPush(t, "lighting-faults", `[{"pole": "471-M39.5", "state": "fault", "lat": 42.3626, "lon": -71.0843}]`)
	b.MustPush(t, "lighting-faults", `[{"pole": "1-M1", "state": "ok", "lat": 42.3736, "lon": -71.1097}]`)
	a.MustPush(t, "lighting-faults", `[{"pole": "1-M1", "state": "fault"}]`)
	b.MustPush(t, "lighting-faults", `[{"pole": "471-M39.5", "state": "ok"}]`)
	read := func(s *subscriber) []string {
		var out []string
		for range 4 {
			r := s.result()
			ev := at(r, "data", "streetLightChanged")
			out = append(out, fmt.Sprintf("%v %v %v %v", at(ev, "cursor"), at(ev, "op"), at(ev, "id"), at(ev, "node", "status")))
		}
		return out
	}
	gotA, gotB := read(onA), read(onB)
	if strings.Join(gotA, "\n") != strings.Join(gotB, "\n") {
		t.Fatalf("the replicas' subscribers disagree:\nA: %q\nB: %q", gotA, gotB)
	}
	wantStatus := []string{"FAULTY", "OK", "FAULTY", "OK"}
	for i, line := range gotA {
		if !strings.HasSuffix(line, " "+wantStatus[i]) {
			t.Errorf("event %d = %q, want status %s (writes in order)", i, line, wantStatus[i])
		}
	}
	// a cursor handed out by A resumes on B
	first := strings.Fields(gotA[0])[0]
	resumed := startSubscriber(t, "graphql-ws", wsURL(b),
		`subscription { streetLightChanged(since: "`+first+`") { op cursor id node { status } } }`, 3)
	resumed.ready()
	for i := 1; i < 4; i++ {
		r := resumed.result()
		ev := at(r, "data", "streetLightChanged")
		if got := fmt.Sprintf("%v %v %v %v", at(ev, "cursor"), at(ev, "op"), at(ev, "id"), at(ev, "node", "status")); got != gotA[i] &&
			// a replayed event carries the node's state when replayed
			strings.Join(strings.Fields(got)[:3], " ") != strings.Join(strings.Fields(gotA[i])[:3], " ") {
			t.Errorf("resumed on B, event %d = %q, want %q", i, got, gotA[i])
		}
	}
}

// A replica whose NATS is down at start-up serves anyway, sees the other
// replica's writes through the shared change log, and switches to
// JetStream once NATS is up.
func TestScaleOutNATSLate(t *testing.T) {
	uri := os.Getenv("CITYHUB_NEO4J_URI")
	if uri == "" {
		if os.Getenv("CITYHUB_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("CITYHUB_NEO4J_URI is not set but CITYHUB_REQUIRE_INTEGRATION=1")
		}
		t.Skip("CITYHUB_NEO4J_URI not set: replicas need a shared Neo4j")
	}
	wsClient(t)
	MustPrepareNeo4j(t, uri)
	port := freePort(t)
	t.Setenv("CITYHUB_NATS_URL", fmt.Sprintf("nats://127.0.0.1:%d", port))
	t.Setenv("CITYHUB_OPERATOR_TOKEN", operatorToken)
	args := []string{"--store", uri, "--connectors", "e2e/testdata/push.yaml"}
	a := MustStart(t, t.TempDir(), args...)
	b := MustStart(t, t.TempDir(), args...)
	onB := startSubscriber(t, "graphql-ws", "ws"+strings.TrimPrefix(b.URL, "http")+"/graphql",
		`subscription { streetLightChanged { op id } }`, 2)
	onB.ready()
	a.MustPush(t, "lighting-faults", `[{"pole": "471-M39.5", "state": "fault"}]`)
	if r := onB.result(); at(r, "data", "streetLightChanged", "op") != "CREATE" {
		t.Fatalf("without NATS, B got %v", r)
	}
	startNATSOn(t, port)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(a.Log(), "change events travel through NATS JetStream") {
		if time.Now().After(deadline) {
			t.Fatalf("A did not open the bus once NATS was up:\n%s", a.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.MustPush(t, "lighting-faults", `[{"pole": "471-M39.5", "state": "ok"}]`)
	if r := onB.result(); at(r, "data", "streetLightChanged", "op") != "UPDATE" {
		t.Fatalf("with NATS, B got %v", r)
	}
	if !strings.Contains(a.Log(), "NATS JetStream not reachable") {
		t.Errorf("A did not say NATS was unreachable at start-up")
	}
}
