package mqtt

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// envURL is the variable scripts/mosquitto.sh prints.
const envURL = "CITYHUB_MQTT_URL"

// brokerURL returns the test broker's URL. Without one the test is
// skipped, or fails when CITYHUB_REQUIRE_INTEGRATION=1 (CI).
func brokerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(envURL)
	if u == "" {
		if os.Getenv("CITYHUB_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s is not set and CITYHUB_REQUIRE_INTEGRATION=1: start Mosquitto with scripts/mosquitto.sh", envURL)
		}
		t.Skipf("%s is not set: run `export $(scripts/mosquitto.sh start --data /tmp/cityhub-mqtt --port 0)` to run the MQTT tests", envURL)
	}
	return u
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// unique returns a name of the test's own: the broker is shared, so every
// test uses its own topics and client ids.
func unique(t testing.TB) string {
	name := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return randomID("cityhub-test-" + name + "-")
}

// reading is one value of a row of the Beijing sample, as the gateway of
// the sample publishes it.
type reading struct {
	Row      int
	Time     time.Time
	Quantity string
	Unit     string
	Value    string // as in the CSV
}

// beijing is China Standard Time, the zone of the sample's wall clock.
var beijing = time.FixedZone("CST", 8*3600)

// beijingReadings returns the readings of testdata's January 2010 rows in
// row order: pm25 (when measured), temperature, dewpoint and pressure.
func beijingReadings(t testing.TB) []reading {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "beijing_us_embassy_pm25_2010-01.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	num := func(row []string, name string) int {
		n, err := strconv.Atoi(row[col[name]])
		if err != nil {
			t.Fatalf("row %v: %s: %v", row, name, err)
		}
		return n
	}
	var out []reading
	for _, row := range rows[1:] {
		at := time.Date(num(row, "year"), time.Month(num(row, "month")), num(row, "day"), num(row, "hour"), 0, 0, 0, beijing)
		r := reading{Row: num(row, "No"), Time: at}
		for _, q := range []struct{ col, quantity, unit string }{
			{"pm2.5", "pm25", "ug/m3"}, {"TEMP", "temperature", "Cel"}, {"DEWP", "dewpoint", "Cel"}, {"PRES", "pressure", "hPa"},
		} {
			if v := row[col[q.col]]; v != "" {
				r.Quantity, r.Unit, r.Value = q.quantity, q.unit, v
				out = append(out, r)
			}
		}
	}
	return out
}

// topic is the reading's topic below prefix: <prefix>/beijing/us-embassy/<quantity>.
func (r reading) topic(prefix string) string {
	return prefix + "/beijing/us-embassy/" + r.Quantity
}

// payload is the reading's JSON message.
func (r reading) payload() []byte {
	b, err := json.Marshal(struct {
		Station string      `json:"station"`
		Time    string      `json:"time"`
		Value   json.Number `json:"value"`
		Unit    string      `json:"unit"`
		Row     int         `json:"row"`
	}{"US Embassy Beijing", r.Time.Format(time.RFC3339), json.Number(r.Value), r.Unit, r.Row})
	if err != nil {
		panic(err)
	}
	return b
}

// testConfig returns a configuration reading the Beijing topics below
// prefix on url.
func testConfig(url, prefix, clientID string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Topics = []string{prefix + "/beijing/+/+"}
	cfg.ClientID = clientID
	cfg.FieldsFromTopic = prefix + "/+city/+sensor/+quantity"
	cfg.ConnectTimeout = 5 * time.Second
	cfg.ReadIdle = 500 * time.Millisecond
	return cfg
}

func mustSource(t testing.TB, cfg Config) *Source {
	t.Helper()
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLogger(connectortest.Logger(t))
	return s
}

// subscription is a Subscribe running on a goroutine of the test.
type subscription struct {
	cancel context.CancelFunc
	done   chan error
	ready  chan struct{} // receives after every accepted subscription
	once   sync.Once
	err    error
}

// mustSubscribe starts s.Subscribe and waits for its first subscription.
func mustSubscribe(t testing.TB, s *Source, emit func(connectors.Record) error) *subscription {
	t.Helper()
	sub := &subscription{done: make(chan error, 1), ready: make(chan struct{}, 64)}
	s.subscribed = func() {
		select {
		case sub.ready <- struct{}{}:
		default:
		}
	}
	var ctx context.Context
	ctx, sub.cancel = context.WithCancel(context.Background())
	// the flush request before a disconnect commits nothing here: each
	// test's emit acknowledges what it means to
	go func() { sub.done <- s.Subscribe(ctx, "", skipFlush(emit)) }()
	t.Cleanup(func() { _ = sub.stop() })
	select {
	case <-sub.ready:
	case err := <-sub.done:
		t.Fatalf("Subscribe returned before subscribing: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("no subscription within 15s")
	}
	return sub
}

// stop ends the subscription and returns what Subscribe returned.
func (sub *subscription) stop() error {
	sub.once.Do(func() {
		sub.cancel()
		sub.err = <-sub.done
	})
	return sub.err
}

// mustPublisher connects a publishing client (clean session) that
// reconnects on its own.
func mustPublisher(t testing.TB, url string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(randomID("cityhub-test-pub-")).SetCleanSession(true).
		SetProtocolVersion(4).SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher: connect to %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(250) })
	return c
}

// publish publishes at QoS 1 and waits for the broker's PUBACK.
func publish(t testing.TB, c paho.Client, topic string, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v (timed out: %v)", topic, tok.Error(), tok.Error() == nil)
	}
}

// collector gathers emitted records; safe for concurrent use.
type collector struct {
	mu    sync.Mutex
	recs  []connectors.Record
	added chan struct{}
}

func newCollector() *collector { return &collector{added: make(chan struct{}, 1)} }

func (c *collector) add(r connectors.Record) {
	c.mu.Lock()
	c.recs = append(c.recs, r)
	c.mu.Unlock()
	select {
	case c.added <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []connectors.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]connectors.Record(nil), c.recs...)
}

// waitFor waits until cond holds for the records collected, or fails the
// test after timeout.
func (c *collector) waitFor(t testing.TB, timeout time.Duration, what string, cond func([]connectors.Record) bool) []connectors.Record {
	t.Helper()
	deadline := time.After(timeout)
	for {
		recs := c.snapshot()
		if cond(recs) {
			return recs
		}
		select {
		case <-c.added:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: not within %v (%d records)", what, timeout, len(recs))
		}
	}
}

// rowOf returns the row of a reading record.
func rowOf(t testing.TB, r connectors.Record) int {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("%s: error record: %v", r.Pos, r.Err)
	}
	n, ok := r.Fields["row"].(int64)
	if !ok {
		t.Fatalf("%s: row = %#v", r.Pos, r.Fields["row"])
	}
	return int(n)
}

// key names a reading by row and quantity.
func key(row int, quantity string) string { return strconv.Itoa(row) + "/" + quantity }

func recKey(t testing.TB, r connectors.Record) string {
	t.Helper()
	q, _ := r.Fields["quantity"].(string)
	return key(rowOf(t, r), q)
}

// skipFlush passes records to emit and drops flush requests.
func skipFlush(emit func(connectors.Record) error) func(connectors.Record) error {
	return func(r connectors.Record) error {
		if r.Flush {
			return nil
		}
		return emit(r)
	}
}

// ackOnFlush passes records to emit and, like the runner, acknowledges
// those emit accepted when the source asks for a flush.
func ackOnFlush(emit func(connectors.Record) error) func(connectors.Record) error {
	var acks []func()
	return func(r connectors.Record) error {
		if r.Flush {
			for _, a := range acks {
				a()
			}
			acks = acks[:0]
			return nil
		}
		if err := emit(r); err != nil {
			return err
		}
		if r.Ack != nil {
			acks = append(acks, r.Ack)
		}
		return nil
	}
}
