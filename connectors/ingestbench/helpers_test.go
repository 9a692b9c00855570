package ingestbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"
	"time"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	csvsrc "github.com/cityhub/cityhub/connectors/csv"
	"github.com/cityhub/cityhub/connectors/geojson"
	"github.com/cityhub/cityhub/connectors/mqtt"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/neo4j"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

// batchSize is the runner's default number of nodes per Apply, which the
// Apply baselines use too.
const batchSize = connectors.DefaultBatchSize

// registry returns the kinds the benchmarks load.
func registry() *connectors.Registry {
	r := connectors.NewRegistry()
	csvsrc.Register(r)
	geojson.Register(r)
	mqtt.Register(r)
	return r
}

// mustParse loads connector file text as if it were the file name.
func mustParse(tb testing.TB, name string, text []byte) []*connectors.Connector {
	tb.Helper()
	conns, err := connectors.Parse(name, text, ontology.Default(), registry())
	if err != nil {
		tb.Fatal(err)
	}
	return conns
}

// mustLoad loads a connector file of testdata.
func mustLoad(tb testing.TB, file string) []*connectors.Connector {
	tb.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		tb.Fatal(err)
	}
	return mustParse(tb, filepath.Join("testdata", file), text)
}

// requireIntegration skips (or, with CITYHUB_REQUIRE_INTEGRATION=1, fails)
// a test whose server variable is not set.
func requireIntegration(tb testing.TB, env, start string) string {
	tb.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("CITYHUB_REQUIRE_INTEGRATION") == "1" {
			tb.Fatalf("%s is not set and CITYHUB_REQUIRE_INTEGRATION=1: %s", env, start)
		}
		tb.Skipf("%s is not set: %s", env, start)
	}
	return v
}

// neo4jConfig returns the configuration of the Neo4j server of the
// integration runs (CITYHUB_NEO4J_URI, CITYHUB_NEO4J_USER,
// CITYHUB_NEO4J_PASSWORD).
func neo4jConfig(tb testing.TB) neo4j.Config {
	tb.Helper()
	cfg := neo4j.DefaultConfig()
	cfg.URI = requireIntegration(tb, "CITYHUB_NEO4J_URI", "start Neo4j with `export $(scripts/neo4j.sh start --data /tmp/cityhub-neo4j --port 0)`")
	cfg.User = os.Getenv("CITYHUB_NEO4J_USER")
	cfg.Password = os.Getenv("CITYHUB_NEO4J_PASSWORD")
	return cfg
}

// mqttURL returns the broker of the integration runs (CITYHUB_MQTT_URL).
func mqttURL(tb testing.TB) string {
	tb.Helper()
	return requireIntegration(tb, "CITYHUB_MQTT_URL", "start Mosquitto with `export $(scripts/mosquitto.sh start --data /tmp/cityhub-mqtt --port 0)`")
}

// backend opens empty stores of one kind.
type backend struct {
	name string
	// open returns an empty, migrated store and a function that closes
	// it and frees what it holds.
	open func(tb testing.TB) (graph.Store, func())
}

// backends returns the embedded SQLite store and Neo4j (which skips
// without a server).
func backends() []backend {
	return []backend{{"sqlite", openSQLite}, {"neo4j", openNeo4j}}
}

// openSQLite opens a new database file in a directory of its own, removed
// on close.
func openSQLite(tb testing.TB) (graph.Store, func()) {
	tb.Helper()
	dir, err := os.MkdirTemp(tb.TempDir(), "store-")
	if err != nil {
		tb.Fatal(err)
	}
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(dir, "graph.db")
	s, err := sqlite.Open(tb.Context(), cfg, ontology.Default())
	if err != nil {
		tb.Fatal(err)
	}
	return s, func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close %s: %v", cfg.Path, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			tb.Error(err)
		}
	}
}

// openNeo4j empties the database of the integration server and opens a
// store on it.
func openNeo4j(tb testing.TB) (graph.Store, func()) {
	tb.Helper()
	cfg := neo4jConfig(tb)
	ctx := tb.Context()
	if err := wipeNeo4j(ctx, cfg); err != nil {
		tb.Fatalf("wipe %s: %v", cfg.URI, err)
	}
	s, err := neo4j.Open(ctx, cfg, ontology.Default())
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		tb.Fatal(err)
	}
	return s, func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close %s: %v", cfg.URI, err)
		}
	}
}

// wipeNeo4j deletes every node and relationship of the database, in
// batches (CALL … IN TRANSACTIONS runs in an implicit transaction).
func wipeNeo4j(ctx context.Context, cfg neo4j.Config) error {
	auth := neo4jdrv.NoAuth()
	if cfg.User != "" {
		auth = neo4jdrv.BasicAuth(cfg.User, cfg.Password, "")
	}
	drv, err := neo4jdrv.NewDriverWithContext(cfg.URI, auth)
	if err != nil {
		return err
	}
	defer drv.Close(ctx)
	sess := drv.NewSession(ctx, neo4jdrv.SessionConfig{DatabaseName: cfg.Database})
	defer sess.Close(ctx)
	res, err := sess.Run(ctx, "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS", nil)
	if err != nil {
		return err
	}
	_, err = res.Consume(ctx)
	return err
}

// mustRun runs connectors to the end into t without the journal.
func mustRun(tb testing.TB, t connectors.Target, conns ...*connectors.Connector) {
	tb.Helper()
	r := connectors.NewRunner(connectors.RunnerConfig{})
	for _, c := range conns {
		st, err := r.Run(tb.Context(), c, t)
		if err != nil {
			tb.Fatal(err)
		}
		if st.Rejected > 0 {
			tb.Fatalf("%s: %d records rejected", c.Name, st.Rejected)
		}
	}
}

// count returns the number of nodes of a class.
func count(tb testing.TB, s graph.Store, class string) int {
	tb.Helper()
	p, err := s.Find(tb.Context(), graph.FindQuery{Class: class, First: 1, Count: true})
	if err != nil {
		tb.Fatal(err)
	}
	return p.Total
}

// recorder is a connectors.Target that keeps what a run maps, one entry
// per Apply, and writes nothing. Find answers from areas, the polygons of
// locate_in. Run with RunnerConfig.BatchSize 1, it records each record's
// nodes and edges on their own.
type recorder struct {
	areas   *connectortest.Store
	applied []graph.Batch
}

func (r *recorder) Apply(_ context.Context, b graph.Batch) ([]graph.Change, error) {
	// the runner reuses its batch's slices; the nodes' maps are its own
	r.applied = append(r.applied, graph.Batch{Nodes: slices.Clone(b.Nodes), Edges: slices.Clone(b.Edges)})
	return nil, nil
}

func (r *recorder) Find(ctx context.Context, q graph.FindQuery) (*graph.Page, error) {
	return r.areas.Find(ctx, q)
}

// mustMap runs c through a runner into a recorder (areas answering
// locate_in) and returns the mapped records, one batch each. The run must
// write want records and reject none.
func mustMap(tb testing.TB, c *connectors.Connector, areas *connectortest.Store, want int) []graph.Batch {
	tb.Helper()
	rec := &recorder{areas: areas}
	st, err := connectors.NewRunner(connectors.RunnerConfig{BatchSize: 1}).Run(tb.Context(), c, rec)
	if err != nil {
		tb.Fatal(err)
	}
	if st.Written != want || st.Rejected != 0 || len(rec.applied) != want {
		tb.Fatalf("mapping %s: %+v, %d records recorded; want %d written", c.Name, st, len(rec.applied), want)
	}
	return rec.applied
}

// batches joins records into batches the way the runner does: a batch is
// committed once it holds at least limit nodes.
func batches(records []graph.Batch, limit int) []graph.Batch {
	var out []graph.Batch
	var b graph.Batch
	for _, r := range records {
		b.Nodes = append(b.Nodes, r.Nodes...)
		b.Edges = append(b.Edges, r.Edges...)
		if len(b.Nodes) >= limit {
			out = append(out, b)
			b = graph.Batch{}
		}
	}
	if b.Len() > 0 {
		out = append(out, b)
	}
	return out
}

// applyAll applies the batches in order and returns how long it took.
func applyAll(tb testing.TB, s graph.Store, bs []graph.Batch) time.Duration {
	tb.Helper()
	ctx := tb.Context()
	start := time.Now()
	for i, b := range bs {
		if _, err := s.Apply(ctx, b); err != nil {
			tb.Fatalf("apply batch %d of %d: %v", i+1, len(bs), err)
		}
	}
	return time.Since(start)
}

// heapSampler records the peak of the Go heap in use every few
// milliseconds: the bytes of heap objects plus the unused part of the
// spans that hold them, runtime.MemStats.HeapInuse, read through
// runtime/metrics, which does not stop the world.
type heapSampler struct {
	stop, done chan struct{}
	samples    []metrics.Sample
	peak       uint64
}

// sampleHeap starts sampling.
func sampleHeap(every time.Duration) *heapSampler {
	s := &heapSampler{stop: make(chan struct{}), done: make(chan struct{}), samples: []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"},
	}}
	s.read()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.read()
				return
			case <-t.C:
				s.read()
			}
		}
	}()
	return s
}

func (s *heapSampler) read() {
	metrics.Read(s.samples)
	if v := s.samples[0].Value.Uint64() + s.samples[1].Value.Uint64(); v > s.peak {
		s.peak = v
	}
}

// Stop ends the sampling and returns the peak in bytes.
func (s *heapSampler) Stop() uint64 {
	close(s.stop)
	<-s.done
	return s.peak
}

// mib converts bytes to MiB.
func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// randomID returns prefix followed by 8 random hex digits: the broker and
// the Neo4j server are shared, so client ids and topics are never reused.
func randomID(prefix string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return prefix + hex.EncodeToString(b[:])
}

// gcAndSample collects the garbage of the set-up, so that the peak is the
// run's, and starts sampling the heap every 5 ms.
func gcAndSample() *heapSampler {
	runtime.GC()
	return sampleHeap(5 * time.Millisecond)
}

// rates accumulates n timed runs of a records through the runner and n
// applies of the same records.
type rates struct {
	n          int
	run, apply time.Duration
}

// report reports the runner's and the store's rates (unit per second)
// and their ratio, the share of the store's own speed the runner keeps.
func (r rates) report(b *testing.B, records int, unit string) {
	total := float64(records * r.n)
	run, apply := total/r.run.Seconds(), total/r.apply.Seconds()
	b.ReportMetric(run, unit)
	b.ReportMetric(apply, "apply-"+unit)
	b.ReportMetric(run/apply, "ratio")
}
