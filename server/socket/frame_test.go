package socket

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// clientFrame is a masked frame as a client sends it.
func clientFrame(fin bool, op ws.OpCode, payload []byte) []byte {
	var b bytes.Buffer
	h := ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload)), Masked: true, Mask: [4]byte{1, 2, 3, 4}}
	if err := ws.WriteHeader(&b, h); err != nil {
		panic(err)
	}
	p := append([]byte(nil), payload...)
	ws.Cipher(p, h.Mask, 0)
	b.Write(p)
	return b.Bytes()
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestFrameReader(t *testing.T) {
	unmasked := func(op ws.OpCode, p string) []byte {
		var b bytes.Buffer
		_ = ws.WriteFrame(&b, ws.NewFrame(op, true, []byte(p)))
		return b.Bytes()
	}
	tests := []struct {
		name      string
		in        []byte
		want      string // the message, when no close code is wanted
		code      int    // the close code wanted
		pings     int
		peerClose bool
	}{
		{name: "text", in: clientFrame(true, ws.OpText, []byte(`{"type":"ping"}`)), want: `{"type":"ping"}`},
		{name: "empty text", in: clientFrame(true, ws.OpText, nil), want: ``},
		{name: "fragmented with a ping between", in: cat(
			clientFrame(false, ws.OpText, []byte(`{"type":`)),
			clientFrame(true, ws.OpPing, []byte("hi")),
			clientFrame(false, ws.OpContinuation, []byte(`"pi`)),
			clientFrame(true, ws.OpContinuation, []byte(`ng"}`))), want: `{"type":"ping"}`, pings: 1},
		{name: "unmasked", in: unmasked(ws.OpText, "{}"), code: closeProtocolError},
		{name: "too big", in: clientFrame(true, ws.OpText, bytes.Repeat([]byte("a"), 65)), code: closeTooBig},
		{name: "too big in fragments", in: cat(clientFrame(false, ws.OpText, bytes.Repeat([]byte("a"), 40)),
			clientFrame(true, ws.OpContinuation, bytes.Repeat([]byte("a"), 40))), code: closeTooBig},
		{name: "binary", in: clientFrame(true, ws.OpBinary, []byte("{}")), code: closeInvalidMessage},
		{name: "not UTF-8", in: clientFrame(true, ws.OpText, []byte{0xff, 0xfe}), code: closeInvalidPayload},
		{name: "continuation first", in: clientFrame(true, ws.OpContinuation, []byte("x")), code: closeProtocolError},
		{name: "text inside a fragmented text", in: cat(clientFrame(false, ws.OpText, []byte("a")), clientFrame(true, ws.OpText, []byte("b"))), code: closeProtocolError},
		{name: "fragmented ping", in: clientFrame(false, ws.OpPing, nil), code: closeProtocolError},
		{name: "reserved opcode", in: clientFrame(true, ws.OpCode(3), nil), code: closeProtocolError},
		{name: "close", in: clientFrame(true, ws.OpClose, []byte{0x03, 0xe8}), peerClose: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pings := 0
			fr := &frameReader{r: bytes.NewReader(tt.in), limit: 64, control: func(op ws.OpCode, p []byte) error {
				switch op {
				case ws.OpPing:
					if string(p) != "hi" {
						t.Errorf("ping payload %q", p)
					}
					pings++
				case ws.OpClose:
					return errPeerClosed
				}
				return nil
			}}
			got, err := fr.next()
			var ce *closeError
			switch {
			case tt.peerClose:
				if !errors.Is(err, errPeerClosed) {
					t.Fatalf("got %q, %v; want the peer's close", got, err)
				}
			case tt.code != 0:
				if !errors.As(err, &ce) || ce.code != tt.code {
					t.Fatalf("got %q, %v; want close %d", got, err, tt.code)
				}
			default:
				if err != nil || string(got) != tt.want || got == nil {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
			}
			if pings != tt.pings {
				t.Errorf("%d pings answered, want %d", pings, tt.pings)
			}
		})
	}
}

func TestFrameReaderEOF(t *testing.T) {
	whole := clientFrame(true, ws.OpText, []byte(`{"type":"ping"}`))
	for n := range len(whole) {
		fr := &frameReader{r: bytes.NewReader(whole[:n]), limit: 64, control: func(ws.OpCode, []byte) error { return nil }}
		if _, err := fr.next(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d of %d bytes: %v, want EOF", n, len(whole), err)
		}
	}
}

func TestServerFrames(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		p := bytes.Repeat([]byte("x"), n)
		b := append(appendHeader(nil, ws.OpText, n), p...)
		f, err := ws.ReadFrame(bytes.NewReader(b))
		if err != nil || !f.Header.Fin || f.Header.Masked || f.Header.OpCode != ws.OpText || len(f.Payload) != n {
			t.Fatalf("%d bytes: %+v %v", n, f.Header, err)
		}
	}
	long := string(bytes.Repeat([]byte("é"), 100)) // 200 bytes
	f, err := ws.ReadFrame(bytes.NewReader(closeFrame(4400, long)))
	if err != nil {
		t.Fatal(err)
	}
	code, reason := ws.ParseCloseFrameData(f.Payload)
	if code != 4400 || len(f.Payload) > 125 || !utf8.ValidString(reason) || len(reason) != 122 {
		t.Fatalf("close frame: code %d, %d bytes, reason %q", code, len(f.Payload), reason)
	}
}

// FuzzFrameReader: any byte stream gives a message that is UTF-8 and
// within the limit, or an error; never a panic.
func FuzzFrameReader(f *testing.F) {
	f.Add(clientFrame(true, ws.OpText, []byte(`{"type":"connection_init"}`)))
	f.Add(cat(clientFrame(false, ws.OpText, []byte(`{"a":`)), clientFrame(true, ws.OpPing, nil), clientFrame(true, ws.OpContinuation, []byte(`1}`))))
	f.Add(clientFrame(true, ws.OpClose, []byte{0x03, 0xe8, 'b', 'y', 'e'}))
	f.Add([]byte{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := &frameReader{r: bytes.NewReader(in), limit: 256, control: func(op ws.OpCode, p []byte) error {
			if len(p) > 125 {
				t.Fatalf("control payload of %d bytes", len(p))
			}
			return nil
		}}
		for {
			msg, err := fr.next()
			if err != nil {
				return
			}
			if len(msg) > 256 || !utf8.Valid(msg) {
				t.Fatalf("message %q", msg)
			}
		}
	})
}

func TestDecode(t *testing.T) {
	tw, legacy := protocols[protoTransportWS], protocols[protoLegacy]
	tests := []struct {
		p    *protocol
		in   string
		kind kind
		id   string
		bad  string // part of the close reason
	}{
		{p: tw, in: `{"type":"connection_init","payload":{"Authorization":"Bearer x"}}`, kind: kindInit},
		{p: tw, in: `{"type":"subscribe","id":"1","payload":{"query":"{ a }"}}`, kind: kindSubscribe, id: "1"},
		{p: tw, in: `{"type":"complete","id":"1"}`, kind: kindStop, id: "1"},
		{p: tw, in: `{"type":"ping"}`, kind: kindPing},
		{p: legacy, in: `{"type":"start","id":"7","payload":{"query":"{ a }"}}`, kind: kindSubscribe, id: "7"},
		{p: legacy, in: `{"type":"stop","id":"7"}`, kind: kindStop, id: "7"},
		{p: legacy, in: `{"type":"connection_terminate"}`, kind: kindTerminate},
		{p: tw, in: `{"type":"subscribe","id":"4"`, bad: "Invalid message"},
		{p: tw, in: `{"type":"start","id":"4","payload":{}}`, bad: `Unknown message type "start"`},
		{p: legacy, in: `{"type":"subscribe","id":"4","payload":{}}`, bad: `Unknown message type "subscribe"`},
		{p: tw, in: `{"id":"4"}`, bad: "no type"},
		{p: tw, in: `{"type":"subscribe","payload":{}}`, bad: "needs an id"},
		{p: tw, in: `{"type":"subscribe","id":"1","payload":"{}"}`, bad: "payload object"},
		{p: tw, in: `{"type":"ping"} {"type":"ping"}`, bad: "Invalid message"},
		{p: tw, in: `[]`, bad: "Invalid message"},
	}
	for _, tt := range tests {
		m, err := tt.p.decode([]byte(tt.in))
		if tt.bad != "" {
			var ce *closeError
			if !errors.As(err, &ce) || ce.code != closeInvalidMessage || !bytes.Contains([]byte(ce.reason), []byte(tt.bad)) {
				t.Errorf("%s %s: %+v, %v; want 4400 %q", tt.p.name, tt.in, m, err, tt.bad)
			}
			continue
		}
		if err != nil || m.kind != tt.kind || m.id != tt.id {
			t.Errorf("%s %s: %+v, %v; want kind %d id %q", tt.p.name, tt.in, m, err, tt.kind, tt.id)
		}
	}
}

// FuzzDecode: a message is refused with 4400 or has a known kind, and a
// subscribe has an id and a payload object.
func FuzzDecode(f *testing.F) {
	f.Add(`{"type":"subscribe","id":"1","payload":{"query":"subscription { changes { op } }"}}`, false)
	f.Add(`{"type":"start","id":"1","payload":{}}`, true)
	f.Add(`{"type":"connection_init","payload":null}`, false)
	f.Fuzz(func(t *testing.T, in string, legacy bool) {
		p := protocols[protoTransportWS]
		if legacy {
			p = protocols[protoLegacy]
		}
		m, err := p.decode([]byte(in))
		if err != nil {
			var ce *closeError
			if !errors.As(err, &ce) || ce.code != closeInvalidMessage {
				t.Fatalf("%q: %v", in, err)
			}
			return
		}
		if m.kind < kindInit || m.kind > kindTerminate {
			t.Fatalf("%q: kind %d", in, m.kind)
		}
		if m.kind == kindSubscribe && (m.id == "" || len(m.payload) == 0 || m.payload[0] != '{') {
			t.Fatalf("%q: subscribe %+v", in, m)
		}
	})
}
