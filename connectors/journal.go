package connectors

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph"
)

// The journal is the runner's bookkeeping in the knowledge graph itself,
// so that it is as durable as the data and queryable through the same
// API: each connector is a Connector node holding its checkpoint and the
// outcome of its last run, each run an IngestRun node (RUN_OF its
// connector) with live counts, and each rejected record a DeadLetter node
// (REJECTED_IN its run) with the reason, the position and the raw bytes.
// The connector's checkpoint is written in the same Apply as the records
// it covers, so it never runs ahead of the data: after a crash the next
// run resumes from the last committed batch and, since every upsert is
// idempotent, ends with every record present exactly once.

// JournalSource is the source code of the journal's own nodes.
const JournalSource = "hub"

// ConnectorID returns the ID of a connector's Connector node.
func ConnectorID(name string) string { return ID("connector", JournalSource, escapeKey(name)) }

// runKey returns the key part of a run ID (urn:city:ingest-run:hub:<key>).
func runKey(runID string) string {
	return strings.TrimPrefix(runID, "urn:city:ingest-run:"+JournalSource+":")
}

// deadLetterID returns the ID of a dead letter of a run: the run's key and
// a hash of the record's position, reason and bytes, so that a record
// rejected again by a retry of the same run is stored once.
func deadLetterID(d DeadLetter) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s\x00%s\x00", d.Pos.String(), d.Pos.Index, d.Pos.Offset, d.Pos.Message, d.Reason)
	h.Write(d.Raw)
	return ID("dead-letter", JournalSource, runKey(d.Run)+"~"+hex.EncodeToString(h.Sum(nil))[:16])
}

// State is what the journal knows about a connector.
type State struct {
	Checkpoint    string
	LastRunAt     time.Time
	LastStatus    string // RunStatus: RUNNING, SUCCEEDED, PARTIAL, FAILED; "" before the first run
	LastError     string
	LastSuccessAt time.Time
}

// NodeReader reads nodes by ID (graph.Store satisfies it).
type NodeReader interface {
	Nodes(ctx context.Context, ids []string) ([]*graph.Node, error)
}

// ReadState returns the journal's state of a connector (the zero State
// when it never ran).
func ReadState(ctx context.Context, r NodeReader, connector string) (State, error) {
	ns, err := r.Nodes(ctx, []string{ConnectorID(connector)})
	if err != nil {
		return State{}, fmt.Errorf("read state of connector %s: %w", connector, err)
	}
	var st State
	if len(ns) == 0 || ns[0] == nil {
		return st, nil
	}
	p := ns[0].Props
	st.Checkpoint, _ = p["checkpoint"].(string)
	st.LastStatus, _ = p["lastStatus"].(string)
	st.LastError, _ = p["lastError"].(string)
	st.LastRunAt, _ = p["lastRunAt"].(time.Time)
	st.LastSuccessAt, _ = p["lastSuccessAt"].(time.Time)
	return st, nil
}

// Stale reports whether a connector's data is stale at now: it has a
// freshness and its last success is older than that (or it never
// succeeded).
func Stale(freshness time.Duration, st State, now time.Time) bool {
	if freshness <= 0 {
		return false
	}
	return st.LastSuccessAt.IsZero() || now.Sub(st.LastSuccessAt) > freshness
}

// Trigger says what started a run (the RunTrigger enum).
type Trigger string

// Triggers.
const (
	TriggerStartup  Trigger = "STARTUP"
	TriggerSchedule Trigger = "SCHEDULE"
	TriggerManual   Trigger = "MANUAL"
	TriggerPush     Trigger = "PUSH"
	TriggerStream   Trigger = "STREAM"
)

// journal builds a run's bookkeeping nodes.
type journal struct {
	c       *Connector
	st      *RunStats
	state   State
	trigger Trigger
}

func (j *journal) prov(now time.Time) graph.Provenance {
	return graph.Provenance{Source: JournalSource, Connector: j.c.Name, Run: j.st.Run, FetchedAt: now.UTC()}
}

// connectorNode renders the Connector node with the current state.
func (j *journal) connectorNode(now time.Time) graph.Node {
	props := map[string]any{
		"code":          j.c.Name,
		"name":          j.c.Name,
		"connectorKind": j.c.Kind,
	}
	if j.c.Description != "" {
		props["description"] = j.c.Description
	}
	if j.c.Schedule > 0 {
		props["schedule"] = "every " + j.c.Schedule.String()
	}
	if j.c.Freshness > 0 {
		props["freshnessSeconds"] = int64(j.c.Freshness / time.Second)
	}
	putStr(props, "checkpoint", j.state.Checkpoint)
	putStr(props, "lastStatus", j.state.LastStatus)
	putStr(props, "lastError", truncate(j.state.LastError, 2000))
	putTime(props, "lastRunAt", j.state.LastRunAt)
	putTime(props, "lastSuccessAt", j.state.LastSuccessAt)
	p := j.prov(now)
	p.SourceKey = j.c.Name
	return graph.Node{ID: ConnectorID(j.c.Name), Class: "Connector", Props: props, Prov: p}
}

// runNode renders the IngestRun node and its RUN_OF edge.
func (j *journal) runNode(now time.Time, status string, ended time.Time, runErr error) (graph.Node, graph.Edge) {
	st := j.st
	props := map[string]any{
		"name":            j.c.Name + " " + st.StartedAt.UTC().Format(time.RFC3339),
		"connectorCode":   j.c.Name,
		"startedAt":       st.StartedAt.UTC(),
		"status":          status,
		"trigger":         string(j.trigger),
		"recordsRead":     int64(st.Read),
		"recordsWritten":  int64(st.Written),
		"recordsRejected": int64(st.Rejected),
		"recordsSkipped":  int64(st.Skipped),
		"attempts":        int64(max(st.Attempts, 1)),
	}
	putTime(props, "endedAt", ended)
	putStr(props, "watermark", j.state.Checkpoint)
	if runErr != nil {
		props["error"] = truncate(runErr.Error(), 2000)
	}
	p := j.prov(now)
	p.SourceKey = runKey(st.Run)
	n := graph.Node{ID: st.Run, Class: "IngestRun", Props: props, Prov: p}
	e := graph.Edge{From: st.Run, Rel: "RUN_OF", To: ConnectorID(j.c.Name), Prov: j.prov(now)}
	return n, e
}

// deadLetterNode renders a dead letter and its REJECTED_IN edge.
func (j *journal) deadLetterNode(d DeadLetter) (graph.Node, graph.Edge) {
	id := deadLetterID(d)
	props := map[string]any{
		"connectorCode": d.Connector,
		"reason":        truncate(d.Reason, 4000),
		"position":      d.Pos.String(),
		"rejectedAt":    d.At.UTC(),
		"recordIndex":   int64(d.Pos.Index),
		"offset":        d.Pos.Offset,
	}
	if d.Pos.Line > 0 {
		props["line"] = int64(d.Pos.Line)
	}
	putStr(props, "message", d.Pos.Message)
	if len(d.Raw) > 0 {
		raw := d.Raw
		if len(raw) > maxDeadLetterRaw {
			raw = raw[:maxDeadLetterRaw]
		}
		if utf8.Valid(raw) {
			props["raw"] = string(raw)
		} else {
			props["raw"] = "base64:" + base64.StdEncoding.EncodeToString(raw)
		}
	}
	p := j.prov(d.At)
	p.SourceKey = strings.TrimPrefix(id, "urn:city:dead-letter:"+JournalSource+":")
	return graph.Node{ID: id, Class: "DeadLetter", Props: props, Prov: p},
		graph.Edge{From: id, Rel: "REJECTED_IN", To: d.Run, Prov: p}
}

// maxDeadLetterRaw bounds the raw bytes kept in the graph per dead letter
// (the file sink, when configured, keeps them whole).
const maxDeadLetterRaw = 64 << 10

func putStr(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func putTime(m map[string]any, k string, t time.Time) {
	if !t.IsZero() {
		m[k] = t.UTC()
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
