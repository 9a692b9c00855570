package residents_test

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/all"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/residents"
)

const (
	demoDir      = "../demo/cambridge"
	servicesFile = demoDir + "/services.yaml"
)

// demoConnectors are the connectors of the demo city the desk needs: the
// boundary, the neighbourhoods and the assets services link to.
var demoConnectors = []string{
	"cambridge-city-boundary", "cambridge-neighbourhoods", "cambridge-streetlights",
	"cambridge-traffic-signals", "cambridge-metered-parking", "hubway-stations",
}

// template is a SQLite database holding the demo connectors, built once
// per test binary and copied for every test that writes.
var template struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if template.dir != "" {
		os.RemoveAll(template.dir)
	}
	os.Exit(code)
}

func buildTemplate() (string, error) {
	reg := connectors.NewRegistry()
	all.Register(reg)
	conns, err := connectors.LoadFile(filepath.Join(demoDir, "connectors.yaml"), ontology.Default(), reg)
	if err != nil {
		return "", err
	}
	conns = slices.DeleteFunc(conns, func(c *connectors.Connector) bool { return !slices.Contains(demoConnectors, c.Name) })
	dir, err := os.MkdirTemp("", "residents-demo-")
	if err != nil {
		return "", err
	}
	template.dir = dir
	ctx := context.Background()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(dir, "city.db")
	st, err := sqlite.Open(ctx, cfg, ontology.Default())
	if err != nil {
		return "", err
	}
	r := connectors.NewRunner(connectors.RunnerConfig{Now: connectortest.Now})
	stats, err := r.RunAll(ctx, conns, st)
	if err != nil {
		st.Close()
		return "", err
	}
	for _, s := range stats {
		if s.Rejected != 0 || s.Written == 0 {
			st.Close()
			return "", &loadError{s}
		}
	}
	if err := st.Close(); err != nil {
		return "", err
	}
	return cfg.Path, nil
}

type loadError struct{ s connectors.RunStats }

func (e *loadError) Error() string {
	b, _ := json.Marshal(e.s)
	return "demo connector did not load cleanly: " + string(b)
}

// MustDemoStore returns a SQLite store of its own holding the demo city's
// boundary, neighbourhoods, street lights, traffic signals, metered
// parking spaces and bike-share stations.
func MustDemoStore(t testing.TB) *sqlite.Store {
	t.Helper()
	template.once.Do(func() { _, template.err = buildTemplate() })
	if template.err != nil {
		t.Fatalf("load demo city: %v", template.err)
	}
	dst := filepath.Join(t.TempDir(), "city.db")
	for _, suffix := range []string{"", "-wal"} {
		src := filepath.Join(template.dir, "city.db"+suffix)
		data, err := os.ReadFile(src)
		if os.IsNotExist(err) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := sqlite.DefaultConfig()
	cfg.Path = dst
	cfg.ReadConns = 2
	st, err := sqlite.Open(t.Context(), cfg, ontology.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// MustServices loads the demo's service list.
func MustServices(t testing.TB) *residents.Config {
	t.Helper()
	cfg, err := residents.LoadServices(servicesFile, ontology.Default())
	if err != nil {
		t.Fatalf("LoadServices: %v", err)
	}
	return cfg
}

// clock is a test clock that moves one second on every reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.t
	c.t = c.t.Add(time.Second)
	return now
}

// seeded returns a reproducible random source.
func seeded(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

// MustDesk returns a seeded desk over the demo city in SQLite.
func MustDesk(t testing.TB) (*residents.Desk, *sqlite.Store, *clock) {
	t.Helper()
	st := MustDemoStore(t)
	clk := newClock(time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC))
	d, err := residents.New(st, ontology.Default(), *MustServices(t), residents.WithNow(clk.Now), residents.WithRand(seeded(1)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := d.Seed(t.Context()); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	return d, st, clk
}

// writes is what a store holds: the number of nodes and the last change
// sequence number, to tell that a call wrote nothing.
type writes struct {
	nodes int
	seq   uint64
}

func mustWrites(t testing.TB, st *sqlite.Store) writes {
	t.Helper()
	p, err := st.Find(t.Context(), graph.FindQuery{Class: "Entity", First: 1, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := st.LastSeq(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return writes{p.Total, seq}
}

// feature is one GeoJSON feature of a demo file.
type feature struct {
	Geometry   json.RawMessage `json:"geometry"`
	Properties map[string]any  `json:"properties"`
}

func mustFeatures(t testing.TB, path string) []feature {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fc struct {
		Features []feature `json:"features"`
	}
	if err := json.Unmarshal(data, &fc); err != nil {
		t.Fatal(err)
	}
	return fc.Features
}

// mustShape parses a feature's geometry.
func mustShape(t testing.TB, f feature) *geo.Shape {
	t.Helper()
	s, err := geo.ParseGeoJSON(f.Geometry)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// neighbors returns the IDs at the other end of rel from id.
func neighbors(t testing.TB, st graph.Store, id, rel string) ([]string, []map[string]any) {
	t.Helper()
	pages, err := st.Neighbors(t.Context(), graph.NeighborQuery{IDs: []string{id}, Rel: rel, Dir: ontology.Out, First: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range pages[0].Nodes {
		ids = append(ids, n.ID)
	}
	return ids, pages[0].EdgeProps
}

func mustNode(t testing.TB, st graph.Store, id string) *graph.Node {
	t.Helper()
	ns, err := st.Nodes(t.Context(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	if ns[0] == nil {
		t.Fatalf("node %s does not exist", id)
	}
	return ns[0]
}

// wrongToken changes one character of a token.
func wrongToken(tok string) string {
	b := []byte(tok)
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	return string(b)
}
