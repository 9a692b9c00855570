package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/connectors"
)

// decoder turns one message into a record.
type decoder struct {
	payload string   // PayloadJSON or PayloadText
	max     int      // max_payload_bytes
	pattern *pattern // fields_from_topic, or nil
}

// decode returns the record of a message: on success Fields holds the
// payload's members (or its text), the topic, the topic-level fields and
// the time of receipt; otherwise Err says why. Pos names the topic and
// message id, Raw is the payload (cut to max_payload_bytes when larger).
// The topic-level fields, topic and received_at are set last: they win
// over payload members of the same name.
func (d *decoder) decode(topic string, id uint16, payload []byte, at time.Time, index int) connectors.Record {
	rec := connectors.Record{
		Pos: connectors.Position{Index: index, Message: topic + " #" + strconv.Itoa(int(id))},
		Raw: payload,
	}
	if len(payload) > d.max {
		rec.Raw = payload[:d.max]
		rec.Err = fmt.Errorf("payload of %d bytes exceeds max_payload_bytes (%d); raw bytes cut to the limit", len(payload), d.max)
		return rec
	}
	var levels []string
	if d.pattern != nil {
		var ok bool
		if levels, ok = d.pattern.match(topic); !ok {
			rec.Err = fmt.Errorf("topic %q does not match fields_from_topic %q", topic, d.pattern.text)
			return rec
		}
	}
	var fields map[string]any
	switch d.payload {
	case PayloadText:
		if !utf8.Valid(payload) {
			rec.Err = errors.New("payload is not UTF-8 text")
			return rec
		}
		fields = make(map[string]any, 3+len(levels))
		fields[FieldPayload] = string(payload)
	default:
		var err error
		// room for the payload's members and the fields added below, so
		// that the map does not grow (and rehash) as they are added
		if fields, err = decodeObject(payload, fieldsHint+len(levels)); err != nil {
			rec.Err = err
			return rec
		}
	}
	fields[FieldTopic] = topic
	if d.pattern != nil {
		for i, name := range d.pattern.names {
			fields[name] = levels[i]
		}
	}
	fields[FieldReceivedAt] = at.UTC().Format(time.RFC3339Nano)
	rec.Fields = fields
	return rec
}

// fieldsHint is the size hint of a record's fields map beyond the
// topic levels: a few payload members, the topic and received_at.
const fieldsHint = 8

// decodeObject decodes a JSON object into record fields (whole numbers as
// int64, others as float64, nested objects and lists kept), in a map
// made for at least hint members.
func decodeObject(payload []byte, hint int) (map[string]any, error) {
	i := 0
	for i < len(payload) && (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\n' || payload[i] == '\r') {
		i++
	}
	switch {
	case i == len(payload):
		return nil, errors.New("payload is empty, not a JSON object")
	case payload[i] != '{':
		if !json.Valid(payload) {
			return nil, fmt.Errorf("payload is not JSON: %w", syntaxError(payload))
		}
		return nil, errors.New("payload is JSON but not an object")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	raw := make(map[string]any, hint) // Decode fills a map it is given
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("payload is not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("payload has data after the JSON object (offset %d)", dec.InputOffset())
	}
	for k, v := range raw {
		raw[k] = connectors.NormalizeJSON(v)
	}
	return raw, nil
}

// syntaxError returns the JSON syntax error of invalid input.
func syntaxError(payload []byte) error {
	var v any
	if err := json.Unmarshal(payload, &v); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}
