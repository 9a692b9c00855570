package residents

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Desk takes residents' reports and moves them through their lifecycle.
// It writes through a graph.Store, one Apply per report or transition, so
// a failed call writes nothing. A Desk is safe for concurrent use.
type Desk struct {
	store graph.Store
	ont   *ontology.Ontology
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	run   string // provenance run of this desk instance

	randMu sync.Mutex
	rand   io.Reader

	pseudonymKey []byte

	kebab map[string]string // class name → URN class part
	areas areaCache
	locks keyedMutex
}

// Option changes how New builds a Desk.
type Option func(*Desk)

// WithNow sets the clock (default time.Now).
func WithNow(now func() time.Time) Option {
	return func(d *Desk) {
		if now != nil {
			d.now = now
		}
	}
}

// WithRand sets the source of random bytes for tracking IDs and tokens
// (default crypto/rand.Reader). Tests pass a seeded reader; production
// must keep the default, since tokens are secrets.
func WithRand(r io.Reader) Option {
	return func(d *Desk) {
		if r != nil {
			d.rand = r
		}
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(d *Desk) {
		if l != nil {
			d.log = l
		}
	}
}

// WithPseudonymKey sets the secret key with which a reporter's contact is
// turned into a pseudonymous Person (pseudonym = HMAC-SHA256 of the
// contact, as the ontology's Person asks) linked by REPORTED_BY. Without a
// key the contact is validated and dropped: the ontology has no property
// that may hold it.
func WithPseudonymKey(key []byte) Option {
	return func(d *Desk) { d.pseudonymKey = slices.Clone(key) }
}

// The classes, relations and enums the desk writes.
var (
	requiredClasses   = []string{"ServiceRequest", "StatusChange", "Service", "Person", "Agent"}
	requiredRelations = []string{"FOR_SERVICE", "LOCATED_IN", "AFFECTS", "HAS_STATUS_CHANGE", "PART_OF", "CHANGED_BY", "REPORTED_BY"}
)

// New returns a desk writing to store. It validates cfg and checks that
// the ontology has what the desk writes; it reads and writes nothing.
func New(store graph.Store, ont *ontology.Ontology, cfg Config, opts ...Option) (*Desk, error) {
	if store == nil || ont == nil {
		return nil, errors.New("residents: new desk: a store and an ontology are required")
	}
	if err := cfg.Validate(ont); err != nil {
		return nil, fmt.Errorf("residents: new desk: %w", err)
	}
	var missing []string
	for _, c := range requiredClasses {
		if ont.Class(c) == nil {
			missing = append(missing, "class "+c)
		}
	}
	for _, r := range requiredRelations {
		if ont.Relation(r) == nil {
			missing = append(missing, "relation "+r)
		}
	}
	if e := ont.Enum("ServiceRequestStatus"); e == nil {
		missing = append(missing, "enum ServiceRequestStatus")
	} else {
		for _, s := range Statuses() {
			if !slices.Contains(e.Values, string(s)) {
				missing = append(missing, "ServiceRequestStatus value "+string(s))
			}
		}
	}
	if ont.Enum("Channel") == nil {
		missing = append(missing, "enum Channel")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("residents: new desk: the ontology lacks %v", missing)
	}
	d := &Desk{store: store, ont: ont, cfg: cfg, log: slog.New(slog.DiscardHandler), now: time.Now, rand: rand.Reader,
		kebab: map[string]string{}}
	d.cfg.Services = slices.Clone(cfg.Services)
	for _, o := range opts {
		o(d)
	}
	for _, c := range []string{"ServiceRequest", "StatusChange", "Service", "Person"} {
		d.kebab[c] = ont.Class(c).KebabName()
	}
	d.run = d.cfg.Connector + "@" + d.now().UTC().Format("20060102T150405Z")
	return d, nil
}

// Config returns the desk's configuration (its service list included).
func (d *Desk) Config() Config {
	c := d.cfg
	c.Services = slices.Clone(c.Services)
	return c
}

// clock returns the time now in UTC at the stores' precision.
func (d *Desk) clock() time.Time { return d.now().UTC().Truncate(time.Microsecond) }

func (d *Desk) random(n int) ([]byte, error) {
	b := make([]byte, n)
	d.randMu.Lock()
	defer d.randMu.Unlock()
	if _, err := io.ReadFull(d.rand, b); err != nil {
		return nil, fmt.Errorf("residents: random source: %w", err)
	}
	return b, nil
}

// prov is the provenance of what the desk writes about key at time at.
func (d *Desk) prov(key string, at time.Time) graph.Provenance {
	return graph.Provenance{Source: d.cfg.Source, SourceKey: key, Connector: d.cfg.Connector, Run: d.run, FetchedAt: at, SrcUpdatedAt: at}
}

// serviceNode is the Service node of s. Its provenance has no source
// time, so an edited service list overwrites the node on the next Seed.
func (d *Desk) serviceNode(s *Service) graph.Node {
	props := map[string]any{"name": s.Name, "serviceCode": s.Code, "requestable": true}
	if s.Description != "" {
		props["description"] = s.Description
	}
	if s.Group != "" {
		props["group"] = s.Group
	}
	if len(s.Keywords) > 0 {
		kw := make([]any, len(s.Keywords))
		for i, k := range s.Keywords {
			kw[i] = k
		}
		props["keywords"] = kw
	}
	if s.Domain != "" {
		props["domain"] = s.Domain
	}
	if s.SLAHours > 0 {
		props["slaHours"] = s.SLAHours
	}
	return graph.Node{ID: d.serviceID(s.Code), Class: "Service", Props: props,
		Prov: graph.Provenance{Source: d.cfg.Source, SourceKey: s.Code, Connector: d.cfg.Connector, Run: d.run}}
}

// Seed writes the Service nodes of the service list, and one parent
// Service per group (requestable false) that they are PART_OF, in one
// Apply. It is idempotent: seeding an unchanged list writes nothing.
// Services dropped from the list stay in the graph (requests point at
// them).
func (d *Desk) Seed(ctx context.Context) error {
	var b graph.Batch
	groups := map[string]bool{}
	for i := range d.cfg.Services {
		s := &d.cfg.Services[i]
		b.Nodes = append(b.Nodes, d.serviceNode(s))
		if s.Group == "" {
			continue
		}
		gid := d.groupID(s.Group)
		if !groups[s.Group] {
			groups[s.Group] = true
			b.Nodes = append(b.Nodes, graph.Node{ID: gid, Class: "Service",
				Props: map[string]any{"name": s.Group, "group": s.Group, "requestable": false},
				Prov:  graph.Provenance{Source: d.cfg.Source, SourceKey: "group~" + s.Group, Connector: d.cfg.Connector, Run: d.run}})
		}
		b.Edges = append(b.Edges, graph.Edge{From: d.serviceID(s.Code), Rel: "PART_OF", To: gid,
			Prov: graph.Provenance{Source: d.cfg.Source, SourceKey: s.Code, Connector: d.cfg.Connector, Run: d.run}})
	}
	ch, err := d.store.Apply(ctx, b)
	if err != nil {
		return fmt.Errorf("residents: seed services: %w", err)
	}
	d.log.InfoContext(ctx, "services seeded", "services", len(d.cfg.Services), "groups", len(groups), "changes", len(ch))
	return nil
}

// keyedMutex serialises work per key (a request), honouring contexts.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

// lock waits for key's lock and returns its release.
func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// idFor is connectors.ID with the ontology's URN class part.
func (d *Desk) idFor(class, key string) string {
	return connectors.ID(d.kebab[class], d.cfg.Source, key)
}
