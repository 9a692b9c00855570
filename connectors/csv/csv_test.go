package csv

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

type want struct {
	line   int
	fields map[string]any // subset checked
	err    string
}

func TestReadFrom(t *testing.T) {
	hdr := func(cfg Config, f func(*Config)) Config { f(&cfg); return cfg }
	tests := []struct {
		name string
		in   string
		cfg  Config
		want []want
	}{
		{"LF", "a,b\n1,2\n3,4\n", DefaultConfig(), []want{{line: 2, fields: map[string]any{"a": "1", "b": "2"}}, {line: 3, fields: map[string]any{"a": "3"}}}},
		{"CRLF", "a,b\r\n1,2\r\n3,4\r\n", DefaultConfig(), []want{{line: 2, fields: map[string]any{"b": "2"}}, {line: 3, fields: map[string]any{"b": "4"}}}},
		{"CR only", "a,b\r1,2\r3,4\r", DefaultConfig(), []want{{line: 2, fields: map[string]any{"b": "2"}}, {line: 3, fields: map[string]any{"b": "4"}}}},
		{"mixed, no final newline", "a,b\r1,2\n3,4\r\n5,6", DefaultConfig(), []want{{line: 2}, {line: 3}, {line: 4, fields: map[string]any{"b": "6"}}}},
		{"quoted line breaks", "a,b\r\"x\ny\",1\r\"p\r\nq\",2\r3,\"r\rs\"\r", DefaultConfig(), []want{
			{line: 2, fields: map[string]any{"a": "x\ny"}}, {line: 4, fields: map[string]any{"a": "p\nq"}}, {line: 6, fields: map[string]any{"b": "r\ns"}}}},
		{"BOM", "\ufeffa,b\n1,2\n", DefaultConfig(), []want{{line: 2, fields: map[string]any{"a": "1"}}}},
		{"blank lines", "a,b\n\n1,2\r\r\n3,4\n", DefaultConfig(), []want{{line: 3}, {line: 5}}},
		{"bare quote", "a,b\n1,x\"y\n3,4\n", DefaultConfig(), []want{{line: 2, err: `bare " in non-quoted-field (column 4)`}, {line: 3, fields: map[string]any{"a": "3"}}}},
		{"wrong field count", "a,b\n1\n1,2,3\n3,4\n", DefaultConfig(), []want{{line: 2, err: "record has 1 fields, header has 2"}, {line: 3, err: "record has 3 fields, header has 2"}, {line: 4}}},
		{"invalid UTF-8", "a,b\n\xe9,2\n", DefaultConfig(), []want{{line: 2, err: `field "a": invalid UTF-8`}}},
		{"latin-1", "a,b\n\xe9,2\n", hdr(DefaultConfig(), func(c *Config) { c.Encoding = "latin-1" }), []want{{line: 2, fields: map[string]any{"a": "é"}}}},
		{"semicolon and comment", "a;b\n# note\n1;2\n", hdr(DefaultConfig(), func(c *Config) { c.Delimiter = ";"; c.Comment = "#" }), []want{{line: 3, fields: map[string]any{"b": "2"}}}},
		{"no header", "1,2\n3,4\n", hdr(DefaultConfig(), func(c *Config) { c.Header = false; c.Columns = []string{"x", "y"} }), []want{{line: 1, fields: map[string]any{"x": "1"}}, {line: 2}}},
		{"renamed header", "a,b\n1,2\n", hdr(DefaultConfig(), func(c *Config) { c.Columns = []string{"x", "y"} }), []want{{line: 2, fields: map[string]any{"y": "2"}}}},
		{"empty header name", "a,\n1,2\n", DefaultConfig(), []want{{line: 2, fields: map[string]any{"column2": "2"}}}},
		{"header only", "a,b\n", DefaultConfig(), nil},
		{"empty", "", DefaultConfig(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readAll(t, []byte(tt.in), tt.cfg)
			if err != nil {
				t.Fatalf("ReadFrom(%q): %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ReadFrom(%q) = %d records, want %d: %+v", tt.in, len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				r := got[i]
				if r.Pos.Line != w.line || r.Pos.Index != i {
					t.Errorf("record %d: line %d index %d, want line %d", i, r.Pos.Line, r.Pos.Index, w.line)
				}
				if w.err != "" {
					if r.Err == nil || !strings.Contains(r.Err.Error(), w.err) {
						t.Errorf("record %d: err = %v, want %q", i, r.Err, w.err)
					}
					continue
				}
				if r.Err != nil {
					t.Errorf("record %d: unexpected error %v", i, r.Err)
				}
				for k, v := range w.fields {
					if r.Fields[k] != v {
						t.Errorf("record %d: field %q = %#v, want %#v", i, k, r.Fields[k], v)
					}
				}
			}
		})
	}
}

func TestReadFromErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"duplicate header", "a,a\n1,2\n", `line 1: duplicate header column "a"`},
		{"bad header", "a,\"b\n", "header:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, []byte(tt.in), cfgFor("x.csv"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadFrom(%q) error = %v, want %q", tt.in, err, tt.want)
			}
		})
	}
	cfg := cfgFor("x.csv")
	cfg.MaxRecordBytes = 1024
	_, err := readAll(t, []byte("a\n\""+strings.Repeat("x", 200000)+"\n"), cfg)
	if err == nil || !strings.Contains(err.Error(), "exceeds max_record_bytes") {
		t.Errorf("runaway quote: error = %v", err)
	}
}

// TestRealSlices reads slices of the Cambridge files kept byte-for-byte:
// CR-only line endings (crashes) and CR records with LF inside quoted
// fields (traffic counts), and a malformed derivative with a BOM and CRLF.
func TestRealSlices(t *testing.T) {
	crashes, err := os.ReadFile("testdata/crashes.csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(t, crashes, cfgFor("testdata/crashes.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 20 {
		t.Fatalf("crashes: %d records", len(recs))
	}
	first := recs[0]
	if first.Fields["Crash Number"] != "24029" || first.Fields["Date Time"] != "4/10/10 9:39" || first.Pos.Line != 2 {
		t.Errorf("first crash = %+v", first)
	}
	if !bytes.Equal(first.Raw, []byte(`24029,4/10/10 9:39,Saturday,Auto,Fixed Object,,,,"  &  Cambridge, MA",,,`)) {
		t.Errorf("raw = %q", first.Raw)
	}
	if got := crashes[first.Pos.Offset : first.Pos.Offset+5]; string(got) != "24029" {
		t.Errorf("offset %d points at %q", first.Pos.Offset, got)
	}
	if last := recs[19]; last.Pos.Line != 21 || last.Fields["Latitude"] == "" {
		t.Errorf("last crash = %+v", last)
	}

	counts, _ := os.ReadFile("testdata/traffic_counts.csv")
	recs, err = readAll(t, counts, cfgFor("testdata/traffic_counts.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || recs[0].Pos.Line != 2 || recs[1].Pos.Line != 4 || recs[4].Pos.Line != 10 {
		t.Fatalf("traffic counts: %d records, lines %v", len(recs), lines(recs))
	}
	if loc := recs[0].Fields["Location"]; loc != "South of Upland Road\n(42.3879544330999, -71.119331699400007)" {
		t.Errorf("Location = %q", loc)
	}
	if recs[0].Fields["1999"] != "29562" || len(recs[0].Fields) != 91 {
		t.Errorf("traffic fields = %d, 1999 = %v", len(recs[0].Fields), recs[0].Fields["1999"])
	}

	bad, _ := os.ReadFile("testdata/malformed.csv")
	recs, err = readAll(t, bad, cfgFor("testdata/malformed.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		s := fmt.Sprintf("%d ok", r.Pos.Line)
		if r.Err != nil {
			s = fmt.Sprintf("%d %v", r.Pos.Line, r.Err)
		}
		got = append(got, s)
	}
	want := []string{"2 ok", `3 bare " in non-quoted-field (column 29)`, "4 ok", "5 record has 3 fields, header has 12", `6 field "Object 1": invalid UTF-8 (set encoding: latin-1 if the file is ISO 8859-1)`, "7 ok"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("malformed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func lines(rs []connectors.Record) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.Pos.Line)
	}
	return out
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ cfg, want string }{
		{"{}", `f.yaml:7: connectors[0].config.path: path is required`},
		{"{path: a.csv, delimiter: ';;'}", `connectors[0].config.delimiter: delimiter must be one character`},
		{"{path: a.csv, header: false}", `connectors[0].config.columns: columns are required when header is false`},
		{"{path: a.csv, encoding: ebcdic}", `connectors[0].config.encoding: encoding must be utf-8 or latin-1`},
		{"{path: a.csv, sep: ';'}", `connectors[0].config.sep: unknown field "sep"`},
	}
	reg := connectors.NewRegistry()
	Register(reg)
	ont := ontology.Default()
	for _, tt := range tests {
		src := "connectors:\n  - name: x\n    source: xx\n    kind: csv\n    mapping: {nodes: [{class: Neighbourhood, key: x, properties: {officialCode: x}}]}\n    config:\n      " + tt.cfg + "\n"
		_, err := connectors.Parse("f.yaml", []byte(src), ont, reg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %s: error = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestSample(t *testing.T) {
	store, stats, dead := connectortest.CheckSample(t, Kind(), ontology.Default())
	if stats[0].Written != 20 || len(dead.Letters) != 0 {
		t.Errorf("sample stats = %+v, dead letters %+v", stats[0], dead.Letters)
	}
	n := store.Nodes["urn:city:incident:cambridge-police:24029"]
	if n.Props["incidentType"] != "ROAD_ACCIDENT" || n.Geometry != nil {
		t.Errorf("crash 24029 = %+v", n)
	}
}

func FuzzReadFrom(f *testing.F) {
	for _, name := range []string{"testdata/crashes.csv", "testdata/traffic_counts.csv", "testdata/malformed.csv"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("a,b\r\"x\r\ny\",1\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var header int
		prevLine, prevOff := 0, int64(-1)
		cfg := cfgFor("fuzz.csv")
		cfg.MaxRecordBytes = 4096
		_ = ReadFrom(context.Background(), bytes.NewReader(data), cfg, func(r connectors.Record) error {
			if r.Err == nil {
				if header == 0 {
					header = len(r.Fields)
				}
				if len(r.Fields) != header {
					t.Fatalf("record with %d fields, first had %d", len(r.Fields), header)
				}
			}
			if r.Pos.Line < prevLine || r.Pos.Offset <= prevOff || r.Pos.Offset > int64(len(data)) {
				t.Fatalf("position %+v after line %d offset %d", r.Pos, prevLine, prevOff)
			}
			prevLine, prevOff = r.Pos.Line, r.Pos.Offset
			return nil
		})
	})
}

// BenchmarkReadFrom parses a crash-shaped file of 10,000 CR-terminated rows.
func BenchmarkReadFrom(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("Crash Number,Date Time,Day Of Week,Object 1,Object 2,Street Number,Steet Name,Cross Street,Location,Latitude,Longitude,Coordinates\r")
	for i := range 10000 {
		fmt.Fprintf(&buf, "%d,6/20/12 17:41,Wednesday,Auto,Bicycle,,Massachusetts Ave,HANCOCK ST,\" Massachusetts Ave & HANCOCK ST Cambridge, MA\",42.36838,-71.108783,\r", 30000+i)
	}
	data := buf.Bytes()
	cfg := cfgFor("bench.csv")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		err := ReadFrom(context.Background(), bytes.NewReader(data), cfg, func(connectors.Record) error { n++; return nil })
		if err != nil || n != 10000 {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
