package e2e

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMalformedRows runs a crash-report file with four broken rows (a bad
// number, a bad date, a missing key, a byte that is not UTF-8) through
// `cityhub connectors run`: the broken rows become dead letters with their
// line numbers and reasons, the rest of the file lands.
func TestMalformedRows(t *testing.T) {
	raw, err := os.ReadFile("../demo/cambridge/data/incidents/cambridge_police_crash_data_2010-2016.csv")
	if err != nil {
		t.Fatal(err)
	}
	// the published file ends its lines with CR only
	rows, err := csv.NewReader(bytes.NewReader(bytes.ReplaceAll(raw, []byte("\r"), []byte("\n")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := rows[0]
	col := func(name string) int { return slices.Index(header, name) }
	// real rows with coordinates, so that a bad coordinate is a real change
	var good [][]string
	for _, r := range rows[1:] {
		if r[col("Latitude")] != "" && len(good) < 30 {
			good = append(good, r)
		}
	}
	broken := map[int]string{ // row index → what is wrong
		3: "latitude", 9: "date", 15: "key", 21: "encoding",
	}
	good[3][col("Latitude")] = "42.36x"
	good[9][col("Date Time")] = "13/45/10 9:99"
	good[15][col("Crash Number")] = ""
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(header)
	for i, r := range good {
		if i == 21 {
			w.Flush()
			// a Latin-1 é where UTF-8 is expected
			r = slices.Clone(r)
			r[col("Steet Name")] = "RUE DE LA PAIX"
			var line bytes.Buffer
			lw := csv.NewWriter(&line)
			lw.Write(r)
			lw.Flush()
			buf.Write(bytes.Replace(line.Bytes(), []byte("RUE DE LA PAIX"), []byte("RUE DE LA PA\xe9X"), 1))
			continue
		}
		w.Write(r)
	}
	w.Flush()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "crashes.csv"), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := `connectors:
  - name: crashes-check
    source: cambridge-police
    kind: csv
    config: {path: crashes.csv}
    mapping:
      nodes:
        - class: Incident
          key: "{Crash Number}"
          name: "Crash {Crash Number}"
          properties:
            incidentNumber: "{Crash Number}"
            incidentType: ROAD_ACCIDENT
            category: TRAFFIC
            status: CLOSED
            reportedAt: {field: Date Time, layout: "1/2/06 15:04", timezone: America/New_York}
            street: "{Steet Name}"
          location: {lat: Latitude, lon: Longitude}
`
	file := filepath.Join(dir, "crashes.yaml")
	if err := os.WriteFile(file, []byte(conn), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	cmd := exec.Command(binary, "connectors", "run", "crashes-check", "--connectors", file, "--data-dir", data, "--log-level", "error")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "crashes-check: PARTIAL read=30 written=26 rejected=4") {
		t.Errorf("run: %s", out)
	}
	s := MustStart(t, data, "--load-on-start", "never", "--connectors", file)
	r := s.MustQuery(t, `{
	  incidents(first: 1) { totalCount }
	  deadLetters(orderBy: [{field: LINE}]) { nodes { line reason position rejectedIn { status connectorCode } } }
	}`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("%s", r.Raw)
	}
	if n := at(r.Data, "incidents", "totalCount"); n != 26.0 {
		t.Errorf("%v incidents landed, want 26", n)
	}
	dls := at(r.Data, "deadLetters", "nodes").([]any)
	var got []string
	for _, d := range dls {
		got = append(got, fmt.Sprintf("%v %v", at(d, "line"), at(d, "reason")))
		if at(d, "rejectedIn", "status") != "PARTIAL" || at(d, "rejectedIn", "connectorCode") != "crashes-check" {
			t.Errorf("dead letter's run: %v", d)
		}
	}
	// the header is line 1: row i is line i+2
	want := []struct {
		line int
		sub  string
	}{{5, "42.36x"}, {11, "13/45/10 9:99"}, {17, "Crash Number"}, {23, "UTF-8"}}
	if len(got) != len(want) {
		t.Fatalf("dead letters = %q, want %d", got, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], fmt.Sprintf("%d line %d: ", w.line, w.line)) || !strings.Contains(got[i], w.sub) {
			t.Errorf("dead letter %d = %q, want line %d mentioning %q (%s)", i, got[i], w.line, w.sub, broken[w.line-2])
		}
	}
}
