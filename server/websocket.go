package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// closeInvalidMessage is the close code graphql-transport-ws gives a
// message that is not valid JSON or not one of the protocol's messages.
const closeInvalidMessage = 4400

var errInvalidMessage = errors.New("invalid websocket message")

// messageTypes lists the messages a client may send, per subprotocol
// (graphql-transport-ws; graphql-ws, the legacy subscriptions-transport-ws
// protocol, also when no subprotocol was negotiated).
var messageTypes = map[string]map[string]bool{
	"graphql-transport-ws": {"connection_init": true, "ping": true, "pong": true, "subscribe": true, "complete": true},
	"graphql-ws":           {"connection_init": true, "start": true, "stop": true, "connection_terminate": true, "ka": true},
}

// checkedWebsocket accepts websockets whose client messages are checked
// before gqlgen reads them: a malformed one closes the socket with 4400
// and a reason, as graphql-transport-ws requires (gqlgen would close it
// as a normal closure).
type checkedWebsocket struct {
	transport.CoderWebsocketImplementation
}

func (w checkedWebsocket) Accept(rw http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	c, err := w.CoderWebsocketImplementation.Accept(rw, r, opts)
	if err != nil {
		return nil, err
	}
	types := messageTypes[c.Subprotocol()]
	if types == nil {
		types = messageTypes["graphql-ws"]
	}
	return &checkedConn{WebsocketConn: c, types: types}, nil
}

type checkedConn struct {
	transport.WebsocketConn
	types map[string]bool
}

// NextReader reads the next message whole (the connection's read limit
// bounds it) and checks that it is a JSON object of a known type.
func (c *checkedConn) NextReader() (int, io.Reader, error) {
	t, r, err := c.WebsocketConn.NextReader()
	if err != nil {
		return t, r, err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return t, nil, err
	}
	var m struct {
		Type *string `json:"type"`
	}
	if json.Unmarshal(b, &m) != nil || m.Type == nil || !c.types[*m.Type] {
		reason := "Invalid message received"
		if m.Type != nil && !c.types[*m.Type] {
			reason = "Unknown message type " + *m.Type
		}
		_ = c.WebsocketConn.WriteClose(closeInvalidMessage, reason)
		_ = c.WebsocketConn.Close()
		return 0, nil, errInvalidMessage
	}
	return t, bytes.NewReader(b), nil
}

// SetReadLimit forwards to the connection (transport.WebsocketReadLimiter).
func (c *checkedConn) SetReadLimit(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

// SetReadDeadline forwards to the connection (transport.WebsocketReadDeadliner).
func (c *checkedConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}
