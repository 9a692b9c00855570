package ingestbench

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/connectors/mqtt"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// burst is the number of messages of a BenchmarkMQTTBurst round.
const burst = 10_000

// beijingFile holds the first 2,880 hourly rows (January to April 2010)
// of the UCI "Beijing PM2.5 Data" file: 11,000-odd readings.
const beijingFile = "beijing_us_embassy_pm25_2010-01_04.csv"

// reading is one value of a row of the Beijing file, as the city gateway
// of the mqtt sample publishes it: one message per row and quantity.
type reading struct {
	row      int
	at       time.Time
	quantity string
	unit     string
	value    string // as in the file
}

// beijing is China Standard Time, the zone of the file's wall clock.
var beijing = time.FixedZone("CST", 8*3600)

// beijingReadings returns the first n readings of the Beijing file in row
// order; per row pm25 (when measured), temperature, dewpoint, pressure.
func beijingReadings(tb testing.TB, n int) []reading {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", beijingFile))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		tb.Fatalf("%s: %v", beijingFile, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	var out []reading
	for len(out) < n {
		row, err := r.Read()
		if err != nil {
			tb.Fatalf("%s: %d readings of %d: %v", beijingFile, len(out), n, err)
		}
		num := func(name string) int {
			v, err := strconv.Atoi(row[col[name]])
			if err != nil {
				tb.Fatalf("%s: row %v: %s: %v", beijingFile, row, name, err)
			}
			return v
		}
		at := time.Date(num("year"), time.Month(num("month")), num("day"), num("hour"), 0, 0, 0, beijing)
		for _, q := range []struct{ col, quantity, unit string }{
			{"pm2.5", "pm25", "ug/m3"}, {"TEMP", "temperature", "Cel"}, {"DEWP", "dewpoint", "Cel"}, {"PRES", "pressure", "hPa"},
		} {
			if v := row[col[q.col]]; v != "" && len(out) < n {
				out = append(out, reading{row: num("No"), at: at, quantity: q.quantity, unit: q.unit, value: v})
			}
		}
	}
	return out
}

// topic is the reading's topic below prefix: <prefix>/beijing/us-embassy/<quantity>.
func (r reading) topic(prefix string) string { return prefix + "/beijing/us-embassy/" + r.quantity }

// payload is the reading's JSON message (see connectors/mqtt/sample.yaml).
func (r reading) payload() []byte {
	b, err := json.Marshal(struct {
		Station string      `json:"station"`
		Time    string      `json:"time"`
		Value   json.Number `json:"value"`
		Unit    string      `json:"unit"`
		Row     int         `json:"row"`
	}{"US Embassy Beijing", r.at.Format(time.RFC3339), json.Number(r.value), r.unit, r.row})
	if err != nil {
		panic(err)
	}
	return b
}

// mqttConnector loads the mqtt kind's own sample (its mapping: Sensor,
// ObservableProperty, Datastream, Observation) on the test broker, with a
// client id and topics of prefix's own.
func mqttConnector(tb testing.TB, url, prefix string) *connectors.Connector {
	tb.Helper()
	text := string(mqtt.Kind().Sample)
	for _, r := range [][2]string{
		{"url: tcp://127.0.0.1:1883", "url: " + url},
		{"client_id: cityhub-beijing-air-quality", "client_id: " + prefix},
		{`topics: ["city/beijing/+/+"]`, `topics: ["` + prefix + `/beijing/+/+"]`},
		{"fields_from_topic: city/+city/+sensor/+quantity", "fields_from_topic: " + prefix + "/+city/+sensor/+quantity"},
		{"read_idle: 2s", "read_idle: 1s"},
	} {
		if !strings.Contains(text, r[0]) {
			tb.Fatalf("connectors/mqtt/sample.yaml has no %q", r[0])
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	return mustParse(tb, "connectors/mqtt/sample.yaml", []byte(text))[0]
}

// mqttBurst is a burst of readings published to new persistent
// sessions.
type mqttBurst struct {
	url      string
	msgs     []reading
	payloads [][]byte // of msgs
}

func newMQTTBurst(tb testing.TB, n int) *mqttBurst {
	tb.Helper()
	m := &mqttBurst{url: mqttURL(tb), msgs: beijingReadings(tb, n)}
	for _, r := range m.msgs {
		m.payloads = append(m.payloads, r.payload())
	}
	return m
}

// queued returns a connector of a new persistent session (a unique client
// id and topics) for which the broker holds every message, published at
// QoS 1 and acknowledged by the broker.
func (m *mqttBurst) queued(tb testing.TB) *connectors.Connector {
	tb.Helper()
	prefix := randomID("ingestbench-")
	c := mqttConnector(tb, m.url, prefix)
	// a first read opens the session: from then on the broker queues
	err := c.Reader.Read(tb.Context(), func(r connectors.Record) error {
		if r.Flush {
			return nil
		}
		return fmt.Errorf("unexpected record %s on a new session", r.Pos)
	})
	if err != nil {
		tb.Fatal(err)
	}
	o := paho.NewClientOptions().AddBroker(m.url).SetClientID(randomID("ingestbench-pub-")).SetCleanSession(true).
		SetProtocolVersion(4).SetConnectTimeout(5 * time.Second)
	pub := paho.NewClient(o)
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		tb.Fatalf("publisher: connect to %s: %v", m.url, tok.Error())
	}
	defer pub.Disconnect(250)
	toks := make([]paho.Token, len(m.msgs))
	for i, r := range m.msgs {
		toks[i] = pub.Publish(r.topic(prefix), 1, false, m.payloads[i])
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			tb.Fatalf("publish %d of %d: %v (timed out: %v)", i+1, len(toks), tok.Error(), tok.Error() == nil)
		}
	}
	return c
}

// mapped returns the messages as the sample maps them, one batch per
// record: a new session read to the end by the runner into a recorder.
func (m *mqttBurst) mapped(tb testing.TB) []graph.Batch {
	tb.Helper()
	return mustMap(tb, m.queued(tb), connectortest.NewStore(ontology.Default()), len(m.msgs))
}

// stream runs c with Runner.Stream (journal on, flush interval and batch
// size the defaults, as `cityhub serve` runs it) into s until every
// message is committed and acknowledged, and returns how long that took
// and the number of commits. timer runs exactly during the stream.
func (m *mqttBurst) stream(tb testing.TB, c *connectors.Connector, s graph.Store, timer func(on bool)) (time.Duration, int) {
	tb.Helper()
	all := make(chan struct{})
	var once sync.Once
	var commits atomic.Int64
	runner := connectors.NewRunner(connectors.RunnerConfig{Journal: true, Progress: func(st connectors.RunStats) {
		// called after every commit, once its acknowledgements are sent
		commits.Add(1)
		if st.Written >= len(m.msgs) {
			once.Do(func() { close(all) })
		}
	}})
	ctx, cancel := context.WithCancel(tb.Context())
	defer cancel()
	type result struct {
		st  connectors.RunStats
		err error
	}
	done := make(chan result, 1)
	timer(true)
	start := time.Now()
	go func() {
		st, err := runner.Stream(ctx, c, s)
		done <- result{st, err}
	}()
	select {
	case <-all:
	case r := <-done:
		tb.Fatalf("stream ended before committing %d messages: %+v, %v", len(m.msgs), r.st, r.err)
	case <-time.After(10 * time.Minute):
		tb.Fatalf("%d messages not committed within 10 minutes", len(m.msgs))
	}
	d := time.Since(start)
	timer(false)
	cancel()
	if r := <-done; r.err != nil || r.st.Written != len(m.msgs) || r.st.Rejected != 0 {
		tb.Fatalf("stream: %+v, %v; want %d written", r.st, r.err, len(m.msgs))
	}
	if n := count(tb, s, "Observation"); n != len(m.msgs) {
		tb.Fatalf("%d observations, want %d", n, len(m.msgs))
	}
	return d, int(commits.Load())
}

// BenchmarkMQTTBurst: 10,000 QoS 1 readings wait in a persistent session;
// Runner.Stream (journal on) commits them all into a fresh store:
// messages/s until the last is committed and acknowledged, the store's own
// Apply rate for the same mapped records (in batches of 500 nodes into
// another fresh store, in the same iteration), their ratio, and the
// messages per commit. The broker's in-flight window (Mosquitto's
// max_inflight_messages, 20 by default) bounds how many messages are
// delivered before their acknowledgements, which come after the commit.
func BenchmarkMQTTBurst(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			if be.name == "neo4j" {
				neo4jConfig(b) // skips without a server
			}
			m := newMQTTBurst(b, burst)
			bs := batches(m.mapped(b), batchSize)
			// warm up: the applies and the stream write alike
			s, closeStore := be.open(b)
			applyAll(b, s, bs)
			closeStore()
			var r rates
			commits := 0
			// the Go process's CPU (and, on request, the servers') during
			// each timed side
			cpuStream, cpuApply := newCPUProbe(), newCPUProbe()
			timer := func(on bool) {
				if on {
					cpuStream.on()
					b.StartTimer()
				} else {
					b.StopTimer()
					cpuStream.off()
				}
			}
			for b.Loop() {
				b.StopTimer()
				apply := func() {
					s, closeStore := be.open(b)
					cpuApply.on()
					pprof.Do(b.Context(), pprof.Labels("phase", "apply"), func(context.Context) { r.apply += applyAll(b, s, bs) })
					cpuApply.off()
					closeStore()
				}
				// the side measured second finds the store warmer or
				// busier: every other iteration streams first
				first := r.n%2 == 0
				if first {
					apply()
				}
				c := m.queued(b)
				s, closeStore := be.open(b)
				var d time.Duration
				var n int
				pprof.Do(b.Context(), pprof.Labels("phase", "stream"), func(context.Context) { d, n = m.stream(b, c, s, timer) })
				r.run += d
				commits += n
				closeStore()
				if !first {
					apply()
				}
				r.n++
				b.StartTimer()
			}
			r.report(b, burst, "msgs/s")
			b.ReportMetric(float64(burst*r.n)/float64(commits), "msgs/commit")
			cpuStream.report(b, "stream-", burst*r.n)
			cpuApply.report(b, "apply-", burst*r.n)
		})
	}
}

// TestIntegrationMQTTBurst checks the benchmark's path on a smaller burst:
// 1,000 readings queued for a persistent session, streamed into SQLite,
// every one an observation, the datastreams at the last reading of their
// quantity, and nothing left for the session afterwards.
func TestIntegrationMQTTBurst(t *testing.T) {
	t.Parallel()
	m := newMQTTBurst(t, 1_000)
	c := m.queued(t)
	s, closeStore := openSQLite(t)
	defer closeStore()
	m.stream(t, c, s, func(bool) {})
	last := map[string]reading{}
	for _, r := range m.msgs {
		last[r.quantity] = r
	}
	if len(last) != 4 {
		t.Fatalf("quantities %v", last)
	}
	for q, r := range last {
		id := "urn:city:datastream:beijing-aq:us-embassy~" + q
		ns, err := s.Nodes(t.Context(), []string{id})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := strconv.ParseFloat(r.value, 64)
		if n := ns[0]; n == nil || n.Props["lastValue"] != want || !sameTime(n.Props["lastObservedAt"], r.at) {
			t.Errorf("%s = %+v, want lastValue %v at %v (row %d)", id, n, want, r.at, r.row)
		}
	}
	// row 25, 2010-01-02T00:00:00+08:00, is the first with a PM2.5 value
	ns, err := s.Nodes(t.Context(), []string{"urn:city:observation:beijing-aq:us-embassy~pm25~1262361600000"})
	if err != nil {
		t.Fatal(err)
	}
	if n := ns[0]; n == nil || n.Props["value"] != 129.0 {
		t.Errorf("first pm25 observation = %+v", n)
	}
	// every message was acknowledged after its commit
	err = c.Reader.Read(t.Context(), func(r connectors.Record) error {
		if r.Flush {
			return nil
		}
		return errors.New("the session still holds messages")
	})
	if err != nil {
		t.Error(err)
	}
}
