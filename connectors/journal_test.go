package connectors

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

// seqSource is a test source over numbered records: a Resumer whose
// checkpoint is the last sequence number, which can break (transiently or
// not) after a number of records, and stream with acknowledgements.
type seqSource struct {
	mu     sync.Mutex
	n      int          // records 1..n
	bad    map[int]bool // records emitted with an error
	breakN int          // break after emitting this many records in one read (0: never)
	breaks int          // how many reads break
	perm   bool         // the break is permanent
	acked  atomic.Int64
	// onAck, when set, runs inside each acknowledgement
	onAck func(seq int)
	reads [][2]int // (from checkpoint, records emitted) per read
}

func (s *seqSource) Read(ctx context.Context, emit func(Record) error) error {
	return s.ReadFrom(ctx, "", emit)
}

func (s *seqSource) ReadFrom(ctx context.Context, cp string, emit func(Record) error) error {
	s.mu.Lock()
	from := 0
	if cp != "" {
		var err error
		if from, err = strconv.Atoi(cp); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("bad checkpoint %q", cp)
		}
	}
	n, breakN := s.n, 0
	if s.breaks > 0 {
		breakN = s.breakN
		s.breaks--
	}
	s.reads = append(s.reads, [2]int{from, 0})
	ri := len(s.reads) - 1
	s.mu.Unlock()
	emitted := 0
	for i := from + 1; i <= n; i++ {
		if breakN > 0 && emitted == breakN {
			err := fmt.Errorf("seq: source broke after record %d", i-1)
			if s.perm {
				return err
			}
			return Transient(err)
		}
		rec := Record{Fields: map[string]any{"seq": int64(i), "name": fmt.Sprintf("Area %d", i)},
			Pos: Position{Line: i + 1, Index: i - 1}, Raw: []byte(fmt.Sprintf("%d,Area %d", i, i)), Checkpoint: strconv.Itoa(i)}
		if s.bad[i] {
			rec.Err = errors.New("bad row")
		}
		seq := i
		rec.Ack = func() {
			if s.onAck != nil {
				s.onAck(seq)
			}
			s.acked.Add(1)
		}
		if err := emit(rec); err != nil {
			return err
		}
		emitted++
		s.mu.Lock()
		s.reads[ri][1] = emitted
		s.mu.Unlock()
	}
	return nil
}

func (s *seqSource) Subscribe(ctx context.Context, cp string, emit func(Record) error) error {
	if err := s.ReadFrom(ctx, cp, emit); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

const seqConnectors = `
connectors:
  - name: seq
    source: test-seq
    kind: seq
    freshness: 1h
    mapping:
      nodes:
        - class: Neighbourhood
          key: "{seq}"
          name: "{name}"
          properties: {officialCode: "{seq}"}
`

func journalFixture(t *testing.T, src *seqSource) (*Connector, *sqlite.Store) {
	t.Helper()
	ont := ontology.Default()
	reg := NewRegistry()
	reg.Register(Kind{Name: "seq", Summary: "test", Config: struct{}{}, New: func(RawConfig) (Source, error) { return src, nil }})
	conns, err := Parse("test.yaml", []byte(seqConnectors), ont, reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	store, err := sqlite.Open(t.Context(), cfg, ont)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return conns[0], store
}

func journalRunner(clock *time.Time) *Runner {
	return NewRunner(RunnerConfig{Journal: true, BatchSize: 3, Rand: func() float64 { return 0 },
		Now: func() time.Time { *clock = clock.Add(time.Second); return *clock }})
}

func mustNode(t *testing.T, s graph.Store, id string) *graph.Node {
	t.Helper()
	ns, err := s.Nodes(t.Context(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) == 0 || ns[0] == nil {
		t.Fatalf("node %s not found", id)
	}
	return ns[0]
}

func countClass(t *testing.T, s graph.Store, class string) int {
	t.Helper()
	p, err := s.Find(t.Context(), graph.FindQuery{Class: class, First: 1, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	return p.Total
}

func TestJournalRunsCheckpointsAndDeadLetters(t *testing.T) {
	src := &seqSource{n: 10, bad: map[int]bool{4: true, 7: true}}
	c, store := journalFixture(t, src)
	clock := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	r := journalRunner(&clock)
	ctx := t.Context()

	st, err := r.RunWith(ctx, c, store, TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 10 || st.Written != 8 || st.Rejected != 2 || st.Checkpoint != "10" || st.Attempts != 1 {
		t.Fatalf("stats = %+v, want read 10, written 8, rejected 2, checkpoint 10, 1 attempt", st)
	}
	if got := countClass(t, store, "Neighbourhood"); got != 8 {
		t.Errorf("%d neighbourhoods, want 8", got)
	}
	run := mustNode(t, store, st.Run)
	want := map[string]any{"status": "PARTIAL", "recordsRead": int64(10), "recordsWritten": int64(8), "recordsRejected": int64(2),
		"trigger": "MANUAL", "connectorCode": "seq", "watermark": "10", "attempts": int64(1)}
	for k, v := range want {
		if run.Props[k] != v {
			t.Errorf("run %s = %v, want %v", k, run.Props[k], v)
		}
	}
	if _, ok := run.Props["endedAt"].(time.Time); !ok {
		t.Errorf("run has no endedAt: %v", run.Props)
	}
	conn := mustNode(t, store, ConnectorID("seq"))
	if conn.Props["checkpoint"] != "10" || conn.Props["lastStatus"] != "PARTIAL" || conn.Props["freshnessSeconds"] != int64(3600) {
		t.Errorf("connector = %v", conn.Props)
	}
	// dead letters, linked to their run, with position and raw bytes
	pages, err := store.Neighbors(ctx, graph.NeighborQuery{IDs: []string{st.Run}, Rel: "REJECTED_IN", Dir: ontology.In, First: 10,
		Order: []graph.Order{{Field: "recordIndex"}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range pages[0].Nodes {
		got = append(got, fmt.Sprintf("%v|%v|%v|%v", n.Props["line"], n.Props["reason"], n.Props["raw"], n.Props["connectorCode"]))
	}
	wantDL := []string{"5|line 5: bad row|4,Area 4|seq", "8|line 8: bad row|7,Area 7|seq"}
	if !slices.Equal(got, wantDL) {
		t.Errorf("dead letters = %q, want %q", got, wantDL)
	}
	state, err := ReadState(ctx, store, "seq")
	if err != nil {
		t.Fatal(err)
	}
	if Stale(time.Hour, state, clock) || !Stale(time.Hour, state, clock.Add(2*time.Hour)) {
		t.Errorf("staleness of %+v wrong", state)
	}

	// a second run resumes after the checkpoint: nothing new
	st2, err := r.RunWith(ctx, c, store, TriggerSchedule)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Read != 0 || st2.Checkpoint != "10" {
		t.Errorf("second run = %+v, want nothing read from checkpoint 10", st2)
	}
	// new records at the source: only they are read
	src.mu.Lock()
	src.n = 13
	src.mu.Unlock()
	st3, err := r.RunWith(ctx, c, store, TriggerSchedule)
	if err != nil {
		t.Fatal(err)
	}
	if st3.Read != 3 || st3.Written != 3 || st3.Checkpoint != "13" {
		t.Errorf("third run = %+v, want 3 new records to checkpoint 13", st3)
	}
	if got := countClass(t, store, "IngestRun"); got != 3 {
		t.Errorf("%d runs recorded, want 3", got)
	}
	if mustNode(t, store, st3.Run).Props["status"] != "SUCCEEDED" {
		t.Errorf("third run status = %v", mustNode(t, store, st3.Run).Props["status"])
	}
}

func TestJournalRetriesTransientFailures(t *testing.T) {
	// the source breaks after 4 records twice: batches of 3 commit
	// checkpoint 3, then the retries resume from the checkpoints
	src := &seqSource{n: 10, breakN: 4, breaks: 2}
	c, store := journalFixture(t, src)
	clock := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	r := journalRunner(&clock)
	st, err := r.RunWith(t.Context(), c, store, TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	if st.Attempts != 3 {
		t.Errorf("attempts = %d, want 3", st.Attempts)
	}
	if got := countClass(t, store, "Neighbourhood"); got != 10 {
		t.Errorf("%d neighbourhoods, want 10", got)
	}
	// first read from the start breaks after 4 (3 committed, the 4th
	// flushed when the source broke), the next resume from 4 and 8
	want := [][2]int{{0, 4}, {4, 4}, {8, 2}}
	if !slices.Equal(src.reads, want) {
		t.Errorf("reads (from, emitted) = %v, want %v", src.reads, want)
	}
	if run := mustNode(t, store, st.Run); run.Props["attempts"] != int64(3) || run.Props["status"] != "SUCCEEDED" {
		t.Errorf("run = %v", run.Props)
	}
}

func TestJournalPermanentFailure(t *testing.T) {
	src := &seqSource{n: 10, breakN: 5, breaks: 1, perm: true}
	c, store := journalFixture(t, src)
	clock := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	r := journalRunner(&clock)
	st, err := r.RunWith(t.Context(), c, store, TriggerManual)
	if err == nil {
		t.Fatal("run succeeded, want the source's error")
	}
	if st.Attempts != 1 {
		t.Errorf("a permanent failure was retried: %d attempts", st.Attempts)
	}
	conn := mustNode(t, store, ConnectorID("seq"))
	if conn.Props["lastStatus"] != "FAILED" || conn.Props["checkpoint"] != "5" {
		t.Errorf("connector = %v, want FAILED at checkpoint 5 (the records read before the break are kept)", conn.Props)
	}
	if msg, _ := conn.Props["lastError"].(string); msg == "" || !containsAll(msg, "source broke after record 5") {
		t.Errorf("lastError = %q", msg)
	}
	if _, ok := conn.Props["lastSuccessAt"]; ok {
		t.Error("a failed run set lastSuccessAt")
	}
	run := mustNode(t, store, st.Run)
	if run.Props["status"] != "FAILED" || !containsAll(fmt.Sprint(run.Props["error"]), "source broke") {
		t.Errorf("run = %v", run.Props)
	}
}

func TestJournalStreamAcksAfterCommit(t *testing.T) {
	src := &seqSource{n: 7, bad: map[int]bool{2: true}}
	c, store := journalFixture(t, src)
	var early atomic.Int64
	src.onAck = func(seq int) {
		// an acknowledged record is in the graph or in the dead letters
		if seq == 2 {
			return
		}
		ns, err := store.Nodes(context.Background(), []string{ID("neighbourhood", "test-seq", strconv.Itoa(seq))})
		if err != nil || len(ns) == 0 || ns[0] == nil {
			early.Add(1)
		}
	}
	clock := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	r := NewRunner(RunnerConfig{Journal: true, BatchSize: 3, FlushInterval: 20 * time.Millisecond,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Millisecond); return clock }})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var st RunStats
	go func() {
		var err error
		st, err = r.Stream(ctx, c, store)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for src.acked.Load() < 7 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 7 records acknowledged", src.acked.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if early.Load() > 0 {
		t.Errorf("%d records acknowledged before they were committed", early.Load())
	}
	if st.Read != 7 || st.Written != 6 || st.Rejected != 1 || st.Trigger != TriggerStream {
		t.Errorf("stream stats = %+v", st)
	}
	if got := countClass(t, store, "DeadLetter"); got != 1 {
		t.Errorf("%d dead letters, want 1", got)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
