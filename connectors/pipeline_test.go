package connectors

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
)

// gatedStore holds the first data batch's Apply until released, and
// records, for every Apply with data, the highest record it carries and
// the checkpoint its Connector node records.
type gatedStore struct {
	*sqlite.Store
	entered, release chan struct{}
	once             sync.Once
	mu               sync.Mutex
	commits          [][2]int // (highest seq in the batch, checkpoint)
}

func (g *gatedStore) Apply(ctx context.Context, b graph.Batch) ([]graph.Change, error) {
	top, cp := 0, -1
	for _, n := range b.Nodes {
		switch n.Class {
		case "Neighbourhood":
			seq, _ := strconv.Atoi(n.Props["officialCode"].(string))
			top = max(top, seq)
		case "Connector":
			if s, ok := n.Props["checkpoint"].(string); ok {
				cp, _ = strconv.Atoi(s)
			}
		}
	}
	if top > 0 {
		g.once.Do(func() {
			close(g.entered)
			select {
			case <-g.release:
			case <-ctx.Done():
			}
		})
		g.mu.Lock()
		g.commits = append(g.commits, [2]int{top, cp})
		g.mu.Unlock()
	}
	return g.Store.Apply(ctx, b)
}

func (s *seqSource) emitted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reads) == 0 {
		return 0
	}
	return s.reads[len(s.reads)-1][1]
}

// While the store applies one batch the runner reads and maps the next,
// and no further: one commit in the air, commits in order, each recording
// the checkpoint of its own last record.
func TestRunnerReadsWhileCommitting(t *testing.T) {
	src := &seqSource{n: 10}
	c, store := journalFixture(t, src)
	g := &gatedStore{Store: store, entered: make(chan struct{}), release: make(chan struct{})}
	clock := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	r := journalRunner(&clock) // batches of 3
	done := make(chan error, 1)
	var st RunStats
	go func() {
		var err error
		st, err = r.Run(t.Context(), c, g)
		done <- err
	}()
	<-g.entered // records 1–3 are being applied
	// records 4–6 fill the next batch; the 6th emit waits for the first
	// commit to land before sending its batch
	deadline := time.Now().Add(5 * time.Second)
	for src.emitted() < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // would it read further?
	if got := src.emitted(); got != 5 {
		t.Errorf("while the first batch was applied %d records were emitted, want 5 (the next batch, then wait)", got)
	}
	if src.acked.Load() != 0 {
		t.Errorf("%d records acknowledged before their commit", src.acked.Load())
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st.Read != 10 || st.Written != 10 || st.Checkpoint != "10" {
		t.Errorf("stats = %+v", st)
	}
	want := [][2]int{{3, 3}, {6, 6}, {9, 9}, {10, 10}}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.commits) != len(want) {
		t.Fatalf("commits (highest record, checkpoint) = %v, want %v", g.commits, want)
	}
	for i := range want {
		if g.commits[i] != want[i] {
			t.Errorf("commits (highest record, checkpoint) = %v, want %v", g.commits, want)
			break
		}
	}
	if got := countClass(t, store, "Neighbourhood"); got != 10 {
		t.Errorf("%d neighbourhoods, want 10", got)
	}
}

// A stream's commit is acknowledged as soon as it lands, not when the
// next record or the flush timer comes: the broker sends the next
// messages only once it has the acknowledgements.
func TestStreamAcksWhenCommitLands(t *testing.T) {
	src := &seqSource{n: 3}
	c, store := journalFixture(t, src)
	// a full batch, then nothing: no further record, no timer (1 h)
	r := NewRunner(RunnerConfig{Journal: true, BatchSize: 3, FlushInterval: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.Stream(ctx, c, store)
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for src.acked.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	acked := src.acked.Load()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if acked != 3 {
		t.Errorf("%d of 3 records acknowledged while the stream waited for more, want all once their commit landed", acked)
	}
	if got := countClass(t, store, "Neighbourhood"); got != 3 {
		t.Errorf("%d neighbourhoods, want 3", got)
	}
}

// stepSource streams record 1, then, once step is closed, records 2..n,
// counting the emits that returned; its acknowledgements count too.
type stepSource struct {
	n       int
	step    chan struct{}
	emitted atomic.Int64
	acked   atomic.Int64
}

func (s *stepSource) Read(ctx context.Context, emit func(Record) error) error {
	return s.Subscribe(ctx, "", emit)
}

func (s *stepSource) Subscribe(ctx context.Context, _ string, emit func(Record) error) error {
	for i := 1; i <= s.n; i++ {
		if i == 2 {
			select {
			case <-s.step:
			case <-ctx.Done():
				return nil
			}
		}
		rec := Record{Fields: map[string]any{"seq": int64(i), "name": "Area " + strconv.Itoa(i)},
			Pos: Position{Index: i - 1, Message: "seq " + strconv.Itoa(i)}, Ack: func() { s.acked.Add(1) }}
		if err := emit(rec); err != nil {
			return err
		}
		s.emitted.Add(1)
	}
	<-ctx.Done()
	return nil
}

// The flush timer puts what waits in the air and returns: the reader
// reads and maps on while the store applies the timer's commit.
func TestStreamFlushTimerDoesNotHoldReader(t *testing.T) {
	src := &stepSource{n: 4, step: make(chan struct{})}
	c, store := journalFixture(t, nil)
	c.Reader = src
	g := &gatedStore{Store: store, entered: make(chan struct{}), release: make(chan struct{})}
	r := NewRunner(RunnerConfig{Journal: true, BatchSize: 100, FlushInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	var st RunStats
	go func() {
		var err error
		st, err = r.Stream(ctx, c, g)
		done <- err
	}()
	select {
	case <-g.entered: // the timer committed record 1; the store holds it
	case <-time.After(10 * time.Second):
		t.Fatal("record 1 was not committed by the flush timer")
	}
	close(src.step)
	deadline := time.Now().Add(5 * time.Second)
	for src.emitted.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := src.emitted.Load(); got != 4 {
		t.Errorf("%d of 4 records emitted while the store applied the timer's commit, want all: the reader waited", got)
	}
	if got := src.acked.Load(); got != 0 {
		t.Errorf("%d records acknowledged before their commit", got)
	}
	close(g.release)
	deadline = time.Now().Add(10 * time.Second)
	for src.acked.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st.Read != 4 || st.Written != 4 || src.acked.Load() != 4 {
		t.Errorf("stats = %+v, %d acknowledged; want 4 read, written and acknowledged", st, src.acked.Load())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.commits) < 2 || g.commits[0][0] != 1 {
		t.Errorf("commits (highest record, checkpoint) = %v, want record 1 alone first", g.commits)
	}
}
