package events

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	s, err := sqlite.Open(t.Context(), cfg, ontology.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fixture is a store, a hub running over it and a publishing store.
type fixture struct {
	raw *sqlite.Store
	hub *Hub
	pub *Store
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	raw := openStore(t)
	if cfg.Poll == 0 {
		cfg.Poll = -1 // tests that want polling say so
	}
	hub := NewHub(raw, raw, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
	})
	// Run reads the log's position first: wait until it did
	select {
	case <-hub.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("hub did not start")
	}
	return &fixture{raw: raw, hub: hub, pub: Publishing(raw, hub, nil)}
}

func light(id, status string, watts float64) graph.Node {
	return graph.Node{ID: id, Class: "StreetLight", Props: map[string]any{"status": status, "powerRatingW": watts}}
}

func hood(id string) graph.Node {
	return graph.Node{ID: id, Class: "Neighbourhood", Props: map[string]any{"name": id, "officialCode": id}}
}

func apply(t testing.TB, s graph.Store, b graph.Batch) []graph.Change {
	t.Helper()
	ch, err := s.Apply(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func subscribe(t testing.TB, h *Hub, spec Spec) *Sub {
	t.Helper()
	s, err := h.Subscribe(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// next receives n events or fails.
func next(t testing.TB, s *Sub, n int) []*Event {
	t.Helper()
	var out []*Event
	timeout := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-s.C():
			if !ok {
				t.Fatalf("subscription ended after %d of %d events: %v", len(out), n, s.Err())
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("%d of %d events within 5s: %s", len(out), n, describe(out))
		}
	}
	return out
}

// quiet requires that no event arrives for a while.
func quiet(t testing.TB, s *Sub) {
	t.Helper()
	select {
	case ev, ok := <-s.C():
		if ok {
			t.Fatalf("unexpected event %s", describe([]*Event{ev}))
		}
	case <-time.After(150 * time.Millisecond):
	}
}

func describe(evs []*Event) string {
	var out []string
	for _, ev := range evs {
		s := fmt.Sprintf("%d:%s:%s", ev.Seq, ev.Op, ev.ID)
		if ev.Edge != nil {
			s += "(" + ev.Edge.Rel + "→" + ev.Edge.To + ")"
		}
		out = append(out, s)
	}
	return fmt.Sprint(out)
}

func seqs(evs []*Event) []uint64 {
	var out []uint64
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

// settle waits until the hub has delivered the event seq.
func settle(t testing.TB, h *Hub, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.Last() < seq {
		if time.Now().After(deadline) {
			t.Fatalf("the hub is at %d, not %d", h.Last(), seq)
		}
		time.Sleep(time.Millisecond)
	}
}

func faulty(n *graph.Node) bool { return n.Props["status"] == "FAULTY" }

func TestLiveDeliveryByClassAndFilter(t *testing.T) {
	f := newFixture(t, Config{})
	lights := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}})
	broken := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Match: faulty})
	hoods := subscribe(t, f.hub, Spec{Classes: []string{"Neighbourhood"}})
	all := subscribe(t, f.hub, Spec{})

	apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light("l1", "OK", 100), light("l2", "FAULTY", 60), hood("h1")}})
	apply(t, f.pub, graph.Batch{Edges: []graph.Edge{{From: "l1", Rel: "LOCATED_IN", To: "h1"}}})
	apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light("l1", "FAULTY", 100)}})

	got := next(t, lights, 4)
	if d := describe(got); d != "[1:CREATE:l1 2:CREATE:l2 4:EDGE_ADD:l1(LOCATED_IN→h1) 5:UPDATE:l1]" {
		t.Errorf("StreetLight events = %s", d)
	}
	if got[3].Node == nil || got[3].Node.Props["status"] != "FAULTY" || !slices.Equal(got[3].Changed, []string{"status"}) {
		t.Errorf("update carries %+v, changed %v", got[3].Node, got[3].Changed)
	}
	if got[0].Cursor() != "1" {
		t.Errorf("cursor = %q", got[0].Cursor())
	}
	// the edge appears on the other end's stream too, with that end's node
	got = next(t, hoods, 2)
	if d := describe(got); d != "[3:CREATE:h1 4:EDGE_ADD:h1(LOCATED_IN→h1)]" {
		t.Errorf("Neighbourhood events = %s", d)
	}
	if got[1].Node == nil || got[1].Node.ID != "h1" || got[1].Class != "Neighbourhood" {
		t.Errorf("edge event on the neighbourhood's stream carries %+v", got[1].Node)
	}
	got = next(t, broken, 2)
	if d := describe(got); d != "[2:CREATE:l2 5:UPDATE:l1]" {
		t.Errorf("FAULTY street lights = %s", d)
	}
	if got := next(t, all, 5); !slices.Equal(seqs(got), []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("every event: %s", describe(got))
	}
	quiet(t, lights)
}

func TestDeletionJudgedOnStateBefore(t *testing.T) {
	f := newFixture(t, Config{})
	ch := apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light("ok", "OK", 1), light("bad", "FAULTY", 1)}})
	settle(t, f.hub, ch[len(ch)-1].Seq)
	broken := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Match: faulty})
	apply(t, f.pub, graph.Batch{DeleteNodes: []string{"ok", "bad"}})
	got := next(t, broken, 1)
	if got[0].Op != graph.OpDelete || got[0].ID != "bad" || got[0].Node != nil {
		t.Errorf("deletion event = %s, node %v", describe(got), got[0].Node)
	}
	quiet(t, broken)
}

// Batches offered out of order, and one never offered, still arrive in
// sequence order: the hub waits, then reads the change log.
func TestOrderAndGapsFromTheLog(t *testing.T) {
	f := newFixture(t, Config{GapWait: 30 * time.Millisecond})
	sub := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}})
	b1 := apply(t, f.raw, graph.Batch{Nodes: []graph.Node{light("a", "OK", 1)}})
	b2 := apply(t, f.raw, graph.Batch{Nodes: []graph.Node{light("b", "OK", 1)}})
	b3 := apply(t, f.raw, graph.Batch{Nodes: []graph.Node{light("c", "OK", 1)}})
	_ = b1 // never offered: written by a writer that does not publish
	for _, b := range [][]graph.Change{b3, b2} {
		if err := f.hub.Offer(t.Context(), Batch{Changes: b}); err != nil {
			t.Fatal(err)
		}
	}
	if got := next(t, sub, 3); describe(got) != "[1:CREATE:a 2:CREATE:b 3:CREATE:c]" {
		t.Errorf("events = %s", describe(got))
	}
}

// Writes no publisher delivers (another process on the same store) arrive
// by polling the change log.
func TestPollsTheLog(t *testing.T) {
	f := newFixture(t, Config{Poll: 20 * time.Millisecond})
	sub := subscribe(t, f.hub, Spec{})
	apply(t, f.raw, graph.Batch{Nodes: []graph.Node{light("a", "OK", 1)}})
	if got := next(t, sub, 1); got[0].ID != "a" || got[0].Node == nil {
		t.Errorf("events = %s", describe(got))
	}
}

func TestResume(t *testing.T) {
	for _, ring := range []int{100, 2} { // from memory; from the change log
		t.Run(fmt.Sprintf("ring=%d", ring), func(t *testing.T) {
			f := newFixture(t, Config{Ring: ring})
			watch := subscribe(t, f.hub, Spec{})
			for i := range 6 {
				apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light(fmt.Sprintf("l%d", i), "OK", float64(i))}})
			}
			next(t, watch, 6)
			since := uint64(2)
			sub := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Since: &since})
			// a write while catching up comes after the replayed ones
			apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light("l6", "OK", 6)}})
			if got := next(t, sub, 5); !slices.Equal(seqs(got), []uint64{3, 4, 5, 6, 7}) {
				t.Errorf("resumed after 2: %s", describe(got))
			}
			quiet(t, sub)
			// since the last event: nothing to replay, live from there
			last := uint64(7)
			live := subscribe(t, f.hub, Spec{Since: &last})
			apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light("l7", "OK", 7)}})
			if got := next(t, live, 1); got[0].Seq != 8 {
				t.Errorf("since the last event: %s", describe(got))
			}
		})
	}
}

func TestExpiredCursor(t *testing.T) {
	f := newFixture(t, Config{Ring: 2, Retention: time.Hour})
	watch := subscribe(t, f.hub, Spec{})
	for i := range 4 {
		apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light(fmt.Sprintf("l%d", i), "OK", 1)}})
	}
	next(t, watch, 4)
	// the log drops everything (as retention would, later)
	if _, err := f.raw.PruneChanges(t.Context(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	since := uint64(1)
	sub, err := f.hub.Subscribe(t.Context(), Spec{Since: &since})
	if err != nil {
		t.Fatalf("subscribe: %v", err) // the hub learns of the pruning when replaying
	}
	select {
	case ev, ok := <-sub.C():
		if ok {
			t.Fatalf("an event after an expired cursor: %s", describe([]*Event{ev}))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription did not end")
	}
	var re *ResumeError
	if err := sub.Err(); !errors.Is(err, ErrExpired) || !errors.As(err, &re) {
		t.Fatalf("Err = %v, want an expired cursor", err)
	}
	// once the hub has pruned, the error comes at subscribe
	f.hub.prune(t.Context())
	if _, err := f.hub.Subscribe(t.Context(), Spec{Since: &since}); !errors.Is(err, ErrExpired) {
		t.Errorf("subscribe after pruning: %v, want ErrExpired", err)
	} else if want := `cursor expired (events are kept for 1h0m0s; the oldest kept follows cursor "4"); resume with since: "4"`; err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
	if _, err := ParseCursor("abc"); !errors.Is(err, ErrBadCursor) {
		t.Errorf("ParseCursor(abc) = %v", err)
	}
}

// A subscriber that does not read ends with an error naming the cursor
// to resume from; resuming from it loses nothing.
func TestSlowConsumer(t *testing.T) {
	f := newFixture(t, Config{Buffer: 4})
	slow := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}})
	for i := range 10 {
		apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light(fmt.Sprintf("l%d", i), "OK", 1)}})
	}
	var got []*Event
	deadline := time.After(5 * time.Second)
	for done := false; !done; {
		select {
		case ev, ok := <-slow.C():
			if !ok {
				done = true
				break
			}
			got = append(got, ev)
		case <-deadline:
			t.Fatal("the overflowing subscription did not end")
		}
	}
	if !slices.Equal(seqs(got), []uint64{1, 2, 3, 4}) {
		t.Errorf("buffered events = %s", describe(got))
	}
	var re *ResumeError
	if err := slow.Err(); !errors.As(err, &re) || !errors.Is(err, ErrOverflow) || re.Cursor != "4" {
		t.Fatalf("Err = %v, want overflow with cursor 4", err)
	}
	if want := `subscription buffer overflowed (more than 4 events waiting); resume with since: "4"`; slow.Err().Error() != want {
		t.Errorf("error = %q", slow.Err())
	}
	if n := f.hub.subscribers(); n != 0 {
		t.Errorf("%d subscribers left in the hub", n)
	}
	since, err := ParseCursor(re.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	resumed := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Since: &since, Buffer: 16})
	if got := next(t, resumed, 6); !slices.Equal(seqs(got), []uint64{5, 6, 7, 8, 9, 10}) {
		t.Errorf("resumed: %s", describe(got))
	}
}

func TestCoalesce(t *testing.T) {
	f := newFixture(t, Config{})
	sub := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Coalesce: 200 * time.Millisecond})
	apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light("a", "OK", 1)}})
	apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light("b", "OK", 1)}})
	apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light("a", "FAULTY", 1)}})
	apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light("a", "FAULTY", 7)}})
	got := next(t, sub, 2)
	if d := describe(got); d != "[2:CREATE:b 4:CREATE:a]" {
		t.Fatalf("coalesced = %s", d)
	}
	a := got[1]
	if a.Merged != 3 || a.Node == nil || a.Node.Props["powerRatingW"] != 7.0 || a.Node.Props["status"] != "FAULTY" {
		t.Errorf("merged event: merged %d, node %+v", a.Merged, a.Node)
	}
	if !slices.Contains(a.Changed, "status") || !slices.Contains(a.Changed, "powerRatingW") {
		t.Errorf("changed = %v, want status and powerRatingW among them", a.Changed)
	}
	quiet(t, sub)
	// a later change opens a new window
	apply(t, f.pub, graph.Batch{Nodes: []graph.Node{light("a", "OK", 7)}})
	if got := next(t, sub, 1); describe(got) != "[5:UPDATE:a]" || got[0].Merged != 1 {
		t.Errorf("next window: %s", describe(got))
	}
}

func TestEndsWithContextAndHub(t *testing.T) {
	f := newFixture(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	sub, err := f.hub.Subscribe(ctx, Spec{Classes: []string{"StreetLight"}})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, ok := <-sub.C():
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not closed after cancel")
	}
	if sub.Err() != nil {
		t.Errorf("Err after cancel = %v", sub.Err())
	}
	if n := f.hub.subscribers(); n != 0 {
		t.Errorf("%d subscribers left", n)
	}
}

func TestPublishingStoreKeepsCommitOnPublishFailure(t *testing.T) {
	raw := openStore(t)
	hub := NewHub(raw, raw, Config{})
	hub.close() // a stopped hub refuses batches
	s := Publishing(raw, hub, nil)
	ch, err := s.Apply(t.Context(), graph.Batch{Nodes: []graph.Node{light("a", "OK", 1)}})
	if err != nil || len(ch) != 1 {
		t.Fatalf("Apply = %v, %v", ch, err)
	}
	if ns, err := raw.Nodes(t.Context(), []string{"a"}); err != nil || ns[0] == nil {
		t.Errorf("the commit is lost: %v, %v", ns, err)
	}
}

func (h *Hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.all)
	for _, m := range h.byClass {
		n += len(m)
	}
	return n
}

func TestSourceHealthEvents(t *testing.T) {
	f := newFixture(t, Config{})
	sub := subscribe(t, f.hub, Spec{Classes: []string{"Source"}})
	src := func(stale bool) graph.Node {
		return graph.Node{ID: "src", Class: "Source", Props: map[string]any{"code": "src", "stale": stale}}
	}
	apply(t, f.pub, graph.Batch{Nodes: []graph.Node{src(false)}})
	apply(t, f.pub, graph.Batch{Nodes: []graph.Node{src(true)}})
	got := next(t, sub, 2)
	if got[0].Op != graph.OpCreate || got[1].Op != graph.OpSourceState || got[1].Node.Props["stale"] != true {
		t.Errorf("source events = %s", describe(got))
	}
}

// A subscriber that never reads costs its buffer and no more: with the
// ring bounded too, the hub's memory does not grow with the events that
// pass through it.
func TestMemoryBoundedWithStalledSubscriber(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 30,000 nodes")
	}
	f := newFixture(t, Config{Ring: 1000, Buffer: 256})
	stalled := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}})
	n := 0
	write := func(batches int) {
		for range batches {
			var b graph.Batch
			for range 100 {
				b.Nodes = append(b.Nodes, light(fmt.Sprintf("m%06d", n), "OK", float64(n)))
				n++
			}
			settle(t, f.hub, apply(t, f.pub, b)[99].Seq)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	write(50) // 5,000 events: the ring is full, the subscriber overflowed
	first := heap()
	write(250) // 25,000 more
	second := heap()
	t.Logf("heap after 5,000 events %.1f MiB, after 30,000 %.1f MiB", float64(first)/(1<<20), float64(second)/(1<<20))
	if second > first+4<<20 {
		t.Errorf("heap grew from %d to %d bytes over 25,000 events", first, second)
	}
	if !errors.Is(stalled.Err(), ErrOverflow) {
		t.Errorf("the stalled subscriber: %v, want an overflow", stalled.Err())
	}
	if got := len(f.hub.ring); got != 1000 {
		t.Errorf("ring holds %d entries, want 1000", got)
	}
}
