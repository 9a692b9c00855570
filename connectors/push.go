package connectors

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Push: an agency posts records to the hub instead of the hub pulling
// them. A pushed batch runs through the connector's own mapping,
// validation, dead letters and journal, as one run with the PUSH trigger.
// A connector meant only for pushes has the kind "push", which reads
// nothing on its own.

// PushKind returns the "push" kind: a connector whose records arrive by
// push (POST /push/{connector} or the pushRecords mutation); its runs
// read nothing.
func PushKind() Kind {
	return Kind{
		Name:    "push",
		Summary: "Records posted to the hub (POST /push/{connector}, mutation pushRecords); nothing is pulled.",
		Config:  struct{}{},
		New: func(raw RawConfig) (Source, error) {
			var cfg struct{}
			if err := raw.Decode(&cfg); err != nil {
				return nil, err
			}
			return pushSource{}, nil
		},
		Sample: []byte(`# A connector for records an agency posts to the hub.
connectors:
  - name: lighting-faults
    source: lighting-scada
    kind: push
    mapping:
      nodes:
        - class: StreetLight
          key: "{pole}"
          properties: {poleNumber: "{pole}", status: {field: state, map: {ok: OK, fault: FAULTY}}}
`),
	}
}

// pushSource is the source of a push-only connector: it reads nothing.
type pushSource struct{}

func (pushSource) Read(context.Context, func(Record) error) error { return nil }

// MaxPushRecords bounds one push.
const MaxPushRecords = 10000

// DecodePush reads pushed records: a JSON array of objects, one object, or
// JSON Lines (one object per line). Each record keeps its own bytes for
// dead letters and its index in Pos; a member that is not an object
// becomes an error record (dead-lettered with the reason). The error is
// for a body that cannot be read at all.
func DecodePush(r io.Reader) ([]Record, error) {
	br := bufio.NewReader(r)
	first, err := firstNonSpace(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty body: send a JSON array of records, one record, or JSON Lines")
		}
		return nil, err
	}
	var raws []json.RawMessage
	if first == '[' {
		if err := json.NewDecoder(br).Decode(&raws); err != nil {
			return nil, fmt.Errorf("body is not a JSON array of records: %w", err)
		}
	} else {
		dec := json.NewDecoder(br)
		for {
			var m json.RawMessage
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", len(raws), err)
			}
			raws = append(raws, m)
			if len(raws) > MaxPushRecords {
				break
			}
		}
	}
	if len(raws) > MaxPushRecords {
		return nil, fmt.Errorf("%d records in one push; at most %d", len(raws), MaxPushRecords)
	}
	out := make([]Record, len(raws))
	for i, raw := range raws {
		out[i] = pushRecord(i, raw)
	}
	return out, nil
}

// PushRecords converts records given as values (GraphQL JSON arguments).
func PushRecords(values []any) ([]Record, error) {
	if len(values) > MaxPushRecords {
		return nil, fmt.Errorf("%d records in one push; at most %d", len(values), MaxPushRecords)
	}
	out := make([]Record, len(values))
	for i, v := range values {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		out[i] = pushRecord(i, raw)
	}
	return out, nil
}

func pushRecord(i int, raw json.RawMessage) Record {
	rec := Record{Pos: Position{Index: i, Message: fmt.Sprintf("push record %d", i)}, Raw: []byte(raw)}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		rec.Err = fmt.Errorf("a pushed record must be a JSON object, got %s", describeJSON(raw))
		return rec
	}
	if g, ok := m["geometry"].(map[string]any); ok {
		if b, err := json.Marshal(g); err == nil {
			rec.Geometry = b
		}
		delete(m, "geometry")
	}
	rec.Fields = NormalizeJSON(m).(map[string]any)
	return rec
}

func describeJSON(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

func firstNonSpace(r *bufio.Reader) (byte, error) {
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b, r.UnreadByte()
	}
}

// sliceSource emits pushed records.
type sliceSource struct{ recs []Record }

func (s sliceSource) Read(ctx context.Context, emit func(Record) error) error {
	for _, r := range s.recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

// Push runs records posted to a connector through its mapping, as a run
// with the PUSH trigger. It waits (until ctx ends) while another run of
// the connector is in progress, so the journal's checkpoint is never
// written by two runs at once. A pushed run is not retried: the caller
// gets the outcome and may post again (upserts are idempotent).
func (s *Scheduler) Push(ctx context.Context, name string, recs []Record) (RunStats, error) {
	c, ok := s.byName[name]
	if !ok {
		return RunStats{}, fmt.Errorf("%w %q", ErrUnknownConnector, name)
	}
	for !s.claim(name) {
		select {
		case <-ctx.Done():
			return RunStats{}, fmt.Errorf("%s: waiting for the running run: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer s.release(name)
	pc := *c
	pc.Reader = sliceSource{recs: recs}
	pc.Retry = &RetryPolicy{Attempts: 1}
	return s.r.RunWith(ctx, &pc, s.t, TriggerPush)
}
