package jetstream

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/graph"
)

// commitClock is a store that notes when each change committed (after
// the wrapped Apply returned, before the publishing store publishes).
type commitClock struct {
	graph.Store
	mu sync.Mutex
	at map[uint64]time.Time
}

func (c *commitClock) Apply(ctx context.Context, b graph.Batch) ([]graph.Change, error) {
	ch, err := c.Store.Apply(ctx, b)
	now := time.Now()
	c.mu.Lock()
	for _, x := range ch {
		c.at[x.Seq] = now
	}
	c.mu.Unlock()
	return ch, err
}

func (c *commitClock) committed(seq uint64) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at[seq]
}

// fanOut subscribes n subscribers to hub, makes count writes through w
// (timed by b.Loop when loop is set) and returns every commit→receipt
// latency and the number of writes.
func fanOut(b *testing.B, hub *events.Hub, clock *commitClock, w graph.Store, subs, count int, loop bool) ([]time.Duration, int) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		lat []time.Duration
		err error
	}
	var total int                   // written before finished is closed
	finished := make(chan struct{}) // closed when the writes are done
	results := make(chan result, subs)
	for range subs {
		s, err := hub.Subscribe(ctx, events.Spec{Classes: []string{"StreetLight"}, Buffer: 1 << 16})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			var r result
			want, finished := -1, finished
			for want < 0 || len(r.lat) < want {
				select {
				case ev, ok := <-s.C():
					if !ok {
						r.err = fmt.Errorf("subscription ended after %d events: %v", len(r.lat), s.Err())
						results <- r
						return
					}
					r.lat = append(r.lat, time.Since(clock.committed(ev.Seq)))
				case <-finished:
					want, finished = total, nil
				case <-time.After(30 * time.Second):
					r.err = fmt.Errorf("%d events, then nothing for 30s", len(r.lat))
					results <- r
					return
				}
			}
			results <- r
		}()
	}
	write := func(i int) {
		id := fmt.Sprintf("bench-%d", i)
		if _, err := w.Apply(ctx, graph.Batch{Nodes: []graph.Node{streetLight(id, id, 42.37, -71.1, int64(i%4+1))}}); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	if loop {
		for ; b.Loop(); n++ {
			write(n)
		}
	} else {
		for ; n < count; n++ {
			write(n)
		}
	}
	total = n
	close(finished)
	var all []time.Duration
	for range subs {
		r := <-results
		if r.err != nil {
			b.Fatal(r.err)
		}
		all = append(all, r.lat...)
	}
	return all, n
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// BenchmarkBusFanOut measures commit→receipt latency per event on replica
// B for writes through replica A (two hubs over one store, one NATS
// server in this process), against the baseline of writer and
// subscribers on one hub without the bus, in the same run. One writer
// writes one node per batch. Custom metrics: bus-p50-µs, bus-p99-µs,
// hub-p50-µs, hub-p99-µs, and the ratios p50-x and p99-x (bus / hub).
//
//	go test ./events/jetstream -run='^$' -bench=BenchmarkBusFanOut -benchtime=2000x
func BenchmarkBusFanOut(b *testing.B) {
	for _, subs := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			srv := mustStartNATS(b, 0)
			hcfg := events.Config{Poll: -1, GapWait: time.Minute, Ring: 100}
			log := slog.New(slog.DiscardHandler)

			shared := mustOpenStore(b)
			a := mustStartReplica(b, shared, srv.url(), hcfg, Config{})
			r := mustStartReplica(b, shared, srv.url(), hcfg, Config{})
			clock := &commitClock{Store: shared, at: map[uint64]time.Time{}}
			viaBus, n := fanOut(b, r.hub, clock, events.Publishing(clock, a.bus, log), subs, 0, true)

			// the baseline: a store of its own and one hub, no bus
			alone := mustOpenStore(b)
			hub := events.NewHub(alone, alone, hcfg)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- hub.Run(ctx) }()
			defer func() { cancel(); <-done }()
			<-hub.Ready()
			base := &commitClock{Store: alone, at: map[uint64]time.Time{}}
			local, _ := fanOut(b, hub, base, events.Publishing(base, hub, log), subs, n, false)

			slices.Sort(viaBus)
			slices.Sort(local)
			us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
			bp50, bp99 := percentile(viaBus, 0.50), percentile(viaBus, 0.99)
			hp50, hp99 := percentile(local, 0.50), percentile(local, 0.99)
			b.ReportMetric(us(bp50), "bus-p50-µs")
			b.ReportMetric(us(bp99), "bus-p99-µs")
			b.ReportMetric(us(hp50), "hub-p50-µs")
			b.ReportMetric(us(hp99), "hub-p99-µs")
			b.ReportMetric(float64(bp50)/float64(max(hp50, 1)), "p50-x")
			b.ReportMetric(float64(bp99)/float64(max(hp99, 1)), "p99-x")
		})
	}
}
