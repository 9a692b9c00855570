package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// Applier writes batches to the knowledge graph (graph.Store satisfies it).
type Applier interface {
	// Apply commits the batch atomically. Errors matching graph.ErrInvalid
	// or graph.ErrConflict blame the data; others (graph.ErrUnavailable,
	// context errors) blame the store and end the run.
	Apply(ctx context.Context, b graph.Batch) ([]graph.Change, error)
}

// Finder pages through the nodes of a class (graph.Store satisfies it).
// The runner uses it to load the polygons of locate_in classes, once per
// run.
type Finder interface {
	Find(ctx context.Context, q graph.FindQuery) (*graph.Page, error)
}

// Target is what a run writes to: an Applier, and a Finder for locate_in.
// With the journal on it must also be a NodeReader.
type Target interface {
	Applier
	Finder
}

// RetryPolicy says how often and how patiently a run is retried after a
// transient failure (an unreachable source or store): attempt n waits a
// random time up to min(Max, Initial·2ⁿ⁻¹) ("full jitter").
type RetryPolicy struct {
	Attempts int           // attempts in all, ≥ 1
	Initial  time.Duration // first backoff ceiling
	Max      time.Duration // largest backoff ceiling
}

// DefaultRetry is the policy of connectors that set none: 4 attempts,
// backoff ceilings 1 s, 2 s, 4 s (at most 30 s).
func DefaultRetry() RetryPolicy {
	return RetryPolicy{Attempts: 4, Initial: time.Second, Max: 30 * time.Second}
}

// backoff returns the wait before attempt n+1 (n ≥ 1 attempts made).
func (p RetryPolicy) backoff(n int, rnd func() float64) time.Duration {
	ceil := p.Initial
	for i := 1; i < n && ceil < p.Max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, p.Max)
	if ceil <= 0 {
		return 0
	}
	return time.Duration(rnd() * float64(ceil))
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Logger receives lifecycle and batch logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock (fetchedAt, run IDs, durations); nil is time.Now.
	Now func() time.Time
	// DeadLetters receives records that fail, in addition to the journal;
	// nil keeps them in the journal only (or logs them when it is off).
	DeadLetters DeadLetterSink
	// BatchSize is the number of nodes per Apply when a connector does not
	// set its own; 0 means 500.
	BatchSize int
	// Journal records connectors, runs, dead letters and checkpoints in
	// the graph (see journal.go). The ontology must have the Connector,
	// IngestRun and DeadLetter classes and the target must read nodes.
	Journal bool
	// Retry is the policy for connectors that set none; the zero value is
	// DefaultRetry.
	Retry RetryPolicy
	// FlushInterval bounds how long a streamed record waits for its batch;
	// 0 means one second.
	FlushInterval time.Duration
	// Progress, when set, is called after every committed batch with the
	// run's counts so far (from the run's goroutine).
	Progress func(RunStats)
	// Finished, when set, is called once when a run ends, with its counts
	// and its error (metrics, notifications).
	Finished func(RunStats, error)
	// Rand returns a number in [0, 1) for backoff jitter; nil uses
	// math/rand/v2.
	Rand func() float64
}

// DefaultBatchSize is the number of nodes per Apply.
const DefaultBatchSize = 500

// Runner runs connectors: it reads the source, maps records, applies them
// in batches and dead-letters what fails. One Runner may run several
// connectors, one after the other or concurrently.
type Runner struct {
	log      *slog.Logger
	now      func() time.Time
	dead     DeadLetterSink
	batch    int
	journal  bool
	retry    RetryPolicy
	flushInt time.Duration
	progress func(RunStats)
	finished func(RunStats, error)
	rnd      func() float64
}

// NewRunner returns a runner.
func NewRunner(cfg RunnerConfig) *Runner {
	r := &Runner{log: cfg.Logger, now: cfg.Now, dead: cfg.DeadLetters, batch: cfg.BatchSize, journal: cfg.Journal,
		retry: cfg.Retry, flushInt: cfg.FlushInterval, progress: cfg.Progress, finished: cfg.Finished, rnd: cfg.Rand}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.batch <= 0 {
		r.batch = DefaultBatchSize
	}
	if r.retry.Attempts <= 0 {
		r.retry = DefaultRetry()
	}
	if r.flushInt <= 0 {
		r.flushInt = time.Second
	}
	if r.rnd == nil {
		r.rnd = rand.Float64
	}
	return r
}

// RunStats reports one run. Without an error, Read = Written + Rejected +
// Skipped (counted over every attempt).
type RunStats struct {
	Connector string
	Source    string
	Run       string // run ID
	Trigger   Trigger
	StartedAt time.Time
	Duration  time.Duration
	Attempts  int
	Read      int // records read from the source
	Written   int // records whose nodes and edges were applied
	Rejected  int // records dead-lettered
	Skipped   int // records skipped by mapping.skip_if
	Nodes     int // nodes applied
	Edges     int // edges applied (including locate_in)
	Changes   int // change events the store reported
	Located   int // LOCATED_IN edges computed by locate_in
	// Checkpoint is the checkpoint committed last ("" for sources that do
	// not resume).
	Checkpoint string
	// Rejections lists the first MaxRejections dead-lettered records (a
	// pushing agency gets them back at once).
	Rejections []Rejection
}

// Rejection is a dead-lettered record of a run, in short.
type Rejection struct {
	Index  int    // the record's index in its source read
	Pos    string // the record's position, e.g. "line 17"
	Reason string
}

// MaxRejections bounds RunStats.Rejections.
const MaxRejections = 100

// Status is the run's RunStatus for an outcome: SUCCEEDED, PARTIAL (some
// records dead-lettered) or FAILED.
func (st RunStats) Status(err error) string {
	switch {
	case err != nil:
		return "FAILED"
	case st.Rejected > 0:
		return "PARTIAL"
	default:
		return "SUCCEEDED"
	}
}

// RunID returns the ID of a run of a connector started at t:
// urn:city:ingest-run:hub:<connector>~<UTC time> (ONTOLOGY.md §3).
func RunID(connector string, t time.Time) string {
	return "urn:city:ingest-run:hub:" + connector + "~" + t.UTC().Format("20060102T150405.000Z")
}

// Run reads the connector's source to the end, writing through t, with
// the MANUAL trigger. See RunWith.
func (r *Runner) Run(ctx context.Context, c *Connector, t Target) (RunStats, error) {
	return r.RunWith(ctx, c, t, TriggerManual)
}

// RunWith reads the connector's source to the end (a Resumer from its
// committed checkpoint), writing through t, and retries transient
// failures with backoff. It returns the run's counts, and an error when
// the run could not finish (source unreadable, store failure, dead-letter
// sink failure, ctx done); records applied before the error stay applied
// and the checkpoint stays at the last committed batch.
func (r *Runner) RunWith(ctx context.Context, c *Connector, t Target, trigger Trigger) (RunStats, error) {
	return r.run(ctx, c, t, trigger, false)
}

// Stream runs a streaming connector (its source a Streamer) until ctx
// ends: records are committed in batches by size and by FlushInterval,
// acknowledged after their commit, and the subscription is restarted with
// backoff after transient failures, however often. It returns nil when
// ctx ends.
func (r *Runner) Stream(ctx context.Context, c *Connector, t Target) (RunStats, error) {
	if _, ok := c.Reader.(Streamer); !ok {
		return RunStats{}, fmt.Errorf("connectors: %s: kind %s does not stream", c.Name, c.Kind)
	}
	return r.run(ctx, c, t, TriggerStream, true)
}

// RunAll runs connectors one after the other, in order (so that polygon
// layers load before the connectors that locate points in them). It stops
// at the first failed run and returns the stats of the runs made.
func (r *Runner) RunAll(ctx context.Context, conns []*Connector, t Target) ([]RunStats, error) {
	return r.RunAllWith(ctx, conns, t, TriggerManual)
}

// RunAllWith is RunAll with a trigger.
func (r *Runner) RunAllWith(ctx context.Context, conns []*Connector, t Target, trigger Trigger) ([]RunStats, error) {
	var out []RunStats
	for _, c := range conns {
		st, err := r.RunWith(ctx, c, t, trigger)
		out = append(out, st)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// retryable reports whether a failed attempt may pass later.
func retryable(err error) bool {
	return IsTransient(err) || errors.Is(err, graph.ErrUnavailable)
}

func (r *Runner) run(ctx context.Context, c *Connector, t Target, trigger Trigger, stream bool) (RunStats, error) {
	start := r.now()
	st := RunStats{Connector: c.Name, Source: c.Source, Run: RunID(c.Name, start), StartedAt: start, Trigger: trigger}
	log := r.log.With("connector", c.Name, "source", c.Source, "run", st.Run)
	log.InfoContext(ctx, "run started", "kind", c.Kind, "trigger", trigger)
	policy := r.retry
	if c.Retry != nil {
		policy = *c.Retry
	}
	var j *journal
	var nr NodeReader
	if r.journal {
		var ok bool
		if nr, ok = t.(NodeReader); !ok {
			return st, fmt.Errorf("connectors: run %s: the journal needs a target that reads nodes", c.Name)
		}
		j = &journal{c: c, st: &st, trigger: trigger}
	}
	var err error
	for {
		st.Attempts++
		err = r.attempt(ctx, c, t, nr, j, &st, log, stream)
		if err == nil && !stream {
			break
		}
		if ctx.Err() != nil {
			if stream {
				err = nil // a stream ends when its context does
			}
			break
		}
		if err != nil && !retryable(err) {
			break
		}
		if !stream && st.Attempts >= policy.Attempts {
			err = fmt.Errorf("%w (gave up after %d attempts)", err, st.Attempts)
			break
		}
		wait := policy.backoff(st.Attempts, r.rnd)
		log.WarnContext(ctx, "attempt failed, retrying", "attempt", st.Attempts, "in", wait.Round(time.Millisecond), "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		if ctx.Err() != nil {
			if stream {
				err = nil
			}
			break
		}
	}
	st.Duration = r.now().Sub(start)
	if j != nil {
		// the final record survives a cancelled run context
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if ferr := r.finish(fctx, t, j, err); ferr != nil {
			log.ErrorContext(ctx, "run record not written", "err", ferr)
		}
		cancel()
	}
	if r.finished != nil {
		r.finished(st, err)
	}
	attrs := []any{"read", st.Read, "written", st.Written, "rejected", st.Rejected, "skipped", st.Skipped,
		"nodes", st.Nodes, "edges", st.Edges, "attempts", st.Attempts, "duration", st.Duration}
	if err != nil {
		log.ErrorContext(ctx, "run failed", append(attrs, "err", err)...)
		return st, fmt.Errorf("connectors: run %s: %w", c.Name, err)
	}
	log.InfoContext(ctx, "run finished", attrs...)
	return st, nil
}

// finish writes the connector's and the run's final record.
func (r *Runner) finish(ctx context.Context, t Target, j *journal, runErr error) error {
	now := r.now()
	status := j.st.Status(runErr)
	j.state.LastStatus = status
	j.state.LastError = ""
	if runErr != nil {
		j.state.LastError = runErr.Error()
	} else {
		j.state.LastSuccessAt = now.UTC()
	}
	cn := j.connectorNode(now)
	rn, re := j.runNode(now, status, now, runErr)
	_, err := t.Apply(ctx, graph.Batch{Nodes: []graph.Node{cn, rn}, Edges: []graph.Edge{re}})
	return err
}

// pendingRecord is a mapped record waiting in the batch (held by value:
// the fill's slice is reused from batch to batch, so a record costs no
// allocation of its own).
type pendingRecord struct {
	rec          Record
	nodes, edges [2]int // ranges in the batch
	located      int
}

// fill is a batch being filled, then committed: the mapped records, the
// journal's dead-letter nodes and edges not yet committed, and the
// acknowledgements due after the commit.
type fill struct {
	batch     graph.Batch
	pending   []pendingRecord
	deadNodes []graph.Node
	deadEdges []graph.Edge
	acks      []func()
}

func (f *fill) empty() bool {
	return len(f.pending) == 0 && len(f.deadNodes) == 0 && len(f.acks) == 0
}

func (f *fill) reset() {
	f.batch = graph.Batch{Nodes: f.batch.Nodes[:0], Edges: f.batch.Edges[:0]}
	clear(f.pending[:cap(f.pending)]) // let go of the records' fields and payloads
	f.pending = f.pending[:0]
	f.deadNodes, f.deadEdges = f.deadNodes[:0], f.deadEdges[:0]
	f.acks = f.acks[:0]
}

// flight is a fill on its way to the store. One is in the air at a time:
// while the store applies it, the next fill is read and mapped, and the
// next commit waits for it to land, so commits stay in order. A landed
// flight's acknowledgements are sent once the next one is in the air (or
// at once when none follows): they are due after the commit, and the store
// need not wait for them.
type flight struct {
	f          *fill
	checkpoint string // the checkpoint the commit records
	done       chan struct{}
	changes    []graph.Change
	err        error
}

type runState struct {
	r     *Runner
	c     *Connector
	t     Target
	st    *RunStats
	j     *journal
	log   *slog.Logger
	limit int
	// cur is filling; air is being applied; spare is a landed fill kept
	// for reuse.
	cur, spare *fill
	air        *flight
	// checkpoint is the checkpoint of the last record read (committed with
	// the fill it ends).
	checkpoint string
	// storeFailed is set when the store or the dead-letter sink failed:
	// nothing more is written in this run.
	storeFailed bool

	// Streams only. mu guards the state between the reader, the flush
	// timer and the goroutine that lands each commit as soon as the store
	// is done with it (so that its acknowledgements go out without
	// waiting for the next record). ctx is the attempt's; fail ends the
	// subscription with a landing's error (the attempt returns it).
	// wantFlush asks that landing to send what was read meanwhile (the
	// flush timer fired while a commit was in the air); closed stops the
	// landings once the subscription ended (the attempt lands the rest).
	stream    bool
	mu        *sync.Mutex
	ctx       context.Context
	fail      func(error)
	wantFlush bool
	closed    bool
}

func (r *Runner) attempt(ctx context.Context, c *Connector, t Target, nr NodeReader, j *journal, st *RunStats, log *slog.Logger, stream bool) error {
	if c.Reader == nil || c.Mapping == nil {
		return errors.New("connector is not loaded (no source or mapping)")
	}
	if l, ok := c.Reader.(interface{ SetLogger(*slog.Logger) }); ok {
		l.SetLogger(log)
	}
	if j != nil {
		// the committed state: what the previous run (or attempt) left
		state, err := ReadState(ctx, nr, c.Name)
		if err != nil {
			return err
		}
		state.LastRunAt, state.LastStatus = st.StartedAt.UTC(), "RUNNING"
		j.state = state
		st.Checkpoint = state.Checkpoint
		cn := j.connectorNode(r.now())
		rn, re := j.runNode(r.now(), "RUNNING", time.Time{}, nil)
		if _, err := t.Apply(ctx, graph.Batch{Nodes: []graph.Node{cn, rn}, Edges: []graph.Edge{re}}); err != nil {
			return fmt.Errorf("record run start: %w", err)
		}
	}
	areas := map[string]*areaIndex{}
	for _, class := range c.Mapping.locateIn {
		ix, skipped, err := loadAreas(ctx, t, class)
		if err != nil {
			return err
		}
		if len(ix.areas) == 0 {
			log.WarnContext(ctx, "no polygons to locate in", "class", class)
		}
		if skipped > 0 {
			log.WarnContext(ctx, "nodes without polygon geometry ignored for locate_in", "class", class, "count", skipped)
		}
		areas[class] = ix
	}
	var mu sync.Mutex // streams: emit, the flush timer and the landings
	rs := &runState{r: r, c: c, t: t, st: st, j: j, log: log, limit: c.BatchSize, cur: &fill{}, stream: stream, mu: &mu, ctx: ctx}
	// a commit in the air when reading ends (cancelled or broken) lands
	// before the attempt returns: its acknowledgements and counts are due
	defer func() {
		if stream {
			mu.Lock()
			defer mu.Unlock()
			rs.closed = true
		}
		rs.land(context.WithoutCancel(ctx))
	}()
	if rs.limit <= 0 {
		rs.limit = r.batch
	}
	base := graph.Provenance{Source: c.Source, Connector: c.Name, Run: st.Run, FetchedAt: st.StartedAt.UTC()}
	mp := newMapper(c.Mapping, c.Source, base, func(class string, p graph.Point) (string, bool) {
		if ix := areas[class]; ix != nil {
			return ix.locate(p)
		}
		return "", false
	})
	var out mapped
	emit := func(rec Record) error {
		if stream {
			mu.Lock()
			defer mu.Unlock()
		}
		if rec.Flush {
			if rs.storeFailed {
				return errors.New("the run stopped writing after a store failure")
			}
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return rs.flush(fctx)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if rs.storeFailed {
			return errors.New("the run stopped writing after a store failure")
		}
		st.Read++
		if rec.Checkpoint != "" {
			rs.checkpoint = rec.Checkpoint
		}
		if rec.Err != nil {
			return rs.reject(ctx, rs.cur, &rec, fmt.Sprintf("%s: %v", rec.Pos, rec.Err))
		}
		// the record is mapped where it waits for its commit: the mapper
		// keeps a pointer to it, which would otherwise move every record
		// to the heap
		f := rs.cur
		f.pending = append(f.pending, pendingRecord{rec: rec})
		p := &f.pending[len(f.pending)-1]
		if err := mp.mapRecord(&p.rec, &out); err != nil {
			f.pending = f.pending[:len(f.pending)-1]
			return rs.reject(ctx, f, &rec, fmt.Sprintf("%s: %v", rec.Pos, err))
		}
		if out.skipped {
			f.pending = f.pending[:len(f.pending)-1]
			st.Skipped++
			if rec.Ack != nil {
				f.acks = append(f.acks, rec.Ack)
			}
			log.DebugContext(ctx, "record skipped", "pos", rec.Pos.String())
			return nil
		}
		p.nodes[0], p.edges[0] = len(f.batch.Nodes), len(f.batch.Edges)
		f.batch.Nodes = append(f.batch.Nodes, out.nodes...)
		f.batch.Edges = append(f.batch.Edges, out.edges...)
		p.nodes[1], p.edges[1] = len(f.batch.Nodes), len(f.batch.Edges)
		p.located = out.located
		if len(f.batch.Nodes)+len(f.deadNodes) >= rs.limit {
			return rs.send(ctx) // read on while the store applies it
		}
		return nil
	}
	var readErr error
	if stream {
		tick := time.NewTicker(r.flushInt)
		done := make(chan struct{})
		var wg sync.WaitGroup
		var flushErr error
		sctx, cancel := context.WithCancel(ctx)
		rs.fail = func(err error) { // with mu held
			if flushErr == nil {
				flushErr = err
			}
			cancel() // end the subscription; the run retries
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					// commit what waits, without holding up the reader
					// while the store applies it
					mu.Lock()
					if !rs.storeFailed && !rs.closed {
						if err := rs.soon(ctx); err != nil {
							rs.fail(err)
						}
					}
					mu.Unlock()
				}
			}
		}()
		readErr = c.Reader.(Streamer).Subscribe(sctx, rs.committedCheckpoint(), emit)
		tick.Stop()
		close(done)
		wg.Wait()
		cancel()
		mu.Lock()
		defer mu.Unlock()
		rs.closed = true // what is still in the air is landed here
		if flushErr != nil {
			readErr = flushErr
		}
	} else if res, ok := c.Reader.(Resumer); ok {
		readErr = res.ReadFrom(ctx, rs.committedCheckpoint(), emit)
	} else {
		readErr = c.Reader.Read(ctx, emit)
	}
	if readErr != nil {
		if !rs.storeFailed && ctx.Err() == nil {
			// keep what was read before the source broke
			if ferr := rs.flush(ctx); ferr != nil {
				return errors.Join(readErr, ferr)
			}
		}
		return readErr
	}
	if stream && ctx.Err() != nil {
		// the stream ended with its context: commit what is pending
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return rs.flush(fctx)
	}
	return rs.flush(ctx)
}

func (rs *runState) committedCheckpoint() string {
	if rs.j == nil {
		return ""
	}
	return rs.j.state.Checkpoint
}

// journalize appends to b the fill's dead letters and the journal's nodes:
// the connector with the checkpoint the commit reaches, and the run with
// its counts after records more are written.
func (rs *runState) journalize(b *graph.Batch, f *fill, checkpoint string, records int) {
	b.Nodes = append(b.Nodes, f.deadNodes...)
	b.Edges = append(b.Edges, f.deadEdges...)
	if rs.j == nil {
		return
	}
	now := rs.r.now()
	saved := rs.j.state.Checkpoint
	if checkpoint != "" {
		rs.j.state.Checkpoint = checkpoint
	}
	prospective := *rs.st
	prospective.Written += records
	j := *rs.j
	j.st = &prospective
	rn, re := j.runNode(now, "RUNNING", time.Time{}, nil)
	b.Nodes = append(b.Nodes, rs.j.connectorNode(now), rn)
	b.Edges = append(b.Edges, re)
	rs.j.state.Checkpoint = saved // until the commit
}

// committed records the checkpoint of a successful commit (release then
// sends its acknowledgements).
func (rs *runState) committed(fl *flight) {
	if fl.checkpoint != "" {
		rs.st.Checkpoint = fl.checkpoint
		if rs.j != nil {
			rs.j.state.Checkpoint = fl.checkpoint
		}
	}
}

// flush commits everything read so far and waits for it.
func (rs *runState) flush(ctx context.Context) error {
	if err := rs.send(ctx); err != nil {
		return err
	}
	return rs.land(ctx)
}

// send lands the commit in the air, then puts the filled batch with the
// journal's nodes in the air and returns without waiting for it; the
// landed commit's acknowledgements go out after that.
func (rs *runState) send(ctx context.Context) error {
	prev, err := rs.take(ctx)
	if err != nil {
		return err
	}
	defer rs.release(prev)
	f := rs.cur
	if f.empty() && (rs.checkpoint == "" || rs.checkpoint == rs.st.Checkpoint) {
		return nil
	}
	rs.wantFlush = false
	// Identity resolution (resolve.go): the batch's nodes whose class the
	// mapping resolves (resolve_by) take the ID of the node that already
	// holds one of their identifiers, merged with it, and the batch's edges
	// follow them. One store query, none for mappings without resolve_by;
	// made after the previous commit landed, so it sees that commit's
	// nodes. A failed query is a store failure: nothing of the batch is
	// written.
	if err := resolveBatch(ctx, rs.t, rs.c.Mapping, &f.batch, rs.log); err != nil {
		rs.storeFailed = true
		return fmt.Errorf("resolve identities: %w", err)
	}
	fl := &flight{f: f, checkpoint: rs.checkpoint, done: make(chan struct{})}
	b := f.batch
	rs.journalize(&b, f, fl.checkpoint, len(f.pending))
	if rs.spare != nil {
		rs.cur, rs.spare = rs.spare, nil
	} else {
		rs.cur = &fill{}
	}
	rs.air = fl
	go func() {
		fl.changes, fl.err = rs.t.Apply(ctx, b)
		close(fl.done)
		if rs.stream {
			rs.landed(fl)
		}
	}()
	return nil
}

// soon commits what was read without waiting for it: at once when no
// commit is in the air, else as soon as that one lands (streams).
func (rs *runState) soon(ctx context.Context) error {
	if rs.air != nil {
		rs.wantFlush = true
		return nil
	}
	return rs.send(ctx)
}

// landed lands a stream's flight as soon as the store is done with it,
// unless the reader did already: its acknowledgements go out, and the
// broker sends more, without waiting for the next record. When a flush
// was asked for meanwhile, what was read since goes into the air first.
func (rs *runState) landed(fl *flight) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.air != fl || rs.closed || rs.storeFailed {
		return
	}
	var err error
	if rs.wantFlush {
		err = rs.send(rs.ctx)
	} else {
		err = rs.land(rs.ctx)
	}
	if err != nil {
		rs.fail(err)
	}
}

// land waits for the commit in the air, if any, records its outcome and
// sends its acknowledgements.
func (rs *runState) land(ctx context.Context) error {
	fl, err := rs.take(ctx)
	rs.release(fl)
	return err
}

// take waits for the commit in the air, if any, and records its outcome;
// it returns the landed flight, whose acknowledgements release sends.
// When the store blames the data, each of its records is applied on its
// own so that only the bad ones are rejected.
func (rs *runState) take(ctx context.Context) (*flight, error) {
	fl := rs.air
	if fl == nil {
		return nil, nil
	}
	<-fl.done
	rs.air = nil
	f := fl.f
	if fl.err == nil {
		for i := range f.pending {
			p := &f.pending[i]
			rs.st.Located += p.located
			if p.rec.Ack != nil {
				f.acks = append(f.acks, p.rec.Ack)
			}
		}
		rs.applied(len(f.pending), len(f.batch.Nodes), len(f.batch.Edges), countData(fl.changes, rs.j != nil))
		rs.committed(fl)
		rs.log.InfoContext(ctx, "batch applied", "records", len(f.pending), "nodes", len(f.batch.Nodes), "edges", len(f.batch.Edges), "changes", len(fl.changes))
		return fl, nil
	}
	if !blamesData(fl.err) {
		rs.storeFailed = true
		rs.recycle(f)
		return nil, fmt.Errorf("apply batch: %w", fl.err)
	}
	rs.log.WarnContext(ctx, "batch rejected by the store, retrying record by record", "records", len(f.pending), "err", fl.err)
	for i := range f.pending {
		p := &f.pending[i]
		b := graph.Batch{Nodes: f.batch.Nodes[p.nodes[0]:p.nodes[1]], Edges: f.batch.Edges[p.edges[0]:p.edges[1]]}
		ch, err := rs.t.Apply(ctx, b)
		switch {
		case err == nil:
			rs.st.Located += p.located
			rs.applied(1, len(b.Nodes), len(b.Edges), len(ch))
			if p.rec.Ack != nil {
				f.acks = append(f.acks, p.rec.Ack)
			}
		case blamesData(err):
			if err := rs.reject(ctx, f, &p.rec, fmt.Sprintf("%s: store: %v", p.rec.Pos, err)); err != nil {
				rs.recycle(f)
				return nil, err
			}
		default:
			rs.storeFailed = true
			rs.recycle(f)
			return nil, fmt.Errorf("apply record: %w", err)
		}
	}
	// the dead letters and the checkpoint, now that every record is in
	var jb graph.Batch
	rs.journalize(&jb, f, fl.checkpoint, 0)
	if jb.Len() > 0 {
		if _, err := rs.t.Apply(ctx, jb); err != nil {
			rs.storeFailed = true
			rs.recycle(f)
			return nil, fmt.Errorf("apply dead letters and checkpoint: %w", err)
		}
	}
	rs.committed(fl)
	return fl, nil
}

// release sends the acknowledgements of a landed flight (nil: none),
// reports progress and keeps its fill for reuse.
func (rs *runState) release(fl *flight) {
	if fl == nil {
		return
	}
	for _, ack := range fl.f.acks {
		ack()
	}
	if rs.r.progress != nil {
		rs.r.progress(*rs.st)
	}
	rs.recycle(fl.f)
}

// recycle keeps a landed fill for the next batch.
func (rs *runState) recycle(f *fill) {
	f.reset()
	rs.spare = f
}

// countData counts the change events of data nodes and edges: the
// journal's own (connector and run records) are not the source's changes.
func countData(changes []graph.Change, journal bool) int {
	if !journal {
		return len(changes)
	}
	n := 0
	for _, c := range changes {
		switch c.Class {
		case "Connector", "IngestRun", "DeadLetter":
		default:
			n++
		}
	}
	return n
}

func (rs *runState) applied(records, nodes, edges, changes int) {
	rs.st.Written += records
	rs.st.Nodes += nodes
	rs.st.Edges += edges
	rs.st.Changes += changes
}

func blamesData(err error) bool {
	return errors.Is(err, graph.ErrInvalid) || errors.Is(err, graph.ErrConflict) || errors.Is(err, graph.ErrNotFound)
}

// reject dead-letters a record: to the sink at once, to the journal with
// the next commit (which also acknowledges it).
func (rs *runState) reject(ctx context.Context, f *fill, rec *Record, reason string) error {
	rs.st.Rejected++
	if len(rs.st.Rejections) < MaxRejections {
		rs.st.Rejections = append(rs.st.Rejections, Rejection{Index: rec.Pos.Index, Pos: rec.Pos.String(), Reason: reason})
	}
	raw := rec.Raw
	if raw == nil && rec.Fields != nil {
		raw, _ = json.Marshal(rec.Fields)
	}
	rs.log.WarnContext(ctx, "record rejected", "reason", reason)
	d := DeadLetter{Connector: rs.c.Name, Source: rs.c.Source, Run: rs.st.Run, Pos: rec.Pos, Reason: reason, Raw: raw, At: rs.r.now().UTC()}
	if rs.r.dead != nil {
		if err := rs.r.dead.Put(ctx, d); err != nil {
			rs.storeFailed = true
			return fmt.Errorf("dead letter: %w", err)
		}
	}
	if rs.j != nil {
		n, e := rs.j.deadLetterNode(d)
		f.deadNodes = append(f.deadNodes, n)
		f.deadEdges = append(f.deadEdges, e)
	}
	if rec.Ack != nil {
		if rs.j == nil {
			rec.Ack() // the sink has it (or nobody keeps it)
		} else {
			f.acks = append(f.acks, rec.Ack)
		}
	}
	return nil
}
