package residents

import "slices"

// RequestStatus is a value of the ontology's ServiceRequestStatus enum.
type RequestStatus string

// The service request lifecycle (ONTOLOGY.md, Lifecycles).
const (
	Submitted    RequestStatus = "SUBMITTED"
	Acknowledged RequestStatus = "ACKNOWLEDGED"
	Assigned     RequestStatus = "ASSIGNED"
	InProgress   RequestStatus = "IN_PROGRESS"
	OnHold       RequestStatus = "ON_HOLD"
	Resolved     RequestStatus = "RESOLVED"
	Closed       RequestStatus = "CLOSED"
	Rejected     RequestStatus = "REJECTED"
	Duplicate    RequestStatus = "DUPLICATE"
	Reopened     RequestStatus = "REOPENED"
)

// Statuses lists every status in lifecycle order.
func Statuses() []RequestStatus {
	return []RequestStatus{Submitted, Acknowledged, Assigned, InProgress, OnHold, Resolved, Closed, Rejected, Duplicate, Reopened}
}

// transitions is the lifecycle: the statuses each status may move to.
//
//	SUBMITTED → ACKNOWLEDGED → ASSIGNED → IN_PROGRESS ⇄ ON_HOLD → RESOLVED → CLOSED
//	REOPENED → ASSIGNED
//
// plus these decisions the ontology leaves open:
//   - every open status before resolution (SUBMITTED, ACKNOWLEDGED,
//     ASSIGNED, IN_PROGRESS, ON_HOLD, REOPENED) may end in REJECTED or
//     DUPLICATE, which are terminal;
//   - ON_HOLD may go straight to RESOLVED (fixed while on hold, e.g. by a
//     utility) as well as back to IN_PROGRESS;
//   - RESOLVED and CLOSED may be REOPENED (the resident says it is not
//     fixed); REJECTED and DUPLICATE may not: a new report is filed.
//
// Moving to the status a request is already in is never allowed.
var transitions = map[RequestStatus][]RequestStatus{
	Submitted:    {Acknowledged, Rejected, Duplicate},
	Acknowledged: {Assigned, Rejected, Duplicate},
	Assigned:     {InProgress, Rejected, Duplicate},
	InProgress:   {OnHold, Resolved, Rejected, Duplicate},
	OnHold:       {InProgress, Resolved, Rejected, Duplicate},
	Resolved:     {Closed, Reopened},
	Closed:       {Reopened},
	Rejected:     nil,
	Duplicate:    nil,
	Reopened:     {Assigned, Rejected, Duplicate},
}

// Valid reports whether s is a status of the lifecycle.
func (s RequestStatus) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// Allowed returns the statuses s may move to, in lifecycle order (a
// copy); nil for terminal or unknown statuses.
func Allowed(s RequestStatus) []RequestStatus { return slices.Clone(transitions[s]) }

// CanTransition reports whether the lifecycle allows from → to.
func CanTransition(from, to RequestStatus) bool { return slices.Contains(transitions[from], to) }

// Terminal reports whether s ends the lifecycle: CLOSED (which may still be
// REOPENED), REJECTED and DUPLICATE. Open311 reports terminal statuses as
// "closed" and every other as "open".
func Terminal(s RequestStatus) bool { return s == Closed || s == Rejected || s == Duplicate }

// NeedsReason reports whether a move to s must say why: REJECTED,
// DUPLICATE, ON_HOLD and REOPENED.
func NeedsReason(s RequestStatus) bool {
	return s == Rejected || s == Duplicate || s == OnHold || s == Reopened
}

// closes reports whether a move to s sets closedAt.
func closes(s RequestStatus) bool { return s == Closed || s == Rejected || s == Duplicate }
