package ingestbench

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// crashLines returns the CR-separated lines of a crash file.
func crashLines(tb testing.TB, path string) [][]byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Split(scanCR)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// fields parses one CSV line.
func fields(tb testing.TB, line []byte) []string {
	tb.Helper()
	rec, err := csv.NewReader(bytes.NewReader(line)).Read()
	if err != nil {
		tb.Fatalf("%q: %v", line, err)
	}
	return rec
}

// The generated files hold the demo's rows, repeated, each repetition's
// Crash Numbers suffixed, every other byte as in the source.
func TestWriteCrashes(t *testing.T) {
	t.Parallel()
	src := crashLines(t, crashFile)
	if len(src) != crashRows+1 {
		t.Fatalf("%s: %d lines, want the header and %d rows", crashFile, len(src), crashRows)
	}
	for _, rows := range []int{10, crashRows, 25_000} {
		t.Run(strconv.Itoa(rows), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "crashes.csv")
			if err := writeCrashes(path, rows); err != nil {
				t.Fatal(err)
			}
			got := crashLines(t, path)
			if len(got) != rows+1 {
				t.Fatalf("%d lines, want %d", len(got), rows+1)
			}
			if !bytes.Equal(got[0], src[0]) {
				t.Errorf("header %q, want %q", got[0], src[0])
			}
			keys := map[string]bool{}
			for i, line := range got[1:] {
				rep, j := i/crashRows, i%crashRows
				g, w := fields(t, line), fields(t, src[j+1])
				w[0] += "-" + strconv.Itoa(rep)
				if diff := cmp.Diff(w, g); diff != "" {
					t.Fatalf("row %d (-want +got):\n%s", i+1, diff)
				}
				if keys[g[0]] {
					t.Fatalf("row %d: Crash Number %s repeats", i+1, g[0])
				}
				keys[g[0]] = true
			}
			// the rows of the demo file, e.g. crash 30927 on row 5,001 (below),
			// keep their bytes after the key
			if rows > 5_000 && !bytes.HasSuffix(got[5_001], []byte(`,6/20/12 17:41,Wednesday,Auto,Bicycle,,Massachusetts Ave,HANCOCK ST," Massachusetts Ave & HANCOCK ST Cambridge, MA",42.36838,-71.108783,`)) {
				t.Errorf("row 5,001 = %q", got[5_001])
			}
		})
	}
}

func TestSuffixKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line string
		rep  int
		want string // "" for an error
	}{
		{"24029,4/10/10 9:39,Saturday", 3, "24029-3,4/10/10 9:39,Saturday"},
		{"1600000814,6/30/16 15:27,Thursday,,", 12, "1600000814-12,6/30/16 15:27,Thursday,,"},
		{"7,", 0, "7-0,"},
		{",4/10/10 9:39", 1, ""},
		{`"24029",4/10/10`, 1, ""},
		{"Crash Number,Date Time", 1, ""},
		{"24029", 1, ""},
	} {
		got, err := suffixKey([]byte(tc.line), tc.rep)
		if tc.want == "" {
			if err == nil {
				t.Errorf("suffixKey(%q, %d) = %q, want an error", tc.line, tc.rep, got)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("suffixKey(%q, %d) = %q, %v; want %q", tc.line, tc.rep, got, err, tc.want)
		}
	}
}

// FuzzSuffixKey: a line suffixKey accepts keeps every field but the
// first, which gains the suffix; any other line is refused, not mangled.
func FuzzSuffixKey(f *testing.F) {
	for _, line := range crashLines(f, crashFile)[:50] {
		f.Add(line, 1)
	}
	f.Add([]byte(`24029,"a ""quoted"", field",x`), 9)
	f.Add([]byte("1,\xff"), 0)
	f.Fuzz(func(t *testing.T, line []byte, rep int) {
		rep = max(rep, 0) % 1000
		got, err := suffixKey(line, rep)
		if err != nil {
			return
		}
		key, rest, _ := bytes.Cut(line, []byte(","))
		want := string(key) + "-" + strconv.Itoa(rep) + "," + string(rest)
		if string(got) != want {
			t.Fatalf("suffixKey(%q, %d) = %q, want %q", line, rep, got, want)
		}
		r := csv.NewReader(bytes.NewReader(line))
		r.FieldsPerRecord = -1
		in, err := r.Read()
		if err != nil {
			return // not one CSV record: nothing more to compare
		}
		r = csv.NewReader(bytes.NewReader(got))
		r.FieldsPerRecord = -1
		out, err := r.Read()
		if err != nil {
			t.Fatalf("suffixKey(%q) = %q, which does not parse: %v", line, got, err)
		}
		in[0] += "-" + strconv.Itoa(rep)
		if diff := cmp.Diff(in, out); diff != "" {
			t.Fatalf("suffixKey(%q) fields (-want +got):\n%s", line, diff)
		}
	})
}

// yamlConnectors decodes the connectors of a connector file by name, with
// YAML aliases and merge keys resolved.
func yamlConnectors(t *testing.T, path string) map[string]map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Connectors []map[string]any `yaml:"connectors"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]map[string]any{}
	for _, c := range doc.Connectors {
		name, _ := c["name"].(string)
		out[name] = c
	}
	return out
}

// The benchmarks ingest what the demo city ingests: the connectors of
// testdata have the demo's names, sources, kinds and mappings; only the
// files (and the freshness of the areas) differ.
func TestMappingsMirrorDemo(t *testing.T) {
	t.Parallel()
	demo := yamlConnectors(t, "../../demo/cambridge/connectors.yaml")
	for _, file := range []string{"areas.yaml", "crashes.yaml"} {
		ours := yamlConnectors(t, filepath.Join("testdata", file))
		if len(ours) == 0 {
			t.Fatalf("%s: no connectors", file)
		}
		for name, c := range ours {
			d, ok := demo[name]
			if !ok {
				t.Errorf("%s: connector %s is not in the demo", file, name)
				continue
			}
			for _, key := range []string{"source", "kind", "mapping"} {
				if diff := cmp.Diff(d[key], c[key]); diff != "" {
					t.Errorf("%s: %s.%s differs from the demo's (-demo +ours):\n%s", file, name, key, diff)
				}
			}
			dp, _ := d["config"].(map[string]any)["path"].(string)
			cp, _ := c["config"].(map[string]any)["path"].(string)
			if name != "cambridge-crashes" && !strings.HasSuffix(cp, "/demo/cambridge/"+dp) {
				t.Errorf("%s: %s reads %s, not the demo's %s", file, name, cp, dp)
			}
		}
	}
}
