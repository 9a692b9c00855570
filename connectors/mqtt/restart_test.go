package mqtt

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
)

// broker is a Mosquitto of a test's own, run by scripts/mosquitto.sh.
type broker struct {
	t      testing.TB
	script string
	dir    string
	url    string
}

// ownBroker starts a Mosquitto of the test's own with scripts/mosquitto.sh
// (restarting the shared one would cut the other tests' connections). It
// follows the shared broker's skip rule and stops with the test, or with
// the test process should that die first.
func ownBroker(t testing.TB) *broker {
	t.Helper()
	brokerURL(t)
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "mosquitto.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: the broker drops root for the mosquitto account,
	// which must reach the directory (t.TempDir's parent is private).
	dir, err := os.MkdirTemp("", "cityhub-mqtt-restart-")
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{t: t, script: script, dir: dir}
	out := b.run("start", "--data", dir, "--port", "0", "--parent-pid", strconv.Itoa(os.Getpid()))
	t.Cleanup(func() {
		b.run("stop", "--data", dir)
		os.RemoveAll(dir)
	})
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, envURL+"="); ok {
			b.url = v
		}
	}
	if b.url == "" {
		t.Fatalf("mosquitto.sh start printed no %s: %q", envURL, out)
	}
	return b
}

// run runs the script and returns its standard output.
func (b *broker) run(args ...string) string {
	b.t.Helper()
	cmd := exec.Command("bash", append([]string{b.script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.t.Fatalf("mosquitto.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// restart runs the script's restart and returns how long it took.
func (b *broker) restart() time.Duration {
	b.t.Helper()
	start := time.Now()
	if got := b.run("restart", "--data", b.dir); !strings.Contains(got, envURL+"="+b.url) {
		b.t.Fatalf("restart moved the broker: %q, was %s", got, b.url)
	}
	return time.Since(start)
}

// forget stops the broker, deletes what it persisted (sessions, queues)
// and starts it again on the same port.
func (b *broker) forget() {
	b.t.Helper()
	b.run("stop", "--data", b.dir)
	if err := os.Remove(filepath.Join(b.dir, "mosquitto.db")); err != nil {
		b.t.Fatal(err)
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(b.url, "tcp://"), ":")
	b.run("start", "--data", b.dir, "--port", port)
}

// (3) A broker restart while messages are queued and unacknowledged:
// every message the broker accepted (PUBACK) before or after the restart
// reaches the subscriber at least once.
func TestIntegrationBrokerRestart(t *testing.T) {
	t.Parallel()
	b := ownBroker(t)
	url := b.url
	prefix := unique(t)
	cfg := testConfig(url, prefix, prefix)
	readings := beijingReadings(t)[:800]
	before, after := readings[:400], readings[400:]

	var mu sync.Mutex
	seen := map[string]int{}
	got := newCollector()
	sub := mustSubscribe(t, mustSource(t, cfg), func(r connectors.Record) error {
		time.Sleep(2 * time.Millisecond) // a slow store: messages wait at the broker
		mu.Lock()
		seen[recKey(t, r)]++
		mu.Unlock()
		got.add(r)
		r.Ack() // committed
		return nil
	})
	pub := mustPublisher(t, url)
	for _, r := range before {
		publish(t, pub, r.topic(prefix), r.payload())
	}
	outstanding := len(before) - len(got.snapshot())
	if outstanding <= 0 {
		t.Fatalf("all %d messages were consumed before the restart: the test proves nothing", len(before))
	}
	took := b.restart()
	deadline := time.Now().Add(30 * time.Second)
	for !pub.IsConnectionOpen() {
		if time.Now().After(deadline) {
			t.Fatal("the publisher did not reconnect within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, r := range after {
		publish(t, pub, r.topic(prefix), r.payload())
	}
	all := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range readings {
			if seen[key(r.Row, r.Quantity)] == 0 {
				return false
			}
		}
		return true
	}
	got.waitFor(t, 2*time.Minute, "every message", func([]connectors.Record) bool { return all() })
	if err := sub.stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	if len(seen) != len(readings) {
		t.Errorf("%d distinct messages received, want %d", len(seen), len(readings))
	}
	if len(sub.ready) == 0 {
		t.Error("the subscriber did not subscribe again after the restart")
	}
	t.Logf("restart took %v with %d of %d messages outstanding; %d messages received, %d of them redeliveries",
		took.Round(time.Millisecond), outstanding, len(before), len(got.snapshot()), dups)
}

// Messages queued for a persistent session whose client is away survive
// a broker restart (the script's broker saves them on a graceful stop).
func TestIntegrationBrokerRestartQueued(t *testing.T) {
	t.Parallel()
	b := ownBroker(t)
	url := b.url
	prefix := unique(t)
	s := mustSource(t, testConfig(url, prefix, prefix))
	read := func() []connectors.Record {
		var out []connectors.Record
		if err := s.Read(t.Context(), ackOnFlush(func(r connectors.Record) error { out = append(out, r); return nil })); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if recs := read(); len(recs) != 0 { // opens the session
		t.Fatalf("first Read: %d records", len(recs))
	}
	readings := beijingReadings(t)[300:400]
	pub := mustPublisher(t, url)
	for _, r := range readings {
		publish(t, pub, r.topic(prefix), r.payload())
	}
	took := b.restart()
	recs := read()
	if len(recs) != len(readings) {
		t.Fatalf("after the restart Read got %d records, want the %d queued", len(recs), len(readings))
	}
	for i, rec := range recs {
		checkReading(t, rec, readings[i], prefix)
	}
	t.Logf("%d queued messages survived a restart of %v", len(recs), took.Round(time.Millisecond))
}

// A broker that lost the session (its persistence deleted) gets the
// subscription again when the stream reconnects.
func TestIntegrationSessionLost(t *testing.T) {
	t.Parallel()
	b := ownBroker(t)
	prefix := unique(t)
	got := newCollector()
	sub := mustSubscribe(t, mustSource(t, testConfig(b.url, prefix, prefix)), func(r connectors.Record) error {
		got.add(r)
		r.Ack()
		return nil
	})
	readings := beijingReadings(t)
	pub := mustPublisher(t, b.url)
	publish(t, pub, readings[0].topic(prefix), readings[0].payload())
	got.waitFor(t, 10*time.Second, "first message", func(rs []connectors.Record) bool { return len(rs) == 1 })
	b.forget()
	select {
	case <-sub.ready:
	case <-time.After(time.Minute):
		t.Fatal("no new subscription within a minute after the broker lost the session")
	}
	deadline := time.Now().Add(30 * time.Second)
	for !pub.IsConnectionOpen() {
		if time.Now().After(deadline) {
			t.Fatal("the publisher did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	publish(t, pub, readings[1].topic(prefix), readings[1].payload())
	recs := got.waitFor(t, 30*time.Second, "message after the session was lost", func(rs []connectors.Record) bool { return len(rs) == 2 })
	if err := sub.stop(); err != nil {
		t.Fatal(err)
	}
	checkReading(t, recs[1], readings[1], prefix)
}
