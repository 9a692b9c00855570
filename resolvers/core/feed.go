package core

import (
	"context"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/cityhub/cityhub/events"
)

// Feed lets a transport drive a change subscription itself: the
// subscription resolver hands its events.Sub to the Feed found in the
// context and answers gqlgen with the Feed's channel instead of the
// subscription's. The transport then reads the events, knows which event
// each response renders (its cursor), and can share one execution
// between many clients with the same operation.
type Feed struct {
	sub     *events.Sub
	replays bool
	ch      chan *events.Event
}

type feedKey struct{}

// WithFeed returns a context in which a change subscription is handed to f.
func WithFeed(ctx context.Context, f *Feed) context.Context {
	return context.WithValue(ctx, feedKey{}, f)
}

func feedFrom(ctx context.Context) *Feed {
	f, _ := ctx.Value(feedKey{}).(*Feed)
	return f
}

// take holds the subscription and returns the channel gqlgen reads.
func (f *Feed) take(sub *events.Sub, since bool) <-chan *events.Event {
	f.sub = sub
	f.replays = since
	f.ch = make(chan *events.Event, 1)
	return f.ch
}

// Sub is the change subscription the resolver opened (nil when the
// operation opened none: a resolver error, or a subscription that is not
// a change feed).
func (f *Feed) Sub() *events.Sub { return f.sub }

// Shareable reports whether every client with the same operation,
// variables and role may receive this execution's responses: it is a
// change feed that starts now (no since cursor, which would replay a
// history that depends on when the client subscribed).
func (f *Feed) Shareable() bool { return f.sub != nil && !f.replays }

// Push hands the next event to the resolver's channel; the transport
// then reads one response, which renders it. The channel holds one event.
func (f *Feed) Push(ev *events.Event) { f.ch <- ev }

// Close ends the resolver's channel once the subscription has ended.
func (f *Feed) Close() { close(f.ch) }

// EndError renders the end of a subscription as a GraphQL error: code
// SUBSCRIPTION_ENDED (CURSOR_EXPIRED for an expired cursor) and, when
// err is an *events.ResumeError, extensions.resumeCursor.
func EndError(err error) *gqlerror.Error { return endError(err) }
