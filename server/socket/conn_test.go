package socket

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// pipeConn is a connection over an in-memory pipe, which holds no bytes:
// a client that does not read stalls the writer at once.
func pipeConn(t *testing.T, cfg Config) (*conn, net.Conn) {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	tr := New(cfg)
	c := &conn{t: tr, nc: server, in: server, proto: protocols[protoTransportWS], ops: map[string]*op{}}
	c.ctx, c.cancel = context.WithCancel(t.Context())
	return c, client
}

func readMessage(t *testing.T, nc net.Conn) map[string]any {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := ws.ReadFrame(nc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if f.Header.Masked || f.Header.OpCode != ws.OpText {
		t.Fatalf("frame %+v", f.Header)
	}
	var m map[string]any
	if err := json.Unmarshal(f.Payload, &m); err != nil {
		t.Fatalf("message %q: %v", f.Payload, err)
	}
	return m
}

// A subscription whose client stops reading gets what was queued, then
// the error naming the cursor of the last response it got, then complete;
// the connection's other subscription goes on.
func TestSlowClientOverflow(t *testing.T) {
	c, client := pipeConn(t, Config{Buffer: 3})
	slow := newOp(c, "slow")
	c.ops["slow"] = slow
	const sent = 20
	for i := 1; i <= sent; i++ {
		slow.send([]byte(fmt.Sprintf(`{"data":{"n":%d}}`, i)), strconv.Itoa(i))
	}
	if !slow.ended {
		t.Fatalf("%d responses queued for a client that reads none, with a buffer of 3: not ended", sent)
	}
	got := 0
	for {
		m := readMessage(t, client)
		if m["id"] != "slow" {
			t.Fatalf("message %v", m)
		}
		p, _ := m["payload"].(map[string]any)
		if errs, ok := p["errors"].([]any); ok {
			e := errs[0].(map[string]any)
			ext := e["extensions"].(map[string]any)
			if m["type"] != "next" || ext["code"] != "SUBSCRIPTION_ENDED" || ext["resumeCursor"] != strconv.Itoa(got) {
				t.Fatalf("end %v after %d responses", m, got)
			}
			break
		}
		n := int(p["data"].(map[string]any)["n"].(float64))
		if m["type"] != "next" || n != got+1 {
			t.Fatalf("response %v after %d", m, got)
		}
		got = n
	}
	if got < 1 || got > 3+1 {
		t.Fatalf("%d responses before the end; the buffer is 3 (one more may be on the wire)", got)
	}
	if m := readMessage(t, client); m["type"] != "complete" || m["id"] != "slow" {
		t.Fatalf("after the end: %v", m)
	}
	c.omu.Lock()
	left := len(c.ops)
	c.omu.Unlock()
	if left != 0 {
		t.Fatalf("%d operations left", left)
	}
	// the connection is still usable
	other := newOp(c, "2")
	other.send([]byte(`{"data":{"n":1}}`), "1")
	if m := readMessage(t, client); m["id"] != "2" || m["type"] != "next" {
		t.Fatalf("other subscription: %v", m)
	}
}

// Frames queued while a write is on the wire leave in one write, in
// order.
func TestQueuedFramesLeaveInOrder(t *testing.T) {
	c, client := pipeConn(t, Config{Buffer: 1000})
	o := newOp(c, "1")
	for i := range 500 {
		o.send([]byte(fmt.Sprintf(`{"data":{"n":%d}}`, i)), strconv.Itoa(i))
	}
	for i := range 500 {
		m := readMessage(t, client)
		if n := m["payload"].(map[string]any)["data"].(map[string]any)["n"].(float64); int(n) != i {
			t.Fatalf("message %d is %v", i, m)
		}
	}
	if o.ended {
		t.Fatal("ended within its buffer")
	}
}
