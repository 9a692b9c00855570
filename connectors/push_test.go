package connectors

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodePush(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []string // per record: fields as JSON, or "error: <substring>"
		wantErr string
	}{
		{name: "array", body: `[{"a": 1, "b": "x"}, {"a": 2.5}]`, want: []string{`{"a":1,"b":"x"}`, `{"a":2.5}`}},
		{name: "one object", body: ` {"pole": "1-M1", "n": [1, 2]}`, want: []string{`{"n":[1,2],"pole":"1-M1"}`}},
		{name: "json lines", body: "{\"a\": 1}\n{\"a\": 2}\n\n", want: []string{`{"a":1}`, `{"a":2}`}},
		{name: "geometry is lifted", body: `[{"id": "x", "geometry": {"type": "Point", "coordinates": [1, 2]}}]`, want: []string{`{"id":"x"}`}},
		{name: "non-objects are error records", body: `[1, "s", null, {"ok": true}, []]`,
			want: []string{"error: got 1", "error: got \"s\"", "error: got null", `{"ok":true}`, "error: got []"}},
		{name: "big integers stay exact", body: `[{"n": 9007199254740993}]`, want: []string{`{"n":9007199254740993}`}},
		{name: "empty", body: "  \n", wantErr: "empty body"},
		{name: "broken array", body: `[{"a": 1},`, wantErr: "not a JSON array"},
		{name: "broken line", body: "{\"a\": 1}\n{\"a\": ", wantErr: "record 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := DecodePush(strings.NewReader(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(tt.want) {
				t.Fatalf("%d records, want %d", len(recs), len(tt.want))
			}
			for i, r := range recs {
				if r.Pos.Index != i || len(r.Raw) == 0 {
					t.Errorf("record %d: pos %+v, raw %q", i, r.Pos, r.Raw)
				}
				if e, ok := strings.CutPrefix(tt.want[i], "error: "); ok {
					if r.Err == nil || !strings.Contains(r.Err.Error(), e) {
						t.Errorf("record %d: err %v, want %q", i, r.Err, e)
					}
					continue
				}
				if r.Err != nil {
					t.Errorf("record %d: %v", i, r.Err)
					continue
				}
				got, _ := json.Marshal(r.Fields)
				if string(got) != tt.want[i] {
					t.Errorf("record %d = %s, want %s", i, got, tt.want[i])
				}
			}
		})
	}
	if recs, _ := DecodePush(strings.NewReader(`[{"geometry": {"type": "Point", "coordinates": [1, 2]}}]`)); len(recs) != 1 || !bytes.Contains(recs[0].Geometry, []byte("Point")) {
		t.Errorf("geometry not kept: %+v", recs)
	}
}

func TestDecodePushLimit(t *testing.T) {
	var b strings.Builder
	for range MaxPushRecords + 1 {
		b.WriteString("{}\n")
	}
	if _, err := DecodePush(strings.NewReader(b.String())); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("err = %v, want the limit", err)
	}
}

func FuzzDecodePush(f *testing.F) {
	for _, s := range []string{`[{"a":1}]`, `{"a":1}`, "{}\n{}", `[1,{"geometry":{"type":"Point"}}]`, `[`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, err := DecodePush(bytes.NewReader(body))
		if err != nil {
			return
		}
		for i, r := range recs {
			if r.Pos.Index != i {
				t.Fatalf("record %d has index %d", i, r.Pos.Index)
			}
			if (r.Err == nil) == (r.Fields == nil) {
				t.Fatalf("record %d: fields %v with err %v", i, r.Fields, r.Err)
			}
			if r.Err == nil && !json.Valid(r.Raw) {
				t.Fatalf("record %d raw is not JSON: %q", i, r.Raw)
			}
		}
	})
}
