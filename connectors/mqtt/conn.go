package mqtt

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// openConnection opens the connection to the broker as the client would
// (a TCP connection, or TLS for ssl://, tls:// and mqtts://, through the
// proxy of the environment's ALL_PROXY when set), its reads buffered and
// its writes gathered by a gatheringConn.
func (s *Source) openConnection(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: s.cfg.ConnectTimeout}
	}
	var conn net.Conn
	var err error
	switch uri.Scheme {
	case "ssl", "tls", "mqtts":
		if os.Getenv("all_proxy") == "" {
			conn, err = tls.DialWithDialer(dialer, "tcp", uri.Host, o.TLSConfig)
			break
		}
		var raw net.Conn
		if raw, err = proxy.FromEnvironment().Dial("tcp", uri.Host); err != nil {
			break
		}
		tc := tls.Client(raw, o.TLSConfig)
		if err = tc.Handshake(); err != nil {
			_ = raw.Close()
			break
		}
		conn = tc
	case "tcp", "mqtt":
		conn, err = proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
	default:
		err = errors.New("mqtt: unknown protocol " + uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return newGatheringConn(conn, s.cfg.ConnectTimeout), nil
}

// readBuffer is the size of a gatheringConn's read buffer.
const readBuffer = 32 << 10

// maxGathered bounds the bytes a gatheringConn holds: a writer waits for
// the socket beyond it.
const maxGathered = 64 << 10

// gatheringConn is the client's connection to the broker, with system
// calls saved both ways. The client reads every packet in three reads or
// more (its type, each byte of its length, the rest): gatheringConn reads
// through a buffer, so that one system call brings what the broker sent
// meanwhile, e.g. dozens of queued messages. The client writes every
// packet on its own, and the acknowledgements of a commit come by the
// hundred (4 bytes each): gatheringConn writes from a goroutine of its
// own, in one system call for all that came meanwhile, for the client
// and the broker alike. Writes keep their order; Write returns once the
// bytes are taken (the error of a failed write comes with the next
// Write, and the connection is closed so that the client's reader
// notices); Close writes what is held first (for at most the drain
// timeout).
type gatheringConn struct {
	net.Conn
	r     *bufio.Reader // of Conn; the client reads from one goroutine
	drain time.Duration

	mu      sync.Mutex
	room    sync.Cond // signalled when the writer took the buffer or failed
	buf     []byte    // taken, not yet written
	spare   []byte
	err     error // the first write error
	closing bool

	wake chan struct{} // capacity 1: bytes wait
	done chan struct{} // closed when the writer ended
}

func newGatheringConn(c net.Conn, drain time.Duration) *gatheringConn {
	g := &gatheringConn{Conn: c, r: bufio.NewReaderSize(c, readBuffer), drain: drain, wake: make(chan struct{}, 1), done: make(chan struct{})}
	g.room.L = &g.mu
	go g.writer()
	return g
}

func (g *gatheringConn) Read(p []byte) (int, error) { return g.r.Read(p) }

func (g *gatheringConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	for g.err == nil && !g.closing && len(g.buf) >= maxGathered {
		g.room.Wait()
	}
	switch {
	case g.err != nil:
		err := g.err
		g.mu.Unlock()
		return 0, err
	case g.closing:
		g.mu.Unlock()
		return 0, net.ErrClosed
	}
	g.buf = append(g.buf, p...)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default: // the writer is due anyway
	}
	return len(p), nil
}

// writer writes what was taken, in order, until the connection closes or
// a write fails.
func (g *gatheringConn) writer() {
	defer close(g.done)
	for range g.wake {
		g.mu.Lock()
		out := g.buf
		g.buf, g.spare = g.spare[:0], nil
		g.room.Broadcast()
		g.mu.Unlock()
		var err error
		if len(out) > 0 {
			_, err = g.Conn.Write(out)
		}
		g.mu.Lock()
		if cap(out) <= maxGathered {
			g.spare = out[:0]
		}
		if err != nil && g.err == nil {
			g.err = err
		}
		end := g.err != nil || (g.closing && len(g.buf) == 0)
		g.room.Broadcast()
		g.mu.Unlock()
		if err != nil {
			_ = g.Conn.Close() // the client's reader fails: the connection is lost
		}
		if end {
			return
		}
	}
}

// Close writes what is held (waiting at most the drain timeout) and
// closes the connection.
func (g *gatheringConn) Close() error {
	g.mu.Lock()
	already := g.closing
	g.closing = true
	g.room.Broadcast()
	g.mu.Unlock()
	if !already {
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
	t := time.NewTimer(g.drain)
	select {
	case <-g.done:
	case <-t.C:
	}
	t.Stop()
	return g.Conn.Close()
}
