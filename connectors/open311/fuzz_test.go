package open311

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
)

// FuzzDecode feeds outside bytes to the JSON and XML decoders, for both
// resources, and through the request ordering. Invariants: no panic; each
// element is a record or an error, never both; raw bytes are the document's
// bytes at the offset; faults are *FormatErrors inside the document; the
// emitted requests come in strictly increasing checkpoint order, each
// checkpoint parsing back to itself.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{requestsFile, servicesFile, malformedRequests, malformedServices, sfServices} {
		data := MustRead(f, name)
		f.Add(data, strings.HasSuffix(name, ".xml"), strings.Contains(name, "requests"))
	}
	f.Add([]byte(`[{"service_request_id":1,"requested_datetime":"2010-11-17 01:08:42"},{"token":"x"},null,[]]`), false, true)
	f.Add([]byte(`<service_requests><request><a><b>1</b><b/></a></request></service_requests>`), true, true)
	f.Fuzz(fuzzBody(f))
}

func fuzzBody(testing.TB) func(t *testing.T, data []byte, isXML, requests bool) {
	loc := time.FixedZone("x", -5*3600)
	return func(t *testing.T, data []byte, isXML, requests bool) {
		format, res := JSON, Services
		if isXML {
			format = XML
		}
		if requests {
			res = Requests
		}
		set := &requestSet{loc: loc, byID: map[string]int{}}
		n := 0
		err := decode(data, res, format, "fuzz", func(it item) error {
			n++
			if (it.err == nil) == (it.fields == nil) {
				t.Fatalf("%s: exactly one of err (%v) and fields must be set", it.path, it.err)
			}
			if it.off < 0 || it.off+int64(len(it.raw)) > int64(len(data)) || !bytes.Equal(data[it.off:it.off+int64(len(it.raw))], it.raw) {
				t.Fatalf("%s: offset %d does not locate the raw bytes", it.path, it.off)
			}
			set.add(it, "fuzz")
			return nil
		})
		var fe *FormatError
		if err != nil && (!errors.As(err, &fe) || fe.Offset < 0 || fe.Offset > int64(len(data)) || fe.Records != n || fe.Line < 1) {
			t.Fatalf("error %v (%#v) is not a well-placed *FormatError", err, fe)
		}
		var prev *cursor
		err = set.emit("", true, func(r connectors.Record) error {
			if (r.Err == nil) == (r.Fields == nil) {
				t.Fatalf("record %s: exactly one of Err and Fields must be set", r.Pos)
			}
			if r.Err != nil {
				if prev != nil || r.Checkpoint != "" {
					t.Fatalf("error record %s after requests or with checkpoint %q", r.Pos, r.Checkpoint)
				}
				return nil
			}
			c, err := parseCheckpoint(r.Checkpoint)
			if err != nil || c.String() != r.Checkpoint {
				t.Fatalf("checkpoint %q does not parse back: %v", r.Checkpoint, err)
			}
			if prev != nil && !c.after(*prev) {
				t.Fatalf("checkpoint %q does not come after %q", r.Checkpoint, prev)
			}
			prev = &c
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzCheckpoint: any accepted checkpoint renders to a string that parses
// to the same position.
func FuzzCheckpoint(f *testing.F) {
	f.Add("2012-05-23T15:55:30-04:00 4fbd40b2b1fe2c4b02000001")
	f.Add("2010-11-16T21:27:36.587Z 773469")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCheckpoint(s)
		if err != nil {
			return
		}
		again, err := parseCheckpoint(c.String())
		if err != nil || !again.t.Equal(c.t) || again.id != c.id || again.String() != c.String() {
			t.Fatalf("%q -> %q -> %v, %v", s, c.String(), again, err)
		}
	})
}

// FuzzParseTime: accepted date-times are real times that render and parse
// back in RFC 3339 (the checkpoint form).
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2012-05-23T15:55:30-04:00", "2010-11-17 01:08:42.793", "2012-05-23T15:55:30-0400", "x"} {
		f.Add(s)
	}
	loc := time.FixedZone("x", 3600)
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseTime(s, loc)
		if err != nil {
			return
		}
		back, err := time.Parse(time.RFC3339Nano, tm.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(tm) {
			t.Fatalf("parseTime(%q) = %v does not round-trip: %v", s, tm, err)
		}
	})
}
