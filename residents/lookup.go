package residents

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Status is what a resident sees of a request: no location, contact or
// operator, only its progress.
type Status struct {
	RequestID   string // node ID, for a subscription to its changes
	TrackingID  string
	Status      RequestStatus
	StatusNotes string
	ServiceCode string
	ServiceName string
	ReportedAt  time.Time
	// ClosedAt is set while the request is CLOSED, REJECTED or DUPLICATE.
	ClosedAt time.Time
	// History lists the status changes, oldest first (the first one is
	// the SUBMITTED of the report).
	History []StatusEntry
}

// StatusEntry is one status change.
type StatusEntry struct {
	From RequestStatus // "" for the report itself
	To   RequestStatus
	At   time.Time
	Note string
}

const historyPage = 100

// dummyDigest stands in for the stored digest when there is none, so that
// an unknown tracking ID costs the same comparison as a wrong token.
const dummyDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

// Lookup returns the status of the request with the tracking ID, when
// token is its public token. The tracking ID may be typed loosely (any
// case, with or without dashes, O for 0, I or L for 1). The token is
// compared in constant time, and an unknown tracking ID, a malformed one
// and a wrong token all give the same ErrNoRequest (graph.ErrNotFound),
// so the answer is no oracle for which requests exist.
func (d *Desk) Lookup(ctx context.Context, trackingID, token string) (*Status, error) {
	notFound := fmt.Errorf("residents: lookup: %w", ErrNoRequest)
	digest, tokenOK := tokenDigest(token)
	if !tokenOK {
		digest = dummyDigest
	}
	var n *graph.Node
	if tracking, ok := normalizeTracking(trackingID); ok {
		page, err := d.store.Find(ctx, graph.FindQuery{Class: "ServiceRequest", First: 1, Filter: graph.And{
			graph.Cmp{Field: "requestNumber", Op: graph.OpEq, Value: tracking},
			graph.Cmp{Field: graph.FieldSource, Op: graph.OpEq, Value: d.cfg.Source},
		}})
		if err != nil {
			return nil, fmt.Errorf("residents: lookup: %w", err)
		}
		if len(page.Nodes) > 0 {
			n = page.Nodes[0]
		}
	}
	stored := dummyDigest
	if n != nil {
		if s, ok := n.Props["publicToken"].(string); ok && len(s) == len(dummyDigest) {
			stored = s
		}
	}
	match := subtle.ConstantTimeCompare([]byte(stored), []byte(digest)) == 1
	if n == nil || !tokenOK || !match {
		return nil, notFound
	}
	st := &Status{RequestID: n.ID}
	st.TrackingID, _ = n.Props["requestNumber"].(string)
	s, _ := n.Props["status"].(string)
	st.Status = RequestStatus(s)
	st.StatusNotes, _ = n.Props["statusNotes"].(string)
	st.ServiceCode, _ = n.Props["categoryRaw"].(string)
	st.ServiceName, _ = n.Props["name"].(string)
	st.ReportedAt, _ = n.Props["reportedAt"].(time.Time)
	st.ClosedAt, _ = n.Props["closedAt"].(time.Time)
	hist, err := d.History(ctx, n.ID)
	if err != nil {
		return nil, fmt.Errorf("residents: lookup: %w", err)
	}
	st.History = hist
	return st, nil
}

// History returns the status changes of the request with node ID
// requestID, oldest first (by changedAt, then by their numbered IDs).
func (d *Desk) History(ctx context.Context, requestID string) ([]StatusEntry, error) {
	var out []StatusEntry
	q := graph.NeighborQuery{IDs: []string{requestID}, Rel: "HAS_STATUS_CHANGE", Dir: ontology.Out, Class: "StatusChange",
		Order: []graph.Order{{Field: "changedAt"}}, First: historyPage}
	for {
		pages, err := d.store.Neighbors(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", requestID, err)
		}
		if len(pages) != 1 || pages[0] == nil {
			return out, nil
		}
		p := pages[0]
		for _, c := range p.Nodes {
			if c == nil {
				continue
			}
			e := StatusEntry{}
			from, _ := c.Props["fromStatus"].(string)
			to, _ := c.Props["toStatus"].(string)
			e.From, e.To = RequestStatus(from), RequestStatus(to)
			e.At, _ = c.Props["changedAt"].(time.Time)
			e.Note, _ = c.Props["note"].(string)
			out = append(out, e)
		}
		if !p.HasNext || len(p.Cursors) == 0 {
			return out, nil
		}
		q.After = p.Cursors[len(p.Cursors)-1]
	}
}
