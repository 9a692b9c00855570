package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/google/go-cmp/cmp"
)

// checkReading compares a record with the reading published on topic.
func checkReading(t testing.TB, rec connectors.Record, r reading, prefix string) {
	t.Helper()
	topic := r.topic(prefix)
	want := map[string]any{
		"station": "US Embassy Beijing", "time": r.Time.Format(time.RFC3339),
		"value": connectors.NormalizeJSON(json.Number(r.Value)), "unit": r.Unit, "row": int64(r.Row),
		"topic": topic, "city": "beijing", "sensor": "us-embassy", "quantity": r.Quantity,
	}
	got := map[string]any{}
	for k, v := range rec.Fields {
		if k != FieldReceivedAt {
			got[k] = v
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: fields (-want +got):\n%s", rec.Pos, diff)
	}
	if ts, _ := rec.Fields[FieldReceivedAt].(string); ts == "" {
		t.Errorf("%s: no received_at", rec.Pos)
	} else if at, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(at) > time.Hour || at.Location() != time.UTC {
		t.Errorf("%s: received_at %q (%v)", rec.Pos, ts, err)
	}
	if !strings.HasPrefix(rec.Pos.Message, topic+" #") || strings.HasSuffix(rec.Pos.Message, " #0") {
		t.Errorf("position %q does not name topic %s and a message id", rec.Pos.Message, topic)
	}
	if !bytes.Equal(rec.Raw, r.payload()) {
		t.Errorf("%s: raw %s, want %s", rec.Pos, rec.Raw, r.payload())
	}
}

// (1) 1,000 QoS 1 JSON messages on four topics arrive exactly once each,
// in per-topic order, with the right fields.
func TestIntegrationOrder(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	prefix := unique(t)
	readings := beijingReadings(t)[:1000]
	s := mustSource(t, testConfig(url, prefix, prefix))
	got := newCollector()
	sub := mustSubscribe(t, s, func(r connectors.Record) error {
		got.add(r)
		if r.Ack == nil {
			return errors.New("QoS 1 record without Ack")
		}
		r.Ack()
		return nil
	})
	pub := mustPublisher(t, url)
	start := time.Now()
	for _, r := range readings {
		publish(t, pub, r.topic(prefix), r.payload())
	}
	got.waitFor(t, time.Minute, "1000 messages", func(rs []connectors.Record) bool { return len(rs) >= len(readings) })
	elapsed := time.Since(start)
	time.Sleep(300 * time.Millisecond) // a duplicate would come now
	if err := sub.stop(); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	recs := got.snapshot()
	if len(recs) != len(readings) {
		t.Fatalf("%d records, want %d", len(recs), len(readings))
	}
	wantOrder, gotOrder := map[string][]int{}, map[string][]int{}
	byKey := map[string]reading{}
	for _, r := range readings {
		wantOrder[r.Quantity] = append(wantOrder[r.Quantity], r.Row)
		byKey[key(r.Row, r.Quantity)] = r
	}
	for i, rec := range recs {
		if rec.Pos.Index != i {
			t.Errorf("record %d has index %d", i, rec.Pos.Index)
		}
		k := recKey(t, rec)
		checkReading(t, rec, byKey[k], prefix)
		q := rec.Fields["quantity"].(string)
		gotOrder[q] = append(gotOrder[q], rowOf(t, rec))
	}
	if diff := cmp.Diff(wantOrder, gotOrder); diff != "" {
		t.Errorf("per-topic order (-published +received):\n%s", diff)
	}
	if len(wantOrder) != 4 || len(wantOrder["pm25"]) != 232 {
		t.Errorf("readings per quantity: pm25 %d of %d topics", len(wantOrder["pm25"]), len(wantOrder))
	}
	t.Logf("1000 messages published one by one (each waiting for its PUBACK) and received in %v", elapsed)
}

// (2) Messages not acknowledged come again when the subscriber comes back
// with the same client id; acknowledged ones do not.
func TestIntegrationRedelivery(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	prefix := unique(t)
	cfg := testConfig(url, prefix, prefix)
	readings := beijingReadings(t)[:22] // rows 1..8 (no pm25 the first day)
	first, marker := readings[:20], readings[20]
	pub := mustPublisher(t, url)

	// session 1 acknowledges every other message
	got := newCollector()
	sub := mustSubscribe(t, mustSource(t, cfg), func(r connectors.Record) error {
		got.add(r)
		if r.Pos.Index%2 == 0 {
			r.Ack()
		}
		return nil
	})
	for _, r := range first {
		publish(t, pub, r.topic(prefix), r.payload())
	}
	recs := got.waitFor(t, 30*time.Second, "session 1", func(rs []connectors.Record) bool { return len(rs) >= len(first) })
	if err := sub.stop(); err != nil {
		t.Fatal(err)
	}
	var acked, unacked []string
	for i, rec := range recs {
		if i%2 == 0 {
			acked = append(acked, recKey(t, rec))
		} else {
			unacked = append(unacked, recKey(t, rec))
		}
	}

	// session 2, same client id: the unacknowledged ten come back before a
	// message published now; everything is acknowledged this time
	got2 := newCollector()
	sub2 := mustSubscribe(t, mustSource(t, cfg), func(r connectors.Record) error {
		got2.add(r)
		r.Ack()
		return nil
	})
	publish(t, pub, marker.topic(prefix), marker.payload())
	markerKey := key(marker.Row, marker.Quantity)
	recs2 := got2.waitFor(t, 30*time.Second, "marker in session 2", func(rs []connectors.Record) bool {
		return slices.ContainsFunc(rs, func(r connectors.Record) bool { return recKey(t, r) == markerKey })
	})
	if err := sub2.stop(); err != nil {
		t.Fatal(err)
	}
	var again []string
	for _, rec := range recs2 {
		if k := recKey(t, rec); k != markerKey {
			again = append(again, k)
		}
	}
	slices.Sort(again)
	slices.Sort(unacked)
	if !slices.Equal(again, unacked) {
		t.Errorf("session 2 redelivered %v, want the unacknowledged %v (acknowledged: %v)", again, unacked, acked)
	}
	if len(unacked) != 10 {
		t.Errorf("%d unacknowledged messages, want 10", len(unacked))
	}

	// session 3: nothing is left; only the new marker arrives
	got3 := newCollector()
	sub3 := mustSubscribe(t, mustSource(t, cfg), func(r connectors.Record) error {
		got3.add(r)
		r.Ack()
		return nil
	})
	marker2 := beijingReadings(t)[22]
	publish(t, pub, marker2.topic(prefix), marker2.payload())
	recs3 := got3.waitFor(t, 30*time.Second, "marker in session 3", func(rs []connectors.Record) bool { return len(rs) > 0 })
	if err := sub3.stop(); err != nil {
		t.Fatal(err)
	}
	if k := recKey(t, recs3[0]); k != key(marker2.Row, marker2.Quantity) || len(got3.snapshot()) != 1 {
		t.Errorf("session 3 received %d records, first %s; want only %s", len(got3.snapshot()), k, key(marker2.Row, marker2.Quantity))
	}
}

// (4) Malformed payloads become error records naming topic and message
// id, with the payload as raw bytes; a valid message after them decodes.
func TestIntegrationMalformed(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	prefix := unique(t)
	cfg := testConfig(url, prefix, prefix)
	cfg.MaxPayloadBytes = 256
	good := beijingReadings(t)[100]
	big := append([]byte(`{"note":"`), bytes.Repeat([]byte("x"), 300)...)
	big = append(big, `"}`...)
	sent := []struct {
		quantity string
		payload  []byte
		err      string
	}{
		{"pm25", []byte(`{"station":"US Embassy Beijing","value":`), "payload is not JSON: unexpected EOF"},
		{"pm25", []byte(`25,2010,1,2,0,129,-16,-4,1020,SE,1.79,0,0`), "payload is not JSON"},
		{"pm25", []byte(`[129,148,159]`), "payload is JSON but not an object"},
		{"pm25", []byte("{\"unit\":\"ug/m3\"}\xff"), "payload has data after the JSON object (offset 16)"},
		{"pm25", big, "payload of 311 bytes exceeds max_payload_bytes (256)"},
	}
	got := newCollector()
	sub := mustSubscribe(t, mustSource(t, cfg), func(r connectors.Record) error {
		got.add(r)
		r.Ack() // the runner does after dead-lettering
		return nil
	})
	pub := mustPublisher(t, url)
	topic := prefix + "/beijing/us-embassy/pm25"
	for _, m := range sent {
		publish(t, pub, topic, m.payload)
	}
	publish(t, pub, good.topic(prefix), good.payload())
	recs := got.waitFor(t, 30*time.Second, "6 messages", func(rs []connectors.Record) bool { return len(rs) >= len(sent)+1 })
	if err := sub.stop(); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i, m := range sent {
		rec := recs[i]
		if rec.Err == nil || !strings.Contains(rec.Err.Error(), m.err) || rec.Fields != nil {
			t.Errorf("message %d: record %v, %v; want error %q", i, rec.Fields, rec.Err, m.err)
		}
		if !strings.HasPrefix(rec.Pos.Message, topic+" #") || rec.Pos.String() != rec.Pos.Message {
			t.Errorf("message %d: position %q does not name the topic", i, rec.Pos)
		}
		ids[rec.Pos.Message] = true
		if n := min(len(m.payload), cfg.MaxPayloadBytes); !bytes.Equal(rec.Raw, m.payload[:n]) {
			t.Errorf("message %d: raw %q, want %q", i, rec.Raw, m.payload[:n])
		}
	}
	if len(ids) != len(sent) {
		t.Errorf("positions %v are not distinct", ids)
	}
	checkReading(t, recs[len(sent)], good, prefix)
}

// (5) Topic levels become fields; a topic the pattern does not match is an
// error record.
func TestIntegrationTopicFields(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	prefix := unique(t)
	cfg := DefaultConfig()
	cfg.URL, cfg.Topics, cfg.Payload = url, []string{prefix + "/#"}, PayloadText
	cfg.FieldsFromTopic = prefix + "/+city/+sensor/#path"
	got := newCollector()
	sub := mustSubscribe(t, mustSource(t, cfg), func(r connectors.Record) error {
		got.add(r)
		if r.Ack != nil {
			r.Ack()
		}
		return nil
	})
	pub := mustPublisher(t, url)
	// the wind direction of row 25, a text reading
	publish(t, pub, prefix+"/beijing/us-embassy/wind/direction", []byte("SE"))
	publish(t, pub, prefix+"/beijing/us-embassy", []byte("online"))
	publish(t, pub, prefix+"/beijing", []byte("orphan"))
	recs := got.waitFor(t, 30*time.Second, "3 messages", func(rs []connectors.Record) bool { return len(rs) >= 3 })
	if err := sub.stop(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []map[string]any{
		{"payload": "SE", "topic": prefix + "/beijing/us-embassy/wind/direction", "city": "beijing", "sensor": "us-embassy", "path": "wind/direction"},
		{"payload": "online", "topic": prefix + "/beijing/us-embassy", "city": "beijing", "sensor": "us-embassy", "path": ""},
	} {
		f := recs[i].Fields
		delete(f, FieldReceivedAt)
		if diff := cmp.Diff(want, f); diff != "" || recs[i].Err != nil {
			t.Errorf("record %d (%v) (-want +got):\n%s", i, recs[i].Err, diff)
		}
	}
	if err := recs[2].Err; err == nil || !strings.Contains(err.Error(), "does not match fields_from_topic") || !strings.HasPrefix(recs[2].Pos.Message, prefix+"/beijing #") {
		t.Errorf("orphan topic: %v at %s", err, recs[2].Pos)
	}
}

// Read drains what a persistent session queued and returns after
// read_idle; what it emitted is acknowledged, so the next Read finds
// nothing.
func TestIntegrationRead(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	prefix := unique(t)
	cfg := testConfig(url, prefix, prefix)
	readings := beijingReadings(t)[200:260]
	s := mustSource(t, cfg)
	read := func() []connectors.Record {
		var out []connectors.Record
		start := time.Now()
		if err := s.Read(t.Context(), ackOnFlush(func(r connectors.Record) error {
			if r.Ack == nil {
				return errors.New("a QoS 1 record without Ack")
			}
			out = append(out, r)
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < cfg.ReadIdle || d > cfg.ReadIdle+10*time.Second {
			t.Errorf("Read took %v with read_idle %v", d, cfg.ReadIdle)
		}
		return out
	}
	if recs := read(); len(recs) != 0 { // opens the session
		t.Fatalf("first Read: %d records", len(recs))
	}
	pub := mustPublisher(t, url)
	for _, r := range readings {
		publish(t, pub, r.topic(prefix), r.payload())
	}
	recs := read()
	if len(recs) != len(readings) {
		t.Fatalf("Read: %d records, want %d", len(recs), len(readings))
	}
	for i, rec := range recs {
		checkReading(t, rec, readings[i], prefix)
	}
	if recs := read(); len(recs) != 0 {
		t.Errorf("Read after a full read: %d records, want 0 (all acknowledged)", len(recs))
	}

	// emit's error ends Read, unchanged; that message is not acknowledged
	r := readings[0]
	publish(t, pub, r.topic(prefix), r.payload())
	stop := errors.New("stop here")
	if err := s.Read(t.Context(), func(connectors.Record) error { return stop }); err != stop {
		t.Errorf("Read = %v, want emit's error", err)
	}
	if recs := read(); len(recs) != 1 || rowOf(t, recs[0]) != r.Row {
		t.Errorf("after a failed emit Read got %d records, want row %d again", len(recs), r.Row)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Read(ctx, func(connectors.Record) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a cancelled context = %v", err)
	}
}

func TestIntegrationCheck(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	prefix := unique(t)
	cfg := testConfig(url, prefix, prefix)
	s := mustSource(t, cfg)
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check = %v", err)
	}
	// Check does not touch the persistent session: a message published
	// now is not queued for it (the session does not exist yet) ...
	pub := mustPublisher(t, url)
	r := beijingReadings(t)[0]
	publish(t, pub, r.topic(prefix), r.payload())
	var n int
	if err := s.Read(t.Context(), skipFlush(func(connectors.Record) error { n++; return nil })); err != nil || n != 0 {
		t.Errorf("Read after Check: %d records, %v; want none", n, err)
	}
	// ... and a Check while subscribed does not take the session over.
	got := newCollector()
	sub := mustSubscribe(t, s, func(r connectors.Record) error { got.add(r); r.Ack(); return nil })
	if err := mustSource(t, cfg).Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, r.topic(prefix), r.payload())
	got.waitFor(t, 10*time.Second, "message after Check", func(rs []connectors.Record) bool { return len(rs) == 1 })
	if err := sub.stop(); err != nil {
		t.Fatal(err)
	}

	s.cfg.Username, s.cfg.PasswordEnv = "cityhub", "CITYHUB_TEST_MQTT_PASSWORD_UNSET"
	s.lookupEnv = func(string) (string, bool) { return "", false }
	if err := s.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "password_env CITYHUB_TEST_MQTT_PASSWORD_UNSET is not set") {
		t.Errorf("Check without the password = %v", err)
	}
}

func ExampleConfig_Validate() {
	cfg := DefaultConfig()
	cfg.URL = "tcp://127.0.0.1:1883"
	cfg.Topics = []string{"city/beijing/+/+"}
	cfg.FieldsFromTopic = "city/+city/+sensor/+quantity"
	fmt.Println(cfg.Validate())
	cfg.QoS = 3
	cfg.Topics = append(cfg.Topics, "city/#/pm25")
	fmt.Println(cfg.Validate())
	// Output:
	// <nil>
	// topics: topics[1]: topic filter "city/#/pm25": # must be the whole last level
	// qos: qos must be 0, 1 or 2, got 3
}

// Messages queued for a persistent session arrive together (up to the
// broker's in-flight window, 20 for Mosquitto) but reach the source one
// by one: the source asks for one commit of them all, not one at the
// first gap in the queue.
func TestIntegrationQueuedFlushTogether(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	prefix := unique(t)
	cfg := testConfig(url, prefix, prefix)
	// open the persistent session, then publish while it is away
	if err := mustSubscribe(t, mustSource(t, cfg), func(connectors.Record) error { return nil }).stop(); err != nil {
		t.Fatal(err)
	}
	readings := beijingReadings(t)[:20]
	pub := mustPublisher(t, url)
	for _, r := range readings {
		publish(t, pub, r.topic(prefix), r.payload())
	}
	// the broker sends the queued messages together; on a busy machine
	// they may reach the queue milliseconds apart
	s := mustSource(t, cfg)
	s.dryWait = 200 * time.Millisecond
	var mu sync.Mutex
	var acks []func()
	var groups []int // records per flush request
	all := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, "", func(r connectors.Record) error {
			mu.Lock()
			defer mu.Unlock()
			if !r.Flush {
				acks = append(acks, r.Ack)
				return nil
			}
			if len(acks) == 0 {
				return nil
			}
			groups = append(groups, len(acks))
			for _, a := range acks {
				a()
			}
			acks = acks[:0]
			n := 0
			for _, g := range groups {
				n += g
			}
			if n == len(readings) {
				close(all)
			}
			return nil
		})
	}()
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("flush requests for %v of %d messages within 30s", groups, len(readings))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(groups) != 1 {
		t.Errorf("flush requests after %v messages, want one after all %d", groups, len(readings))
	}
}
