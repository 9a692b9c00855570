package geojson

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

func readAll(t testing.TB, data []byte, cfg Config) ([]connectors.Record, error) {
	t.Helper()
	var out []connectors.Record
	err := ReadFrom(context.Background(), bytes.NewReader(data), cfg, func(r connectors.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

func cfgFor(path string) Config {
	c := DefaultConfig()
	c.Path = path
	return c
}

func TestReadFrom(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // per record: fields (sorted k=v) or "err: ..."
	}{
		{"two features", `{"type":"FeatureCollection","features":[{"type":"Feature","id":7,"geometry":{"type":"Point","coordinates":[1,2]},"properties":{"a":"x","n":449.0,"i":3}},{"type":"Feature","geometry":null,"properties":null}]}`,
			[]string{"a=x fid=7 i=3 n=449 geom", "-"}},
		{"features first, foreign members", `{"features":[{"type":"Feature","properties":{"b":true,"l":[1,"y"],"o":{"k":null}},"geometry":null}],"bbox":[0,0,1,1],"crs":{"type":"name","properties":{"name":"x"}},"type":"FeatureCollection"}`,
			[]string{"b=true l=[1 y] o=map[k:<nil>]"}},
		{"bad features", `{"type":"FeatureCollection","features":[1,{"type":"Point"},{"type":"Feature","properties":[1]},{"type":"Feature","geometry":[1],"properties":{}},{"type":"Feature","properties":{"ok":1}}]}`,
			[]string{"err: not a Feature object", `err: type is "Point", want Feature`, "err: properties are not an object", "err: geometry is not an object", "ok=1"}},
		{"empty", `{"type":"FeatureCollection","features":[]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := cfgFor("x.geojson")
			cfg.IDField = "fid"
			recs, err := readAll(t, []byte(tt.in), cfg)
			if err != nil {
				t.Fatalf("ReadFrom: %v", err)
			}
			var got []string
			for i, r := range recs {
				if r.Pos.Index != i || r.Pos.Path != fmt.Sprintf("features[%d]", i) || !bytes.Equal([]byte(tt.in)[r.Pos.Offset:r.Pos.Offset+int64(len(r.Raw))], r.Raw) {
					t.Errorf("record %d: position %+v does not locate its raw bytes %q", i, r.Pos, r.Raw)
				}
				got = append(got, describe(r))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("ReadFrom(%s) =\n%s\nwant\n%s", tt.in, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func describe(r connectors.Record) string {
	if r.Err != nil {
		s := r.Err.Error()
		if i := strings.Index(s, ":"); i > 0 && strings.HasPrefix(s, "not a Feature") {
			s = s[:i]
		}
		return "err: " + s
	}
	var parts []string
	for _, k := range sortedKeys(r.Fields) {
		v := r.Fields[k]
		if k == "n" {
			if f, ok := v.(float64); !ok || f != 449 {
				return fmt.Sprintf("n is %#v", v)
			}
		}
		if k == "i" || k == "fid" {
			if _, ok := v.(int64); !ok {
				return fmt.Sprintf("%s is %T", k, v)
			}
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	if r.Geometry != nil {
		parts = append(parts, "geom")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func sortedKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func TestReadFromErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not an object", `[1]`, "not a GeoJSON object"},
		{"wrong type", `{"type":"Feature","features":[]}`, `type is "Feature", want FeatureCollection`},
		{"no features", `{"type":"FeatureCollection"}`, "no features member"},
		{"truncated", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{}},{"type":"Feat`, "offset"},
		{"features not a list", `{"type":"FeatureCollection","features":{}}`, "features: expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, []byte(tt.in), cfgFor("x.geojson"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadFrom(%s) error = %v, want %q", tt.in, err, tt.want)
			}
		})
	}
	cfg := cfgFor("x.geojson")
	cfg.MaxFeatureBytes = 1024
	big := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"s":"` + strings.Repeat("x", 100000) + `"}}]}`
	if _, err := readAll(t, []byte(big), cfg); err == nil || !strings.Contains(err.Error(), "exceeds max_feature_bytes") {
		t.Errorf("big feature: error = %v", err)
	}
}

func TestRealSlices(t *testing.T) {
	data, _ := os.ReadFile("testdata/metered_parking.geojson")
	recs, err := readAll(t, data, cfgFor("testdata/metered_parking.geojson"))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 7 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.Fields["SPACE_ID"] != "COL-0004" || r.Fields["PbyP_Zone"] != int64(1568) || !bytes.HasPrefix(r.Geometry, []byte(`{"type": "Polygon"`)) {
		t.Errorf("first space = %v %s", r.Fields, r.Geometry[:20])
	}
	if !bytes.Contains(recs[6].Geometry, []byte("MultiPolygon")) {
		t.Errorf("last space is not the MultiPolygon one")
	}
}

func TestSample(t *testing.T) {
	store, stats, dead := connectortest.CheckSample(t, Kind(), ontology.Default())
	if stats[0].Written != 3 || stats[1].Written != 12 || stats[1].Located != 12 || len(dead.Letters) != 0 {
		t.Errorf("stats = %+v, dead letters = %+v", stats, dead.Letters)
	}
	if got := store.Neighbors("urn:city:street-light:cambridge-gis:791-2", "LOCATED_IN"); len(got) != 1 {
		t.Errorf("791-2 located in %v", got)
	}
	n := store.Nodes["urn:city:neighbourhood:cambridge-gis:4"]
	if n.Props["name"] != "The Port" || n.Geometry == nil || n.Geometry.Kind != "Polygon" {
		t.Errorf("neighbourhood 4 = %+v", n.Props)
	}
}

func TestConfigErrors(t *testing.T) {
	reg := connectors.NewRegistry()
	Register(reg)
	src := "connectors:\n  - name: x\n    source: xx\n    kind: geojson\n    config: {id_field: fid}\n    mapping: {nodes: [{class: Neighbourhood, key: x, properties: {officialCode: x}}]}\n"
	_, err := connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
	if err == nil || !strings.Contains(err.Error(), "f.yaml:5: connectors[0].config.path: path is required") {
		t.Errorf("error = %v", err)
	}
}

func FuzzReadFrom(f *testing.F) {
	for _, name := range []string{"testdata/neighborhoods.geojson", "testdata/metered_parking.geojson"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","id":"a","properties":{"x":[1e400]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := cfgFor("fuzz.geojson")
		cfg.IDField = "id"
		cfg.MaxFeatureBytes = 1 << 16
		_ = ReadFrom(context.Background(), bytes.NewReader(data), cfg, func(r connectors.Record) error {
			if r.Err == nil && r.Fields == nil {
				t.Fatal("record without fields or error")
			}
			if r.Pos.Offset < 0 || r.Pos.Offset+int64(len(r.Raw)) > int64(len(data)) {
				t.Fatalf("position %+v out of the input", r.Pos)
			}
			return nil
		})
	})
}

// BenchmarkReadFrom parses a street-light-shaped collection of 10,000 points.
func BenchmarkReadFrom(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`{"type":"FeatureCollection","features":[`)
	for i := range 10000 {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"geometry": {"type": "Point", "coordinates": [-71.1193317%04d, 42.38795443]}, "type": "Feature", "id": %d, "properties": {"PoleID": "791-%d", "Neighborhood": 11.0, "Description": "Cobrahead", "FixtureType": "A2", "NumLamps": 1, "EditDate": "2014", "StreetSuffix": "RD", "LEDchk": "Yes", "StreetName": "SEAGRAVE", "Owner": "City", "last_edited_date": "2023-02-16"}}`, i, i, i)
	}
	buf.WriteString(`]}`)
	data := buf.Bytes()
	cfg := cfgFor("bench.geojson")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		if err := ReadFrom(context.Background(), bytes.NewReader(data), cfg, func(connectors.Record) error { n++; return nil }); err != nil || n != 10000 {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
