package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
type Target interface {
	Applier
	Finder
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Logger receives lifecycle and batch logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock (fetchedAt, run IDs, durations); nil is time.Now.
	Now func() time.Time
	// DeadLetters receives records that fail; nil logs them at Warn only.
	DeadLetters DeadLetterSink
	// BatchSize is the number of nodes per Apply when a connector does not
	// set its own; 0 means 500.
	BatchSize int
}

// DefaultBatchSize is the number of nodes per Apply.
const DefaultBatchSize = 500

// Runner runs connectors: it reads the source, maps records, applies them
// in batches and dead-letters what fails. One Runner may run several
// connectors, one after the other or concurrently.
type Runner struct {
	log   *slog.Logger
	now   func() time.Time
	dead  DeadLetterSink
	batch int
}

// NewRunner returns a runner.
func NewRunner(cfg RunnerConfig) *Runner {
	r := &Runner{log: cfg.Logger, now: cfg.Now, dead: cfg.DeadLetters, batch: cfg.BatchSize}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.batch <= 0 {
		r.batch = DefaultBatchSize
	}
	return r
}

// RunStats reports one run. Without an error, Read = Written + Rejected +
// Skipped.
type RunStats struct {
	Connector string
	Source    string
	Run       string // run ID
	StartedAt time.Time
	Duration  time.Duration
	Read      int // records read from the source
	Written   int // records whose nodes and edges were applied
	Rejected  int // records dead-lettered
	Skipped   int // records skipped by mapping.skip_if
	Nodes     int // nodes applied
	Edges     int // edges applied (including locate_in)
	Changes   int // change events the store reported
	Located   int // LOCATED_IN edges computed by locate_in
}

// RunID returns the ID of a run of a connector started at t:
// urn:city:ingest-run:hub:<connector>~<UTC time> (ONTOLOGY.md §3).
func RunID(connector string, t time.Time) string {
	return "urn:city:ingest-run:hub:" + connector + "~" + t.UTC().Format("20060102T150405.000Z")
}

// Run reads the connector's source to the end, writing through t. It
// returns the run's counts, and an error when the run could not finish
// (source unreadable, store failure, dead-letter sink failure, ctx done);
// records applied before the error stay applied.
func (r *Runner) Run(ctx context.Context, c *Connector, t Target) (RunStats, error) {
	start := r.now()
	st := RunStats{Connector: c.Name, Source: c.Source, Run: RunID(c.Name, start), StartedAt: start}
	log := r.log.With("connector", c.Name, "source", c.Source, "run", st.Run)
	log.InfoContext(ctx, "run started", "kind", c.Kind)

	err := r.run(ctx, c, t, &st, log)
	st.Duration = r.now().Sub(start)
	attrs := []any{"read", st.Read, "written", st.Written, "rejected", st.Rejected, "skipped", st.Skipped,
		"nodes", st.Nodes, "edges", st.Edges, "duration", st.Duration}
	if err != nil {
		log.ErrorContext(ctx, "run failed", append(attrs, "err", err)...)
		return st, fmt.Errorf("connectors: run %s: %w", c.Name, err)
	}
	log.InfoContext(ctx, "run finished", attrs...)
	return st, nil
}

// RunAll runs connectors one after the other, in order (so that polygon
// layers load before the connectors that locate points in them). It stops
// at the first failed run and returns the stats of the runs made.
func (r *Runner) RunAll(ctx context.Context, conns []*Connector, t Target) ([]RunStats, error) {
	var out []RunStats
	for _, c := range conns {
		st, err := r.Run(ctx, c, t)
		out = append(out, st)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// pendingRecord is a mapped record waiting in the batch.
type pendingRecord struct {
	rec          *Record
	nodes, edges [2]int // ranges in the batch
	located      int
}

type runState struct {
	r       *Runner
	c       *Connector
	t       Target
	st      *RunStats
	log     *slog.Logger
	batch   graph.Batch
	pending []pendingRecord
	limit   int
	// storeFailed is set when the store or the dead-letter sink failed:
	// nothing more is written in this run.
	storeFailed bool
}

func (r *Runner) run(ctx context.Context, c *Connector, t Target, st *RunStats, log *slog.Logger) error {
	if c.Reader == nil || c.Mapping == nil {
		return errors.New("connector is not loaded (no source or mapping)")
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
	rs := &runState{r: r, c: c, t: t, st: st, log: log, limit: c.BatchSize}
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
		if err := ctx.Err(); err != nil {
			return err
		}
		st.Read++
		if rec.Err != nil {
			return rs.reject(ctx, &rec, fmt.Sprintf("%s: %v", rec.Pos, rec.Err))
		}
		if err := mp.mapRecord(&rec, &out); err != nil {
			return rs.reject(ctx, &rec, fmt.Sprintf("%s: %v", rec.Pos, err))
		}
		if out.skipped {
			st.Skipped++
			log.DebugContext(ctx, "record skipped", "pos", rec.Pos.String())
			return nil
		}
		p := pendingRecord{rec: &rec}
		p.nodes[0], p.edges[0] = len(rs.batch.Nodes), len(rs.batch.Edges)
		rs.batch.Nodes = append(rs.batch.Nodes, out.nodes...)
		rs.batch.Edges = append(rs.batch.Edges, out.edges...)
		p.nodes[1], p.edges[1] = len(rs.batch.Nodes), len(rs.batch.Edges)
		p.located = out.located
		rs.pending = append(rs.pending, p)
		if len(rs.batch.Nodes) >= rs.limit {
			return rs.flush(ctx)
		}
		return nil
	}
	if err := c.Reader.Read(ctx, emit); err != nil {
		if !rs.storeFailed && ctx.Err() == nil {
			// keep what was read before the source broke
			if ferr := rs.flush(ctx); ferr != nil {
				return errors.Join(err, ferr)
			}
		}
		return err
	}
	return rs.flush(ctx)
}

// flush applies the pending batch. When the store blames the data, each
// record is applied on its own so that only the bad ones are rejected.
func (rs *runState) flush(ctx context.Context) error {
	if len(rs.pending) == 0 {
		return nil
	}
	defer func() {
		rs.batch = graph.Batch{Nodes: rs.batch.Nodes[:0], Edges: rs.batch.Edges[:0]}
		rs.pending = rs.pending[:0]
	}()
	changes, err := rs.t.Apply(ctx, rs.batch)
	if err == nil {
		for _, p := range rs.pending {
			rs.st.Located += p.located
		}
		rs.applied(len(rs.pending), len(rs.batch.Nodes), len(rs.batch.Edges), len(changes))
		rs.log.InfoContext(ctx, "batch applied", "records", len(rs.pending), "nodes", len(rs.batch.Nodes), "edges", len(rs.batch.Edges), "changes", len(changes))
		return nil
	}
	if !blamesData(err) {
		rs.storeFailed = true
		return fmt.Errorf("apply batch: %w", err)
	}
	rs.log.WarnContext(ctx, "batch rejected by the store, retrying record by record", "records", len(rs.pending), "err", err)
	for _, p := range rs.pending {
		b := graph.Batch{Nodes: rs.batch.Nodes[p.nodes[0]:p.nodes[1]], Edges: rs.batch.Edges[p.edges[0]:p.edges[1]]}
		ch, err := rs.t.Apply(ctx, b)
		switch {
		case err == nil:
			rs.st.Located += p.located
			rs.applied(1, len(b.Nodes), len(b.Edges), len(ch))
		case blamesData(err):
			if err := rs.reject(ctx, p.rec, fmt.Sprintf("%s: store: %v", p.rec.Pos, err)); err != nil {
				return err
			}
		default:
			rs.storeFailed = true
			return fmt.Errorf("apply record: %w", err)
		}
	}
	return nil
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

// reject dead-letters a record.
func (rs *runState) reject(ctx context.Context, rec *Record, reason string) error {
	rs.st.Rejected++
	raw := rec.Raw
	if raw == nil && rec.Fields != nil {
		raw, _ = json.Marshal(rec.Fields)
	}
	rs.log.WarnContext(ctx, "record rejected", "reason", reason)
	if rs.r.dead == nil {
		return nil
	}
	d := DeadLetter{Connector: rs.c.Name, Source: rs.c.Source, Run: rs.st.Run, Pos: rec.Pos, Reason: reason, Raw: raw, At: rs.r.now().UTC()}
	if err := rs.r.dead.Put(ctx, d); err != nil {
		rs.storeFailed = true
		return fmt.Errorf("dead letter: %w", err)
	}
	return nil
}
