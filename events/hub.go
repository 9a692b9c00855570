package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// Config tunes a Hub. Zero fields take the defaults.
type Config struct {
	// Buffer is the default number of events a subscriber may be behind
	// before its subscription ends with ErrOverflow (default 256).
	Buffer int
	// Ring is how many recent events are kept in memory for resuming
	// subscribers (default 10,000); older ones are read from the log.
	Ring int
	// Retention is how long the store's change log keeps events, and so
	// how far back a cursor can resume (default 24h; the Hub prunes the
	// log every Retention/24, at most every 10 minutes). Negative: never
	// prune.
	Retention time.Duration
	// GapWait is how long events that arrive after a gap wait for the
	// missing ones before these are read from the change log (default
	// 100ms).
	GapWait time.Duration
	// Poll is how often the change log is read for events no publisher
	// delivered, such as writes by other processes on the same store
	// without a Bus (default 1s; negative: never).
	Poll time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Buffer <= 0 {
		c.Buffer = 256
	}
	if c.Ring <= 0 {
		c.Ring = 10_000
	}
	if c.Retention == 0 {
		c.Retention = 24 * time.Hour
	}
	if c.GapWait <= 0 {
		c.GapWait = 100 * time.Millisecond
	}
	if c.Poll == 0 {
		c.Poll = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// NodeReader reads node states (graph.Store has it).
type NodeReader interface {
	Nodes(ctx context.Context, ids []string) ([]*graph.Node, error)
}

// entry is one event in sequence order, with the states of its node and,
// for edge events, of the edge's other end. Its events per end are built
// once and shared by every subscriber.
type entry struct {
	ch           graph.Change
	node, prev   *graph.Node // after the change; before it, for deletions
	other        *graph.Node // edge events: the state of Edge.To
	otherClass   string
	evNode, evTo *Event
}

// Hub orders the change events it is offered, keeps the recent ones and
// fans them out to subscribers. Offer and Subscribe are safe for
// concurrent use; Run does the work.
type Hub struct {
	cfg   Config
	nodes NodeReader
	clog  graph.ChangeLog // nil: no replay beyond the ring
	log   *slog.Logger
	in    chan Batch
	done  chan struct{} // closed when Run returns
	ready chan struct{} // closed once Run knows the log's position

	mu      sync.Mutex
	last    uint64 // sequence of the last event delivered
	horizon uint64 // oldest sequence the change log still holds
	ring    []*entry
	head    int // index of the oldest entry in ring once full
	byClass map[string]map[*Sub]struct{}
	// byKey holds the keyed subscriptions: class → field → value
	byKey map[string]map[string]map[string]map[*Sub]struct{}
	// byPrefix holds the subscriptions keyed by a prefix: class → field → prefix
	byPrefix map[string]map[string]map[string]map[*Sub]struct{}
	// byCell holds the regional subscriptions: class → cell
	byCell map[string]map[cell]map[*Sub]struct{}
	all    map[*Sub]struct{}
	closed bool

	// owned by Run
	pending map[uint64]graph.Change
	deleted map[string]*graph.Node
}

// NewHub returns a hub reading node states from nodes and, when clog is
// not nil, missing and older events from the change log.
func NewHub(nodes NodeReader, clog graph.ChangeLog, cfg Config) *Hub {
	cfg.defaults()
	return &Hub{
		cfg: cfg, nodes: nodes, clog: clog, log: cfg.Logger,
		in:       make(chan Batch, 1024),
		done:     make(chan struct{}),
		ready:    make(chan struct{}),
		horizon:  1,
		byClass:  map[string]map[*Sub]struct{}{},
		byKey:    map[string]map[string]map[string]map[*Sub]struct{}{},
		byPrefix: map[string]map[string]map[string]map[*Sub]struct{}{},
		byCell:   map[string]map[cell]map[*Sub]struct{}{},
		all:      map[*Sub]struct{}{},
		pending:  map[uint64]graph.Change{},
		deleted:  map[string]*graph.Node{},
	}
}

// Offer hands the hub a committed batch. It blocks only when the hub is
// 1,024 batches behind, until ctx ends or the hub stops.
func (h *Hub) Offer(ctx context.Context, b Batch) error {
	if len(b.Changes) == 0 {
		return nil
	}
	select {
	case h.in <- b:
		return nil
	case <-h.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready is closed once Run has read the change log's position: events
// committed before are not delivered live (resume with since for them).
func (h *Hub) Ready() <-chan struct{} { return h.ready }

// Last returns the sequence number of the last event delivered.
func (h *Hub) Last() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Run delivers events until ctx ends, then ends every subscription with
// ErrClosed.
func (h *Hub) Run(ctx context.Context) error {
	defer h.close()
	if h.clog != nil {
		var last uint64
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
			var err error
			if last, err = h.clog.LastSeq(ctx); err == nil {
				break
			}
			h.log.WarnContext(ctx, "change log position not read; retrying", "in", wait, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		h.mu.Lock()
		h.last = last
		h.mu.Unlock()
		h.prune(ctx)
	}
	close(h.ready)
	var gap <-chan time.Time
	var gapTimer *time.Timer
	poll := make(<-chan time.Time)
	if h.clog != nil && h.cfg.Poll > 0 {
		t := time.NewTicker(h.cfg.Poll)
		defer t.Stop()
		poll = t.C
	}
	pruneEvery := make(<-chan time.Time)
	if h.clog != nil && h.cfg.Retention > 0 {
		t := time.NewTicker(min(h.cfg.Retention/24, 10*time.Minute))
		defer t.Stop()
		pruneEvery = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-h.in:
			h.accept(b)
		case <-gap:
			gap = nil
			h.fill(ctx, true)
		case <-poll:
			h.fill(ctx, false)
		case <-pruneEvery:
			h.prune(ctx)
		}
		if err := h.drain(ctx); err != nil {
			h.log.WarnContext(ctx, "change events not delivered yet", "err", err)
		}
		if len(h.pending) > 0 && gap == nil {
			if gapTimer == nil {
				gapTimer = time.NewTimer(h.cfg.GapWait)
			} else {
				gapTimer.Reset(h.cfg.GapWait)
			}
			gap = gapTimer.C
		}
	}
}

func (h *Hub) accept(b Batch) {
	last := h.Last()
	for _, c := range b.Changes {
		if c.Seq > last {
			h.pending[c.Seq] = c
			// only deletions still to deliver keep their state before
			if n := b.Deleted[c.ID]; n != nil && c.Op == graph.OpDelete {
				h.deleted[c.ID] = n
			}
		}
	}
}

// fill reads the change log after the last delivered event. When a gap
// cannot be filled (the events were pruned, or there is no log) and force
// is set, delivery skips to the first pending event.
func (h *Hub) fill(ctx context.Context, force bool) {
	if h.clog != nil {
		for range 100 { // at most 100 pages per round; the next round goes on
			last := h.Last()
			cs, err := h.clog.ChangesSince(ctx, last, 1000)
			if err != nil {
				h.log.WarnContext(ctx, "change log not read", "err", err)
				return
			}
			if len(cs) == 0 {
				break
			}
			if cs[0].Seq != last+1 {
				h.log.WarnContext(ctx, "change events pruned before they were delivered", "from", last+1, "to", cs[0].Seq-1)
				h.skipTo(cs[0].Seq - 1)
			}
			for _, c := range cs {
				h.pending[c.Seq] = c
			}
			if err := h.drain(ctx); err != nil {
				h.log.WarnContext(ctx, "change events not delivered yet", "err", err)
				return
			}
			if len(cs) < 1000 {
				break
			}
		}
	}
	if force && len(h.pending) > 0 {
		if _, ok := h.pending[h.Last()+1]; !ok {
			first := slices.Min(mapKeys(h.pending))
			h.log.WarnContext(ctx, "change events missing: delivery goes on after the gap", "from", h.Last()+1, "to", first-1)
			h.skipTo(first - 1)
		}
	}
}

func mapKeys(m map[uint64]graph.Change) []uint64 {
	ks := make([]uint64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func (h *Hub) skipTo(seq uint64) {
	h.mu.Lock()
	if seq > h.last {
		h.last = seq
	}
	h.mu.Unlock()
	for s, c := range h.pending {
		if s <= seq {
			delete(h.pending, s)
			if c.Op == graph.OpDelete {
				delete(h.deleted, c.ID)
			}
		}
	}
}

// drain delivers the pending events that follow the last delivered one.
func (h *Hub) drain(ctx context.Context) error {
	last := h.Last()
	var run []graph.Change
	for {
		c, ok := h.pending[last+1+uint64(len(run))]
		if !ok {
			break
		}
		run = append(run, c)
	}
	if len(run) == 0 {
		return nil
	}
	entries, err := h.load(ctx, run, h.deleted)
	if err != nil {
		return err // kept pending: the next round tries again
	}
	for _, c := range run {
		delete(h.pending, c.Seq)
	}
	for _, e := range entries {
		if e.prev != nil {
			delete(h.deleted, e.ch.ID)
		}
	}
	h.publish(entries)
	return nil
}

// load reads the states of the events' nodes (one store call) and builds
// their entries.
func (h *Hub) load(ctx context.Context, cs []graph.Change, deleted map[string]*graph.Node) ([]*entry, error) {
	idx := map[string]int{}
	var ids []string
	add := func(id string) {
		if _, ok := idx[id]; !ok {
			idx[id] = len(ids)
			ids = append(ids, id)
		}
	}
	for _, c := range cs {
		add(c.ID)
		if c.Edge != nil {
			add(c.Edge.To)
		}
	}
	states := make([]*graph.Node, 0, len(ids))
	for i := 0; i < len(ids); i += 1000 {
		ns, err := h.nodes.Nodes(ctx, ids[i:min(i+1000, len(ids))])
		if err != nil {
			return nil, fmt.Errorf("events: read the changed nodes: %w", err)
		}
		states = append(states, ns...)
	}
	out := make([]*entry, len(cs))
	for i, c := range cs {
		e := &entry{ch: c, node: states[idx[c.ID]]}
		if e.node == nil {
			e.prev = deleted[c.ID]
		}
		if c.Edge != nil {
			e.other = states[idx[c.Edge.To]]
			if e.other != nil {
				e.otherClass = e.other.Class
			} else if p := deleted[c.Edge.To]; p != nil {
				e.otherClass = p.Class
			}
		}
		if c.Changed == nil {
			c.Changed = []string{} // a non-null list in the API
		}
		if c.Class == "Source" && c.Op == graph.OpUpdate && slices.Contains(c.Changed, "stale") {
			c.Op = graph.OpSourceState // a source went stale or fresh again
		}
		e.evNode = &Event{Seq: c.Seq, Op: c.Op, ID: c.ID, Class: c.Class, Changed: c.Changed, At: c.At, Edge: c.Edge, Node: e.node, Merged: 1}
		if c.Edge != nil {
			e.evTo = &Event{Seq: c.Seq, Op: c.Op, ID: c.Edge.To, Class: e.otherClass, Changed: c.Changed, At: c.At, Edge: c.Edge, Node: e.other, Merged: 1}
		}
		out[i] = e
	}
	return out, nil
}

// publish appends entries to the ring and offers them to the subscribers
// of their classes.
func (h *Hub) publish(es []*entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range es {
		if len(h.ring) < h.cfg.Ring {
			h.ring = append(h.ring, e)
		} else {
			h.ring[h.head] = e
			h.head = (h.head + 1) % len(h.ring)
		}
		h.last = e.ch.Seq
		n := e.node
		if n == nil {
			n = e.prev // a deletion is judged on the state before
		}
		h.offerClass(e, e.ch.Class, n)
		if e.ch.Edge != nil && e.otherClass != "" && e.otherClass != e.ch.Class {
			h.offerClass(e, e.otherClass, e.other)
		}
		for s := range h.all {
			s.offer(e, false)
		}
	}
}

// offerClass offers e to the subscriptions of class: the unkeyed ones,
// and the keyed and regional ones whose key or cell n holds. Called with
// h.mu held. Only an edge event (offered through both ends) or a list
// value can reach a subscription twice: those offers are checked.
func (h *Hub) offerClass(e *entry, class string, n *graph.Node) {
	twice := e.ch.Edge != nil
	for s := range h.byClass[class] {
		s.offer(e, twice)
	}
	for field, values := range h.byKey[class] {
		graph.KeyValues(n, field, func(v string) {
			for s := range values[v] {
				s.offer(e, true)
			}
		})
	}
	for field, prefixes := range h.byPrefix[class] {
		graph.KeyValues(n, field, func(v string) {
			for i := 0; i <= len(v); i++ {
				for s := range prefixes[v[:i]] {
					s.offer(e, true)
				}
			}
		})
	}
	if cells := h.byCell[class]; cells != nil && n != nil && n.Geometry != nil {
		for s := range cells[cellOf(n.Geometry.Point)] {
			s.offer(e, twice)
		}
	}
}

// cell is a square of the grid regional subscriptions are indexed on.
type cell struct{ lat, lon int32 }

// cellDeg is the grid's step (about 5.5 km of latitude); a region over
// more than maxCells cells is not indexed.
const (
	cellDeg  = 0.05
	maxCells = 1024
)

func cellOf(p graph.Point) cell {
	return cell{int32(math.Floor(p.Lat / cellDeg)), int32(math.Floor(p.Lon / cellDeg))}
}

// cellsOf lists the cells a box covers, nil when there are too many.
func cellsOf(b graph.BBox) []cell {
	lo, hi := cellOf(graph.Point{Lat: b.MinLat, Lon: b.MinLon}), cellOf(graph.Point{Lat: b.MaxLat, Lon: b.MaxLon})
	n := (int64(hi.lat) - int64(lo.lat) + 1) * (int64(hi.lon) - int64(lo.lon) + 1)
	if n <= 0 || n > maxCells {
		return nil
	}
	out := make([]cell, 0, n)
	for la := lo.lat; la <= hi.lat; la++ {
		for lo2 := lo.lon; lo2 <= hi.lon; lo2++ {
			out = append(out, cell{la, lo2})
		}
	}
	return out
}

// ringFrom returns the ring's entries with sequence in (after, upTo], or
// ok false when the ring no longer holds after+1. Called with h.mu held.
func (h *Hub) ringFrom(after, upTo uint64) (out []*entry, ok bool) {
	n := len(h.ring)
	if n == 0 {
		return nil, after >= upTo
	}
	oldest := h.ring[h.head%n].ch.Seq
	if after+1 < oldest {
		return nil, false
	}
	for i := range n {
		e := h.ring[(h.head+i)%n]
		if e.ch.Seq > after && e.ch.Seq <= upTo {
			out = append(out, e)
		}
	}
	return out, true
}

func (h *Hub) prune(ctx context.Context) {
	if h.clog == nil || h.cfg.Retention < 0 {
		return
	}
	keep, err := h.clog.PruneChanges(ctx, time.Now().Add(-h.cfg.Retention))
	if err != nil {
		h.log.WarnContext(ctx, "change log not pruned", "err", err)
		return
	}
	h.mu.Lock()
	h.horizon = keep
	h.mu.Unlock()
}

func (h *Hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		close(h.done)
	}
	h.closed = true
	for _, subs := range h.byClass {
		for s := range subs {
			s.end(ErrClosed)
		}
	}
	for s := range h.all {
		s.end(ErrClosed)
	}
}

// Spec says what a subscription receives.
type Spec struct {
	// Classes are the leaf classes whose events are wanted (the caller
	// expands abstract classes); empty means every class.
	Classes []string
	// Match reports whether a node's state passes the subscription's
	// filter; nil passes all. Deletions are judged on the state before.
	Match func(*graph.Node) bool
	// Since, when set, resumes after that event (a cursor's sequence).
	Since *uint64
	// Coalesce merges the events of one node (or edge) within the window
	// into one, with the latest state.
	Coalesce time.Duration
	// Buffer overrides the hub's buffer size.
	Buffer int
	// Key, when set, says that Match passes only nodes holding one of
	// Key.Values in Key.Field (graph.Matcher.Key): the hub then finds the
	// subscription by the node's value instead of testing every change
	// of its classes against it.
	Key *Key
	// Replay, on overflow, catches the subscription up from memory or the
	// change log at its own pace instead of ending it: for a consumer
	// that keeps up on average but not with a burst (a connector's batch
	// of thousands of changes), whose own clients have bounded queues.
	Replay bool
	// Region, when set (and Key is not), says that Match passes only
	// nodes whose point lies in the box (graph.Matcher.Region): the hub
	// finds the subscription by the cell of the node's point.
	Region *graph.BBox
}

// Key is a condition every node a subscription's filter passes
// satisfies (graph.MatchKey): it holds one of Values in Field, or with
// Prefix a value starting with one of them.
type Key struct {
	Field  string
	Values []string
	Prefix bool
}

// Subscribe starts a subscription; it ends when ctx does. An expired
// cursor is an error here, not later.
func (h *Hub) Subscribe(ctx context.Context, spec Spec) (*Sub, error) {
	buf := spec.Buffer
	if buf <= 0 {
		buf = h.cfg.Buffer
	}
	s := &Sub{h: h, match: spec.Match, buffer: buf, out: make(chan *Event, buf), quit: make(chan struct{}), replay: spec.Replay}
	if spec.Key != nil && spec.Match != nil {
		s.key = spec.Key
	} else if spec.Region != nil && spec.Match != nil {
		s.cells = cellsOf(*spec.Region)
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	if len(spec.Classes) > 0 {
		s.classes = map[string]bool{}
		for _, c := range spec.Classes {
			s.classes[c] = true
		}
	}
	s.user = s.out
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		s.cancel()
		return nil, ErrClosed
	}
	var from, to uint64
	if spec.Since != nil {
		from, to = *spec.Since, h.last
		switch {
		case from >= to:
			s.skip = from // ahead of this hub (another replica's cursor): skip up to it
		case from+1 < h.horizon:
			h.mu.Unlock()
			s.cancel()
			return nil, &ResumeError{Err: ErrExpired, Cursor: FormatCursor(h.horizon - 1),
				Detail: fmt.Sprintf("events are kept for %s; the oldest kept follows cursor %q", h.cfg.Retention, FormatCursor(h.horizon-1))}
		default:
			if _, ok := h.ringFrom(from, to); !ok && h.clog == nil {
				oldest := to
				if len(h.ring) > 0 {
					oldest = h.ring[h.head%len(h.ring)].ch.Seq - 1
				}
				h.mu.Unlock()
				s.cancel()
				return nil, &ResumeError{Err: ErrExpired, Cursor: FormatCursor(oldest),
					Detail: fmt.Sprintf("the last %d events are kept", h.cfg.Ring)}
			}
			s.catching = true
		}
	}
	s.lastSent = from
	h.register(s)
	h.mu.Unlock()
	context.AfterFunc(s.ctx, func() { s.end(nil) })
	if s.catching {
		go s.catchUp(from, to)
	}
	if spec.Coalesce > 0 {
		s.user = coalesce(s.ctx, s.out, spec.Coalesce)
	}
	return s, nil
}

// register adds s to the hub's indexes. Called with h.mu held.
func (h *Hub) register(s *Sub) {
	if s.classes == nil {
		h.all[s] = struct{}{}
		return
	}
	for c := range s.classes {
		if s.cells != nil {
			cells := h.byCell[c]
			if cells == nil {
				cells = map[cell]map[*Sub]struct{}{}
				h.byCell[c] = cells
			}
			for _, k := range s.cells {
				m := cells[k]
				if m == nil {
					m = map[*Sub]struct{}{}
					cells[k] = m
				}
				m[s] = struct{}{}
			}
			continue
		}
		if s.key == nil {
			m := h.byClass[c]
			if m == nil {
				m = map[*Sub]struct{}{}
				h.byClass[c] = m
			}
			m[s] = struct{}{}
			continue
		}
		index := h.byKey
		if s.key.Prefix {
			index = h.byPrefix
		}
		fields := index[c]
		if fields == nil {
			fields = map[string]map[string]map[*Sub]struct{}{}
			index[c] = fields
		}
		values := fields[s.key.Field]
		if values == nil {
			values = map[string]map[*Sub]struct{}{}
			fields[s.key.Field] = values
		}
		for _, v := range s.key.Values {
			m := values[v]
			if m == nil {
				m = map[*Sub]struct{}{}
				values[v] = m
			}
			m[s] = struct{}{}
		}
	}
}

func (h *Hub) unregister(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unregisterLocked(s)
}

func (h *Hub) unregisterLocked(s *Sub) {
	delete(h.all, s)
	for c := range s.classes {
		if s.cells != nil {
			cells := h.byCell[c]
			for _, k := range s.cells {
				delete(cells[k], s)
				if len(cells[k]) == 0 {
					delete(cells, k)
				}
			}
			if len(cells) == 0 {
				delete(h.byCell, c)
			}
			continue
		}
		if s.key == nil {
			delete(h.byClass[c], s)
			if len(h.byClass[c]) == 0 {
				delete(h.byClass, c)
			}
			continue
		}
		index := h.byKey
		if s.key.Prefix {
			index = h.byPrefix
		}
		fields := index[c]
		values := fields[s.key.Field]
		for _, v := range s.key.Values {
			delete(values[v], s)
			if len(values[v]) == 0 {
				delete(values, v)
			}
		}
		if len(values) == 0 {
			delete(fields, s.key.Field)
		}
		if len(fields) == 0 {
			delete(index, c)
		}
	}
}

// Sub is one subscription.
type Sub struct {
	h       *Hub
	classes map[string]bool
	match   func(*graph.Node) bool
	key     *Key   // set: registered by its key's values
	cells   []cell // set: registered by the cells of its region
	offered uint64 // sequence of the last entry offered, under h.mu
	buffer  int
	out     chan *Event   // the bounded buffer
	quit    chan struct{} // closed when the subscription ends
	user    <-chan *Event
	ctx     context.Context
	cancel  context.CancelFunc

	replay bool // on overflow, catch up instead of ending

	mu       sync.Mutex
	catching bool
	behind   uint64 // replaying: the backlog overflowed; replay up to here again
	backlog  []*Event
	skip     uint64 // events up to this sequence are not delivered
	lastSent uint64
	done     bool
	err      error
}

// C delivers the events; it is closed when the subscription ends.
func (s *Sub) C() <-chan *Event { return s.user }

// Err says why the subscription ended, once C is closed: nil when its
// context ended, a *ResumeError on overflow, ErrClosed when the hub
// stopped.
func (s *Sub) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Sub) Close() { s.cancel() }

// eventFor returns the event of e this subscription receives, or nil.
func (s *Sub) eventFor(e *entry) *Event { return s.eventOf(e, false) }

// eventOf is eventFor; with offered, e reached s through the hub's index
// of e's class, so a node's event needs no class check.
func (s *Sub) eventOf(e *entry, offered bool) *Event {
	if offered && e.ch.Edge == nil && e.ch.Class != "" {
		n := e.node
		if n == nil {
			n = e.prev
		}
		if s.match == nil || (n != nil && s.match(n)) {
			return e.evNode
		}
		return nil
	}
	if s.wants(e.ch.Class, e.node, e.prev) {
		return e.evNode
	}
	if e.ch.Edge != nil && s.wants(e.otherClass, e.other, nil) {
		return e.evTo
	}
	return nil
}

func (s *Sub) wants(class string, n, prev *graph.Node) bool {
	if class == "" || (s.classes != nil && !s.classes[class]) {
		return false
	}
	if s.match == nil {
		return true
	}
	if n == nil {
		n = prev
	}
	return n != nil && s.match(n)
}

// offer is called by the hub, in sequence order, with h.mu held; with
// twice (the entry may reach s by two paths) it takes the entry once.
func (s *Sub) offer(e *entry, twice bool) {
	if twice {
		if e.ch.Seq == s.offered {
			return
		}
		s.offered = e.ch.Seq
	}
	ev := s.eventOf(e, true)
	if ev == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || ev.Seq <= s.skip {
		return
	}
	if s.catching {
		if len(s.backlog) >= s.buffer {
			if s.replay { // the replay reads these again
				clear(s.backlog)
				s.backlog = s.backlog[:0]
				s.behind = ev.Seq
				return
			}
			s.overflowLocked()
			return
		}
		s.backlog = append(s.backlog, ev)
		return
	}
	select {
	case s.out <- ev:
		s.lastSent = ev.Seq
	default:
		if s.replay {
			s.catching = true // the hub holds e in its ring already
			go s.catchUp(s.lastSent, ev.Seq)
			return
		}
		s.overflowLocked()
	}
}

func (s *Sub) overflowLocked() {
	s.endLocked(&ResumeError{Err: ErrOverflow, Cursor: FormatCursor(s.lastSent),
		Detail: fmt.Sprintf("more than %d events waiting", s.buffer)})
	s.h.unregisterLocked(s) // the hub holds its lock while offering
}

// end ends the subscription with err (nil: its context ended).
func (s *Sub) end(err error) {
	s.mu.Lock()
	ended := s.endLocked(err)
	s.mu.Unlock()
	if ended && !errors.Is(err, ErrClosed) {
		s.h.unregister(s)
	}
}

func (s *Sub) endLocked(err error) bool {
	if s.done {
		return false
	}
	s.done = true
	s.err = err
	s.backlog = nil
	close(s.quit)
	if !s.catching {
		close(s.out) // while catching up, the replay closes it
	}
	return true
}

// catchUp replays the events after from up to to (the hub's position
// when the subscription started), from the ring or the change log, then
// the events that arrived meanwhile, then hands over to the hub. While it
// runs, only it sends on s.out.
func (s *Sub) catchUp(from, to uint64) {
	defer func() {
		s.mu.Lock()
		if s.catching {
			s.catching = false
			if s.done {
				close(s.out) // endLocked left it to us
			}
		}
		s.mu.Unlock()
	}()
	pos := from
	for {
		if !s.replayTo(&pos, to) {
			return
		}
		// then the events that arrived meanwhile, or, when more arrived
		// than the backlog holds, another replay
		for {
			s.mu.Lock()
			if s.done {
				s.mu.Unlock()
				return
			}
			if s.behind > pos {
				to, s.behind = s.behind, 0
				s.mu.Unlock()
				break
			}
			if len(s.backlog) == 0 {
				s.catching = false // the hub sends from here on
				s.mu.Unlock()
				return
			}
			ev := s.backlog[0]
			s.backlog = s.backlog[1:]
			s.mu.Unlock()
			if !s.send(ev) {
				return
			}
			pos = ev.Seq
		}
	}
}

// replayTo sends the events after *pos up to to from the ring or the
// change log, advancing *pos; false when the subscription ended.
func (s *Sub) replayTo(pos *uint64, to uint64) bool {
	for *pos < to {
		s.h.mu.Lock()
		es, ok := s.h.ringFrom(*pos, to)
		s.h.mu.Unlock()
		if !ok {
			var err error
			if es, err = s.readLog(s.ctx, *pos, to); err != nil {
				s.end(err)
				return false
			}
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			if ev := s.eventFor(e); ev != nil && !s.send(ev) {
				return false
			}
			*pos = e.ch.Seq
		}
	}
	return true
}

// send delivers one replayed event, waiting for the subscriber.
func (s *Sub) send(ev *Event) bool {
	select {
	case s.out <- ev:
		s.mu.Lock()
		s.lastSent = ev.Seq
		s.mu.Unlock()
		return true
	case <-s.quit:
		return false
	}
}

// readLog reads up to 500 events after pos (and not after to) from the
// change log, with the current states of their nodes.
func (s *Sub) readLog(ctx context.Context, pos, to uint64) ([]*entry, error) {
	h := s.h
	if h.clog == nil {
		return nil, &ResumeError{Err: ErrExpired, Cursor: FormatCursor(pos)}
	}
	cs, err := h.clog.ChangesSince(ctx, pos, int(min(500, to-pos)))
	if err != nil {
		return nil, fmt.Errorf("events: replay after %d: %w", pos, err)
	}
	if len(cs) == 0 || cs[0].Seq != pos+1 {
		h.mu.Lock()
		horizon := h.horizon
		h.mu.Unlock()
		return nil, &ResumeError{Err: ErrExpired, Cursor: FormatCursor(max(horizon, 1) - 1),
			Detail: fmt.Sprintf("events are kept for %s", h.cfg.Retention)}
	}
	return h.load(ctx, cs, nil)
}
