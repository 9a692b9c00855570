package jetstream

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/graph"
)

// Two replicas over one store, each with its own hub and bus on one
// stream. Neither hub polls the change log and both wait a minute before
// filling a gap from it, so every event a subscriber gets came through
// the bus (or, for a replica's own writes, directly from Publish).
func TestReplicasShareChanges(t *testing.T) {
	srv := mustStartNATS(t, 0)
	store := mustOpenStore(t)
	hcfg := events.Config{Poll: -1, GapWait: time.Minute, Buffer: 2048}
	a := mustStartReplica(t, store, srv.url(), hcfg, Config{})
	b := mustStartReplica(t, store, srv.url(), hcfg, Config{})
	onA := mustSubscribe(t, a.hub, events.Spec{})
	onB := mustSubscribe(t, b.hub, events.Spec{Classes: []string{"StreetLight"}})

	// one write through A reaches a subscriber on B, with the node's state
	ch := mustApply(t, a.pub, graph.Batch{Nodes: []graph.Node{streetLight("sl-791-2", "791-2", 42.399610761400275, -71.13874888584428, 1)}})
	got := mustReceive(t, onB, 1, 10*time.Second)
	if ev := got[0]; ev.Seq != ch[0].Seq || ev.Op != graph.OpCreate || ev.ID != "sl-791-2" || ev.Class != "StreetLight" ||
		ev.Node == nil || ev.Node.Props["poleNumber"] != "791-2" || ev.Node.Geometry == nil {
		t.Fatalf("B received %+v (node %+v), want the creation of sl-791-2 at %d", ev, ev.Node, ch[0].Seq)
	}
	mustReceive(t, onA, 1, 10*time.Second)

	// writes alternating between A and B, concurrently
	const perReplica = 250
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, r := range []*replica{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perReplica {
				id := fmt.Sprintf("sl-%d-%d", i, j)
				if _, err := r.pub.Apply(t.Context(), graph.Batch{Nodes: []graph.Node{streetLight(id, id, 42.37+float64(j)/1e4, -71.1, int64(j%3+1))}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	first := ch[0].Seq + 1
	for name, sub := range map[string]*events.Sub{"subscriber on A": onA, "subscriber on B": onB} {
		evs := mustReceive(t, sub, 2*perReplica, 20*time.Second)
		checkConsecutive(t, name, evs, first)
		mustBeQuiet(t, sub)
	}
	// B's bus carried A's 251 batches and skipped its own 250 (Publish
	// had given them to B's hub); and the other way round
	for name, r := range map[string]*replica{"A": a, "B": b} {
		own := uint64(perReplica)
		others := uint64(perReplica)
		if name == "B" {
			others++ // the first write was A's
		} else {
			own++
		}
		eventually(t, 10*time.Second, name+"'s bus counters", func() bool {
			s := r.bus.Stats()
			return s.Received == own+others && s.Own == own && s.Offered == others
		})
		if s := r.bus.Stats(); s.Published != own || s.PublishErrors != 0 || s.Malformed != 0 {
			t.Errorf("%s's bus: %+v, want %d published and no errors", name, s, own)
		}
	}
	for name, r := range map[string]*replica{"A": a, "B": b} {
		if n := r.logs.count("change events not published; subscribers get them from the change log"); n != 0 {
			t.Errorf("%s logged %d failed publishes", name, n)
		}
	}
}

// A subscriber on B resumes after the cursor of an event written through
// A: from B's memory, and from the change log when B's ring is too small.
func TestResumeOnAnotherReplica(t *testing.T) {
	for _, ring := range []int{100, 1} {
		t.Run(fmt.Sprintf("ring=%d", ring), func(t *testing.T) {
			srv := mustStartNATS(t, 0)
			store := mustOpenStore(t)
			a := mustStartReplica(t, store, srv.url(), events.Config{GapWait: time.Minute}, Config{})
			b := mustStartReplica(t, store, srv.url(), events.Config{GapWait: time.Minute, Ring: ring}, Config{})
			onA := mustSubscribe(t, a.hub, events.Spec{})
			watchB := mustSubscribe(t, b.hub, events.Spec{})
			for i := range 5 {
				id := fmt.Sprintf("sl-%d", i)
				mustApply(t, a.pub, graph.Batch{Nodes: []graph.Node{streetLight(id, id, 42.39, -71.13, 1)}})
			}
			fromA := mustReceive(t, onA, 5, 10*time.Second)
			checkConsecutive(t, "B", mustReceive(t, watchB, 5, 10*time.Second), fromA[0].Seq)

			since, err := events.ParseCursor(fromA[1].Cursor()) // a cursor A's subscriber was given
			if err != nil {
				t.Fatal(err)
			}
			resumed := mustSubscribe(t, b.hub, events.Spec{Classes: []string{"StreetLight"}, Since: &since})
			mustApply(t, a.pub, graph.Batch{Nodes: []graph.Node{streetLight("sl-5", "sl-5", 42.39, -71.13, 2)}})
			got := mustReceive(t, resumed, 4, 10*time.Second)
			checkConsecutive(t, "resumed on B", got, since+1)
			if last := got[3]; last.ID != "sl-5" || last.Node == nil || last.Node.Props["lampCount"] != int64(2) {
				t.Errorf("the live event after the replay is %s %+v", last.ID, last.Node)
			}
			mustBeQuiet(t, resumed)
		})
	}
}

// NATS goes away and comes back on the same port and store directory.
// Commits through A go on while it is down (publishing fails, A logs it);
// B reads those from the change log (its Poll), and the bus carries what
// is written after the restart. B's subscriber gets every event, in order.
func TestNATSRestartLosesNothing(t *testing.T) {
	srv := mustStartNATS(t, 0)
	store := mustOpenStore(t)
	a := mustStartReplica(t, store, srv.url(), events.Config{}, Config{PublishTimeout: time.Second})
	b := mustStartReplica(t, store, srv.url(), events.Config{Poll: 50 * time.Millisecond, GapWait: 50 * time.Millisecond}, Config{})
	onB := mustSubscribe(t, b.hub, events.Spec{Buffer: 1024})
	write := func(id string) {
		t.Helper()
		mustApply(t, a.pub, graph.Batch{Nodes: []graph.Node{streetLight(id, id, 42.36, -71.09, 1)}})
	}

	for i := range 5 {
		write(fmt.Sprintf("before-%d", i))
	}
	eventually(t, 10*time.Second, "B's bus received A's first 5 batches", func() bool { return b.bus.Stats().Received == 5 })

	srv.stop()
	eventually(t, 10*time.Second, "A notices that NATS is gone", func() bool { return !a.bus.nc.IsConnected() })
	for i := range 5 {
		write(fmt.Sprintf("down-%d", i)) // the commit succeeds all the same
	}
	if s := a.bus.Stats(); s.PublishErrors != 5 || s.Published != 5 {
		t.Errorf("A while NATS is down: %+v, want 5 publish errors", s)
	}
	if n := a.logs.count("change events not published; subscribers get them from the change log"); n != 5 {
		t.Errorf("A logged %d failed publishes, want 5", n)
	}
	received := b.bus.Stats().Received

	srv.start()
	eventually(t, 20*time.Second, "A reconnects", func() bool { return a.bus.nc.IsConnected() })
	// publish after the restart until 5 batches reached the stream (the
	// first may come before JetStream has recovered its streams)
	for i := 0; a.bus.Stats().Published < 10; i++ {
		if i == 50 {
			t.Fatalf("A publishes nothing after the restart: %+v", a.bus.Stats())
		}
		write(fmt.Sprintf("after-%d", i))
	}
	last, err := store.LastSeq(t.Context()) // every write: before, while down, after
	if err != nil {
		t.Fatal(err)
	}
	got := mustReceive(t, onB, int(last), 20*time.Second)
	checkConsecutive(t, "B", got, 1)
	mustBeQuiet(t, onB)
	// the bus resumed: B consumed the 5 batches published after the restart
	eventually(t, 30*time.Second, "B's bus consumes after the restart", func() bool { return b.bus.Stats().Received >= received+5 })
	if s := b.bus.Stats(); s.Malformed != 0 {
		t.Errorf("B: %+v", s)
	}
	if n := b.logs.count("nats reconnected"); n == 0 {
		t.Error("B did not log its reconnection")
	}
}

// Messages that are not batches are logged, counted and skipped; the
// consumer goes on with the next.
func TestMalformedMessagesAreSkipped(t *testing.T) {
	srv := mustStartNATS(t, 0)
	store := mustOpenStore(t)
	a := mustStartReplica(t, store, srv.url(), events.Config{GapWait: time.Minute}, Config{})
	b := mustStartReplica(t, store, srv.url(), events.Config{GapWait: time.Minute}, Config{})
	onB := mustSubscribe(t, b.hub, events.Spec{})

	nc, err := nats.Connect(srv.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bad := []string{
		"not json",
		`{"v":2,"changes":[{"seq":1,"op":"CREATE","id":"x","at":""}]}`,
		`{"v":1,"changes":[]}`,
		`{"v":1,"changes":[{"seq":1,"op":"DELETE","id":"x","at":""}],"deleted":{"x":{"props":{"p":{"s":"a","i":"1"}}}}}`,
	}
	for _, m := range bad {
		if _, err := nc.Request(DefaultConfig().Subject, []byte(m), 5*time.Second); err != nil { // JetStream acks it
			t.Fatal(err)
		}
	}
	ch := mustApply(t, a.pub, graph.Batch{Nodes: []graph.Node{streetLight("sl-1", "1", 42.38, -71.1, 1)}})
	if got := mustReceive(t, onB, 1, 10*time.Second); got[0].Seq != ch[0].Seq || got[0].ID != "sl-1" {
		t.Fatalf("after the malformed messages B got %d %s", got[0].Seq, got[0].ID)
	}
	eventually(t, 5*time.Second, "B counts the malformed messages", func() bool { return b.bus.Stats().Malformed == uint64(len(bad)) })
	if n := b.logs.count("malformed change message skipped"); n != len(bad) {
		t.Errorf("B logged %d malformed messages, want %d", n, len(bad))
	}
}

// A batch larger than the server's maximum payload goes as several
// messages; the other replica gets all of it, deletions with their state
// before.
func TestLargeBatchIsSplit(t *testing.T) {
	srv := mustStartNATS(t, 16*1024)
	store := mustOpenStore(t)
	a := mustStartReplica(t, store, srv.url(), events.Config{GapWait: time.Minute}, Config{})
	b := mustStartReplica(t, store, srv.url(), events.Config{GapWait: time.Minute, Buffer: 4096}, Config{})
	lamps := func(n *graph.Node) bool { return n.Props["lampCount"] == int64(2) }
	onB := mustSubscribe(t, b.hub, events.Spec{Classes: []string{"StreetLight"}, Match: lamps})

	var nodes []graph.Node
	var ids []string
	for i := range 600 {
		id := fmt.Sprintf("sl-%03d", i)
		nodes = append(nodes, streetLight(id, id, 42.37, -71.1, 2))
		ids = append(ids, id)
	}
	created := mustApply(t, a.pub, graph.Batch{Nodes: nodes})
	deleted := mustApply(t, a.pub, graph.Batch{DeleteNodes: ids})
	if n := a.bus.Stats().Published; n < 4 {
		t.Fatalf("A published %d messages for two batches of 600 changes over 16 KiB messages", n)
	}
	got := mustReceive(t, onB, 1200, 20*time.Second)
	checkConsecutive(t, "B", got, created[0].Seq)
	// the filter judged every deletion on the node's state before it
	for _, ev := range got[600:] {
		if ev.Op != graph.OpDelete || ev.Node != nil {
			t.Fatalf("event %d: %s with node %+v, want a deletion", ev.Seq, ev.Op, ev.Node)
		}
	}
	if got[1199].Seq != deleted[599].Seq {
		t.Errorf("last event %d, want %d", got[1199].Seq, deleted[599].Seq)
	}
}

func TestOpenErrors(t *testing.T) {
	srv := mustStartNATS(t, 0)
	tests := []struct {
		name string
		cfg  Config
		want []string // in the error
	}{
		{"no url", Config{}, []string{"url is required"}},
		{"bad stream", Config{URL: srv.url(), Stream: "city.hub"}, []string{`stream "city.hub"`}},
		{"wildcard subject", Config{URL: srv.url(), Subject: "cityhub.>"}, []string{`subject "cityhub.>"`}},
		{"nobody listens", Config{URL: "nats://alice:s3cret@127.0.0.1:1"}, []string{"connect to nats://alice:xxxxx@127.0.0.1:1"}},
		{"subject taken", Config{URL: srv.url(), Stream: "OTHER", Subject: "cityhub.changes"}, []string{"create or update stream OTHER", srv.url()}},
	}
	// a stream already listening on the default subject
	if bus, err := Open(t.Context(), Config{URL: srv.url()}); err != nil {
		t.Fatal(err)
	} else {
		bus.Close()
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus, err := Open(t.Context(), tt.cfg)
			if err == nil {
				bus.Close()
				t.Fatalf("Open(%+v) succeeded", tt.cfg)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// Without a hub, a Bus only publishes; Run refuses to start.
func TestPublishOnlyBus(t *testing.T) {
	srv := mustStartNATS(t, 0)
	store := mustOpenStore(t)
	b := mustStartReplica(t, store, srv.url(), events.Config{GapWait: time.Minute}, Config{})
	onB := mustSubscribe(t, b.hub, events.Spec{})
	writer, err := Open(t.Context(), Config{URL: srv.url()})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	if err := writer.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "no hub") {
		t.Errorf("Run without a hub = %v", err)
	}
	ch := mustApply(t, events.Publishing(store, writer, nil), graph.Batch{Nodes: []graph.Node{streetLight("sl-1", "1", 42.38, -71.1, 1)}})
	if got := mustReceive(t, onB, 1, 10*time.Second); got[0].Seq != ch[0].Seq {
		t.Errorf("B got %d, want %d", got[0].Seq, ch[0].Seq)
	}
	// publishing the same batch again is de-duplicated by the stream
	before := b.bus.Stats().Received
	if err := writer.Publish(t.Context(), events.Batch{Changes: ch}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, events.Publishing(store, writer, nil), graph.Batch{Nodes: []graph.Node{streetLight("sl-2", "2", 42.38, -71.1, 1)}})
	mustReceive(t, onB, 1, 10*time.Second)
	if n := b.bus.Stats().Received - before; n != 1 {
		t.Errorf("B received %d messages for a retried and a new batch, want 1", n)
	}
	writer.Close()
	if err := writer.Publish(t.Context(), events.Batch{Changes: ch}); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("Publish after Close = %v, want not connected", err)
	}
}
