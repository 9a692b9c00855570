package sql

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Checkpoint is the position after one row: its watermark and key values.
// Its text form (Encode) is the Record.Checkpoint the source emits, a JSON
// object with one typed value per column:
//
//	{"watermark":{"time":"2022-01-21T18:47:00.123456Z"},"key":{"int":"101004143000"}}
//
// A typed value has exactly one member, named after its type:
//
//	int      a whole number, as decimal text (exact over the whole int64 range)
//	float    a float64 as the shortest text that reads back to the same bits
//	decimal  a NUMERIC/DECIMAL value as the server printed it (exact)
//	string   text, as is
//	time     a timestamp in RFC 3339 with up to nine fractional digits and
//	         its zone offset (zoneless SQL timestamps are written as UTC)
//
// Each value is bound back as a query parameter of its type, so resuming
// compares with the server's own ordering and never rounds.
type Checkpoint struct {
	Watermark Value
	Key       Value
}

// Value is one typed checkpoint value: exactly one of its fields is used,
// named by Type.
type Value struct {
	Type ValueType
	Int  int64
	Num  float64
	Text string // string and decimal values
	Time time.Time
}

// ValueType is the type of a checkpoint value.
type ValueType string

// The checkpoint value types.
const (
	TypeInt     ValueType = "int"
	TypeFloat   ValueType = "float"
	TypeDecimal ValueType = "decimal"
	TypeString  ValueType = "string"
	TypeTime    ValueType = "time"
)

// maxCheckpointBytes bounds a checkpoint's text: keys and watermarks are
// short; anything longer is not one of ours.
const maxCheckpointBytes = 64 << 10

// Encode returns the checkpoint's text form.
func (c Checkpoint) Encode() string {
	var b bytes.Buffer
	b.WriteString(`{"watermark":`)
	c.Watermark.encode(&b)
	b.WriteString(`,"key":`)
	c.Key.encode(&b)
	b.WriteByte('}')
	return b.String()
}

func (v Value) encode(b *bytes.Buffer) {
	var text string
	switch v.Type {
	case TypeInt:
		text = strconv.FormatInt(v.Int, 10)
	case TypeFloat:
		text = strconv.FormatFloat(v.Num, 'g', -1, 64)
	case TypeTime:
		text = v.Time.Format(time.RFC3339Nano)
	default:
		text = v.Text
	}
	q, _ := json.Marshal(text) // a string always marshals
	b.WriteString(`{"`)
	b.WriteString(string(v.Type))
	b.WriteString(`":`)
	b.Write(q)
	b.WriteByte('}')
}

// DecodeCheckpoint parses a checkpoint's text form. Anything else than
// what Encode writes (unknown members, several or no typed members, a
// number that does not parse, a time without a zone) is an error.
func DecodeCheckpoint(s string) (Checkpoint, error) {
	var c Checkpoint
	if len(s) > maxCheckpointBytes {
		return c, fmt.Errorf("checkpoint is %d bytes long, more than %d", len(s), maxCheckpointBytes)
	}
	var raw struct {
		Watermark map[string]string `json:"watermark"`
		Key       map[string]string `json:"key"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return c, fmt.Errorf("checkpoint %.80q is not a checkpoint of this source: %w", s, err)
	}
	if dec.More() {
		return c, fmt.Errorf("checkpoint %.80q has data after its object", s)
	}
	var err error
	if c.Watermark, err = decodeValue(raw.Watermark); err != nil {
		return c, fmt.Errorf("checkpoint watermark: %w", err)
	}
	if c.Key, err = decodeValue(raw.Key); err != nil {
		return c, fmt.Errorf("checkpoint key: %w", err)
	}
	return c, nil
}

func decodeValue(m map[string]string) (Value, error) {
	if len(m) != 1 {
		return Value{}, fmt.Errorf("want one typed member (int, float, decimal, string or time), found %d", len(m))
	}
	var v Value
	for t, text := range m {
		v.Type = ValueType(t)
		switch v.Type {
		case TypeInt:
			n, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				return v, fmt.Errorf("int %q: %w", text, errors.Unwrap(err))
			}
			v.Int = n
		case TypeFloat:
			f, err := strconv.ParseFloat(text, 64)
			if err != nil {
				return v, fmt.Errorf("float %q: %w", text, errors.Unwrap(err))
			}
			v.Num = f
		case TypeDecimal:
			if !isDecimal(text) {
				return v, fmt.Errorf("decimal %q is not a decimal number", text)
			}
			v.Text = text
		case TypeString:
			if !utf8.ValidString(text) {
				return v, fmt.Errorf("string is not valid UTF-8")
			}
			v.Text = text
		case TypeTime:
			tm, err := time.Parse(time.RFC3339Nano, text)
			if err != nil {
				return v, fmt.Errorf("time %q is not RFC 3339 with a zone", text)
			}
			v.Time = tm
		default:
			return v, fmt.Errorf("unknown value type %q (want int, float, decimal, string or time)", t)
		}
	}
	return v, nil
}

// isDecimal accepts what NUMERIC prints: [-]digits[.digits], NaN, and
// [-]Infinity.
func isDecimal(s string) bool {
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return true
	}
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// param returns the value to bind as a query parameter.
func (v Value) param() any {
	switch v.Type {
	case TypeInt:
		return v.Int
	case TypeFloat:
		return v.Num
	case TypeTime:
		return v.Time
	default:
		return v.Text
	}
}

// String renders the value for positions and messages.
func (v Value) String() string {
	switch v.Type {
	case TypeInt:
		return strconv.FormatInt(v.Int, 10)
	case TypeFloat:
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	case TypeTime:
		return v.Time.Format(time.RFC3339Nano)
	default:
		return v.Text
	}
}

// checkpointValue turns a watermark or key value, as the driver returned
// it, into a checkpoint value.
func checkpointValue(v any) (Value, error) {
	switch x := v.(type) {
	case int64:
		return Value{Type: TypeInt, Int: x}, nil
	case int32:
		return Value{Type: TypeInt, Int: int64(x)}, nil
	case int16:
		return Value{Type: TypeInt, Int: int64(x)}, nil
	case int8:
		return Value{Type: TypeInt, Int: int64(x)}, nil
	case uint32:
		return Value{Type: TypeInt, Int: int64(x)}, nil
	case uint64:
		if x > math.MaxInt64 {
			return Value{Type: TypeDecimal, Text: strconv.FormatUint(x, 10)}, nil
		}
		return Value{Type: TypeInt, Int: int64(x)}, nil
	case float64:
		return Value{Type: TypeFloat, Num: x}, nil
	case float32:
		return Value{Type: TypeFloat, Num: float64(x)}, nil
	case string:
		return Value{Type: TypeString, Text: x}, nil
	case time.Time:
		return Value{Type: TypeTime, Time: x}, nil
	case decimalText:
		return Value{Type: TypeDecimal, Text: string(x)}, nil
	case nil:
		return Value{}, errors.New("is NULL")
	}
	return Value{}, fmt.Errorf("has type %T, which cannot order a resumable read (use an integer, a timestamp, a number or text)", v)
}

// decimalText is a NUMERIC/DECIMAL value in the server's text form.
type decimalText string
