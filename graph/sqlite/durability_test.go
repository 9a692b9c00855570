package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/graphtest"
	"github.com/cityhub/cityhub/graph/sqlite"
)

// writerEnv switches the test binary into the writer process of
// TestDurabilityKill: it applies batches to the database at that path
// until it is killed, printing each acknowledged batch.
const writerEnv = "CITYHUB_SQLITE_TEST_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		os.Exit(durabilityWriter(path))
	}
	os.Exit(m.Run())
}

// durabilityWriter applies small batches forever. After each Apply returns
// it prints "ack <batch> <last seq>"; a line on stdout is therefore a
// promise that the batch is durable.
func durabilityWriter(path string) int {
	ctx := context.Background()
	cfg := sqlite.DefaultConfig()
	cfg.Path = path
	s, err := sqlite.Open(ctx, cfg, graphtest.Ontology())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := 0; ; i++ {
		b := graph.Batch{
			Nodes: []graph.Node{
				{ID: fmt.Sprintf("light-%d", i), Class: "StreetLight", Props: map[string]any{"name": fmt.Sprintf("Light %d", i), "lampCount": int64(i)},
					Geometry: graph.PointGeometry(42+float64(i)/1e4, -71)},
				{ID: fmt.Sprintf("district-%d", i), Class: "District", Props: map[string]any{"officialCode": strconv.Itoa(i)}},
			},
			Edges: []graph.Edge{{From: fmt.Sprintf("light-%d", i), Rel: "LOCATED_IN", To: fmt.Sprintf("district-%d", i)}},
		}
		if i > 0 { // an update too
			b.Nodes = append(b.Nodes, graph.Node{ID: "counter", Class: "StreetLight", Props: map[string]any{"lampCount": int64(i)}})
		} else {
			b.Nodes = append(b.Nodes, graph.Node{ID: "counter", Class: "StreetLight", Props: map[string]any{"lampCount": int64(0)}})
		}
		ch, err := s.Apply(ctx, b)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, err := fmt.Printf("ack %d %d\n", i, ch[len(ch)-1].Seq); err != nil {
			return 1
		}
	}
}

// TestDurabilityKill runs a writer process, kills it with SIGKILL after it
// acknowledged at least 50 batches, and checks that every acknowledged
// batch survived.
func TestDurabilityKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a writer process")
	}
	const acks = 60
	path := filepath.Join(t.TempDir(), "graph.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lastBatch, lastSeq := -1, uint64(0)
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			t.Fatalf("writer said %q", sc.Text())
		}
		batch, err1 := strconv.Atoi(f[1])
		seq, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || batch != lastBatch+1 || seq <= lastSeq {
			t.Fatalf("writer said %q after batch %d seq %d", sc.Text(), lastBatch, lastSeq)
		}
		lastBatch, lastSeq = batch, seq
		if lastBatch+1 >= acks {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if lastBatch+1 < acks {
		t.Fatalf("the writer acknowledged %d batches before it ended, want %d", lastBatch+1, acks)
	}

	s := mustOpen(t, path)
	ids := []string{"counter"}
	for i := 0; i <= lastBatch; i++ {
		ids = append(ids, fmt.Sprintf("light-%d", i), fmt.Sprintf("district-%d", i))
	}
	nodes := graphtest.MustNodes(t, s, ids...)
	for i, n := range nodes {
		if n == nil {
			t.Errorf("acknowledged node %s is missing", ids[i])
		}
	}
	if got := nodes[0].Props["lampCount"].(int64); got < int64(lastBatch) {
		t.Errorf("counter = %d, want at least %d", got, lastBatch)
	}
	for i := 0; i <= lastBatch; i++ {
		ps := graphtest.MustNeighbors(t, s, graph.NeighborQuery{IDs: []string{fmt.Sprintf("light-%d", i)}, Rel: "LOCATED_IN", First: 1})
		if len(ps[0].Nodes) != 1 {
			t.Errorf("acknowledged edge of light-%d is missing", i)
		}
	}
	ch, err := s.ChangesSince(t.Context(), lastSeq-1, 10)
	if err != nil || len(ch) == 0 || ch[0].Seq != lastSeq {
		t.Fatalf("change %d is missing: %v, %v", lastSeq, ch, err)
	}
	// the sequence continues after the crash
	next := graphtest.MustApply(t, s, graph.Batch{Nodes: []graph.Node{{ID: "after", Class: "StreetLight"}}})
	if next[0].Seq <= ch[len(ch)-1].Seq {
		t.Errorf("sequence restarted: %d after %d", next[0].Seq, ch[len(ch)-1].Seq)
	}
}

// TestReopen checks that data and the change sequence persist across a
// clean close and reopen, and that Open rejects bad configuration.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "graph.db")
	cfg := sqlite.DefaultConfig()
	cfg.Path = path
	s, err := sqlite.Open(t.Context(), cfg, graphtest.Ontology())
	if err != nil {
		t.Fatal(err)
	}
	ch := graphtest.MustApply(t, s, graph.Batch{Nodes: []graph.Node{{ID: "a", Class: "StreetLight", Props: map[string]any{"name": "A"}}}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, path)
	if n := graphtest.MustNode(t, s2, "a"); n.Props["name"] != "A" {
		t.Errorf("after reopen: %v", n.Props)
	}
	ch2 := graphtest.MustApply(t, s2, graph.Batch{Nodes: []graph.Node{{ID: "b", Class: "StreetLight"}}})
	if ch2[0].Seq <= ch[0].Seq {
		t.Errorf("sequence %d after reopen does not follow %d", ch2[0].Seq, ch[0].Seq)
	}
	if err := s2.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	for _, bad := range []sqlite.Config{{}, {Path: ":memory:", ReadConns: 1}, {Path: path, ReadConns: 0}} {
		if _, err := sqlite.Open(t.Context(), bad, graphtest.Ontology()); err == nil {
			t.Errorf("Open(%+v) succeeded", bad)
		}
	}
}

// TestOptions checks that the injected clock stamps writes.
func TestOptions(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	s, err := sqlite.Open(t.Context(), cfg, graphtest.Ontology(), sqlite.WithNow(func() time.Time { return at }), sqlite.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch := graphtest.MustApply(t, s, graph.Batch{Nodes: []graph.Node{{ID: "a", Class: "StreetLight"}}})
	if !ch[0].At.Equal(at) {
		t.Errorf("change at %v, want %v", ch[0].At, at)
	}
	if n := graphtest.MustNode(t, s, "a"); !n.Prov.IngestedAt.Equal(at) {
		t.Errorf("ingested at %v, want %v", n.Prov.IngestedAt, at)
	}
	logged, err := s.ChangesSince(t.Context(), 0, 1)
	if err != nil || len(logged) != 1 || !logged[0].At.Equal(at) {
		t.Errorf("logged change %v, %v", logged, err)
	}
}
