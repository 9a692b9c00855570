package residents_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/residents"
)

type S = residents.RequestStatus

// lifecycle is the table of README.md, written out independently of the
// package's own: the statuses each status may move to, in order.
var lifecycle = map[S][]S{
	"SUBMITTED":    {"ACKNOWLEDGED", "REJECTED", "DUPLICATE"},
	"ACKNOWLEDGED": {"ASSIGNED", "REJECTED", "DUPLICATE"},
	"ASSIGNED":     {"IN_PROGRESS", "REJECTED", "DUPLICATE"},
	"IN_PROGRESS":  {"ON_HOLD", "RESOLVED", "REJECTED", "DUPLICATE"},
	"ON_HOLD":      {"IN_PROGRESS", "RESOLVED", "REJECTED", "DUPLICATE"},
	"RESOLVED":     {"CLOSED", "REOPENED"},
	"CLOSED":       {"REOPENED"},
	"REJECTED":     nil,
	"DUPLICATE":    nil,
	"REOPENED":     {"ASSIGNED", "REJECTED", "DUPLICATE"},
}

// pathTo is a way from SUBMITTED to each status.
var pathTo = map[S][]S{
	"SUBMITTED":    nil,
	"ACKNOWLEDGED": {"ACKNOWLEDGED"},
	"ASSIGNED":     {"ACKNOWLEDGED", "ASSIGNED"},
	"IN_PROGRESS":  {"ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS"},
	"ON_HOLD":      {"ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS", "ON_HOLD"},
	"RESOLVED":     {"ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS", "RESOLVED"},
	"CLOSED":       {"ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS", "RESOLVED", "CLOSED"},
	"REJECTED":     {"REJECTED"},
	"DUPLICATE":    {"DUPLICATE"},
	"REOPENED":     {"ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS", "RESOLVED", "CLOSED", "REOPENED"},
}

var needsReason = map[S]bool{"REJECTED": true, "DUPLICATE": true, "ON_HOLD": true, "REOPENED": true}

func TestLifecycleTable(t *testing.T) {
	t.Parallel()
	all := residents.Statuses()
	enum := ontology.Default().Enum("ServiceRequestStatus").Values
	if len(all) != len(enum) || len(all) != len(lifecycle) {
		t.Fatalf("Statuses() = %v; ontology enum %v", all, enum)
	}
	for _, from := range all {
		if !slices.Contains(enum, string(from)) || !from.Valid() {
			t.Errorf("%s is not a ServiceRequestStatus", from)
		}
		if got := residents.Allowed(from); !slices.Equal(got, lifecycle[from]) {
			t.Errorf("Allowed(%s) = %v, want %v", from, got, lifecycle[from])
		}
		for _, to := range all {
			if got, want := residents.CanTransition(from, to), slices.Contains(lifecycle[from], to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
		if got, want := residents.NeedsReason(from), needsReason[from]; got != want {
			t.Errorf("NeedsReason(%s) = %v", from, got)
		}
		if got, want := residents.Terminal(from), from == "CLOSED" || from == "REJECTED" || from == "DUPLICATE"; got != want {
			t.Errorf("Terminal(%s) = %v", from, got)
		}
	}
	if S("DONE").Valid() || residents.CanTransition("DONE", "CLOSED") || residents.Allowed("DONE") != nil {
		t.Error("an unknown status is accepted")
	}
}

// newRequest reports a pothole and walks it to status from.
func newRequest(t *testing.T, d *residents.Desk, from S) *residents.Receipt {
	t.Helper()
	rc, err := d.Report(t.Context(), residents.Report{ServiceCode: "pothole", Lat: 42.3732, Lon: -71.1190, Description: "Pothole at the kerb"})
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	for _, s := range pathTo[from] {
		if _, err := d.Transition(t.Context(), rc.RequestID, s, "step to "+string(s), ""); err != nil {
			t.Fatalf("path to %s: Transition(%s): %v", from, s, err)
		}
	}
	return rc
}

// TestTransitionMatrix tries every pair of statuses against the store:
// each allowed move succeeds and writes the status and one StatusChange;
// each refused one names both states and the allowed targets and writes
// nothing.
func TestTransitionMatrix(t *testing.T) {
	t.Parallel()
	d, st, _ := MustDesk(t)
	for _, from := range residents.Statuses() {
		stuck := newRequest(t, d, from)
		for _, to := range residents.Statuses() {
			name := fmt.Sprintf("%s→%s", from, to)
			if !slices.Contains(lifecycle[from], to) {
				before := mustWrites(t, st)
				n, err := d.Transition(t.Context(), stuck.RequestID, to, "because", "")
				var te *residents.TransitionError
				if err == nil || !errors.As(err, &te) {
					t.Errorf("%s: Transition = %v, %v; want a *TransitionError", name, n, err)
					continue
				}
				if !errors.Is(err, residents.ErrTransition) || !errors.Is(err, graph.ErrConflict) || !residents.IsConflict(err) || residents.IsInvalid(err) {
					t.Errorf("%s: %v does not wrap ErrTransition and graph.ErrConflict alone", name, err)
				}
				if te.From != from || te.To != to || !slices.Equal(te.Allowed, lifecycle[from]) {
					t.Errorf("%s: error %+v", name, te)
				}
				msg := err.Error()
				if !strings.Contains(msg, "from "+string(from)+" to "+string(to)) {
					t.Errorf("%s: message %q names not both states", name, msg)
				}
				for _, a := range lifecycle[from] {
					if !strings.Contains(msg, string(a)) {
						t.Errorf("%s: message %q does not list %s", name, msg, a)
					}
				}
				if after := mustWrites(t, st); after != before {
					t.Errorf("%s: a refused transition wrote (%+v → %+v)", name, before, after)
				}
				continue
			}
			rc := newRequest(t, d, from)
			if needsReason[to] {
				before := mustWrites(t, st)
				_, err := d.Transition(t.Context(), rc.RequestID, to, "  ", "")
				if !errors.Is(err, residents.ErrReasonRequired) || !residents.IsInvalid(err) {
					t.Errorf("%s without a reason: %v", name, err)
				}
				if after := mustWrites(t, st); after != before {
					t.Errorf("%s: a transition without its reason wrote", name)
				}
			}
			reason := "reason for " + string(to)
			n, err := d.Transition(t.Context(), rc.RequestID, to, reason, "")
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if n.Props["status"] != string(to) || n.Props["statusNotes"] != reason {
				t.Errorf("%s: node status %v, notes %v", name, n.Props["status"], n.Props["statusNotes"])
			}
			closedAt, closed := n.Props["closedAt"].(time.Time)
			if wantClosed := to == "CLOSED" || to == "REJECTED" || to == "DUPLICATE"; closed != wantClosed {
				t.Errorf("%s: closedAt = %v", name, n.Props["closedAt"])
			}
			hist, err := d.History(t.Context(), rc.RequestID)
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != len(pathTo[from])+2 {
				t.Errorf("%s: %d status changes, want %d", name, len(hist), len(pathTo[from])+2)
				continue
			}
			last := hist[len(hist)-1]
			if last.From != from || last.To != to || last.Note != reason || (closed && !last.At.Equal(closedAt)) {
				t.Errorf("%s: last change %+v", name, last)
			}
			for i := 1; i < len(hist); i++ {
				if hist[i].From != hist[i-1].To || !hist[i].At.After(hist[i-1].At) {
					t.Errorf("%s: history out of order: %+v", name, hist)
					break
				}
			}
		}
	}
}

func TestTransitionRefused(t *testing.T) {
	t.Parallel()
	d, st, _ := MustDesk(t)
	rc := newRequest(t, d, "SUBMITTED")
	lights, err := st.Find(t.Context(), graph.FindQuery{Class: "StreetLight", First: 1})
	if err != nil {
		t.Fatal(err)
	}
	light := lights.Nodes[0].ID
	// an Agency that operators act for, and a request another source owns
	agency := "urn:city:agency:cambridge-gis:dpw"
	foreign := "urn:city:service-request:cambridge-311:4711"
	if _, err := st.Apply(t.Context(), graph.Batch{Nodes: []graph.Node{
		{ID: agency, Class: "Agency", Props: map[string]any{"name": "Department of Public Works", "agencyCode": "DPW"}, Prov: graph.Provenance{Source: "cambridge-gis"}},
		{ID: foreign, Class: "ServiceRequest", Props: map[string]any{"status": "SUBMITTED", "requestNumber": "4711", "reportedAt": time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
			Prov: graph.Provenance{Source: "cambridge-311"}},
	}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		id         string
		to         S
		reason     string
		actor      string
		want, code error
	}{
		{"unknown request", "urn:city:service-request:residents:20250314-0000-0000", "ACKNOWLEDGED", "", "", residents.ErrNoRequest, graph.ErrNotFound},
		{"empty request ID", "", "ACKNOWLEDGED", "", "", residents.ErrNoRequest, graph.ErrNotFound},
		{"not a request", light, "ACKNOWLEDGED", "", "", residents.ErrNoRequest, graph.ErrNotFound},
		{"unknown status", rc.RequestID, "DONE", "", "", residents.ErrUnknownStatus, graph.ErrInvalid},
		{"lower-case status", rc.RequestID, "acknowledged", "", "", residents.ErrUnknownStatus, graph.ErrInvalid},
		{"reason too long", rc.RequestID, "ACKNOWLEDGED", strings.Repeat("x", 4001), "", residents.ErrBadReason, graph.ErrInvalid},
		{"reason with control characters", rc.RequestID, "REJECTED", "no\x1b[2J", "", residents.ErrBadReason, graph.ErrInvalid},
		{"actor not in the graph", rc.RequestID, "ACKNOWLEDGED", "", "urn:city:person:residents:nobody", residents.ErrBadActor, graph.ErrInvalid},
		{"actor not an agent", rc.RequestID, "ACKNOWLEDGED", "", light, residents.ErrBadActor, graph.ErrInvalid},
		{"foreign request", foreign, "ACKNOWLEDGED", "", "", residents.ErrForeignRequest, graph.ErrConflict},
	}
	before := mustWrites(t, st)
	for _, tc := range tests {
		n, err := d.Transition(t.Context(), tc.id, tc.to, tc.reason, tc.actor)
		if !errors.Is(err, tc.want) || !errors.Is(err, tc.code) {
			t.Errorf("%s: Transition = %v, %v; want %v (%v)", tc.name, n, err, tc.want, tc.code)
		}
	}
	if after := mustWrites(t, st); after != before {
		t.Errorf("refused transitions wrote (%+v → %+v)", before, after)
	}
	// an expected status that is not the current one
	_, err = d.TransitionFrom(t.Context(), rc.RequestID, "ACKNOWLEDGED", "ASSIGNED", "", "")
	var te *residents.TransitionError
	if !errors.As(err, &te) || te.Expected != "ACKNOWLEDGED" || te.From != "SUBMITTED" || !strings.Contains(err.Error(), "is SUBMITTED, not ACKNOWLEDGED") {
		t.Errorf("TransitionFrom(ACKNOWLEDGED) on a SUBMITTED request: %v", err)
	}
	// an agent actor is linked with CHANGED_BY
	if _, err := d.TransitionFrom(t.Context(), rc.RequestID, "SUBMITTED", "ACKNOWLEDGED", "", agency); err != nil {
		t.Fatal(err)
	}
	changes, _ := neighbors(t, st, rc.RequestID, "HAS_STATUS_CHANGE")
	slices.Sort(changes)
	if by, _ := neighbors(t, st, changes[len(changes)-1], "CHANGED_BY"); len(by) != 1 || by[0] != agency {
		t.Errorf("CHANGED_BY of %s = %v, want %s", changes[len(changes)-1], by, agency)
	}
}

// TestTransitionConcurrent: of operators moving one request from the same
// status at once, exactly one succeeds.
func TestTransitionConcurrent(t *testing.T) {
	t.Parallel()
	d, st, _ := MustDesk(t)
	const operators = 8
	run := func(t *testing.T, move func(i int, id string) (*graph.Node, error), winners []S) {
		rc := newRequest(t, d, "SUBMITTED")
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []S
		var lost []error
		start := make(chan struct{})
		for i := range operators {
			wg.Go(func() {
				<-start
				n, err := move(i, rc.RequestID)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					lost = append(lost, err)
					return
				}
				won = append(won, S(n.Props["status"].(string)))
			})
		}
		close(start)
		wg.Wait()
		if len(won) != 1 || len(lost) != operators-1 {
			t.Fatalf("%d operators won (%v), %d lost: %v", len(won), won, len(lost), lost)
		}
		for _, err := range lost {
			if !residents.IsConflict(err) {
				t.Errorf("loser got %v, want a conflict", err)
			}
		}
		hist, err := d.History(t.Context(), rc.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || hist[1].From != "SUBMITTED" || hist[1].To != won[0] || !slices.Contains(winners, won[0]) {
			t.Errorf("history %+v, winner %s", hist, won[0])
		}
		if got := mustNode(t, st, rc.RequestID).Props["status"]; got != string(won[0]) {
			t.Errorf("stored status %v, winner %s", got, won[0])
		}
	}
	t.Run("same target", func(t *testing.T) {
		run(t, func(_ int, id string) (*graph.Node, error) {
			return d.Transition(t.Context(), id, "ACKNOWLEDGED", "", "")
		}, []S{"ACKNOWLEDGED"})
	})
	t.Run("expected status", func(t *testing.T) {
		targets := []S{"ACKNOWLEDGED", "REJECTED", "DUPLICATE"}
		run(t, func(i int, id string) (*graph.Node, error) {
			return d.TransitionFrom(t.Context(), id, "SUBMITTED", targets[i%3], "triaged by operator "+fmt.Sprint(i), "")
		}, targets)
	})
}

// gatedStore holds the Apply calls of one desk until released, to play
// two replicas that read the same status before either writes.
type gatedStore struct {
	graph.Store
	entered chan struct{} // receives when an Apply waits at the gate
	gate    chan struct{}
}

func (g *gatedStore) Apply(ctx context.Context, b graph.Batch) ([]graph.Change, error) {
	g.entered <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Store.Apply(ctx, b)
}

// TestTransitionReplicas plays two replicas (two desks, no shared lock)
// that both read SUBMITTED; the one whose change is later wins whatever
// the commit order, and the other is told.
func TestTransitionReplicas(t *testing.T) {
	t.Parallel()
	d, st, clk := MustDesk(t)
	rc := newRequest(t, d, "SUBMITTED")
	cfg := d.Config()
	gated := &gatedStore{Store: st, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	early, err := residents.New(gated, ontology.Default(), cfg, residents.WithNow(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	// the late replica's clock is an hour ahead
	late, err := residents.New(st, ontology.Default(), cfg, residents.WithNow(func() time.Time { return clk.Now().Add(time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	var earlyErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, earlyErr = early.Transition(t.Context(), rc.RequestID, "REJECTED", "not city property", "")
	}()
	// the early replica has read SUBMITTED and waits at its write
	<-gated.entered
	if _, err := late.Transition(t.Context(), rc.RequestID, "ACKNOWLEDGED", "", ""); err != nil {
		t.Fatalf("late replica: %v", err)
	}
	close(gated.gate)
	<-done
	if !errors.Is(earlyErr, residents.ErrConcurrentUpdate) || !residents.IsConflict(earlyErr) {
		t.Errorf("early replica: %v, want ErrConcurrentUpdate", earlyErr)
	}
	n := mustNode(t, st, rc.RequestID)
	hist, err := d.History(t.Context(), rc.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if n.Props["status"] != "ACKNOWLEDGED" || n.Props["closedAt"] != nil || len(hist) != 2 || hist[1].To != "ACKNOWLEDGED" || hist[1].Note != "" {
		t.Errorf("after the race: status %v, closedAt %v, history %+v", n.Props["status"], n.Props["closedAt"], hist)
	}
	// a replica whose clock is behind the last change still moves on
	behind, err := residents.New(st, ontology.Default(), cfg, residents.WithNow(func() time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := behind.Transition(t.Context(), rc.RequestID, "ASSIGNED", "", ""); err != nil {
		t.Fatalf("replica with a slow clock: %v", err)
	}
	hist, _ = d.History(t.Context(), rc.RequestID)
	if len(hist) != 3 || hist[2].To != "ASSIGNED" || !hist[2].At.After(hist[1].At) {
		t.Errorf("history %+v", hist)
	}
}
