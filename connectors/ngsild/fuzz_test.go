package ngsild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/cityhub/cityhub/connectors"
	"github.com/google/go-cmp/cmp"
)

func addSeeds(f *testing.F, add func([]byte)) {
	f.Helper()
	for _, m := range models {
		for _, file := range []string{v2KeyValues, v2Normalized, ldKeyValues, ldNormalized} {
			add(mustRead(f, m, file))
		}
	}
}

// FuzzFlatten: any bytes give either fields or an error, never both, never
// a panic; the result does not depend on map order.
func FuzzFlatten(f *testing.F) {
	addSeeds(f, func(b []byte) {
		for _, format := range []byte{0, 1, 2} {
			f.Add(b, format)
		}
	})
	f.Add([]byte(`{"id":"a","type":"T","p":[{"type":"Property","value":1,"datasetId":"x"},{"type":"Relationship","object":["u"]}],"location":{"type":"geo:box","value":["1, 2","3, 4"]}}`), byte(0))
	formats := []Format{FormatAuto, FormatNormalized, FormatKeyValues}
	f.Fuzz(func(t *testing.T, data []byte, format byte) {
		fm := formats[int(format)%len(formats)]
		fields, geom, err := Flatten(data, fm)
		if (err == nil) == (fields == nil) {
			t.Fatalf("Flatten(%q) = %v, %v: exactly one of fields and error", data, fields, err)
		}
		if err != nil {
			return
		}
		if id, _ := fields["id"].(string); id == "" {
			t.Fatalf("fields without id: %v", fields)
		}
		if _, ok := fields["location"]; ok {
			t.Fatalf("location left in fields: %v", fields)
		}
		if len(geom) > 0 && !json.Valid(geom) {
			t.Fatalf("geometry %q is not JSON", geom)
		}
		again, geom2, err := Flatten(data, fm)
		if err != nil || !cmp.Equal(fields, again) || !bytes.Equal(geom, geom2) {
			t.Fatalf("Flatten(%q) is not deterministic:\n%v\n%v", data, fields, again)
		}
	})
}

// FuzzReadDocument: positions locate each entity's bytes, in order.
func FuzzReadDocument(f *testing.F) {
	addSeeds(f, func(b []byte) { f.Add(b) })
	f.Add([]byte(`[{"id":"a","type":"T"}, 1, [], {"id":"b"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		last := int64(-1)
		_, err := readDocument(context.Background(), bytes.NewReader(data), "f", 1<<16, false, 0, func(raw []byte, pos connectors.Position) error {
			if pos.Offset <= last || pos.Offset+int64(len(raw)) > int64(len(data)) || !bytes.Equal(data[pos.Offset:pos.Offset+int64(len(raw))], raw) {
				t.Fatalf("entity %d at offset %d does not locate %q", pos.Index, pos.Offset, raw)
			}
			last = pos.Offset
			return nil
		})
		var de *docError
		if err != nil && !errors.As(err, &de) {
			t.Fatalf("error %v is not a document error", err)
		}
	})
}

// FuzzCheckpoint: an accepted checkpoint renders back to one that parses
// to the same position.
func FuzzCheckpoint(f *testing.F) {
	for _, s := range []string{"", "2018-09-21T12:00:05Z|porto-ParkingLot-23889", "2024-05-01T10:06:00.123+02:00|a|b", "|x", "x|"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseCheckpoint(s)
		if err != nil || s == "" {
			return
		}
		q, err := parseCheckpoint(p.String())
		if err != nil || q.compare(p) != 0 || q.id != p.id {
			t.Fatalf("parseCheckpoint(%q) = %v, its string %q parses to %v (%v)", s, p, p.String(), q, err)
		}
	})
}
