package events

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// Keyed subscriptions (found by their filter's equality, not tested
// against every change) receive what unkeyed ones with the same filter
// receive: creations, updates, deletions judged on the state before, and
// edge events through either end; an edge between two nodes of the
// subscribed classes arrives once.
func TestKeyedSubscriptionsReceiveWhatTheFilterPasses(t *testing.T) {
	f := newFixture(t, Config{})
	isL1 := func(n *graph.Node) bool { return n.ID == "l1" }
	keyed := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Match: isL1, Key: &Key{Field: graph.FieldID, Values: []string{"l1"}}})
	plain := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Match: isL1})
	broken := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Match: faulty, Key: &Key{Field: "status", Values: []string{"FAULTY", "UNKNOWN"}}})
	plainBroken := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Match: faulty})
	h1 := func(n *graph.Node) bool { return n.ID == "h1" || n.ID == "l1" }
	both := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight", "Neighbourhood"}, Match: h1, Key: &Key{Field: graph.FieldID, Values: []string{"h1", "l1"}}})
	isL := func(n *graph.Node) bool { return strings.HasPrefix(n.ID, "l") }
	prefixed := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Match: isL, Key: &Key{Field: graph.FieldID, Values: []string{"l"}, Prefix: true}})
	plainPrefixed := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Match: isL})

	// each batch is delivered before the next commits: a node's event is
	// judged on the state the hub reads, gone once the node is deleted
	for _, b := range []graph.Batch{
		{Nodes: []graph.Node{light("l1", "OK", 100), light("l2", "FAULTY", 60), hood("h1")}},
		{Edges: []graph.Edge{{From: "l1", Rel: "LOCATED_IN", To: "h1"}}},
		{Nodes: []graph.Node{light("l1", "FAULTY", 100), light("l2", "OK", 60)}},
		{DeleteNodes: []string{"l1"}},
	} {
		ch := apply(t, f.pub, b)
		settle(t, f.hub, ch[len(ch)-1].Seq)
	}

	want := "[1:CREATE:l1 4:EDGE_ADD:l1(LOCATED_IN→h1) 5:UPDATE:l1 7:EDGE_REMOVE:l1(LOCATED_IN→h1) 8:DELETE:l1]"
	if d := describe(next(t, plain, 5)); d != want {
		t.Fatalf("unkeyed: %s, want %s", d, want)
	}
	if d := describe(next(t, keyed, 5)); d != want {
		t.Errorf("keyed on id: %s, want %s", d, want)
	}
	wantBroken := "[2:CREATE:l2 5:UPDATE:l1 7:EDGE_REMOVE:l1(LOCATED_IN→h1) 8:DELETE:l1]"
	if d := describe(next(t, plainBroken, 4)); d != wantBroken {
		t.Fatalf("unkeyed on status: %s, want %s", d, wantBroken)
	}
	if d := describe(next(t, broken, 4)); d != wantBroken {
		t.Errorf("keyed on status: %s, want %s", d, wantBroken)
	}
	if d := describe(next(t, both, 6)); d != "[1:CREATE:l1 3:CREATE:h1 4:EDGE_ADD:l1(LOCATED_IN→h1) 5:UPDATE:l1 7:EDGE_REMOVE:l1(LOCATED_IN→h1) 8:DELETE:l1]" {
		t.Errorf("keyed on both ends: %s", d)
	}
	wantL := describe(next(t, plainPrefixed, 7))
	if d := describe(next(t, prefixed, 7)); d != wantL {
		t.Errorf("keyed on an id prefix: %s, want %s", d, wantL)
	}
	for _, s := range []*Sub{keyed, plain, broken, plainBroken, both, prefixed, plainPrefixed} {
		quiet(t, s)
	}
	// ended keyed subscriptions leave the index
	for _, s := range []*Sub{keyed, broken, both, prefixed} {
		s.Close()
	}
	deadline := 100
	for ; deadline > 0; deadline-- {
		f.hub.mu.Lock()
		n := len(f.hub.byKey) + len(f.hub.byPrefix)
		f.hub.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if deadline == 0 {
		t.Errorf("index after the keyed subscriptions ended: %v", f.hub.byKey)
	}
}

// Regional subscriptions (found by the cell of a node's point) receive
// what unindexed ones with the same filter receive, across cell borders,
// for moves in and out of the region and for deletions.
func TestRegionalSubscriptionsReceiveWhatTheFilterPasses(t *testing.T) {
	f := newFixture(t, Config{})
	// a box straddling cell borders (cells are 0.05°)
	box := graph.BBox{MinLat: 42.34, MinLon: -71.12, MaxLat: 42.41, MaxLon: -71.04}
	inBox := func(n *graph.Node) bool { return n.Geometry != nil && box.Contains(n.Geometry.Point) }
	regional := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Match: inBox, Region: &box})
	plain := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Match: inBox})
	at := func(id string, lat, lon float64) graph.Node {
		n := light(id, "OK", 1)
		n.Geometry = graph.PointGeometry(lat, lon)
		return n
	}
	for _, b := range []graph.Batch{
		{Nodes: []graph.Node{at("a", 42.345, -71.115), at("b", 42.405, -71.045), at("c", 42.36, -71.2), at("d", 42.399, -71.0501)}},
		{Nodes: []graph.Node{at("c", 42.36, -71.06), at("a", 42.2, -71.115)}}, // c moves in, a out
		{DeleteNodes: []string{"b"}},
	} {
		ch := apply(t, f.pub, b)
		settle(t, f.hub, ch[len(ch)-1].Seq)
	}
	want := "[1:CREATE:a 2:CREATE:b 4:CREATE:d 5:UPDATE:c 7:DELETE:b]"
	if d := describe(next(t, plain, 5)); d != want {
		t.Fatalf("unindexed: %s, want %s", d, want)
	}
	if d := describe(next(t, regional, 5)); d != want {
		t.Errorf("regional: %s, want %s", d, want)
	}
	quiet(t, regional)
	f.hub.mu.Lock()
	cells := len(f.hub.byCell["StreetLight"])
	f.hub.mu.Unlock()
	if cells != 3*3 {
		t.Errorf("the region is indexed in %d cells, want 9", cells)
	}
}

// A Replay subscription takes a burst larger than its buffer whole and in
// order, reading what overflowed from memory or the change log; its
// backlog stays within the buffer.
func TestReplayInsteadOfOverflow(t *testing.T) {
	for _, ring := range []int{10_000, 8} { // from memory; from the change log
		t.Run(fmt.Sprintf("ring=%d", ring), func(t *testing.T) {
			f := newFixture(t, Config{Ring: ring})
			sub := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Buffer: 4, Replay: true})
			ended := subscribe(t, f.hub, Spec{Classes: []string{"StreetLight"}, Buffer: 4})
			var burst []graph.Node
			for i := range 300 {
				burst = append(burst, light(fmt.Sprintf("l%03d", i), "OK", float64(i)))
			}
			apply(t, f.pub, graph.Batch{Nodes: burst[:150]})
			apply(t, f.pub, graph.Batch{Nodes: burst[150:]})
			got := next(t, sub, 300)
			for i, ev := range got {
				if ev.Seq != uint64(i+1) || ev.ID != fmt.Sprintf("l%03d", i) {
					t.Fatalf("event %d is %s", i, describe([]*Event{ev}))
				}
			}
			quiet(t, sub)
			sub.mu.Lock()
			backlog, catching := cap(sub.backlog), sub.catching
			sub.mu.Unlock()
			if backlog > 2*4 || catching {
				t.Errorf("after the burst: backlog capacity %d, catching %v", backlog, catching)
			}
			// without Replay the same burst ends the subscription
			for range ended.C() {
			}
			if !errors.Is(ended.Err(), ErrOverflow) {
				t.Errorf("without Replay: %v", ended.Err())
			}
		})
	}
}
