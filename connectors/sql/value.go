package sql

import (
	"bytes"
	"database/sql/driver"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/connectors"
)

// Values pass through two steps. A dialect first normalises what its
// driver returns into a small set of canonical values (nil, bool, int64,
// float64, string, decimalText, timeValue, binary, jsonDoc, []any); the
// record value and the checkpoint value are then derived from those, the
// same way for every dialect.

// timeValue is a date, a zoneless timestamp or an instant.
type timeValue struct {
	t    time.Time
	kind timeKind
}

type timeKind int

const (
	instant timeKind = iota // timestamptz, MySQL TIMESTAMP: RFC 3339 in UTC
	local                   // timestamp without time zone, DATETIME: no offset
	date                    // date: 2006-01-02
)

// Layouts of time values in records.
const (
	layoutLocal = "2006-01-02T15:04:05.999999999"
	layoutDate  = "2006-01-02"
)

// binary is a byte string (bytea, BLOB); records carry it as base64.
type binary []byte

// jsonDoc is a decoded json/jsonb document.
type jsonDoc struct{ v any }

// recordValue turns a canonical value into a record value.
func recordValue(v any) any {
	switch x := v.(type) {
	case timeValue:
		switch x.kind {
		case local:
			return x.t.Format(layoutLocal)
		case date:
			return x.t.Format(layoutDate)
		}
		return x.t.UTC().Format(time.RFC3339Nano)
	case float64:
		return floatValue(x)
	case binary:
		return base64.StdEncoding.EncodeToString(x)
	case decimalText:
		return string(x)
	case jsonDoc:
		return x.v
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = recordValue(e)
		}
		return out
	}
	return v
}

// floatValue keeps finite floats; NaN and infinities, which JSON cannot
// carry, become text.
func floatValue(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

// checkpointOf turns a canonical watermark or key value into a checkpoint
// value.
func checkpointOf(v any) (Value, error) {
	switch x := v.(type) {
	case timeValue:
		// pgx gives instants in the local zone; checkpoints are UTC.
		return checkpointValue(x.t.UTC())
	case badValue:
		return Value{}, x.err
	}
	return checkpointValue(v)
}

// commonValue normalises the Go types both drivers share. ok is false for
// a type the caller must handle.
func commonValue(v any) (any, bool) {
	switch x := v.(type) {
	case nil, bool, int64, float64, string, decimalText, timeValue, binary, jsonDoc:
		return v, true
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return decimalText(strconv.FormatUint(x, 10)), true
		}
		return int64(x), true
	case float32:
		// the shortest text of the float32, read as float64: 0.1, not 0.10000000149
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return f, true
	case netip.Prefix:
		if x.IsSingleIP() {
			return x.Addr().String(), true
		}
		return x.String(), true
	case netip.Addr:
		return x.String(), true
	case [16]byte:
		return formatUUID(x), true
	}
	return nil, false
}

func formatUUID(u [16]byte) string {
	const hex = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[c>>4], hex[c&0xf]
		j += 2
	}
	return string(b[:])
}

// valuerValue falls back on driver.Valuer and fmt.Stringer for driver
// types without a record type of their own (intervals, ranges, points).
func valuerValue(v any) (any, error) {
	switch x := v.(type) {
	case driver.Valuer:
		dv, err := x.Value()
		if err != nil {
			return nil, err
		}
		if c, ok := commonValue(dv); ok {
			if _, isTime := dv.(time.Time); !isTime {
				return c, nil
			}
		}
		if t, ok := dv.(time.Time); ok {
			return timeValue{t: t, kind: instant}, nil
		}
		if b, ok := dv.([]byte); ok {
			return textOrBinary(b), nil
		}
	case fmt.Stringer:
		return x.String(), nil
	}
	return nil, fmt.Errorf("values of type %T are not supported: cast the column to text in a query", v)
}

// textOrBinary keeps valid UTF-8 as text, other bytes as binary.
func textOrBinary(b []byte) any {
	if utf8.Valid(b) {
		return string(b)
	}
	return binary(bytes.Clone(b))
}

// decodeJSON decodes a json/jsonb document; numbers become int64 when
// whole and in range, float64 otherwise.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("bad JSON: data after the document")
	}
	return connectors.NormalizeJSON(v), nil
}

// unmarshalJSON is the json/jsonb decoder handed to pgx, so that numbers
// in documents stay exact.
func unmarshalJSON(data []byte, v any) error {
	p, ok := v.(*any)
	if !ok {
		return json.Unmarshal(data, v)
	}
	doc, err := decodeJSON(data)
	if err != nil {
		return err
	}
	*p = jsonDoc{doc}
	return nil
}

// geometry returns the GeoJSON geometry held by a column value: text or a
// json/jsonb document that is an object with a type.
func geometry(v any) (json.RawMessage, error) {
	var raw []byte
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		raw = []byte(x)
	case binary:
		raw = x
	case jsonDoc:
		b, err := json.Marshal(x.v)
		if err != nil {
			return nil, err
		}
		raw = b
	default:
		return nil, fmt.Errorf("is a %T, not GeoJSON text", recordValue(v))
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("is not a GeoJSON geometry: %v", err)
	}
	if probe.Type == "" {
		return nil, fmt.Errorf("is not a GeoJSON geometry: no type")
	}
	return json.RawMessage(bytes.Clone(raw)), nil
}
