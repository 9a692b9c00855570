package socket

import (
	"bytes"
	"encoding/json"
)

// The two subprotocols. A client that names neither speaks the legacy one
// (subscriptions-transport-ws predates subprotocol negotiation).
const (
	protoTransportWS = "graphql-transport-ws" // graphql-ws
	protoLegacy      = "graphql-ws"           // subscriptions-transport-ws
)

// protocol is one subprotocol's message vocabulary.
type protocol struct {
	name string
	// client message types, mapped to what they mean
	kinds map[string]kind
	// server message types
	next, err, complete string
	// legacy: keep-alives after the ack, stop answered by complete,
	// connection_error before an init failure's close
	legacy bool
}

type kind int

const (
	kindInit kind = iota + 1
	kindSubscribe
	kindStop
	kindPing
	kindPong
	kindTerminate
)

var protocols = map[string]*protocol{
	protoTransportWS: {
		name:  protoTransportWS,
		kinds: map[string]kind{"connection_init": kindInit, "subscribe": kindSubscribe, "complete": kindStop, "ping": kindPing, "pong": kindPong},
		next:  "next", err: "error", complete: "complete",
	},
	protoLegacy: {
		name:  protoLegacy,
		kinds: map[string]kind{"connection_init": kindInit, "start": kindSubscribe, "stop": kindStop, "connection_terminate": kindTerminate, "ka": kindPong},
		next:  "data", err: "error", complete: "complete",
		legacy: true,
	},
}

// message is a client's message.
type message struct {
	kind    kind
	id      string
	payload json.RawMessage
}

// decode reads a client message. Anything that is not a JSON object of
// one of the protocol's client types, with an id where one is needed, is
// a *closeError with code 4400 (graphql-transport-ws's "invalid message";
// the legacy protocol has none of its own).
func (p *protocol) decode(b []byte) (message, error) {
	var m struct {
		Type    *string         `json:"type"`
		ID      *string         `json:"id"`
		Payload json.RawMessage `json:"payload"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&m); err != nil || d.More() {
		return message{}, closeWith(closeInvalidMessage, "Invalid message received")
	}
	if m.Type == nil {
		return message{}, closeWith(closeInvalidMessage, "Invalid message received: no type")
	}
	k := p.kinds[*m.Type]
	if k == 0 {
		return message{}, closeWith(closeInvalidMessage, "Unknown message type %q", *m.Type)
	}
	out := message{kind: k, payload: m.Payload}
	if m.ID != nil {
		out.id = *m.ID
	}
	if (k == kindSubscribe || k == kindStop) && out.id == "" {
		return message{}, closeWith(closeInvalidMessage, "Invalid message received: %s needs an id", *m.Type)
	}
	if k == kindSubscribe && (len(m.Payload) == 0 || m.Payload[0] != '{') {
		return message{}, closeWith(closeInvalidMessage, "Invalid message received: %s needs a payload object", *m.Type)
	}
	return out, nil
}

// envelope renders {"id":…,"type":…,"payload": as the prefix of a
// server message whose payload follows (then "}"); without a payload the
// object is closed.
func envelope(b []byte, idJSON []byte, typ string, withPayload bool) []byte {
	b = append(b, '{')
	if idJSON != nil {
		b = append(b, `"id":`...)
		b = append(b, idJSON...)
		b = append(b, ',')
	}
	b = append(b, `"type":"`...)
	b = append(b, typ...)
	if withPayload {
		return append(b, `","payload":`...)
	}
	return append(b, `"}`...)
}
