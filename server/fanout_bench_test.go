package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/graph"
)

// BenchmarkFanOut: subs graphql-ws subscribers in this process receive
// every street-light change; each iteration is one committed change.
// Reports the server and client cost per delivery (ns/delivery) and
// the time from commit to the last subscriber's receipt.
func BenchmarkFanOut(b *testing.B) {
	for _, subs := range []int{100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			s := newLiveServer(b, events.Config{Buffer: 4096})
			var got atomic.Int64
			var wg sync.WaitGroup
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for range subs {
				countingSubscriber(ctx, b, s.url, `subscription { streetLightChanged { cursor at } }`, &got, &wg)
			}
			time.Sleep(200 * time.Millisecond)
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.writes.Apply(ctx, graph.Batch{Nodes: []graph.Node{lamp(fmt.Sprintf("l%d", i), "OK")}}); err != nil {
					b.Fatal(err)
				}
			}
			want := int64(b.N * subs)
			deadline := time.Now().Add(2 * time.Minute)
			for got.Load() < want && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			if got.Load() < want {
				b.Fatalf("%d of %d deliveries", got.Load(), want)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/delivery")
			cancel()
			wg.Wait()
		})
	}
}

// countingSubscriber subscribes to query over a new graphql-ws connection
// and counts the responses it receives in got until ctx ends.
func countingSubscriber(ctx context.Context, b *testing.B, url, query string, got *atomic.Int64, wg *sync.WaitGroup) {
	b.Helper()
	c := dialWSB(b, url)
	msg, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query}})
	if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
		b.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			_, m, err := c.Read(ctx)
			if err != nil {
				return
			}
			if bytes.Contains(m, []byte(`"type":"next"`)) {
				got.Add(1)
			}
		}
	}()
}

func dialWSB(b *testing.B, url string) *websocket.Conn {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+url[len("http"):], &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.CloseNow() })
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_init"}`)); err != nil {
		b.Fatal(err)
	}
	if _, m, err := c.Read(ctx); err != nil || !bytes.Contains(m, []byte("connection_ack")) {
		b.Fatalf("init: %s %v", m, err)
	}
	return c
}

// BenchmarkFanOutDistinct: subs graphql-ws subscribers, each with a filter
// of its own (nothing is shared): a name (eq), 50 m around its street
// light (near), both of which the hub finds by value or place, or a part
// of the name (contains), tested against every change: the baseline. Each
// committed change matches one of them. Reports the
// time per change: what an idle subscription costs every change that is
// not for it.
func BenchmarkFanOutDistinct(b *testing.B) {
	for _, bc := range []struct {
		filter string
		subs   int
	}{{"contains", 1}, {"contains", 1000}, {"contains", 4000}, {"eq", 1}, {"eq", 1000}, {"eq", 4000}, {"near", 1}, {"near", 1000}, {"near", 4000}} {
		subs := bc.subs
		where := func(i int) string {
			switch bc.filter {
			case "near":
				return fmt.Sprintf(`{near: {lat: %f, lon: -71, meters: 50}}`, 42+float64(i)*0.001)
			case "contains":
				return fmt.Sprintf(`{name: {contains: "lamp l%dx"}}`, i)
			}
			return fmt.Sprintf(`{name: {eq: "Lamp l%dx"}}`, i)
		}
		b.Run(fmt.Sprintf("filter=%s/subs=%d", bc.filter, subs), func(b *testing.B) {
			s := newLiveServer(b, events.Config{Buffer: 4096})
			var got atomic.Int64
			var wg sync.WaitGroup
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for i := range subs {
				countingSubscriber(ctx, b, s.url, fmt.Sprintf(`subscription { streetLightChanged(where: %s) { cursor at } }`, where(i)), &got, &wg)
			}
			for s.srv.WebsocketStats().Executions < subs {
				time.Sleep(10 * time.Millisecond)
			}
			b.ResetTimer()
			for i := range b.N {
				n := lamp(fmt.Sprintf("l%dx", i%subs), "OK")
				n.Props["powerRatingW"] = float64(i) // a change each time
				n.Geometry = graph.PointGeometry(42+float64(i%subs)*0.001, -71)
				if _, err := s.writes.Apply(ctx, graph.Batch{Nodes: []graph.Node{n}}); err != nil {
					b.Fatal(err)
				}
			}
			want := int64(b.N)
			deadline := time.Now().Add(2 * time.Minute)
			for got.Load() < want && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			if got.Load() < want {
				b.Fatalf("%d of %d deliveries", got.Load(), want)
			}
			cancel()
			wg.Wait()
		})
	}
}
