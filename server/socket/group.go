package socket

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/resolvers/core"
)

// group is one execution of a subscription and the operations (of any
// connections) it serves.
type group struct {
	t      *Transport
	key    string // "" when it serves its first operation only
	ctx    context.Context
	cancel context.CancelFunc

	// started is closed once the execution knows whether it may be
	// shared (shared)
	started chan struct{}
	shared  bool

	mu      sync.Mutex
	members map[*op]struct{}
	closed  bool
	scratch []*op // deliver's member list, reused
}

// join adds o to the shared execution of key, or starts one and runs it
// in this goroutine until its last operation leaves.
func (t *Transport) join(key string, o *op, ctx context.Context, rc *graphql.OperationContext) {
	// the execution outlives the operation that started it; it keeps the
	// values of its context (role, operation)
	g := &group{t: t, key: key, members: map[*op]struct{}{}, started: make(chan struct{})}
	g.ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if key != "" {
		// an execution of the same operation, listed from its start so
		// that clients subscribing at once find it: wait until it knows
		// whether it may be shared
		t.mu.Lock()
		other := t.groups[key]
		if other == nil {
			t.groups[key] = g
		}
		t.mu.Unlock()
		if other != nil {
			select {
			case <-other.started:
			case <-o.ctx.Done():
				g.cancel()
				o.end(false)
				return
			}
			if other.shared && other.add(o) {
				g.cancel()
				return
			}
		}
	}
	g.add(o)
	g.run(o.c.exec, rc)
}

// add makes o a member; false when the execution has ended.
func (g *group) add(o *op) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.members[o] = struct{}{}
	g.mu.Unlock()
	o.mu.Lock()
	if o.ended { // ended while joining
		o.mu.Unlock()
		g.remove(o)
		return true
	}
	o.g = g
	o.mu.Unlock()
	return true
}

// remove drops o; the last one out ends the execution.
func (g *group) remove(o *op) {
	g.mu.Lock()
	delete(g.members, o)
	last := len(g.members) == 0 && !g.closed
	if last {
		g.closed = true
	}
	g.mu.Unlock()
	if last {
		g.unlist()
		g.cancel()
	}
}

func (g *group) unlist() {
	g.t.mu.Lock()
	if g.t.groups[g.key] == g {
		delete(g.t.groups, g.key)
	}
	g.t.mu.Unlock()
}

// run executes the subscription and delivers each response to every
// member, until the subscription or the last member ends.
func (g *group) run(exec graphql.GraphExecutor, rc *graphql.OperationContext) {
	g.t.running.Add(1)
	defer g.t.running.Add(-1)
	feed := &core.Feed{}
	ctx := core.WithFeed(g.ctx, feed)
	defer g.finish()
	defer func() {
		if r := recover(); r != nil {
			g.deliver(&graphql.Response{Errors: gqlerror.List{presentPanic(ctx, rc, r)}}, "")
		}
	}()
	started := false
	defer func() {
		if !started { // a panic in DispatchOperation
			close(g.started)
		}
	}()
	responses, ctx := exec.DispatchOperation(ctx, rc)
	g.shared = g.key != "" && feed.Shareable()
	if !g.shared {
		g.unlist()
	}
	started = true
	close(g.started)
	if sub := feed.Sub(); sub != nil {
		for ev := range sub.C() {
			feed.Push(ev)
			resp := responses(ctx)
			if resp == nil {
				return
			}
			g.deliver(resp, ev.Cursor())
		}
		feed.Close() // the last response says why the subscription ended
	}
	for {
		resp := responses(ctx)
		if resp == nil {
			return
		}
		g.deliver(resp, "")
	}
}

// deliver renders resp once and queues it for every member.
func (g *group) deliver(resp *graphql.Response, cursor string) {
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(graphql.Response{Errors: gqlerror.List{{Message: "response could not be encoded: " + err.Error()}}})
	}
	g.mu.Lock()
	ms := g.scratch[:0]
	for o := range g.members {
		ms = append(ms, o)
	}
	g.scratch = ms
	g.mu.Unlock()
	for _, o := range ms {
		o.send(b, cursor)
	}
	clear(ms)
}

// finish ends the execution and completes its members' operations.
func (g *group) finish() {
	g.mu.Lock()
	g.closed = true
	ms := make([]*op, 0, len(g.members))
	for o := range g.members {
		ms = append(ms, o)
	}
	g.mu.Unlock()
	g.unlist()
	g.cancel()
	for _, o := range ms {
		o.end(true)
	}
}

// endError is the error that ends a subscription whose client fell a
// buffer behind: SUBSCRIPTION_ENDED, with the cursor of the last response
// it received when the execution knows it.
func endError(cursor string, buffer int) *gqlerror.Error {
	detail := fmt.Sprintf("the client fell %d responses behind", buffer)
	if cursor == "" {
		return &gqlerror.Error{Message: events.ErrOverflow.Error() + " (" + detail + ")", Extensions: map[string]any{"code": core.CodeSubscriptionEnded}}
	}
	return core.EndError(&events.ResumeError{Err: events.ErrOverflow, Cursor: cursor, Detail: detail})
}

// presentPanic turns a panic in a resolver into the error the client sees.
func presentPanic(ctx context.Context, rc *graphql.OperationContext, r any) *gqlerror.Error {
	err := rc.Recover(ctx, r)
	var ge *gqlerror.Error
	if e, ok := err.(*gqlerror.Error); ok {
		ge = e
	} else {
		ge = &gqlerror.Error{Message: "internal server error"}
		if err != nil {
			ge.Message = err.Error()
		}
	}
	return ge
}
