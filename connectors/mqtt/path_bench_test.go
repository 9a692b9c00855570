package mqtt

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// discard is a target that takes every batch and holds nothing: the
// runner's own work, without a store's.
type discard struct{}

func (discard) Apply(context.Context, graph.Batch) ([]graph.Change, error) { return nil, nil }
func (discard) Find(context.Context, graph.FindQuery) (*graph.Page, error) {
	return &graph.Page{}, nil
}
func (discard) Nodes(_ context.Context, ids []string) ([]*graph.Node, error) {
	return make([]*graph.Node, len(ids)), nil
}

// replay is a source that decodes the same messages as Subscribe does,
// each with an acknowledgement, without a broker.
type replay struct {
	connectors.Source
	dec      *decoder
	topics   []string
	payloads [][]byte
	n        int
	acked    int
}

func (r *replay) Read(ctx context.Context, emit func(connectors.Record) error) error {
	at := time.Now()
	for i := range r.n {
		j := i % len(r.topics)
		rec := r.dec.decode(r.topics[j], uint16(i), r.payloads[j], at, i)
		rec.Ack = r.ack
		if err := emit(rec); err != nil {
			return err
		}
	}
	return nil
}

func (r *replay) ack() { r.acked++ }

// BenchmarkStreamPath measures the Go work per message of the MQTT
// stream apart from the client and the store: decoding the Beijing
// readings, the runner (journal on) mapping them with the sample's
// mapping into batches of 500 nodes, and the acknowledgements, into a
// target that discards the batches. ns/op is per message.
func BenchmarkStreamPath(b *testing.B) {
	reg := connectors.NewRegistry()
	Register(reg)
	text := strings.Replace(string(sample), "city/beijing/+/+", "bench/beijing/+/+", 1)
	text = strings.Replace(text, "fields_from_topic: city/", "fields_from_topic: bench/", 1)
	conns, err := connectors.Parse("sample.yaml", []byte(text), ontology.Default(), reg)
	if err != nil {
		b.Fatal(err)
	}
	c := conns[0]
	src := c.Reader.(*Source)
	rs := beijingReadings(b)
	rp := &replay{Source: src, dec: &src.dec}
	for _, r := range rs {
		rp.topics = append(rp.topics, r.topic("bench"))
		rp.payloads = append(rp.payloads, r.payload())
	}
	c.Reader = rp
	runner := connectors.NewRunner(connectors.RunnerConfig{Journal: true})
	b.ReportAllocs()
	b.ResetTimer()
	rp.n, rp.acked = b.N, 0
	st, err := runner.Run(b.Context(), c, discard{})
	if err != nil || st.Written != b.N || rp.acked != b.N {
		b.Fatalf("%+v, %v; %d acknowledged", st, err, rp.acked)
	}
}
