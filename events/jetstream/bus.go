// Package jetstream carries cityhub's change events between replicas
// through a NATS JetStream stream.
//
// A Bus is the events.Publisher of one replica: Publish hands a committed
// batch to the replica's own hub and publishes it to the stream; Run
// consumes the stream and offers every other replica's batches to the
// hub, which orders them by store sequence and drops duplicates. The
// store's change log stays the truth: what the stream does not carry
// (NATS down, a message lost or malformed) the hub reads from the log,
// after GapWait or on its Poll.
//
// The package owns the message format (EncodeBatch, DecodeBatch) and the
// stream's configuration; it does not read configuration files or the
// environment, and it does not run the hub.
package jetstream

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/graph"
)

// Header names of a change message.
const (
	// HeaderOrigin names the bus that published a message; Run skips its
	// own bus's messages (Publish gave them to the hub already).
	HeaderOrigin = "Cityhub-Origin"
	// HeaderSeqs holds the first and last sequence numbers of the
	// message's changes ("12-15").
	HeaderSeqs = "Cityhub-Seqs"
)

// Config says which NATS server and stream a Bus uses. Zero fields take
// the defaults of DefaultConfig.
type Config struct {
	// URL of the NATS server; several, comma-separated, for a cluster
	// (nats://user:password@host:4222). Required.
	URL string
	// Stream is the JetStream stream's name (default "CITYHUB_CHANGES").
	// Every replica of one store must use the same stream, and replicas
	// of different stores different ones.
	Stream string
	// Subject the batches are published on (default "cityhub.changes").
	Subject string
	// MaxAge is how long the stream keeps messages (default 24h). Hubs
	// resume from the change log, not from the stream, so this only
	// bounds how far back a replica that lost its connection can catch up
	// through NATS before the change log serves it.
	MaxAge time.Duration
	// Replicas is the stream's replication factor in a NATS cluster
	// (default 1).
	Replicas int
	// PublishTimeout bounds how long Publish waits for the stream's
	// acknowledgement (default 2s). The commit has happened already: a
	// timeout only means that other replicas read the batch from the
	// change log.
	PublishTimeout time.Duration
	// ReconnectWait is the pause between attempts to reach NATS again
	// after the connection is lost (default 1s); the Bus never gives up.
	ReconnectWait time.Duration
	// Logger receives connection and consumer events (default: none).
	Logger *slog.Logger
	// Hub is the replica's own hub: Publish offers batches to it
	// directly, Run offers the other replicas' batches. Nil for a process
	// that only writes (Publish then only publishes; Run fails).
	Hub *events.Hub
}

// DefaultConfig returns the defaults (without URL and Hub).
func DefaultConfig() Config {
	return Config{
		Stream:         "CITYHUB_CHANGES",
		Subject:        "cityhub.changes",
		MaxAge:         24 * time.Hour,
		Replicas:       1,
		PublishTimeout: 2 * time.Second,
		ReconnectWait:  time.Second,
	}
}

func (c *Config) defaults() {
	d := DefaultConfig()
	if c.Stream == "" {
		c.Stream = d.Stream
	}
	if c.Subject == "" {
		c.Subject = d.Subject
	}
	if c.MaxAge == 0 {
		c.MaxAge = d.MaxAge
	}
	if c.Replicas == 0 {
		c.Replicas = d.Replicas
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = d.PublishTimeout
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = d.ReconnectWait
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports a configuration that cannot work (after defaults).
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("jetstream: url is required"))
	}
	if c.Stream == "" || strings.ContainsAny(c.Stream, " \t\r\n.*>/\\") {
		errs = append(errs, fmt.Errorf("jetstream: stream %q: a name without whitespace, '.', '*', '>', '/' or '\\' is required", c.Stream))
	}
	if c.Subject == "" || strings.ContainsAny(c.Subject, " \t\r\n*>") || strings.HasPrefix(c.Subject, ".") ||
		strings.HasSuffix(c.Subject, ".") || strings.Contains(c.Subject, "..") {
		errs = append(errs, fmt.Errorf("jetstream: subject %q: a subject without wildcards, whitespace or empty tokens is required", c.Subject))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("jetstream: max age %s is negative", c.MaxAge))
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("jetstream: replicas %d: want 1 to 5", c.Replicas))
	}
	if c.PublishTimeout < 0 || c.ReconnectWait < 0 {
		errs = append(errs, errors.New("jetstream: timeouts must not be negative"))
	}
	return errors.Join(errs...)
}

// Stats counts what a Bus did since Open.
type Stats struct {
	// Published counts messages the stream acknowledged; PublishErrors
	// batches (or parts of one) that it did not.
	Published, PublishErrors uint64
	// Received counts messages consumed from the stream: Own of them came
	// from this bus and were skipped, Malformed could not be decoded and
	// were skipped, Offered were offered to the hub.
	Received, Own, Malformed, Offered uint64
}

// Bus publishes the change events of its replica's commits to a
// JetStream stream and offers the other replicas' to its hub. Publish and
// Stats are safe for concurrent use; Run consumes the stream and is
// called once.
type Bus struct {
	cfg     Config
	log     *slog.Logger
	hub     *events.Hub
	nc      *nats.Conn
	js      jetstream.JetStream
	url     string // redacted, for messages
	origin  string // this bus's ID, in HeaderOrigin
	maxData int    // largest message body

	mu      sync.Mutex
	next    uint64    // stream sequence Run consumes from (the stream's end at Open)
	created time.Time // when the stream was created: another time, another stream

	published, publishErrors          atomic.Uint64
	received, own, malformed, offered atomic.Uint64
	closeOnce                         sync.Once
}

var _ events.Publisher = (*Bus)(nil)

// Open connects to NATS and creates or updates the stream (file storage,
// limits retention, the configured MaxAge and replicas, a 2-minute
// duplicate window). Run consumes from the stream's end at Open.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, log: cfg.Logger, hub: cfg.Hub, url: redact(cfg.URL), origin: rand.Text()}
	log := b.log
	nc, err := nats.Connect(cfg.URL,
		nats.Name("cityhub"),
		nats.Timeout(connectTimeout(ctx)),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if !c.IsClosed() { // Close disconnects too
				log.Warn("nats disconnected; reconnecting", "url", b.url, "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { log.Info("nats connection closed", "url", b.url) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("nats error", "url", b.url, "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect to %s: %w", b.url, err)
	}
	b.nc = nc
	if b.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %s: %w", b.url, err)
	}
	// room for the headers and the protocol line
	b.maxData = int(nc.MaxPayload()) - 1024
	info, err := b.ensureStream(ctx)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.next, b.created = info.State.LastSeq+1, info.Created
	log.InfoContext(ctx, "change stream ready", "url", b.url, "stream", cfg.Stream, "subject", cfg.Subject, "stream_seq", info.State.LastSeq)
	return b, nil
}

func connectTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 5 * time.Second
}

// ensureStream creates or updates the stream.
func (b *Bus) ensureStream(ctx context.Context) (*jetstream.StreamInfo, error) {
	dup := min(2*time.Minute, b.cfg.MaxAge)
	s, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        b.cfg.Stream,
		Description: "cityhub change events, one message per committed batch",
		Subjects:    []string{b.cfg.Subject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.cfg.MaxAge,
		Duplicates:  dup,
		Replicas:    b.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: create or update stream %s (subject %s) on %s: %w", b.cfg.Stream, b.cfg.Subject, b.url, err)
	}
	return s.CachedInfo(), nil
}

// Publish offers batch to the local hub, then publishes it to the stream
// and waits for the acknowledgement (at most PublishTimeout). The message
// ID is derived from the first sequence number, so that the stream drops
// a retried publish of the same batch. A batch larger than the server's
// maximum payload goes as several messages, split between changes.
//
// The error says what failed (the local offer, the encoding, the
// publish); a batch that did not reach the stream reaches the other
// replicas through their change-log reads.
func (b *Bus) Publish(ctx context.Context, batch events.Batch) error {
	if len(batch.Changes) == 0 {
		return nil
	}
	var errs []error
	if b.hub != nil {
		if err := b.hub.Offer(ctx, batch); err != nil {
			errs = append(errs, fmt.Errorf("jetstream: offer changes %s to the local hub: %w", seqRange(batch.Changes), err))
		}
	}
	if err := b.send(ctx, batch); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (b *Bus) send(ctx context.Context, batch events.Batch) error {
	parts, err := split(batch, b.maxData)
	if err != nil {
		b.publishErrors.Add(1)
		return fmt.Errorf("jetstream: publish changes %s: %w", seqRange(batch.Changes), err)
	}
	if !b.nc.IsConnected() {
		b.publishErrors.Add(uint64(len(parts)))
		return fmt.Errorf("jetstream: publish changes %s to stream %s: not connected to %s (%s)",
			seqRange(batch.Changes), b.cfg.Stream, b.url, b.nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	var errs []error
	for _, p := range parts {
		msg := nats.NewMsg(b.cfg.Subject)
		msg.Data = p.data
		msg.Header.Set(HeaderOrigin, b.origin)
		msg.Header.Set(HeaderSeqs, seqRange(p.changes))
		if _, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(MsgID(p.changes[0].Seq))); err != nil {
			b.publishErrors.Add(1)
			errs = append(errs, fmt.Errorf("jetstream: publish changes %s to stream %s on %s: %w", seqRange(p.changes), b.cfg.Stream, b.url, err))
			continue
		}
		b.published.Add(1)
	}
	return errors.Join(errs...)
}

// MsgID is the Nats-Msg-Id of the message whose first change has
// sequence number seq.
func MsgID(seq uint64) string { return "cityhub-seq-" + strconv.FormatUint(seq, 10) }

type part struct {
	changes []graph.Change
	data    []byte
}

// split encodes b as one message body or, when that is larger than max
// bytes, as several, each change's pre-delete state going with it.
func split(b events.Batch, max int) ([]part, error) {
	data, err := EncodeBatch(b)
	if err != nil {
		return nil, err
	}
	if len(data) <= max {
		return []part{{changes: b.Changes, data: data}}, nil
	}
	if len(b.Changes) == 1 {
		return nil, fmt.Errorf("change %d encodes to %d bytes, more than a message can carry (%d)", b.Changes[0].Seq, len(data), max)
	}
	half := len(b.Changes) / 2
	left, right := sub(b, b.Changes[:half], true), sub(b, b.Changes[half:], false)
	l, err := split(left, max)
	if err != nil {
		return nil, err
	}
	r, err := split(right, max)
	if err != nil {
		return nil, err
	}
	return append(l, r...), nil
}

// sub is the part of b with changes cs: the pre-delete states of their
// deleted nodes and, in the first part, states no change names.
func sub(b events.Batch, cs []graph.Change, first bool) events.Batch {
	out := events.Batch{Changes: cs}
	if b.Deleted == nil {
		return out
	}
	out.Deleted = map[string]*graph.Node{}
	for _, c := range cs {
		if n, ok := b.Deleted[c.ID]; ok && c.Op == graph.OpDelete {
			out.Deleted[c.ID] = n
		}
	}
	if first {
		deleting := map[string]bool{}
		for _, c := range b.Changes {
			if c.Op == graph.OpDelete {
				deleting[c.ID] = true
			}
		}
		for id, n := range b.Deleted {
			if !deleting[id] {
				out.Deleted[id] = n
			}
		}
	}
	return out
}

func seqRange(cs []graph.Change) string {
	if len(cs) == 0 {
		return "-"
	}
	return strconv.FormatUint(cs[0].Seq, 10) + "-" + strconv.FormatUint(cs[len(cs)-1].Seq, 10)
}

// Run consumes the stream with an ordered consumer (every replica reads
// every message; nothing is acknowledged) from the stream's end at Open,
// and offers the other replicas' batches to the hub. It outlives NATS
// outages: the client reconnects, and the consumer is recreated after
// the last message read. A message that does not decode is logged,
// counted and skipped. Run returns nil when ctx ends or the Bus is
// closed, and an error when there is no hub or the hub stopped.
func (b *Bus) Run(ctx context.Context) error {
	if b.hub == nil {
		return errors.New("jetstream: run: no hub to offer the stream's changes to")
	}
	wait := b.cfg.ReconnectWait
	for {
		before := b.received.Load()
		err := b.consume(ctx)
		if b.received.Load() != before {
			wait = b.cfg.ReconnectWait // it worked for a while: start the backoff over
		}
		if ctx.Err() != nil || b.nc.IsClosed() {
			return nil
		}
		if errors.Is(err, events.ErrClosed) {
			return fmt.Errorf("jetstream: run: %w", err)
		}
		b.log.WarnContext(ctx, "change stream consumer stopped; restarting", "stream", b.cfg.Stream, "url", b.url, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// consume reads the stream from b.next until an error.
func (b *Bus) consume(ctx context.Context) error {
	if err := b.checkStream(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	next := b.next
	b.mu.Unlock()
	cons, err := b.js.OrderedConsumer(ctx, b.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:   []string{b.cfg.Subject},
		DeliverPolicy:    jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:      next,
		MaxResetAttempts: 10, // then consume returns, and Run starts over
	})
	if err != nil {
		return fmt.Errorf("jetstream: consume stream %s on %s from %d: %w", b.cfg.Stream, b.url, next, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("jetstream: consume stream %s on %s from %d: %w", b.cfg.Stream, b.url, next, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	b.log.InfoContext(ctx, "consuming change stream", "stream", b.cfg.Stream, "from_stream_seq", next)
	for {
		msg, err := it.Next()
		if err != nil {
			return fmt.Errorf("jetstream: read stream %s on %s: %w", b.cfg.Stream, b.url, err)
		}
		if err := b.handle(ctx, msg); err != nil {
			return err
		}
	}
}

// checkStream recreates the stream when the server lost it, and consumes
// a stream that is not the one Run read before (the server lost its
// store and the stream was recreated) from its start.
func (b *Bus) checkStream(ctx context.Context) error {
	s, err := b.js.Stream(ctx, b.cfg.Stream)
	var info *jetstream.StreamInfo
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		b.log.WarnContext(ctx, "change stream missing; creating it", "stream", b.cfg.Stream, "url", b.url)
		if info, err = b.ensureStream(ctx); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("jetstream: read stream %s info on %s: %w", b.cfg.Stream, b.url, err)
	default:
		info = s.CachedInfo()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !info.Created.Equal(b.created) {
		b.log.WarnContext(ctx, "change stream was recreated; consuming it from its start", "stream", b.cfg.Stream, "url", b.url, "first_stream_seq", info.State.FirstSeq)
		b.created, b.next = info.Created, max(info.State.FirstSeq, 1)
	}
	return nil
}

func (b *Bus) setNext(seq uint64) {
	b.mu.Lock()
	b.next = seq
	b.mu.Unlock()
}

// handle offers one message's batch to the hub.
func (b *Bus) handle(ctx context.Context, msg jetstream.Msg) error {
	b.received.Add(1)
	var streamSeq uint64
	if meta, err := msg.Metadata(); err == nil {
		streamSeq = meta.Sequence.Stream
		b.setNext(streamSeq + 1)
	}
	if msg.Headers().Get(HeaderOrigin) == b.origin {
		b.own.Add(1) // Publish gave it to the hub already
		return nil
	}
	batch, err := DecodeBatch(msg.Data())
	if err != nil {
		b.malformed.Add(1)
		b.log.WarnContext(ctx, "malformed change message skipped", "stream", b.cfg.Stream, "stream_seq", streamSeq, "bytes", len(msg.Data()), "err", err)
		return nil
	}
	batch = unseen(batch, b.hub.Last())
	if len(batch.Changes) == 0 {
		return nil
	}
	if err := b.hub.Offer(ctx, batch); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("offer changes %s to the hub: %w", seqRange(batch.Changes), err)
	}
	b.offered.Add(1)
	return nil
}

// unseen drops the changes up to last (the hub delivered them already,
// from the change log) and the pre-delete states of their nodes, which
// the hub would otherwise keep.
func unseen(b events.Batch, last uint64) events.Batch {
	i := 0
	for i < len(b.Changes) && b.Changes[i].Seq <= last {
		i++
	}
	if i == 0 {
		return b
	}
	out := events.Batch{Changes: b.Changes[i:]}
	for _, c := range out.Changes {
		if n, ok := b.Deleted[c.ID]; ok && c.Op == graph.OpDelete {
			if out.Deleted == nil {
				out.Deleted = map[string]*graph.Node{}
			}
			out.Deleted[c.ID] = n
		}
	}
	return out
}

// Stats returns the counters.
func (b *Bus) Stats() Stats {
	return Stats{
		Published: b.published.Load(), PublishErrors: b.publishErrors.Load(),
		Received: b.received.Load(), Own: b.own.Load(), Malformed: b.malformed.Load(), Offered: b.offered.Load(),
	}
}

// Close closes the NATS connection; a running Run returns. Close does not
// wait for Run: cancel Run's context and wait for it first to stop in
// order.
func (b *Bus) Close() {
	b.closeOnce.Do(b.nc.Close)
}

// redact hides the passwords of a comma-separated URL list.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				p = u.Redacted()
			} else {
				u.User = url.User("xxxxx") // a token
				p = u.String()
			}
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
