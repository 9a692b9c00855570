package socket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gobwas/ws"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// frame is one server message queued for a connection: its websocket
// header, then head, payload (shared between the clients of an
// execution) and tail.
type frame struct {
	hdr                 [10]byte
	hn                  uint8 // bytes of hdr used (0: head holds a whole control frame)
	head, payload, tail []byte
	op                  *op  // the subscription it counts against (nil: none)
	last                bool // close the connection once it is written
}

// textFrame is a text message of head, payload and tail.
func textFrame(head, payload, tail []byte) frame {
	f := frame{head: head, payload: payload, tail: tail}
	f.hn = uint8(len(appendHeader(f.hdr[:0], ws.OpText, len(head)+len(payload)+len(tail))))
	return f
}

func rawFrame(msg []byte) frame { return textFrame(nil, msg, nil) }

// conn is one websocket.
type conn struct {
	t       *Transport
	nc      net.Conn
	in      io.Reader
	proto   *protocol
	exec    graphql.GraphExecutor
	headers http.Header
	ctx     context.Context
	cancel  context.CancelFunc
	acked   atomic.Bool
	slot    int // keep-alive turn

	wmu     sync.Mutex // guards the write queue
	queue   []frame
	spare   []frame // an emptied queue, kept while short
	writing bool    // a writer goroutine is running
	closing bool    // a close frame is queued: nothing more is

	omu sync.Mutex // guards ops
	ops map[string]*op
}

// serve reads the client's messages until the connection ends.
func (c *conn) serve() {
	defer c.shutdown()
	fr := &frameReader{r: c.in, limit: c.t.cfg.ReadLimit, control: c.control}
	_ = c.nc.SetReadDeadline(time.Now().Add(c.t.cfg.InitTimeout))
	for {
		b, err := fr.next()
		if err != nil {
			var ce *closeError
			var ne net.Error
			switch {
			case errors.As(err, &ce):
				c.close(ce.code, ce.reason)
			case !c.acked.Load() && errors.As(err, &ne) && ne.Timeout():
				c.close(closeInitTimeout, "Connection initialisation timeout")
			}
			return
		}
		m, err := c.proto.decode(b)
		if err != nil {
			var ce *closeError
			errors.As(err, &ce)
			c.close(ce.code, ce.reason)
			return
		}
		if !c.handle(m) {
			return
		}
	}
}

// control answers a ping and a close; a close ends the reading.
func (c *conn) control(op ws.OpCode, payload []byte) error {
	switch op {
	case ws.OpPing:
		c.enqueue(frame{head: controlFrame(ws.OpPong, payload)}, nil)
	case ws.OpClose:
		code, reason := closeNormal, ""
		if len(payload) >= 2 {
			sc, _ := ws.ParseCloseFrameData(payload)
			code = int(sc)
		}
		c.close(code, reason)
		return errPeerClosed
	}
	return nil
}

// handle acts on one message; false ends the connection.
func (c *conn) handle(m message) bool {
	switch m.kind {
	case kindInit:
		if c.acked.Load() {
			c.close(closeTooManyInits, "Too many initialisation requests")
			return false
		}
		return c.init(m.payload)
	case kindSubscribe:
		if !c.acked.Load() {
			c.close(closeUnauthorized, "Unauthorized")
			return false
		}
		return c.subscribe(m.id, m.payload)
	case kindStop:
		c.omu.Lock()
		o := c.ops[m.id]
		c.omu.Unlock()
		if o != nil {
			o.end(c.proto.legacy) // the legacy protocol confirms a stop
		}
	case kindPing:
		msg := envelope(nil, nil, "pong", len(m.payload) > 0)
		if len(m.payload) > 0 {
			msg = append(append(msg, m.payload...), '}')
		}
		c.enqueue(rawFrame(msg), nil)
	case kindPong:
	case kindTerminate:
		c.close(closeNormal, "terminated")
		return false
	}
	return true
}

func (c *conn) init(payload json.RawMessage) bool {
	var p transport.InitPayload
	if len(payload) > 0 && string(payload) != "null" {
		if err := json.Unmarshal(payload, &p); err != nil {
			c.close(closeInvalidMessage, "Invalid message received: connection_init payload is not an object")
			return false
		}
	}
	if f := c.t.cfg.InitFunc; f != nil {
		ctx, err := f(c.ctx, p)
		if err != nil {
			if c.proto.legacy {
				b, _ := json.Marshal(gqlerror.Errorf("%s", err.Error()))
				c.enqueue(rawFrame(append(envelope(nil, nil, "connection_error", true), append(b, '}')...)), nil)
			}
			c.close(closeForbidden, "Forbidden: "+err.Error())
			return false
		}
		if ctx != nil {
			c.ctx = ctx
		}
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	c.acked.Store(true)
	c.enqueue(rawFrame(envelope(nil, nil, "connection_ack", false)), nil)
	if c.proto.legacy {
		c.enqueue(rawFrame(envelope(nil, nil, "ka", false)), nil)
	}
	return true
}

// subscribe registers operation id and starts it in its own goroutine, so
// that the reader stays shallow and free for the next message.
func (c *conn) subscribe(id string, payload json.RawMessage) bool {
	o := newOp(c, id)
	c.omu.Lock()
	if c.ops[id] != nil {
		c.omu.Unlock()
		c.close(closeSubscriberTaken, "Subscriber for "+id+" already exists")
		return false
	}
	c.ops[id] = o
	c.omu.Unlock()
	start := graphql.Now()
	go o.run(payload, start)
	return true
}

// enqueue queues f for writing. With o, f is one of o's responses: past
// o's buffer it is refused (false) and o is ended by the caller.
func (c *conn) enqueue(f frame, o *op) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing {
		return true // the connection is going: nothing to tell anyone
	}
	if o != nil {
		if o.queued >= c.t.cfg.Buffer {
			return false
		}
		o.queued++
		f.op = o
	}
	if f.last {
		c.closing = true
	}
	if c.queue == nil {
		c.queue, c.spare = c.spare, nil
	}
	c.queue = append(c.queue, f)
	if !c.writing {
		c.writing = true
		go c.write()
	}
	return true
}

// write puts the queued frames on the wire, all that are queued in one
// system call, until the queue is empty.
func (c *conn) write() {
	var bufs net.Buffers
	for {
		c.wmu.Lock()
		q := c.queue
		c.queue = nil
		if len(q) == 0 {
			c.writing = false
			c.wmu.Unlock()
			return
		}
		last := false
		for _, f := range q {
			if f.op != nil {
				f.op.queued--
			}
			last = last || f.last
		}
		c.wmu.Unlock()
		bufs = bufs[:0]
		for i := range q {
			f := &q[i]
			if f.hn > 0 {
				bufs = append(bufs, f.hdr[:f.hn])
			}
			for _, b := range [][]byte{f.head, f.payload, f.tail} {
				if len(b) > 0 {
					bufs = append(bufs, b)
				}
			}
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.t.cfg.WriteTimeout))
		_, err := bufs.WriteTo(c.nc)
		clear(q)
		if cap(q) <= 8 {
			c.wmu.Lock()
			c.spare = q[:0]
			c.wmu.Unlock()
		}
		if err != nil || last {
			if err != nil && !errors.Is(err, net.ErrClosed) {
				c.t.cfg.Log.Debug("websocket write failed", "err", err)
			}
			c.wmu.Lock()
			c.closing = true
			c.queue = nil
			c.writing = false
			c.wmu.Unlock()
			_ = c.nc.Close()
			return
		}
	}
}

// close queues a close frame; the connection closes once it is written.
func (c *conn) close(code int, reason string) {
	c.enqueue(frame{head: closeFrame(code, reason), last: true}, nil)
	c.cancel()
}

// shutdown ends every operation and forgets the connection.
func (c *conn) shutdown() {
	c.cancel()
	c.omu.Lock()
	ops := make([]*op, 0, len(c.ops))
	for _, o := range c.ops {
		ops = append(ops, o)
	}
	c.omu.Unlock()
	for _, o := range ops {
		o.end(false)
	}
	c.wmu.Lock()
	idle := !c.writing
	c.closing = true
	c.wmu.Unlock()
	if idle {
		_ = c.nc.Close()
	}
	c.t.forget(c)
}

// op is one operation (subscribe/start) of a connection.
type op struct {
	c      *conn
	id     string
	idJSON []byte
	next   []byte // envelope of its responses, up to the payload
	ctx    context.Context
	cancel context.CancelFunc
	queued int // responses queued, under c.wmu

	mu         sync.Mutex
	g          *group
	ended      bool
	lastCursor string // cursor of the last response queued
}

func newOp(c *conn, id string) *op {
	idJSON, _ := json.Marshal(id)
	o := &op{c: c, id: id, idJSON: idJSON, next: envelope(nil, idJSON, c.proto.next, true)}
	o.ctx, o.cancel = context.WithCancel(c.ctx)
	return o
}

// run executes the operation: a query or mutation once, a subscription by
// joining an execution.
func (o *op) run(payload json.RawMessage, start time.Time) {
	c := o.c
	ctx := graphql.StartOperationTrace(o.ctx)
	params := &graphql.RawParams{}
	if err := jsonDecode(payload, params); err != nil {
		o.fail(gqlerror.List{{Message: "invalid json"}})
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	params.Headers = c.headers
	rc, errs := c.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			o.fail(resp.Errors)
			return
		}
		o.respond(resp, "")
		o.end(true)
		return
	}
	ctx = graphql.WithOperationContext(ctx, rc)
	if rc.Operation.Operation != ast.Subscription {
		func() {
			defer func() {
				if r := recover(); r != nil {
					o.respond(&graphql.Response{Errors: gqlerror.List{presentPanic(ctx, rc, r)}}, "")
				}
			}()
			responses, ctx := c.exec.DispatchOperation(ctx, rc)
			o.respond(responses(ctx), "")
		}()
		o.end(true)
		return
	}
	c.t.join(c.t.shareKey(ctx, rc), o, ctx, rc)
}

// fail answers with an error message (errors before execution) and ends
// the operation.
func (o *op) fail(errs gqlerror.List) {
	b, _ := json.Marshal(errs)
	o.c.enqueue(textFrame(envelope(nil, o.idJSON, o.c.proto.err, true), b, closeBrace), nil)
	o.end(false)
}

var closeBrace = []byte("}")

// respond queues one response of o (rendered once per execution: payload
// is shared). A response past o's buffer ends o with the cursor to resume
// from.
func (o *op) respond(resp *graphql.Response, cursor string) {
	if resp == nil {
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(graphql.Response{Errors: gqlerror.List{{Message: "response could not be encoded: " + err.Error()}}})
	}
	o.send(b, cursor)
}

// send queues a rendered response.
func (o *op) send(payload []byte, cursor string) {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return
	}
	if !o.c.enqueue(textFrame(o.next, payload, closeBrace), o) {
		o.mu.Unlock()
		o.overflow()
		return
	}
	if cursor != "" {
		o.lastCursor = cursor
	}
	o.mu.Unlock()
}

// overflow ends a subscription whose client fell a buffer behind, with
// the error and the cursor of the last response it will receive.
func (o *op) overflow() {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return
	}
	cursor := o.lastCursor
	o.mu.Unlock()
	err := endError(cursor, o.c.t.cfg.Buffer)
	b, _ := json.Marshal(graphql.Response{Errors: gqlerror.List{err}})
	o.c.enqueue(textFrame(o.next, b, closeBrace), nil)
	o.end(true)
}

// end ends the operation: it leaves its execution and, with complete,
// tells the client.
func (o *op) end(complete bool) {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return
	}
	o.ended = true
	g := o.g
	o.mu.Unlock()
	o.cancel()
	c := o.c
	c.omu.Lock()
	if c.ops[o.id] == o {
		delete(c.ops, o.id)
	}
	c.omu.Unlock()
	if complete {
		msg := envelope(nil, o.idJSON, c.proto.complete, false)
		c.enqueue(rawFrame(msg), nil)
	}
	if g != nil {
		g.remove(o)
	}
}

func jsonDecode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
