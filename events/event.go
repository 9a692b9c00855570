// Package events is cityhub's change feed: every committed Apply publishes
// its change events, in the store's sequence order, to subscribers that
// filter them by class and by the same filter model queries use.
//
// The store's change log (graph.ChangeLog) is the truth: its sequence
// numbers have no gaps, so a Hub that receives events out of order (from
// concurrent writers, or from other replicas through a Bus) delivers them
// in sequence order, reads missing ones from the log, and serves resuming
// subscribers (since a cursor) from memory or from the log, within the
// retention the log is pruned to.
package events

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// Batch is what one committed Apply publishes: its change events in
// sequence order and, for the nodes it deleted, their state before the
// Apply (so that filters can still judge a deletion).
type Batch struct {
	Changes []graph.Change
	Deleted map[string]*graph.Node
}

// Event is one change as a subscriber receives it. Events are shared
// between subscribers: never modify one.
type Event struct {
	Seq     uint64
	Op      graph.Op
	ID      string // the node the subscriber's class and filter matched
	Class   string // its leaf class
	Changed []string
	At      time.Time
	// Edge is set for edge events; ID is either of its ends.
	Edge *graph.EdgeKey
	// Node is the node's state after the change (nil when deleted). An
	// event read back from the change log, and a coalesced one, carries
	// the state when it was read.
	Node *graph.Node
	// Merged counts the changes coalesced into this event (1 when none).
	Merged int
}

// Cursor is the position to resume after this event.
func (e *Event) Cursor() string { return FormatCursor(e.Seq) }

// FormatCursor renders a sequence number as a cursor.
func FormatCursor(seq uint64) string { return strconv.FormatUint(seq, 10) }

// ParseCursor reads a cursor made by FormatCursor.
func ParseCursor(s string) (uint64, error) {
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not a change cursor (the cursor field of an event)", ErrBadCursor, s)
	}
	return seq, nil
}

var (
	// ErrBadCursor: a since cursor that no event ever had.
	ErrBadCursor = errors.New("bad cursor")
	// ErrExpired: a since cursor older than the retention.
	ErrExpired = errors.New("cursor expired")
	// ErrOverflow: a subscriber fell further behind than its buffer.
	ErrOverflow = errors.New("subscription buffer overflowed")
	// ErrClosed: the hub stopped.
	ErrClosed = errors.New("change feed closed")
)

// ResumeError ends a subscription that can be resumed: Cursor is the
// cursor of the last event it delivered (resume with since: Cursor).
type ResumeError struct {
	Err    error
	Cursor string
	Detail string
}

func (e *ResumeError) Error() string {
	msg := e.Err.Error()
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return fmt.Sprintf("%s; resume with since: %q", msg, e.Cursor)
}

func (e *ResumeError) Unwrap() error { return e.Err }
