package sqlite

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Property values are stored in SQLite's binary JSON format, JSONB
// (https://sqlite.org/jsonb.html), which SQLite's JSON functions read
// several times faster than JSON text. The encoder here writes canonical
// JSONB (minimal headers, floats with a fraction or exponent); the decoder
// reads every element type SQLite may produce.
//
// An element is a header and a payload. The low four bits of the first
// header byte are the type; the high four bits are the payload size (0-11)
// or say that the size follows in 1, 2, 4 or 8 big-endian bytes (12-15).

// JSONB element types.
const (
	jbNull    = 0
	jbTrue    = 1
	jbFalse   = 2
	jbInt     = 3
	jbInt5    = 4
	jbFloat   = 5
	jbFloat5  = 6
	jbText    = 7  // no escapes, none needed
	jbTextJ   = 8  // JSON escapes
	jbText5   = 9  // JSON5 escapes
	jbTextRaw = 10 // raw UTF-8, escaped when rendered as JSON
	jbArray   = 11
	jbObject  = 12
)

func appendJBHeader(buf []byte, typ byte, size int) []byte {
	switch {
	case size <= 11:
		return append(buf, byte(size)<<4|typ)
	case size <= math.MaxUint8:
		return append(buf, 12<<4|typ, byte(size))
	case size <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(buf, 13<<4|typ), uint16(size))
	case size <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(buf, 14<<4|typ), uint32(size))
	}
	return binary.BigEndian.AppendUint64(append(buf, 15<<4|typ), uint64(size))
}

// jbOpen starts a container; jbClose writes its header once the payload
// (appended after the returned mark) is known.
func jbOpen(buf []byte) ([]byte, int) {
	return append(buf, make([]byte, 9)...), len(buf)
}

func jbClose(buf []byte, mark int, typ byte) []byte {
	payload := len(buf) - mark - 9
	hdr := appendJBHeader(make([]byte, 0, 9), typ, payload)
	copy(buf[mark:], hdr)
	copy(buf[mark+len(hdr):], buf[mark+9:])
	return buf[:mark+len(hdr)+payload]
}

func appendJBString(buf []byte, s string) []byte {
	typ := byte(jbText)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == 0x7f {
			typ = jbTextRaw
			break
		}
	}
	return append(appendJBHeader(buf, typ, len(s)), s...)
}

func appendJBInt(buf []byte, i int64) []byte {
	var tmp [20]byte
	d := strconv.AppendInt(tmp[:0], i, 10)
	return append(appendJBHeader(buf, jbInt, len(d)), d...)
}

// appendJBFloat writes a finite float as JSON number text with a fraction
// or an exponent, so that SQLite reads it back as a REAL.
func appendJBFloat(buf []byte, f float64) []byte {
	var tmp [32]byte
	abs := math.Abs(f)
	fmtc := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmtc = 'e'
	}
	d := strconv.AppendFloat(tmp[:0], f, fmtc, -1, 64)
	if fmtc == 'f' && !slices.Contains(d, '.') {
		d = append(d, '.', '0')
	}
	return append(appendJBHeader(buf, jbFloat, len(d)), d...)
}

func appendJBBool(buf []byte, b bool) []byte {
	if b {
		return append(buf, jbTrue)
	}
	return append(buf, jbFalse)
}

// appendJBAny writes a JSON value as encoding/json decodes it (nil, bool,
// float64, string, []any, map[string]any, with int and int64 allowed too);
// anything else goes through encoding/json first.
func appendJBAny(buf []byte, v any, depth int) ([]byte, error) {
	if depth > 200 {
		return nil, errors.New("JSON value nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		return append(buf, jbNull), nil
	case bool:
		return appendJBBool(buf, x), nil
	case string:
		return appendJBString(buf, x), nil
	case int:
		return appendJBInt(buf, int64(x)), nil
	case int64:
		return appendJBInt(buf, x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("float %v is not finite", x)
		}
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return appendJBInt(buf, int64(x)), nil
		}
		return appendJBFloat(buf, x), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return appendJBInt(buf, i), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, err
		}
		return appendJBAny(buf, f, depth)
	case []any:
		buf, mark := jbOpen(buf)
		for _, e := range x {
			var err error
			if buf, err = appendJBAny(buf, e, depth+1); err != nil {
				return nil, err
			}
		}
		return jbClose(buf, mark, jbArray), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf, mark := jbOpen(buf)
		for _, k := range keys {
			buf = appendJBString(buf, k)
			var err error
			if buf, err = appendJBAny(buf, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return jbClose(buf, mark, jbObject), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, err
	}
	return appendJBAny(buf, generic, depth)
}

// jbElem is one decoded element header: its type and payload bounds.
type jbElem struct {
	typ        byte
	start, end int // payload
}

var errJSONB = errors.New("sqlite: malformed JSONB")

// jbAt reads the header of the element at offset i of s.
func jbAt(s string, i int) (jbElem, error) {
	if i >= len(s) {
		return jbElem{}, errJSONB
	}
	h := s[i]
	typ, sz := h&0x0f, int(h>>4)
	i++
	var size uint64
	switch {
	case sz <= 11:
		size = uint64(sz)
	default:
		n := 1 << (sz - 12) // 1, 2, 4 or 8 bytes
		if i+n > len(s) {
			return jbElem{}, errJSONB
		}
		for k := range n {
			size = size<<8 | uint64(s[i+k])
		}
		i += n
	}
	if size > uint64(len(s)-i) {
		return jbElem{}, errJSONB
	}
	return jbElem{typ: typ, start: i, end: i + int(size)}, nil
}

// jbString returns the value of a string element.
func jbString(s string, e jbElem) (string, error) {
	p := s[e.start:e.end]
	switch e.typ {
	case jbText, jbTextRaw:
		return p, nil
	case jbTextJ, jbText5:
		var out string
		if err := json.Unmarshal([]byte(`"`+p+`"`), &out); err != nil {
			return "", errJSONB
		}
		return out, nil
	}
	return "", errJSONB
}

// jbNumber returns the text of a number element.
func jbNumber(s string, e jbElem) string { return s[e.start:e.end] }

func parseJBInt(e jbElem, text string) (int64, bool) {
	if e.typ == jbInt5 {
		if i, err := strconv.ParseInt(text, 0, 64); err == nil {
			return i, true
		}
	}
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return i, true
	}
	if f, err := strconv.ParseFloat(text, 64); err == nil {
		return int64(f), true
	}
	return 0, false
}

func parseJBFloat(e jbElem, text string) (float64, bool) {
	if e.typ == jbInt5 {
		if i, err := strconv.ParseInt(text, 0, 64); err == nil {
			return float64(i), true
		}
	}
	f, err := strconv.ParseFloat(strings.TrimPrefix(text, "+"), 64)
	return f, err == nil
}

// jbAny decodes any element into the values encoding/json produces.
func jbAny(s string, e jbElem, depth int) (any, error) {
	if depth > 200 {
		return nil, errJSONB
	}
	switch e.typ {
	case jbNull:
		return nil, nil
	case jbTrue:
		return true, nil
	case jbFalse:
		return false, nil
	case jbInt, jbInt5, jbFloat, jbFloat5:
		f, ok := parseJBFloat(e, jbNumber(s, e))
		if !ok {
			return nil, errJSONB
		}
		return f, nil
	case jbText, jbTextJ, jbText5, jbTextRaw:
		return jbString(s, e)
	case jbArray:
		out := []any{}
		for i := e.start; i < e.end; {
			c, err := jbAt(s, i)
			if err != nil {
				return nil, err
			}
			v, err := jbAny(s, c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			i = c.end
		}
		return out, nil
	case jbObject:
		out := map[string]any{}
		err := jbFields(s, e, func(k string, v jbElem) error {
			x, err := jbAny(s, v, depth+1)
			out[k] = x
			return err
		})
		return out, err
	}
	return nil, errJSONB
}

// jbFields calls f for each key and value element of an object element.
func jbFields(s string, obj jbElem, f func(key string, v jbElem) error) error {
	if obj.typ != jbObject {
		return errJSONB
	}
	for i := obj.start; i < obj.end; {
		ke, err := jbAt(s, i)
		if err != nil {
			return err
		}
		k, err := jbString(s, ke)
		if err != nil {
			return err
		}
		ve, err := jbAt(s, ke.end)
		if err != nil || ve.end > obj.end {
			return errJSONB
		}
		if err := f(k, ve); err != nil {
			return err
		}
		i = ve.end
	}
	return nil
}
