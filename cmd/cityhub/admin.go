package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/resolvers/core"
)

// admin implements core.Admin over the connector scheduler and the
// store's journal.
type admin struct {
	sched *connectors.Scheduler
	nodes connectors.NodeReader
	now   func() time.Time

	mu    sync.Mutex
	stale map[string]staleEntry // connector → cached verdict
}

type staleEntry struct {
	v  *bool
	at time.Time
}

// staleTTL bounds how old a cached staleness verdict may be: _provenance
// asks once per node, the journal is read at most once per connector per
// TTL.
const staleTTL = 5 * time.Second

func newAdmin(sched *connectors.Scheduler, nodes connectors.NodeReader) *admin {
	return &admin{sched: sched, nodes: nodes, now: time.Now, stale: map[string]staleEntry{}}
}

func (a *admin) Connectors(ctx context.Context) ([]*core.ConnectorStatus, error) {
	now := a.now()
	var out []*core.ConnectorStatus
	for _, c := range a.sched.Connectors() {
		st, err := connectors.ReadState(ctx, a.nodes, c.Name)
		if err != nil {
			return nil, err
		}
		cs := &core.ConnectorStatus{Name: c.Name, Kind: c.Kind, Source: c.Source, Running: a.sched.Running(c.Name),
			Stale: connectors.Stale(c.Freshness, st, now), LastStatus: strPtr(st.LastStatus), LastError: strPtr(st.LastError),
			LastRunAt: timePtr(st.LastRunAt), LastSuccessAt: timePtr(st.LastSuccessAt), Checkpoint: strPtr(st.Checkpoint)}
		if _, ok := c.Reader.(connectors.Streamer); ok {
			cs.Streaming = true
		} else if c.Schedule > 0 {
			s := c.Schedule.String()
			cs.Schedule = &s
		}
		if c.Freshness > 0 {
			f := int(c.Freshness / time.Second)
			cs.FreshnessSeconds = &f
		}
		out = append(out, cs)
	}
	return out, nil
}

func (a *admin) RunConnector(ctx context.Context, name string) (*core.ConnectorRun, error) {
	c, ok := a.sched.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: unknown connector %q", graph.ErrNotFound, name)
	}
	if _, ok := c.Reader.(connectors.Streamer); ok {
		return nil, fmt.Errorf("%w: connector %q streams continuously; it cannot be run on demand", graph.ErrConflict, name)
	}
	if connectors.PushOnly(c) {
		return nil, fmt.Errorf("%w: connector %q receives its records by push (pushRecords, POST /push/%s)", graph.ErrConflict, name, name)
	}
	// the run goes on when the request ends (the client may give up
	// waiting); its record is in the journal
	type result struct {
		st  connectors.RunStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := a.sched.RunNow(context.WithoutCancel(ctx), name, connectors.TriggerManual)
		done <- result{st, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("connector %q is still running; its record is in ingestRuns: %w", name, ctx.Err())
	}
	st, err := res.st, res.err
	if errors.Is(err, connectors.ErrRunning) {
		return nil, fmt.Errorf("%w: connector %q is already running", graph.ErrConflict, name)
	}
	a.forget(name)
	return connectorRun(name, st, err), nil
}

// connectorRun is the GraphQL record of a run.
func connectorRun(name string, st connectors.RunStats, err error) *core.ConnectorRun {
	run := &core.ConnectorRun{Run: st.Run, Connector: name, Status: st.Status(err), Read: st.Read, Written: st.Written,
		Rejected: st.Rejected, Skipped: st.Skipped, Attempts: st.Attempts, DurationMs: float64(st.Duration.Microseconds()) / 1000,
		Rejections: []*core.Rejection{}}
	if err != nil {
		msg := err.Error()
		run.Error = &msg
	}
	for _, r := range st.Rejections {
		run.Rejections = append(run.Rejections, &core.Rejection{Index: r.Index, Position: r.Pos, Reason: r.Reason})
	}
	return run
}

func (a *admin) PushValues(ctx context.Context, name string, values []any) (*core.ConnectorRun, error) {
	recs, err := connectors.PushRecords(values)
	if err != nil {
		return nil, fmt.Errorf("%w: records: %v", graph.ErrInvalid, err)
	}
	return a.push(ctx, name, recs)
}

func (a *admin) PushBody(ctx context.Context, name string, body io.Reader) (*core.ConnectorRun, error) {
	recs, err := connectors.DecodePush(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", graph.ErrInvalid, err)
	}
	return a.push(ctx, name, recs)
}

func (a *admin) push(ctx context.Context, name string, recs []connectors.Record) (*core.ConnectorRun, error) {
	if _, ok := a.sched.Lookup(name); !ok {
		return nil, fmt.Errorf("%w: unknown connector %q", graph.ErrNotFound, name)
	}
	st, err := a.sched.Push(ctx, name, recs)
	if st.Run == "" && err != nil {
		return nil, err // never ran: unknown, or gave up waiting
	}
	a.forget(name)
	return connectorRun(name, st, err), nil
}

func (a *admin) Stale(ctx context.Context, connector string) (*bool, error) {
	c, ok := a.sched.Lookup(connector)
	if !ok || c.Freshness <= 0 {
		return nil, nil
	}
	now := a.now()
	a.mu.Lock()
	e, ok := a.stale[connector]
	a.mu.Unlock()
	if ok && now.Sub(e.at) < staleTTL {
		return e.v, nil
	}
	st, err := connectors.ReadState(ctx, a.nodes, connector)
	if err != nil {
		return nil, err
	}
	v := connectors.Stale(c.Freshness, st, now)
	a.mu.Lock()
	a.stale[connector] = staleEntry{v: &v, at: now}
	a.mu.Unlock()
	return &v, nil
}

// forget drops the cached staleness of a connector that just ran.
func (a *admin) forget(name string) {
	a.mu.Lock()
	delete(a.stale, name)
	a.mu.Unlock()
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
