package residents

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Transition moves the service request with node ID requestID to status
// to, if the lifecycle allows it from its current status (see Allowed and
// README.md). reason becomes the request's statusNotes and the change's
// note; it is required for REJECTED, DUPLICATE, ON_HOLD and REOPENED.
// actor is the node ID of the Agent (Person, Agency, Operator) making the
// change, linked by CHANGED_BY, or "" when unknown.
//
// One Apply writes the new status (with statusNotes, and closedAt on
// CLOSED, REJECTED and DUPLICATE; REOPENED clears closedAt) and a
// StatusChange (fromStatus, toStatus, changedAt, note) linked by
// HAS_STATUS_CHANGE. It returns the request as stored afterwards.
//
// Transitions of one request are serialised within the process: of two
// operators moving it from the same status at once, the second sees the
// first one's result and is refused unless the lifecycle allows the move
// from there too (use TransitionFrom to make the expected status
// explicit). Across replicas nothing is locked: each write carries its
// change time as the source update time and status changes are numbered,
// so the latest change wins on the request and on its StatusChange alike
// (the store never lets an older record overwrite a newer one), and a
// replica whose write lost that race gets ErrConcurrentUpdate; one whose
// write landed first and was then overwritten is not told.
//
// Errors: an *InputError (graph.ErrInvalid) for an unknown status, a
// missing or bad reason, or an actor that is not an Agent node;
// ErrNoRequest (graph.ErrNotFound); a *TransitionError (graph.ErrConflict)
// when the lifecycle refuses; ErrConcurrentUpdate and ErrForeignRequest
// (graph.ErrConflict); store errors otherwise.
func (d *Desk) Transition(ctx context.Context, requestID string, to RequestStatus, reason, actor string) (*graph.Node, error) {
	return d.transition(ctx, requestID, "", to, reason, actor)
}

// TransitionFrom is Transition that succeeds only when the request is in
// status from: an operator's screen showed from, and a change made by
// someone else meanwhile must not be built upon. A request in another
// status gives a *TransitionError with Expected set.
func (d *Desk) TransitionFrom(ctx context.Context, requestID string, from, to RequestStatus, reason, actor string) (*graph.Node, error) {
	if !from.Valid() {
		return nil, inputErr("status", ErrUnknownStatus, "unknown expected status %q", clip(string(from), 32))
	}
	return d.transition(ctx, requestID, from, to, reason, actor)
}

func (d *Desk) transition(ctx context.Context, requestID string, expected, to RequestStatus, reason, actor string) (*graph.Node, error) {
	if !to.Valid() {
		return nil, inputErr("status", ErrUnknownStatus, "unknown status %q", clip(string(to), 32))
	}
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "" && NeedsReason(to):
		return nil, inputErr("reason", ErrReasonRequired, "a reason is required to move a request to %s", to)
	case !utf8.ValidString(reason) || hasControl(reason, true):
		return nil, inputErr("reason", ErrBadReason, "reason must be printable UTF-8 text")
	case utf8.RuneCountInString(reason) > d.cfg.MaxDescription:
		return nil, inputErr("reason", ErrBadReason, "reason is longer than %d characters", d.cfg.MaxDescription)
	}
	if requestID == "" {
		return nil, fmt.Errorf("residents: transition: %w", ErrNoRequest)
	}
	actor = strings.TrimSpace(actor)
	if actor != "" {
		if err := d.checkActor(ctx, actor); err != nil {
			return nil, err
		}
	}

	unlock, err := d.locks.lock(ctx, requestID)
	if err != nil {
		return nil, fmt.Errorf("residents: transition %s: %w", requestID, err)
	}
	defer unlock()

	ns, err := d.store.Nodes(ctx, []string{requestID})
	if err != nil {
		return nil, fmt.Errorf("residents: transition %s: %w", requestID, err)
	}
	if len(ns) != 1 || ns[0] == nil || ns[0].Class != "ServiceRequest" {
		return nil, fmt.Errorf("residents: transition %s: %w", requestID, ErrNoRequest)
	}
	n := ns[0]
	if n.Prov.Source != d.cfg.Source {
		return nil, fmt.Errorf("residents: transition %s: source %s: %w", requestID, n.Prov.Source, ErrForeignRequest)
	}
	tracking, _ := n.Props["requestNumber"].(string)
	s, _ := n.Props["status"].(string)
	from := RequestStatus(s)
	if tracking == "" || !from.Valid() {
		return nil, fmt.Errorf("residents: transition %s: stored request has status %q and number %q", requestID, s, tracking)
	}
	if (expected != "" && from != expected) || !CanTransition(from, to) {
		return nil, &TransitionError{RequestID: requestID, From: from, To: to, Allowed: Allowed(from), Expected: expected}
	}
	pages, err := d.store.Neighbors(ctx, graph.NeighborQuery{IDs: []string{requestID}, Rel: "HAS_STATUS_CHANGE", Dir: ontology.Out, First: 1})
	if err != nil {
		return nil, fmt.Errorf("residents: transition %s: count changes: %w", requestID, err)
	}
	seq := 1
	if len(pages) == 1 && pages[0] != nil {
		seq = max(pages[0].Total, len(pages[0].Nodes)) + 1
	}

	// the change time never goes back: with a clock behind the last
	// change (another replica's), the write would count as older and be
	// dropped by the store
	at := d.clock()
	if last := n.Prov.SrcUpdatedAt; !last.IsZero() && !at.After(last) {
		at = last.Add(time.Microsecond)
	}
	props := maps.Clone(n.Props)
	props["status"] = string(to)
	if reason != "" {
		props["statusNotes"] = reason
	} else {
		delete(props, "statusNotes")
	}
	if closes(to) {
		props["closedAt"] = at
	} else if to == Reopened {
		delete(props, "closedAt")
	}
	prov := n.Prov
	prov.Connector, prov.Run, prov.FetchedAt, prov.SrcUpdatedAt, prov.IngestedAt = d.cfg.Connector, d.run, at, at, time.Time{}
	scID := d.statusChangeID(tracking, seq)
	scProps := map[string]any{"fromStatus": string(from), "toStatus": string(to), "changedAt": at}
	if reason != "" {
		scProps["note"] = reason
	}
	b := graph.Batch{
		Nodes: []graph.Node{
			{ID: n.ID, Class: n.Class, Props: props, Geometry: n.Geometry, Prov: prov},
			{ID: scID, Class: "StatusChange", Props: scProps, Prov: d.prov(fmt.Sprintf("%s~%04d", tracking, seq), at)},
		},
		Edges: []graph.Edge{{From: n.ID, Rel: "HAS_STATUS_CHANGE", To: scID, Prov: d.prov(tracking, at)}},
	}
	if actor != "" {
		b.Edges = append(b.Edges, graph.Edge{From: scID, Rel: "CHANGED_BY", To: actor, Prov: d.prov(tracking, at)})
	}
	changes, err := d.store.Apply(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("residents: transition %s to %s: %w", requestID, to, err)
	}
	updated := false
	for _, c := range changes {
		if c.ID == n.ID && c.Op == graph.OpUpdate && c.Edge == nil {
			updated = true
		}
	}
	if !updated {
		// the store kept a newer version written by another replica
		return nil, fmt.Errorf("residents: transition %s to %s: %w", requestID, to, ErrConcurrentUpdate)
	}
	d.log.InfoContext(ctx, "service request status changed", "request", n.ID, "from", string(from), "to", string(to), "seq", seq)
	ns, err = d.store.Nodes(ctx, []string{requestID})
	if err != nil {
		return nil, fmt.Errorf("residents: transition %s: read back: %w", requestID, err)
	}
	if len(ns) != 1 || ns[0] == nil {
		return nil, fmt.Errorf("residents: transition %s: read back: %w", requestID, ErrNoRequest)
	}
	return ns[0], nil
}

// checkActor verifies that actor is the ID of an Agent node.
func (d *Desk) checkActor(ctx context.Context, actor string) error {
	ns, err := d.store.Nodes(ctx, []string{actor})
	if err != nil {
		return fmt.Errorf("residents: transition: read actor: %w", err)
	}
	agent := d.ont.Class("Agent")
	if len(ns) != 1 || ns[0] == nil {
		return inputErr("actor", ErrBadActor, "actor %q is not a node of the graph", clip(actor, 200))
	}
	if c := d.ont.Class(ns[0].Class); c == nil || !c.IsA(agent) {
		return inputErr("actor", ErrBadActor, "actor %q is a %s, not an Agent", clip(actor, 200), ns[0].Class)
	}
	return nil
}
