package mqtt

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// BenchmarkDecode measures the decode path of one message: a Beijing
// reading (JSON with topic fields), a FIWARE AirQualityObserved entity
// (nested JSON) and a text payload.
func BenchmarkDecode(b *testing.B) {
	aq, err := os.ReadFile("testdata/fiware_AirQualityObserved_example.json")
	if err != nil {
		b.Fatal(err)
	}
	r := beijingReadings(b)[0]
	pat := mustPattern(b, "city/+city/+sensor/+quantity")
	for _, bc := range []struct {
		name, topic string
		payload     []byte
		dec         decoder
	}{
		{"beijing-reading", r.topic("city"), r.payload(), decoder{payload: PayloadJSON, max: 1 << 20, pattern: pat}},
		{"fiware-aq-entity", "fiware/AirQualityObserved", aq, decoder{payload: PayloadJSON, max: 1 << 20}},
		{"text", "city/beijing/us-embassy/cbwd", []byte("NW"), decoder{payload: PayloadText, max: 1 << 20, pattern: pat}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.payload)))
			for b.Loop() {
				if rec := bc.dec.decode(bc.topic, 1, bc.payload, at, 0); rec.Err != nil {
					b.Fatal(rec.Err)
				}
			}
		})
	}
}

// burst is the number of messages of one BenchmarkIntegrationBurst round.
const burst = 10_000

// BenchmarkIntegrationBurst publishes bursts of 10,000 QoS 1 Beijing
// readings on four topics and waits until Subscribe emitted all of them
// (each acknowledged in emit): the path broker → client → queue → decode
// → emit. It reports messages per second.
func BenchmarkIntegrationBurst(b *testing.B) {
	url := brokerURL(b)
	prefix := unique(b)
	readings := beijingReadings(b)
	topics, payloads := make([]string, len(readings)), make([][]byte, len(readings))
	for i, r := range readings {
		topics[i], payloads[i] = r.topic(prefix), r.payload()
	}
	var n atomic.Int64
	arrived := make(chan struct{}, 1)
	s := mustSource(b, testConfig(url, prefix, prefix))
	sub := mustSubscribe(b, s, func(r connectors.Record) error {
		if r.Err != nil {
			return r.Err
		}
		r.Ack()
		if n.Add(1)%burst == 0 {
			arrived <- struct{}{}
		}
		return nil
	})
	pub := mustPublisher(b, url)
	toks := make([]paho.Token, burst)
	b.ReportAllocs()
	rounds := 0
	for b.Loop() {
		for i := range burst {
			j := (rounds*burst + i) % len(readings)
			toks[i] = pub.Publish(topics[j], 1, false, payloads[j])
		}
		for _, tok := range toks {
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				b.Fatalf("publish: %v", tok.Error())
			}
		}
		select {
		case <-arrived:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d messages arrived within a minute", n.Load()%burst, burst)
		}
		rounds++
	}
	b.ReportMetric(float64(rounds*burst)/b.Elapsed().Seconds(), "msgs/s")
	if err := sub.stop(); err != nil && err != context.Canceled {
		b.Fatal(err)
	}
}
