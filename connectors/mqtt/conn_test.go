package mqtt

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// loopback returns both ends of a TCP connection on 127.0.0.1.
func loopback(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// countingConn counts the writes that reach the connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// puback is an MQTT PUBACK of message id.
func puback(id int) []byte { return []byte{0x40, 2, byte(id >> 8), byte(id)} }

func TestGatheringConnKeepsOrderAndDrainsOnClose(t *testing.T) {
	client, server := loopback(t)
	cc := &countingConn{Conn: client}
	g := newGatheringConn(cc, 5*time.Second)
	var want bytes.Buffer
	for i := range 2000 {
		p := puback(i)
		want.Write(p)
		if n, err := g.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(server)
		got <- b
	}()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("the peer read %d bytes, want the %d written, in order", len(b), want.Len())
	}
	if n := cc.writes.Load(); n >= 2000 {
		t.Errorf("%d writes reached the connection for 2,000 packets written back to back, want them gathered", n)
	}
	if _, err := g.Write(puback(1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v, want net.ErrClosed", err)
	}
}

func TestGatheringConnReportsWriteErrors(t *testing.T) {
	client, server := loopback(t)
	client.Close() // every write of the connection fails
	server.Close()
	g := newGatheringConn(client, time.Second)
	defer g.Close()
	// the first write is taken; its failure comes with a later one
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := g.Write(puback(1)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes on a closed connection kept succeeding")
		}
		time.Sleep(time.Millisecond)
	}
}

// connWraps are the two ways the benchmarks use a connection: as it is,
// and through a gatheringConn.
var connWraps = []struct {
	name string
	wrap func(net.Conn) net.Conn
}{
	{"direct", func(c net.Conn) net.Conn { return c }},
	{"gathered", func(c net.Conn) net.Conn { return newGatheringConn(c, 5*time.Second) }},
}

// BenchmarkAcks writes a commit's 125 PUBACKs to a TCP connection whose
// peer reads them: one system call each (as the client does on a plain
// connection) against a gatheringConn. An op is one commit's
// acknowledgements; cpu-µs/op is the CPU time of the whole process
// (user + system, the gatheringConn's writer included) per op.
func BenchmarkAcks(b *testing.B) {
	for _, bc := range connWraps {
		b.Run(bc.name, func(b *testing.B) {
			client, server := loopback(b)
			read := make(chan struct{})
			go func() { _, _ = io.Copy(io.Discard, server); close(read) }()
			c := bc.wrap(client)
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				for i := range 125 {
					if _, err := c.Write(puback(i)); err != nil {
						b.Fatal(err)
					}
				}
			}
			c.Close() // written out
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			<-read
		})
	}
}

// processCPU returns the user and system CPU time of the process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// publishes returns n QoS 1 PUBLISH packets of a Beijing reading.
func publishes(tb testing.TB, n int) []byte {
	tb.Helper()
	r := beijingReadings(tb)[0]
	var buf bytes.Buffer
	for i := range n {
		p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		p.Qos, p.TopicName, p.MessageID, p.Payload = 1, r.topic("city"), uint16(i+1), r.payload()
		if err := p.Write(&buf); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestGatheringConnReadsInOrder(t *testing.T) {
	client, server := loopback(t)
	g := newGatheringConn(client, time.Second)
	defer g.Close()
	want := publishes(t, 300)
	go func() { _, _ = server.Write(want) }()
	for i := range 300 {
		cp, err := packets.ReadPacket(g)
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		if p, ok := cp.(*packets.PublishPacket); !ok || p.MessageID != uint16(i+1) {
			t.Fatalf("packet %d = %v", i+1, cp)
		}
	}
}

// BenchmarkReadPackets reads a commit's 125 queued PUBLISH packets as
// the client does (packets.ReadPacket), from the connection itself and
// through a gatheringConn. An op is 125 packets; cpu-µs/op as in
// BenchmarkAcks.
func BenchmarkReadPackets(b *testing.B) {
	burst := publishes(b, 125)
	for _, bc := range connWraps {
		b.Run(bc.name, func(b *testing.B) {
			client, server := loopback(b)
			c := bc.wrap(client)
			defer c.Close()
			next := make(chan bool)
			go func() {
				for range next {
					if _, err := server.Write(burst); err != nil {
						return
					}
				}
			}()
			defer close(next)
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				next <- true
				for range 125 {
					if _, err := packets.ReadPacket(c); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
