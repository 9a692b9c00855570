package json

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/ontology"
)

func readAll(t testing.TB, data string, cfg Config, index map[string]map[string]any) ([]connectors.Record, error) {
	t.Helper()
	var out []connectors.Record
	err := ReadFrom(context.Background(), strings.NewReader(data), cfg, index, func(r connectors.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

func TestReadFrom(t *testing.T) {
	join := &Join{Key: "id", Prefix: "s_"}
	index := map[string]map[string]any{"1": {"id": "1", "bikes": int64(3)}, "2": {"bikes": int64(0)}}
	tests := []struct {
		name    string
		in      string
		records string
		join    *Join
		want    []string
	}{
		{"top-level array", `[{"a":1},{"a":"x","b":[1,2.5]}]`, "", nil, []string{"$[0] a=1", "$[1] a=x b=[1 2.5]"}},
		{"nested path, foreign members skipped", `{"last_updated":1,"x":{"stations":[0]},"data":{"other":[{"a":1}],"stations":[{"a":2}]}}`, "data.stations", nil, []string{"data.stations[0] a=2"}},
		{"not objects", `[1,{"a":1},null,[]]`, "", nil, []string{"$[0] err: record is not an object", "$[1] a=1", "$[2] err: record is not an object", "$[3] err: record is not an object"}},
		{"join", `[{"id":"1","bikes":9},{"id":2},{"id":"3"}]`, "", join, []string{"$[0] bikes=9 id=1 s_bikes=3 s_id=1", "$[1] id=2 s_bikes=0", "$[2] id=3"}},
		{"required join", `[{"id":"3"},{"x":1}]`, "", &Join{Key: "id", Required: true}, []string{`$[0] err: no record with id "3" in the join file`, "$[1] err: no record with id (missing) in the join file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.Records, cfg.Join = tt.records, tt.join
			var idx map[string]map[string]any
			if tt.join != nil {
				idx = index
			}
			recs, err := readAll(t, tt.in, cfg, idx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				if tt.in[r.Pos.Offset:r.Pos.Offset+int64(len(r.Raw))] != string(r.Raw) {
					t.Errorf("offset %d does not locate %s", r.Pos.Offset, r.Raw)
				}
				got = append(got, r.Pos.Path+" "+describe(r))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("ReadFrom(%s) =\n%s\nwant\n%s", tt.in, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func describe(r connectors.Record) string {
	if r.Err != nil {
		return "err: " + r.Err.Error()
	}
	var keys []string
	for k := range r.Fields {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, r.Fields[k]))
	}
	return strings.Join(parts, " ")
}

func TestReadFromErrors(t *testing.T) {
	tests := []struct{ in, records, want string }{
		{`{"data":{}}`, "data.stations", `no member "stations" at $.data`},
		{`{"data":[1]}`, "data.stations", `data: expected "{"`},
		{`{"data":{"stations":{}}}`, "data.stations", `records: expected "["`},
		{`[{"a":1},{"a":`, "", "offset"},
	}
	for _, tt := range tests {
		cfg := DefaultConfig()
		cfg.Records = tt.records
		if _, err := readAll(t, tt.in, cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadFrom(%s) error = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestSample(t *testing.T) {
	store, stats, dead := connectortest.CheckSample(t, Kind(), ontology.Default())
	if stats[0].Written != 8 || len(dead.Letters) != 0 {
		t.Fatalf("stats = %+v, dead letters = %+v", stats, dead.Letters)
	}
	s := store.Nodes["urn:city:bike-share-station:hubway-gbfs:3"]
	want := map[string]any{"stationCode": "B32006", "regionId": "10", "capacity": int64(15), "availableBikes": int64(8),
		"isInstalled": true, "status": "OPERATIONAL", "statusRaw": "1"}
	for k, v := range want {
		if s.Props[k] != v {
			t.Errorf("station 3 %s = %#v, want %#v", k, s.Props[k], v)
		}
	}
	if rm, _ := s.Props["rentalMethods"].([]any); len(rm) != 2 || rm[0] != "KEY" {
		t.Errorf("rentalMethods = %#v", s.Props["rentalMethods"])
	}
	if s.Prov.SrcUpdatedAt.Unix() != 1513087806 || s.Geometry == nil {
		t.Errorf("station 3 prov/geometry = %+v %+v", s.Prov, s.Geometry)
	}
	// station 72 has no status in the join file: it lands without live counts
	if s72 := store.Nodes["urn:city:bike-share-station:hubway-gbfs:72"]; s72.ID == "" || s72.Props["availableBikes"] != nil {
		t.Errorf("station 72 = %+v", s72)
	}
}

func TestConfigErrors(t *testing.T) {
	reg := connectors.NewRegistry()
	Register(reg)
	src := "connectors:\n  - name: x\n    source: xx\n    kind: json\n    config:\n      path: a.json\n      records: data..x\n      join: {path: b.json}\n    mapping: {nodes: [{class: Neighbourhood, key: x, properties: {officialCode: x}}]}\n"
	_, err := connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
	for _, want := range []string{`f.yaml:7: connectors[0].config.records: records path "data..x" has an empty segment`, `f.yaml:8: connectors[0].config.join.key: key is required`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want %q", err, want)
		}
	}
}

func FuzzReadFrom(f *testing.F) {
	for _, name := range []string{"testdata/station_information.json", "testdata/station_status.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := DefaultConfig()
		cfg.Records = "data.stations"
		cfg.MaxRecordBytes = 1 << 16
		_ = ReadFrom(context.Background(), bytes.NewReader(data), cfg, nil, func(r connectors.Record) error {
			if (r.Err == nil) == (r.Fields == nil) {
				t.Fatalf("record %+v: exactly one of Err and Fields must be set", r)
			}
			return nil
		})
	})
}

func BenchmarkReadFrom(b *testing.B) {
	data, err := os.ReadFile("../../demo/cambridge/data/bikeshare/boston_hubway_station_information.json")
	if err != nil {
		b.Skip("demo data not present")
	}
	cfg := DefaultConfig()
	cfg.Records = "data.stations"
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		if err := ReadFrom(context.Background(), bytes.NewReader(data), cfg, nil, func(connectors.Record) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
