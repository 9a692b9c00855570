package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Live is the change feed subscriptions read (an *events.Hub).
type Live interface {
	Subscribe(ctx context.Context, spec events.Spec) (*events.Sub, error)
}

// Error codes of subscriptions.
const (
	// CodeCursorExpired: since names an event older than the retention.
	CodeCursorExpired = "CURSOR_EXPIRED"
	// CodeSubscriptionEnded: the server ended a subscription (a slow
	// consumer, or the server stopping); extensions.resumeCursor says
	// where to resume.
	CodeSubscriptionEnded = "SUBSCRIPTION_ENDED"
)

// feedBuffer is the hub buffer of a subscription a transport drives.
const feedBuffer = 32

// MaxCoalesce bounds coalesceMs.
const MaxCoalesce = time.Minute

// SetLive enables subscriptions over the feed l.
func (e *Engine) SetLive(l Live) { e.live = l }

// Subscribe serves a class's subscription field (<class>Changed).
func (e *Engine) Subscribe(ctx context.Context, class string, where map[string]any, since *string, coalesceMs *int) (<-chan *events.Event, error) {
	c, err := e.class(class)
	if err != nil {
		return nil, err
	}
	return e.subscribe(ctx, []*ontology.Class{c}, c, where, since, coalesceMs)
}

// SubscribeChanges serves the generic changes subscription: classes are
// ClassName enum values (none: every class), where an EntityWhere.
func (e *Engine) SubscribeChanges(ctx context.Context, classes []string, where map[string]any, since *string, coalesceMs *int) (<-chan *events.Event, error) {
	root := e.ont.Class("Entity")
	if root == nil {
		return nil, errors.New("the ontology has no Entity class")
	}
	var cs []*ontology.Class
	for i, v := range classes {
		c := e.classValues[v]
		if c == nil {
			return nil, inputErr(fmt.Sprintf("classes[%d]", i), "%s is not a class", v)
		}
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		cs = []*ontology.Class{root}
	}
	return e.subscribe(ctx, cs, root, where, since, coalesceMs)
}

func (e *Engine) subscribe(ctx context.Context, classes []*ontology.Class, whereClass *ontology.Class, where map[string]any, since *string, coalesceMs *int) (<-chan *events.Event, error) {
	if e.live == nil {
		return nil, fmt.Errorf("%w: subscriptions are not enabled on this server", graph.ErrNotFound)
	}
	f, target, err := e.args.Where(whereClass, RoleFrom(ctx), "where", where)
	if err != nil {
		return nil, err
	}
	var spec events.Spec
	for _, oc := range e.ont.Classes {
		if oc.Abstract || !oc.IsA(target) {
			continue
		}
		for _, c := range classes {
			if oc.IsA(c) {
				spec.Classes = append(spec.Classes, oc.Name)
				break
			}
		}
	}
	if len(spec.Classes) == 0 {
		return nil, inputErr("where.class", "%s is not among the subscribed classes", target.Name)
	}
	if f != nil {
		m, err := graph.CompileMatch(e.ont, target.Name, f)
		if err != nil {
			return nil, err
		}
		areas := graph.AreaMap{}
		if ids := m.Areas(); len(ids) > 0 {
			ns, err := e.store.Nodes(ctx, ids)
			if err != nil {
				return nil, err
			}
			for _, n := range ns {
				if n != nil {
					areas[n.ID] = graph.AreaShape(n)
				}
			}
		}
		spec.Match = func(n *graph.Node) bool { return m.Match(n, areas) }
		if k, ok := m.Key(); ok {
			spec.Key = &events.Key{Field: k.Field, Values: k.Values, Prefix: k.Prefix}
		} else if box, ok := m.Region(areas); ok {
			spec.Region = &box
		}
	}
	if since != nil {
		seq, err := events.ParseCursor(*since)
		if err != nil {
			return nil, inputErr("since", "%q is not a change cursor (the cursor of an event)", *since)
		}
		spec.Since = &seq
	}
	if coalesceMs != nil {
		d := time.Duration(*coalesceMs) * time.Millisecond
		if d < 0 || d > MaxCoalesce {
			return nil, inputErr("coalesceMs", "%d is outside 0…%d", *coalesceMs, MaxCoalesce.Milliseconds())
		}
		spec.Coalesce = d
	}
	feed := feedFrom(ctx)
	if feed != nil {
		// a transport driving the feed reads at its own pace and bounds
		// its clients' queues itself: a burst is caught up from the hub's
		// memory, not an overflow, so a short buffer will do
		spec.Replay = true
		spec.Buffer = feedBuffer
	}
	sub, err := e.live.Subscribe(ctx, spec)
	if err != nil {
		var re *events.ResumeError
		if errors.As(err, &re) {
			return nil, endError(re)
		}
		return nil, err
	}
	if ends := subscriptionEndsFrom(ctx); ends != nil {
		ends.add(sub)
	}
	if feed != nil {
		return feed.take(sub, since != nil), nil
	}
	return sub.C(), nil
}

// endError renders a subscription's end as a GraphQL error with the
// cursor to resume from.
func endError(err error) *gqlerror.Error {
	out := &gqlerror.Error{Message: err.Error(), Extensions: map[string]any{"code": CodeSubscriptionEnded}}
	var re *events.ResumeError
	if errors.As(err, &re) {
		out.Extensions["resumeCursor"] = re.Cursor
		if errors.Is(err, events.ErrExpired) {
			out.Extensions["code"] = CodeCursorExpired
		}
	}
	return out
}

type endsKey struct{}

// subscriptionEnds holds the subscriptions of one operation, so that the
// reason one ended reaches the client.
type subscriptionEnds struct {
	mu       sync.Mutex
	subs     []*events.Sub
	reported bool
}

func (s *subscriptionEnds) add(sub *events.Sub) {
	s.mu.Lock()
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
}

func subscriptionEndsFrom(ctx context.Context) *subscriptionEnds {
	s, _ := ctx.Value(endsKey{}).(*subscriptionEnds)
	return s
}

// Subscriptions is the handler extension subscriptions need: each event is
// resolved with fresh loaders (a subscription lives long; its answers must
// not come from a cache), and a subscription the server ends (a slow
// consumer, the server stopping) sends a last response with the error and
// the cursor to resume from, on every transport.
type Subscriptions struct{ Engine *Engine }

var (
	_ graphql.HandlerExtension     = Subscriptions{}
	_ graphql.OperationInterceptor = Subscriptions{}
	_ graphql.ResponseInterceptor  = Subscriptions{}
)

// ExtensionName implements graphql.HandlerExtension.
func (Subscriptions) ExtensionName() string { return "CityhubSubscriptions" }

// Validate implements graphql.HandlerExtension.
func (Subscriptions) Validate(graphql.ExecutableSchema) error { return nil }

func isSubscription(ctx context.Context) bool {
	if !graphql.HasOperationContext(ctx) {
		return false
	}
	oc := graphql.GetOperationContext(ctx)
	return oc.Operation != nil && oc.Operation.Operation == ast.Subscription
}

// InterceptOperation implements graphql.OperationInterceptor.
func (Subscriptions) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if isSubscription(ctx) {
		ctx = context.WithValue(ctx, endsKey{}, &subscriptionEnds{})
	}
	return next(ctx)
}

// InterceptResponse implements graphql.ResponseInterceptor.
func (x Subscriptions) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	ends := subscriptionEndsFrom(ctx)
	if ends == nil {
		return next(ctx)
	}
	if x.Engine != nil {
		ctx = withLazyLoaders(ctx, x.Engine.NewLoaders)
	}
	if resp := next(ctx); resp != nil {
		return resp
	}
	ends.mu.Lock()
	defer ends.mu.Unlock()
	if ends.reported {
		return nil
	}
	ends.reported = true
	var errs gqlerror.List
	for _, sub := range ends.subs {
		if err := sub.Err(); err != nil {
			errs = append(errs, endError(err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &graphql.Response{Errors: errs}
}

// Watch subscribes to the changes of the nodes of one class that match,
// for resolvers that turn events into something else (a request's status
// by tracking ID). key, when not nil, is an equality every node match
// passes satisfies (events.Spec.Key). The subscription ends with ctx.
func (e *Engine) Watch(ctx context.Context, class string, key *events.Key, match func(*graph.Node) bool) (*events.Sub, error) {
	if e.live == nil {
		return nil, fmt.Errorf("%w: subscriptions are not enabled on this server", graph.ErrNotFound)
	}
	return e.live.Subscribe(ctx, events.Spec{Classes: []string{class}, Match: match, Key: key})
}
