package socket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Close codes (RFC 6455 and graphql-transport-ws).
const (
	closeNormal          = 1000
	closeGoingAway       = 1001
	closeProtocolError   = 1002
	closeInvalidPayload  = 1007
	closeTooBig          = 1009
	closeInvalidMessage  = 4400
	closeUnauthorized    = 4401
	closeForbidden       = 4403
	closeInitTimeout     = 4408
	closeSubscriberTaken = 4409
	closeTooManyInits    = 4429
)

// closeError is a reason to close the socket with a code.
type closeError struct {
	code   int
	reason string
}

func (e *closeError) Error() string { return fmt.Sprintf("websocket closed %d: %s", e.code, e.reason) }

func closeWith(code int, format string, args ...any) *closeError {
	return &closeError{code: code, reason: fmt.Sprintf(format, args...)}
}

// errPeerClosed: the client sent a close frame.
var errPeerClosed = errors.New("the client closed the websocket")

// frameReader reads a client's messages: masked frames, fragmented
// messages reassembled, control frames answered through control. It keeps
// no buffer between messages, so an idle connection holds none.
type frameReader struct {
	r     io.Reader
	limit int64
	// control is called with each ping (to answer with a pong) and close
	// frame's payload.
	control func(op ws.OpCode, payload []byte) error
}

// next returns the next text message. A binary message, an oversized one,
// text that is not UTF-8 or a protocol violation is a *closeError.
func (fr *frameReader) next() ([]byte, error) {
	var msg []byte
	var op ws.OpCode
	for {
		h, err := ws.ReadHeader(fr.r)
		if err != nil {
			if errors.Is(err, ws.ErrHeaderLengthUnexpected) || errors.Is(err, ws.ErrHeaderLengthMSB) {
				return nil, closeWith(closeProtocolError, "malformed frame header")
			}
			return nil, err
		}
		if h.Rsv != 0 {
			return nil, closeWith(closeProtocolError, "reserved bits set without an extension")
		}
		if !h.Masked {
			return nil, closeWith(closeProtocolError, "client frames must be masked")
		}
		if h.OpCode.IsControl() {
			if !h.Fin || h.Length > 125 {
				return nil, closeWith(closeProtocolError, "control frames must be whole and short")
			}
		} else if h.Length > fr.limit-int64(len(msg)) {
			return nil, closeWith(closeTooBig, "message larger than %d bytes", fr.limit)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(fr.r, payload); err != nil {
			return nil, err
		}
		ws.Cipher(payload, h.Mask, 0)
		switch {
		case h.OpCode.IsControl():
			switch h.OpCode {
			case ws.OpPing, ws.OpPong, ws.OpClose:
				if err := fr.control(h.OpCode, payload); err != nil {
					return nil, err
				}
			default:
				return nil, closeWith(closeProtocolError, "unknown control opcode %d", h.OpCode)
			}
			continue
		case h.OpCode == ws.OpContinuation:
			if op == 0 {
				return nil, closeWith(closeProtocolError, "continuation without a message")
			}
		case h.OpCode == ws.OpText || h.OpCode == ws.OpBinary:
			if op != 0 {
				return nil, closeWith(closeProtocolError, "new message inside a fragmented one")
			}
			op = h.OpCode
		default:
			return nil, closeWith(closeProtocolError, "unknown opcode %d", h.OpCode)
		}
		if msg == nil {
			msg = payload
		} else {
			msg = append(msg, payload...)
		}
		if !h.Fin {
			continue
		}
		if op == ws.OpBinary {
			return nil, closeWith(closeInvalidMessage, "binary messages are not GraphQL messages")
		}
		if !utf8.Valid(msg) {
			return nil, closeWith(closeInvalidPayload, "text message is not UTF-8")
		}
		if msg == nil {
			msg = []byte{}
		}
		return msg, nil
	}
}

// appendHeader appends an unmasked, final frame header (a server's).
func appendHeader(b []byte, op ws.OpCode, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// closeFrame is a whole close frame with a code and reason (cut to the
// 123 bytes a control frame leaves for it, on a rune boundary).
func closeFrame(code int, reason string) []byte {
	for len(reason) > 123 {
		_, size := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-size]
	}
	b := appendHeader(make([]byte, 0, 4+2+len(reason)), ws.OpClose, 2+len(reason))
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	return append(b, reason...)
}

// controlFrame is a whole control frame (ping, pong) with a payload.
func controlFrame(op ws.OpCode, payload []byte) []byte {
	return append(appendHeader(make([]byte, 0, 2+len(payload)), op, len(payload)), payload...)
}
