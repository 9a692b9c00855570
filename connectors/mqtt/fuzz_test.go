package mqtt

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecode feeds hostile payloads and topics to the decoder, in both
// payload formats and with a fields_from_topic pattern. Seeds: the FIWARE
// AirQualityObserved entity, Beijing readings and malformed payloads.
func FuzzDecode(f *testing.F) {
	aq, err := os.ReadFile("testdata/fiware_AirQualityObserved_example.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("fiware/AirQualityObserved/x", aq, false)
	for _, r := range beijingReadings(f)[:8] {
		f.Add(r.topic("city"), r.payload(), false)
	}
	for _, p := range []string{`{"value":`, `[1,2]`, `null`, `{"a":1}{"b":2}`, "{\"a\":\"\xff\"}", ` {"a":{"b":[1e400,-0,9223372036854775808]}} `, "SE", "\xff", ""} {
		f.Add("city/beijing/us-embassy/pm25", []byte(p), false)
		f.Add("city/beijing/us-embassy/cbwd", []byte(p), true)
	}
	pat := mustPattern(f, "city/+city/+sensor/#rest")
	f.Fuzz(func(t *testing.T, topic string, payload []byte, text bool) {
		d := decoder{payload: PayloadJSON, max: 512, pattern: pat}
		if text {
			d.payload = PayloadText
		}
		rec := d.decode(topic, 7, payload, at, 3)
		if rec.Pos.Message != topic+" #7" || rec.Pos.Index != 3 {
			t.Fatalf("position %+v", rec.Pos)
		}
		if len(rec.Raw) > d.max || !bytes.HasPrefix(payload, rec.Raw) {
			t.Fatalf("raw %q is not a prefix of the payload within max", rec.Raw)
		}
		if rec.Err != nil {
			if rec.Fields != nil {
				t.Fatalf("error record with fields: %v", rec.Err)
			}
			return
		}
		if len(payload) > d.max {
			t.Fatalf("oversize payload accepted")
		}
		if rec.Fields[FieldTopic] != topic || rec.Fields[FieldReceivedAt] != "2025-01-05T02:00:00.123456789Z" || !strings.HasPrefix(topic, "city/") {
			t.Fatalf("fields %v for topic %q", rec.Fields, topic)
		}
		if text {
			if !utf8.Valid(payload) || rec.Fields[FieldPayload] != string(payload) {
				t.Fatalf("text payload %q gave %v", payload, rec.Fields)
			}
		} else if !json.Valid(payload) || !bytes.HasPrefix(bytes.TrimLeft(payload, " \t\r\n"), []byte("{")) {
			t.Fatalf("payload %q is not a JSON object yet decoded", payload)
		}
		for k, v := range rec.Fields {
			if !recordValue(v) {
				t.Fatalf("field %q has a %T", k, v)
			}
		}
	})
}

// recordValue reports whether v is a value sources may emit.
func recordValue(v any) bool {
	switch x := v.(type) {
	case nil, string, int64, float64, bool:
		return true
	case []any:
		for _, e := range x {
			if !recordValue(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !recordValue(e) {
				return false
			}
		}
		return true
	}
	return false
}

// FuzzPattern parses fields_from_topic patterns and matches topics.
func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"city/+city/+sensor/+quantity", "city/beijing/us-embassy/pm25"},
		{"city/+city/#rest", "city/beijing"},
		{"#all", "a/b/c"},
		{"+a/+/#", "/"},
		{"city/x+/#", "city/x+/y"},
		{"+a/+a", "x/y"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, text, topic string) {
		_ = validFilter(topic)
		p, err := parsePattern(text)
		if err != nil {
			return
		}
		if len(p.names) == 0 {
			t.Fatalf("pattern %q accepted without names", text)
		}
		vals, ok := p.match(topic)
		if !ok {
			return
		}
		if len(vals) != len(p.names) {
			t.Fatalf("pattern %q on %q: %d values for %d names", text, topic, len(vals), len(p.names))
		}
		levels := strings.Count(topic, "/") + 1
		if !p.rest && levels != len(p.levels) || p.rest && levels < len(p.levels) {
			t.Fatalf("pattern %q matched %q with %d levels", text, topic, levels)
		}
		captures := 0
		for _, l := range p.levels {
			if l.capture {
				captures++
			}
		}
		hashNamed := len(p.names) > captures // #name is the last name
		for i, v := range vals {
			if strings.Contains(v, "/") && !(hashNamed && i == len(vals)-1) {
				t.Fatalf("pattern %q on %q: one-level value %q spans levels", text, topic, v)
			}
		}
	})
}
