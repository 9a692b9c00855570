package mqtt

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

// mustSample loads the embedded sample with the test's broker, client id
// and topics.
func mustSample(t testing.TB, url, prefix string) *connectors.Connector {
	t.Helper()
	text := string(Kind().Sample)
	for _, r := range [][2]string{
		{"url: tcp://127.0.0.1:1883", "url: " + url},
		{"client_id: cityhub-beijing-air-quality", "client_id: " + prefix},
		{`topics: ["city/beijing/+/+"]`, `topics: ["` + prefix + `/beijing/+/+"]`},
		{"fields_from_topic: city/+city/+sensor/+quantity", "fields_from_topic: " + prefix + "/+city/+sensor/+quantity"},
		{"read_idle: 2s", "read_idle: 500ms"},
	} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("sample.yaml has no %q", r[0])
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	reg := connectors.NewRegistry()
	Register(reg)
	conns, err := connectors.Parse("sample.yaml", []byte(text), ontology.Default(), reg)
	if err != nil {
		t.Fatal(err)
	}
	conns[0].Reader.(*Source).SetLogger(connectortest.Logger(t))
	return conns[0]
}

func mustSQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	store, err := sqlite.Open(context.Background(), cfg, ontology.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func count(t testing.TB, store *sqlite.Store, class string) int {
	t.Helper()
	p, err := store.Find(context.Background(), graph.FindQuery{Class: class, First: 1, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	return p.Total
}

func mustNode(t testing.TB, store *sqlite.Store, id string) *graph.Node {
	t.Helper()
	ns, err := store.Nodes(context.Background(), []string{id})
	if err != nil || len(ns) != 1 || ns[0] == nil {
		t.Fatalf("node %s: %v, %v", id, ns, err)
	}
	return ns[0]
}

// readingsOn returns the readings of one day of January 2010.
func readingsOn(t testing.TB, day int) []reading {
	var out []reading
	for _, r := range beijingReadings(t) {
		if r.Time.Day() == day {
			out = append(out, r)
		}
	}
	return out
}

// The sample, run by `cityhub connectors run` (the bounded Read), maps the
// gateway's messages of 2 January 2010 into the embedded SQLite graph.
func TestIntegrationSample(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	prefix := unique(t)
	c := mustSample(t, url, prefix)
	ctx := t.Context()
	// a first run opens the persistent session: from then on the broker
	// queues the gateway's messages
	if err := c.Reader.Read(ctx, skipFlush(func(r connectors.Record) error { t.Errorf("unexpected record %s", r.Pos); return nil })); err != nil {
		t.Fatal(err)
	}
	day := readingsOn(t, 2)
	if len(day) != 96 {
		t.Fatalf("%d readings on 2 January, want 96 (24 hours, 4 quantities)", len(day))
	}
	pub := mustPublisher(t, url)
	for _, r := range day {
		publish(t, pub, r.topic(prefix), r.payload())
	}

	store := mustSQLite(t)
	dead := &connectortest.DeadLetters{}
	runner := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), Now: connectortest.Now, DeadLetters: dead})
	st, err := runner.Run(ctx, c, store)
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 96 || st.Written != 96 || st.Rejected != 0 || len(dead.Letters) != 0 {
		t.Fatalf("stats %+v, dead letters %+v", st, dead.Letters)
	}
	for class, want := range map[string]int{"Sensor": 1, "ObservableProperty": 4, "Datastream": 4, "Observation": 96} {
		if got := count(t, store, class); got != want {
			t.Errorf("%d %s nodes, want %d", got, class, want)
		}
	}
	// 2010-01-02T00:00:00+08:00 is 1262361600000 ms after the epoch
	obs := mustNode(t, store, "urn:city:observation:beijing-aq:us-embassy~pm25~1262361600000")
	if obs.Props["value"] != 129.0 || obs.Props["quality"] != "RAW" || obs.Props["datastreamId"] != "urn:city:datastream:beijing-aq:us-embassy~pm25" ||
		!sameTime(obs.Props["phenomenonTime"], "2010-01-01T16:00:00Z") {
		t.Errorf("first pm25 observation = %+v", obs.Props)
	}
	// the datastreams keep the last hour of the day (row 48)
	for quantity, want := range map[string]float64{"pm25": 126, "temperature": -6, "dewpoint": -8, "pressure": 1027} {
		ds := mustNode(t, store, "urn:city:datastream:beijing-aq:us-embassy~"+quantity)
		if ds.Props["lastValue"] != want || !sameTime(ds.Props["lastObservedAt"], "2010-01-02T15:00:00Z") {
			t.Errorf("datastream %s = %+v, want lastValue %v at 15:00Z", quantity, ds.Props, want)
		}
	}
	if ds := mustNode(t, store, "urn:city:datastream:beijing-aq:us-embassy~temperature"); ds.Props["unitUcum"] != "Cel" || ds.Props["intervalSec"] != int64(3600) {
		t.Errorf("temperature datastream = %+v", ds.Props)
	}
	sensor := mustNode(t, store, "urn:city:sensor:beijing-aq:us-embassy")
	if sensor.Props["name"] != "US Embassy Beijing" || sensor.Props["deviceCategory"] != "SENSOR" || !sameTime(sensor.Props["lastSeenAt"], "2010-01-02T15:00:00Z") {
		t.Errorf("sensor = %+v", sensor.Props)
	}
	pages, err := store.Neighbors(ctx, graph.NeighborQuery{IDs: []string{"urn:city:datastream:beijing-aq:us-embassy~pm25"}, Rel: "IN_DATASTREAM", Dir: ontology.In, First: 100})
	if err != nil || len(pages) != 1 || len(pages[0].Nodes) != 24 {
		t.Fatalf("pm25 observations by IN_DATASTREAM: %v, %v", pages, err)
	}
	pages, err = store.Neighbors(ctx, graph.NeighborQuery{IDs: []string{"urn:city:datastream:beijing-aq:us-embassy~pm25"}, Rel: "OBSERVED_BY", Dir: ontology.Out, First: 10})
	if err != nil || len(pages[0].Nodes) != 1 || pages[0].Nodes[0].ID != sensor.ID {
		t.Errorf("pm25 OBSERVED_BY: %v, %v", pages, err)
	}

	// Read acknowledged everything: the next run reads nothing
	st, err = runner.Run(ctx, c, store)
	if err != nil || st.Read != 0 {
		t.Errorf("second run: %+v, %v; want nothing read", st, err)
	}
}

func sameTime(v any, want string) bool {
	tm, ok := v.(time.Time)
	return ok && tm.UTC().Format(time.RFC3339) == want
}

// `cityhub serve` streams the sample: records are committed by size and
// time, malformed messages dead-lettered, and every message acknowledged
// after its commit, so a later session of the same client gets nothing
// again.
func TestIntegrationStream(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	prefix := unique(t)
	c := mustSample(t, url, prefix)
	src := c.Reader.(*Source)
	ready := make(chan struct{}, 16)
	src.subscribed = func() {
		select {
		case ready <- struct{}{}:
		default:
		}
	}
	store := mustSQLite(t)
	dead := &connectortest.DeadLetters{}
	// Progress runs after a batch's acknowledgements: the test stops the
	// stream only when the broker has them all (an ack that comes after
	// the subscription ended is lost and the message comes again).
	var progress atomic.Pointer[connectors.RunStats]
	runner := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), DeadLetters: dead, FlushInterval: 100 * time.Millisecond,
		Progress: func(st connectors.RunStats) { progress.Store(&st) }})
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		st  connectors.RunStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := runner.Stream(ctx, c, store)
		done <- result{st, err}
	}()
	select {
	case <-ready:
	case r := <-done:
		t.Fatalf("Stream ended: %+v %v", r.st, r.err)
	case <-time.After(15 * time.Second):
		t.Fatal("not subscribed within 15s")
	}
	day := readingsOn(t, 3)
	pub := mustPublisher(t, url)
	for i, r := range day {
		publish(t, pub, r.topic(prefix), r.payload())
		if i == 10 {
			publish(t, pub, r.topic(prefix), []byte(`{"station":"US Embassy Beijing","time":"2010-01-03T`))
			publish(t, pub, r.topic(prefix), []byte(`[`+r.Value+`]`)) // JSON, but not an object
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	acked := func() bool {
		st := progress.Load()
		return st != nil && st.Written == len(day) && st.Rejected == 2
	}
	for !acked() {
		if time.Now().After(deadline) {
			t.Fatalf("%d observations of %d, %d dead letters, progress %+v after 30s", count(t, store, "Observation"), len(day), len(dead.Letters), progress.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	res := <-done
	if res.err != nil || res.st.Read != len(day)+2 || res.st.Written != len(day) || res.st.Rejected != 2 {
		t.Fatalf("Stream = %+v, %v", res.st, res.err)
	}
	for _, l := range dead.Letters {
		if !strings.HasPrefix(l.Pos.Message, day[10].topic(prefix)+" #") || !strings.HasPrefix(l.Reason, l.Pos.Message+": payload is") || len(l.Raw) == 0 {
			t.Errorf("dead letter %+v", l)
		}
	}
	if count(t, store, "Observation") != len(day) || count(t, store, "Datastream") != 4 {
		t.Errorf("%d observations, %d datastreams", count(t, store, "Observation"), count(t, store, "Datastream"))
	}

	// everything was acknowledged after its commit: the same client gets
	// only what is published now
	got := newCollector()
	sub := mustSubscribe(t, mustSource(t, src.cfg), func(r connectors.Record) error { got.add(r); r.Ack(); return nil })
	marker := readingsOn(t, 4)[0]
	publish(t, pub, marker.topic(prefix), marker.payload())
	recs := got.waitFor(t, 10*time.Second, "marker", func(rs []connectors.Record) bool { return len(rs) > 0 })
	time.Sleep(200 * time.Millisecond)
	if err := sub.stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(got.snapshot()); n != 1 || rowOf(t, recs[0]) != marker.Row {
		t.Errorf("the next session received %d records (first row %d), want only row %d", n, rowOf(t, recs[0]), marker.Row)
	}
}
