package gtfs

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

const (
	caltrainZip = "testdata/caltrain_gtfs.zip"
	cdmxZip     = "/work/shared/data/gtfs/cdmx_metrobus_gtfs.zip"
)

// MustSource builds a source for tests.
func MustSource(t testing.TB, cfg Config) *Source {
	t.Helper()
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testConfig(path, table string) Config {
	cfg := DefaultConfig()
	cfg.Path, cfg.FeedID, cfg.Table = path, "CT", table
	return cfg
}

// readAll reads every record of a source.
func readAll(t testing.TB, s connectors.Source) []connectors.Record {
	t.Helper()
	var out []connectors.Record
	if err := s.Read(t.Context(), func(r connectors.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// zipMember reads one member of a zip, as the oracle of the tests.
func zipMember(t testing.TB, zipPath, name string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == name {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("%s has no %s", zipPath, name)
	return nil
}

// csvRows parses a CSV member with encoding/csv alone.
func csvRows(t testing.TB, data []byte) (header []string, rows [][]string) {
	t.Helper()
	all, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, utf8BOM))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return all[0], all[1:]
}

// writeZip writes a zip of the given members (in order) into dir.
func writeZip(t testing.TB, dir string, members ...[2]string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "feed.zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m[0], Method: zip.Deflate, Modified: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, m[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadTables(t *testing.T) {
	// Counts from /work/shared/data/SOURCES.md; calendar counted by hand.
	tests := []struct {
		table string
		want  int
	}{
		{"agency", 1}, {"routes", 9}, {"stops", 109}, {"trips", 176}, {"stop_times", 3498}, {"calendar", 2},
	}
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			t.Parallel()
			recs := readAll(t, MustSource(t, testConfig(caltrainZip, tt.table)))
			if len(recs) != tt.want {
				t.Fatalf("%s: %d records, want %d", tt.table, len(recs), tt.want)
			}
			header, rows := csvRows(t, zipMember(t, caltrainZip, tt.table+".txt"))
			for i, r := range recs {
				if r.Err != nil {
					t.Fatalf("record %d: %v", i, r.Err)
				}
				if r.Pos.File != tt.table+".txt" || r.Pos.Line != i+2 || r.Pos.Index != i {
					t.Errorf("record %d: position %+v", i, r.Pos)
				}
				if r.Fields["feed_id"] != "CT" || r.Fields["feed_updated_at"] != "2023-09-22T21:03:36Z" {
					t.Errorf("record %d: feed_id %v, feed_updated_at %v", i, r.Fields["feed_id"], r.Fields["feed_updated_at"])
				}
				for c, name := range header {
					if r.Fields[name] != rows[i][c] {
						t.Errorf("record %d: %s = %q, want %q", i, name, r.Fields[name], rows[i][c])
					}
				}
				if want := strings.Join(rows[i], ","); !strings.HasPrefix(string(r.Raw), want) || strings.ContainsAny(string(r.Raw), "\r\n") {
					t.Errorf("record %d: raw %q, want %q", i, r.Raw, want)
				}
			}
		})
	}
}

func TestFeedUpdatedAt(t *testing.T) {
	zr, err := zip.OpenReader(caltrainZip)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var newest time.Time
	for _, f := range zr.File {
		if f.Modified.After(newest) {
			newest = f.Modified
		}
	}
	recs := readAll(t, MustSource(t, testConfig(caltrainZip, "agency")))
	if got := recs[0].Fields["feed_updated_at"]; got != newest.UTC().Format(time.RFC3339) {
		t.Errorf("feed_updated_at = %v, want %v", got, newest.UTC())
	}
}

// shapeOracle groups shapes.txt with encoding/csv and a map.
func shapeOracle(t testing.TB, data []byte) map[string][][2]float64 {
	t.Helper()
	header, rows := csvRows(t, data)
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	type pt struct {
		seq      int
		lon, lat float64
	}
	pts := map[string][]pt{}
	for _, r := range rows {
		seq, _ := strconv.Atoi(r[col["shape_pt_sequence"]])
		lat, _ := strconv.ParseFloat(r[col["shape_pt_lat"]], 64)
		lon, _ := strconv.ParseFloat(r[col["shape_pt_lon"]], 64)
		id := r[col["shape_id"]]
		pts[id] = append(pts[id], pt{seq, lon, lat})
	}
	out := map[string][][2]float64{}
	for id, ps := range pts {
		slices.SortFunc(ps, func(a, b pt) int { return a.seq - b.seq })
		for _, p := range ps {
			out[id] = append(out[id], [2]float64{p.lon, p.lat})
		}
	}
	return out
}

// shapesOf decodes shape records into coordinates by shape id.
func shapesOf(t testing.TB, recs []connectors.Record) map[string][][2]float64 {
	t.Helper()
	out := map[string][][2]float64{}
	for _, r := range recs {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Pos, r.Err)
		}
		var g struct {
			Type        string       `json:"type"`
			Coordinates [][2]float64 `json:"coordinates"`
		}
		if err := json.Unmarshal(r.Geometry, &g); err != nil || g.Type != "LineString" {
			t.Fatalf("%s: geometry %s: %v", r.Pos, r.Geometry, err)
		}
		id := r.Fields["shape_id"].(string)
		if _, dup := out[id]; dup {
			t.Fatalf("shape %s emitted twice", id)
		}
		if r.Fields["point_count"] != int64(len(g.Coordinates)) {
			t.Errorf("shape %s: point_count %v, %d coordinates", id, r.Fields["point_count"], len(g.Coordinates))
		}
		out[id] = g.Coordinates
	}
	return out
}

func TestShapes(t *testing.T) {
	data := zipMember(t, caltrainZip, "shapes.txt")
	want := shapeOracle(t, data)
	if len(want) != 33 {
		t.Fatalf("oracle: %d shapes", len(want))
	}
	recs := readAll(t, MustSource(t, testConfig(caltrainZip, "shapes")))
	got := shapesOf(t, recs)
	if len(got) != len(want) {
		t.Fatalf("%d shapes, want %d", len(got), len(want))
	}
	for id, w := range want {
		if !slices.Equal(got[id], w) {
			t.Errorf("shape %s: %d points differ from the oracle's %d", id, len(got[id]), len(w))
		}
	}
	if r := recs[0]; r.Pos.File != "shapes.txt" || r.Pos.Line != 2 || r.Fields["shape_id"] != "p_1277284" || r.Fields["feed_updated_at"] == nil {
		t.Errorf("first shape record: %+v %v", r.Pos, r.Fields)
	}
}

// shuffledShapes returns shapes.txt with its rows in random order.
func shuffledShapes(t testing.TB) string {
	t.Helper()
	data := zipMember(t, caltrainZip, "shapes.txt")
	lines := strings.Split(strings.TrimRight(string(data), "\r\n"), "\r\n")
	body := lines[1:]
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(body), func(i, j int) { body[i], body[j] = body[j], body[i] })
	return lines[0] + "\r\n" + strings.Join(body, "\r\n") + "\r\n"
}

func TestShapesUnsorted(t *testing.T) {
	want := shapeOracle(t, zipMember(t, caltrainZip, "shapes.txt"))
	path := writeZip(t, t.TempDir(), [2]string{"shapes.txt", shuffledShapes(t)})
	largest := 0
	for _, w := range want {
		largest = max(largest, len(w))
	}
	tests := []struct {
		name      string
		maxPoints int
		tooLarge  int // shapes expected as error records
	}{
		{"all in memory", 5_000_000, 0},
		{"several passes", 2000, 0},
		{"largest shape over the bound", largest - 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(path, "shapes")
			cfg.MaxShapePoints = tt.maxPoints
			recs := readAll(t, MustSource(t, cfg))
			var good []connectors.Record
			for _, r := range recs {
				if r.Err != nil {
					if !strings.Contains(r.Err.Error(), "more than max_shape_points") {
						t.Errorf("%s: %v", r.Pos, r.Err)
					}
					continue
				}
				good = append(good, r)
			}
			if len(recs)-len(good) != tt.tooLarge || len(recs) != len(want) {
				t.Fatalf("%d records, %d errors; want %d and %d", len(recs), len(recs)-len(good), len(want), tt.tooLarge)
			}
			for id, g := range shapesOf(t, good) {
				if !slices.Equal(g, want[id]) {
					t.Errorf("shape %s differs from the oracle", id)
				}
			}
		})
	}
}

func TestShapeErrors(t *testing.T) {
	head := "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
	tests := []struct {
		name string
		rows string
		want []string // per record: shape id or error text
	}{
		{"bad latitude leaves the shape out", "a,1,2,1\na,x,2,2\nb,1,2,1\nb,1,3,2\n", []string{`line 3: shape "a" is left out: shape_pt_lat "x" is not a number`, "b"}},
		{"out of range", "a,91,2,1\na,1,2,2\n", []string{`line 2: shape "a" is left out: shape_pt_lat 91 is out of range [-90, 90]`}},
		{"one point", "a,1,2,1\n", []string{`line 2: shape "a" has 1 point(s); a line needs at least 2`}},
		{"repeated sequence", "a,1,2,1\na,1,3,1\n", []string{`line 2: shape "a": shape_pt_sequence 1 appears twice (lines 2 and 3)`}},
		{"row without shape", "a,1,2,1\n,1,2,2\na,1,3,2\n", []string{"line 3: shape_id is empty", "a"}},
		{"short row belongs to its shape", "a,1,2,1\na,1\n", []string{`line 3: shape "a" is left out: row has 2 fields, the header has 4`}},
		{"sequence order wins over row order", "a,1,2,5\na,1,3,1\n", []string{"a [[3,1],[2,1]]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeZip(t, t.TempDir(), [2]string{"shapes.txt", head + tt.rows})
			var got []string
			for _, r := range readAll(t, MustSource(t, testConfig(path, "shapes"))) {
				switch {
				case r.Err != nil:
					got = append(got, r.Pos.String()+": "+r.Err.Error())
				case strings.Contains(tt.name, "order"):
					var g struct{ Coordinates json.RawMessage }
					_ = json.Unmarshal(r.Geometry, &g)
					got = append(got, r.Fields["shape_id"].(string)+" "+string(g.Coordinates))
				default:
					got = append(got, r.Fields["shape_id"].(string))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("records =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestTripsWithShapes(t *testing.T) {
	cfg := testConfig(caltrainZip, "trips")
	cfg.Shapes = true
	recs := readAll(t, MustSource(t, cfg))
	shapes := shapesOf(t, readAll(t, MustSource(t, testConfig(caltrainZip, "shapes"))))
	if len(recs) != 176 {
		t.Fatalf("%d trips", len(recs))
	}
	for _, r := range recs {
		var g struct{ Coordinates [][2]float64 }
		if err := json.Unmarshal(r.Geometry, &g); err != nil {
			t.Fatalf("trip %v: geometry %s: %v", r.Fields["trip_id"], r.Geometry, err)
		}
		if want := shapes[r.Fields["shape_id"].(string)]; len(want) == 0 || !slices.Equal(g.Coordinates, want) {
			t.Errorf("trip %v: geometry is not shape %v", r.Fields["trip_id"], r.Fields["shape_id"])
		}
	}
	points := 0
	for _, s := range shapes {
		points += len(s)
	}
	cfg.MaxShapePoints = 1000
	err := MustSource(t, cfg).Read(t.Context(), func(connectors.Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("shapes.txt has %d points, more than max_shape_points (1000)", points)) {
		t.Errorf("Read with a small max_shape_points: %v", err)
	}
}

func TestMalformedRows(t *testing.T) {
	// The real header and first rows of Caltrain's stops.txt, with a BOM,
	// CRLF line ends and three broken rows in between.
	stops := strings.SplitAfter(string(zipMember(t, caltrainZip, "stops.txt")), "\r\n")
	body := "\uFEFF" + stops[0] + stops[1] +
		"70021,70021,22nd Street,37.75,-122.39\r\n" + // short row
		stops[2] +
		"bad,\"bad\"x,Name,1,2,,,,0,,,0,\r\n" + // text after a closing quote
		"70099,70099,\xff,1,2,,,,0,,,0,\r\n" + // not UTF-8
		"\r\n" + // a blank line is skipped
		stops[3]
	path := writeZip(t, t.TempDir(), [2]string{"stops.txt", body})
	var got []string
	for _, r := range readAll(t, MustSource(t, testConfig(path, "stops"))) {
		if r.Err != nil {
			got = append(got, fmt.Sprintf("line %d offset %d: %v", r.Pos.Line, r.Pos.Offset, r.Err))
			continue
		}
		got = append(got, fmt.Sprintf("line %d offset %d: %s", r.Pos.Line, r.Pos.Offset, r.Fields["stop_id"]))
		if !strings.HasPrefix(body[r.Pos.Offset:], string(r.Raw)) {
			t.Errorf("offset %d does not locate %q", r.Pos.Offset, r.Raw)
		}
	}
	o2 := 3 + len(stops[0])
	o3 := o2 + len(stops[1])
	o4 := o3 + len("70021,70021,22nd Street,37.75,-122.39\r\n")
	o5 := o4 + len(stops[2])
	want := []string{
		fmt.Sprintf("line 2 offset %d: 22nd_street", o2),
		fmt.Sprintf("line 3 offset %d: row has 5 fields, the header has 13", o3),
		fmt.Sprintf("line 4 offset %d: 70021", o4),
		fmt.Sprintf(`line 5 offset %d: extraneous or missing " in quoted-field (column 9)`, o5),
		fmt.Sprintf(`line 6 offset %d: field "stop_name" is not valid UTF-8`, o5+len("bad,\"bad\"x,Name,1,2,,,,0,,,0,\r\n")),
		fmt.Sprintf("line 8 offset %d: 70022", len(body)-len(stops[3])),
	}
	if !slices.Equal(got, want) {
		t.Errorf("records =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTableErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		members [][2]string
		table   string
		want    string
	}{
		{"missing table", [][2]string{{"stops.txt", "stop_id\n1\n"}}, "frequencies", "has no table frequencies (frequencies.txt)"},
		{"empty table", [][2]string{{"stops.txt", ""}}, "stops", "stops.txt is empty: no header"},
		{"duplicate column", [][2]string{{"stops.txt", "stop_id,stop_id\n"}}, "stops", `stops.txt: header names column "stop_id" twice`},
		{"shapes without coordinates", [][2]string{{"shapes.txt", "shape_id,shape_pt_sequence\n"}}, "shapes", "shapes.txt has no column shape_pt_lat"},
		{"two folders", [][2]string{{"a/stops.txt", "stop_id\n"}, {"b/stops.txt", "stop_id\n"}}, "stops", "holds stops.txt in several folders"},
		{"runaway row", [][2]string{{"stops.txt", "stop_id\n\"" + strings.Repeat("x", 5000)}}, "stops", "stops.txt: row at offset 8 exceeds max_record_bytes (1024)"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeZip(t, filepath.Join(dir, strconv.Itoa(i)), tt.members...)
			cfg := testConfig(path, tt.table)
			cfg.MaxRecordBytes = 1024
			err := MustSource(t, cfg).Read(t.Context(), func(connectors.Record) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Read = %v, want an error naming %s and %q", err, path, tt.want)
			}
		})
	}
}

func TestNestedFolder(t *testing.T) {
	path := writeZip(t, t.TempDir(), [2]string{"__MACOSX/feed/._stops.txt", "junk"}, [2]string{"feed/stops.txt", "stop_id,stop_name\nS1,One\n"})
	recs := readAll(t, MustSource(t, testConfig(path, "stops")))
	if len(recs) != 1 || recs[0].Fields["stop_name"] != "One" || recs[0].Fields["feed_updated_at"] != "2024-03-01T12:00:00Z" {
		t.Errorf("records = %+v", recs)
	}
}

func TestAgencyIDDefault(t *testing.T) {
	path := writeZip(t, t.TempDir(),
		[2]string{"agency.txt", "agency_name,agency_url,agency_timezone\nShuttle,https://example.org,America/New_York\n"},
		[2]string{"routes.txt", "route_id,agency_id,route_type\nR1,,3\nR2,X,3\n"})
	a := readAll(t, MustSource(t, testConfig(path, "agency")))
	r := readAll(t, MustSource(t, testConfig(path, "routes")))
	if a[0].Fields["agency_id"] != "CT" || r[0].Fields["agency_id"] != "CT" || r[1].Fields["agency_id"] != "X" {
		t.Errorf("agency_id: agency %v, routes %v %v", a[0].Fields["agency_id"], r[0].Fields["agency_id"], r[1].Fields["agency_id"])
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	notZip := filepath.Join(dir, "feed.zip")
	if err := os.WriteFile(notZip, []byte("<html>not a feed</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	noShapes := writeZip(t, filepath.Join(dir, "x"), [2]string{"trips.txt", "trip_id\n1\n"})
	tests := []struct {
		name   string
		path   string
		table  string
		shapes bool
		want   string // "" for no error
	}{
		{"stops", caltrainZip, "stops", false, ""},
		{"trips with shapes", caltrainZip, "trips", true, ""},
		{"missing table", caltrainZip, "frequencies", false, "has no table frequencies"},
		{"missing file", filepath.Join(dir, "none.zip"), "stops", false, "no such file"},
		{"not a zip", notZip, "stops", false, "not a readable zip archive"},
		{"no shapes for the join", noShapes, "trips", true, "has no table shapes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(tt.path, tt.table)
			cfg.Shapes = tt.shapes
			err := MustSource(t, cfg).Check(t.Context())
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestURL(t *testing.T) {
	zipBytes, err := os.ReadFile(caltrainZip)
	if err != nil {
		t.Fatal(err)
	}
	var gotKey, gotAccept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/feed.zip":
			gotKey, gotAccept = r.Header.Get("X-Api-Key")+r.URL.Query().Get("key"), r.Header.Get("Accept")
			w.Write(zipBytes)
		case "/busy.zip":
			http.Error(w, "try later", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	urlConfig := func(path string) Config {
		cfg := testConfig("", "stops")
		cfg.URL = srv.URL + path
		return cfg
	}

	t.Run("download", func(t *testing.T) {
		tmp := t.TempDir()
		t.Setenv("TMPDIR", tmp) // downloads go there
		cfg := urlConfig("/feed.zip")
		cfg.Headers = map[string]string{"Accept": "application/zip"}
		cfg.APIKeyEnv, cfg.APIKeyHeader = "CITYHUB_TEST_GTFS_KEY", "X-Api-Key"
		s := MustSource(t, cfg)
		s.getenv = func(k string) string { return map[string]string{"CITYHUB_TEST_GTFS_KEY": "s3cret"}[k] }
		recs, during := 0, 0
		err := s.Read(t.Context(), func(connectors.Record) error {
			if recs++; recs == 1 {
				files, _ := os.ReadDir(tmp)
				during = len(files)
			}
			return nil
		})
		if err != nil || recs != 109 || during != 1 || gotKey != "s3cret" || gotAccept != "application/zip" {
			t.Errorf("Read = %v: %d records, %d temporary files, key %q, accept %q", err, recs, during, gotKey, gotAccept)
		}
		if err := s.Check(t.Context()); err != nil {
			t.Errorf("Check: %v", err)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("temporary files left behind: %v", left)
		}
	})
	t.Run("larger than max_bytes", func(t *testing.T) {
		cfg := urlConfig("/feed.zip")
		cfg.MaxBytes = 100_000
		err := MustSource(t, cfg).Read(t.Context(), func(connectors.Record) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "larger than max_bytes (100000)") {
			t.Errorf("Read = %v", err)
		}
	})
	t.Run("unavailable is transient", func(t *testing.T) {
		err := MustSource(t, urlConfig("/busy.zip")).Read(t.Context(), func(connectors.Record) error { return nil })
		if !connectors.IsTransient(err) || !strings.Contains(err.Error(), "503") {
			t.Errorf("Read = %v, want a transient 503", err)
		}
	})
	t.Run("key in the query is hidden", func(t *testing.T) {
		cfg := urlConfig("/missing.zip")
		cfg.APIKeyEnv, cfg.APIKeyQuery = "K", "key"
		s := MustSource(t, cfg)
		s.getenv = func(string) string { return "s3cret/+" }
		err := s.Read(t.Context(), func(connectors.Record) error { return nil })
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "404") {
			t.Errorf("Read = %v", err)
		}
		var se interface{ Unwrap() error }
		if !errors.As(err, &se) {
			t.Errorf("error %v does not unwrap", err)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		cfg := urlConfig("/feed.zip")
		cfg.APIKeyEnv = "CITYHUB_TEST_UNSET_KEY"
		s := MustSource(t, cfg)
		s.getenv = func(string) string { return "" }
		err := s.Read(t.Context(), func(connectors.Record) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "environment variable CITYHUB_TEST_UNSET_KEY is not set") {
			t.Errorf("Read = %v", err)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	reg := connectors.NewRegistry()
	Register(reg)
	src := `connectors:
  - name: x
    source: xx
    kind: gtfs
    config:
      path: a.zip
      url: http://example.org/a.zip
      feed_id: "a b"
      table: stops.txt
      shapes: true
      max_shape_points: 1
      colour: red
    mapping: {nodes: [{class: Stop, key: "{stop_id}"}]}
`
	_, err := connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
	if err == nil {
		t.Fatal("no error")
	}
	// unknown keys are reported first, alone
	if !strings.Contains(err.Error(), `f.yaml:12: connectors[0].config.colour: unknown field "colour"`) {
		t.Errorf("error = %v", err)
	}
	src = strings.Replace(src, "      colour: red\n", "", 1)
	_, err = connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
	for _, want := range []string{
		"f.yaml:7: connectors[0].config.url: give path or url, not both",
		`f.yaml:8: connectors[0].config.feed_id: feed_id is required`,
		`f.yaml:9: connectors[0].config.table: table names the table without .txt: "stops"`,
		"f.yaml:10: connectors[0].config.shapes: shapes applies to the trips table only",
		"f.yaml:11: connectors[0].config.max_shape_points: max_shape_points must be at least 2",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want %q", err, want)
		}
	}
}

// runSample loads the sample and runs it into a fresh SQLite graph.
func runSample(t testing.TB) (*sqlite.Store, []connectors.RunStats, *connectortest.DeadLetters, []*connectors.Connector) {
	t.Helper()
	reg := connectors.NewRegistry()
	Register(reg)
	conns, err := connectors.Parse("sample.yaml", Kind().Sample, ontology.Default(), reg)
	if err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	store, err := sqlite.Open(context.Background(), cfg, ontology.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	dead := &connectortest.DeadLetters{}
	r := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), Now: connectortest.Now, DeadLetters: dead})
	stats, err := r.RunAll(context.Background(), conns, store)
	if err != nil {
		t.Fatalf("sample run: %v", err)
	}
	return store, stats, dead, conns
}

func mustNode(t testing.TB, s graph.Store, id string) *graph.Node {
	t.Helper()
	ns, err := s.Nodes(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	if ns[0] == nil {
		t.Fatalf("no node %s", id)
	}
	return ns[0]
}

func neighbors(t testing.TB, s graph.Store, id, rel string) (*graph.Page, []string) {
	t.Helper()
	pages, err := s.Neighbors(context.Background(), graph.NeighborQuery{IDs: []string{id}, Rel: rel, Dir: ontology.Out, First: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range pages[0].Nodes {
		ids = append(ids, n.ID)
	}
	return pages[0], ids
}

func count(t testing.TB, s graph.Store, class string) int {
	t.Helper()
	p, err := s.Find(context.Background(), graph.FindQuery{Class: class, First: 1, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	return p.Total
}

func TestSampleSQLite(t *testing.T) {
	store, stats, dead, conns := runSample(t)
	if len(dead.Letters) != 0 {
		t.Fatalf("dead letters: %+v", dead.Letters)
	}
	wantRead := map[string]int{"caltrain-agency": 1, "caltrain-stops": 109, "caltrain-routes": 9, "caltrain-trips": 176, "caltrain-stop-times": 3498}
	for _, st := range stats {
		if st.Read != wantRead[st.Connector] || st.Written != st.Read {
			t.Errorf("%s: read %d, written %d, want %d", st.Connector, st.Read, st.Written, wantRead[st.Connector])
		}
	}
	for class, want := range map[string]int{"Operator": 1, "Stop": 109, "Route": 9, "Trip": 176} {
		if got := count(t, store, class); got != want {
			t.Errorf("%s nodes: %d, want %d", class, got, want)
		}
	}

	// a platform, its station, its coordinates and enums
	p := mustNode(t, store, "urn:city:stop:caltrain:CT~70021")
	if p.Props["name"] != "22nd Street Caltrain Station" || p.Props["locationType"] != "STOP" || p.Props["wheelchairBoarding"] != "NOT_ACCESSIBLE" ||
		p.Props["zoneId"] != "71825" || p.Geometry == nil || p.Geometry.Point != (graph.Point{Lat: 37.757599, Lon: -122.39188}) {
		t.Errorf("stop 70021 = %+v %+v", p.Props, p.Geometry)
	}
	if ext, _ := p.Props["externalIds"].([]any); len(ext) != 1 || ext[0] != "gtfsStopCode:70021" {
		t.Errorf("stop 70021 externalIds = %#v", p.Props["externalIds"])
	}
	if p.Prov.SrcUpdatedAt != time.Date(2023, 9, 22, 21, 3, 36, 0, time.UTC) {
		t.Errorf("stop 70021 srcUpdatedAt = %v", p.Prov.SrcUpdatedAt)
	}
	if _, ids := neighbors(t, store, p.ID, "PART_OF"); !slices.Equal(ids, []string{"urn:city:stop:caltrain:CT~22nd_street"}) {
		t.Errorf("stop 70021 PART_OF %v", ids)
	}
	// 70292 comes before its station in stops.txt: the station's stub
	// did not erase the station
	st := mustNode(t, store, "urn:city:stop:caltrain:CT~blossom_hill")
	if st.Props["name"] != "Blossom Hill Caltrain Station" || st.Props["locationType"] != "STATION" || st.Geometry == nil {
		t.Errorf("station blossom_hill = %+v", st.Props)
	}

	// route, operator
	rt := mustNode(t, store, "urn:city:route:caltrain:CT~L5")
	if rt.Props["name"] != "LTD 5" || rt.Props["shortName"] != "L5" || rt.Props["routeType"] != "RAIL" || rt.Props["color"] != "fcedc7" {
		t.Errorf("route L5 = %+v", rt.Props)
	}
	if _, ids := neighbors(t, store, rt.ID, "OPERATED_BY"); !slices.Equal(ids, []string{"urn:city:operator:caltrain:CT~CT"}) {
		t.Errorf("route L5 OPERATED_BY %v", ids)
	}
	if op := mustNode(t, store, "urn:city:operator:caltrain:CT~CT"); op.Props["name"] != "Caltrain" || op.Props["operatorType"] != "TRANSIT" {
		t.Errorf("operator = %+v", op.Props)
	}

	// trip 501: its props survived the stop_times stubs, its shape, its calls
	tr := mustNode(t, store, "urn:city:trip:caltrain:CT~501")
	if tr.Props["headsign"] != "San Francisco" || tr.Props["directionId"] != int64(0) || tr.Props["shapeId"] != "p_1277346" ||
		tr.Props["serviceId"] != "72982" || tr.Geometry == nil || tr.Geometry.Kind != "LineString" {
		t.Errorf("trip 501 = %+v %+v", tr.Props, tr.Geometry)
	}
	if _, ids := neighbors(t, store, tr.ID, "ON_ROUTE"); !slices.Equal(ids, []string{rt.ID}) {
		t.Errorf("trip 501 ON_ROUTE %v", ids)
	}
	page, _ := neighbors(t, store, tr.ID, "CALLS_AT")
	_, rows := csvRows(t, zipMember(t, caltrainZip, "stop_times.txt"))
	var want501 []string
	for _, r := range rows {
		if r[0] == "501" {
			want501 = append(want501, "urn:city:stop:caltrain:CT~"+r[3])
		}
	}
	if page.Total != len(want501) {
		t.Errorf("trip 501 calls at %d stops, want %d", page.Total, len(want501))
	}
	for i, n := range page.Nodes {
		if n.ID == "urn:city:stop:caltrain:CT~70271" {
			ep := page.EdgeProps[i]
			if ep["stopSequence"] != int64(1) || ep["arrivalTime"] != "5:00:00" || ep["departureTime"] != "5:00:00" {
				t.Errorf("trip 501 CALLS_AT 70271 = %+v", ep)
			}
		}
	}

	// every stop time is an edge (Caltrain trips call once at each stop)
	trips, err := store.Find(context.Background(), graph.FindQuery{Class: "Trip", First: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range trips.Nodes {
		ids = append(ids, n.ID)
	}
	pages, err := store.Neighbors(context.Background(), graph.NeighborQuery{IDs: ids, Rel: "CALLS_AT", Dir: ontology.Out, First: 1})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, p := range pages {
		calls += p.Total
	}
	if calls != 3498 {
		t.Errorf("CALLS_AT edges: %d, want 3498", calls)
	}

	// a second run of the same feed changes nothing: the stubs of the
	// stop times and the stations are older than what is stored
	r := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), Now: connectortest.Now})
	stats, err = r.RunAll(context.Background(), conns, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stats {
		if st.Changes != 0 || st.Rejected != 0 || st.Written != wantRead[st.Connector] {
			t.Errorf("rerun %s: written %d, %d changes, %d rejected", st.Connector, st.Written, st.Changes, st.Rejected)
		}
	}
}

// Parent stations in later batches than their platforms (a batch per
// record): the stubs keep the edges, and the stations keep their data.
func TestStopsBatchOrder(t *testing.T) {
	reg := connectors.NewRegistry()
	Register(reg)
	conns, err := connectors.Parse("sample.yaml", Kind().Sample, ontology.Default(), reg)
	if err != nil {
		t.Fatal(err)
	}
	var stops *connectors.Connector
	for _, c := range conns {
		if c.Name == "caltrain-stops" {
			stops = c
		}
	}
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	store, err := sqlite.Open(context.Background(), cfg, ontology.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dead := &connectortest.DeadLetters{}
	r := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), Now: connectortest.Now, DeadLetters: dead, BatchSize: 1})
	st, err := r.Run(context.Background(), stops, store)
	if err != nil || st.Written != 109 || len(dead.Letters) != 0 {
		t.Fatalf("run: %+v, %v, dead letters %+v", st, err, dead.Letters)
	}
	if got := count(t, store, "Stop"); got != 109 {
		t.Errorf("stops: %d", got)
	}
	if st := mustNode(t, store, "urn:city:stop:caltrain:CT~blossom_hill"); st.Props["name"] != "Blossom Hill Caltrain Station" {
		t.Errorf("station blossom_hill = %+v", st.Props)
	}
	if _, ids := neighbors(t, store, "urn:city:stop:caltrain:CT~70292", "PART_OF"); !slices.Equal(ids, []string{"urn:city:stop:caltrain:CT~blossom_hill"}) {
		t.Errorf("stop 70292 PART_OF %v", ids)
	}
	_, rows := csvRows(t, zipMember(t, caltrainZip, "stops.txt"))
	withParent := 0
	for _, row := range rows {
		if row[9] != "" {
			withParent++
		}
	}
	pages, err := store.Find(context.Background(), graph.FindQuery{Class: "Stop", First: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range pages.Nodes {
		ids = append(ids, n.ID)
	}
	parts, err := store.Neighbors(context.Background(), graph.NeighborQuery{IDs: ids, Rel: "PART_OF", Dir: ontology.Out, First: 1})
	if err != nil {
		t.Fatal(err)
	}
	edges := 0
	for _, p := range parts {
		edges += p.Total
	}
	if edges != withParent || withParent == 0 {
		t.Errorf("PART_OF edges: %d, want %d", edges, withParent)
	}
}

// The sample also passes the framework's generic sample check.
func TestSampleCheck(t *testing.T) {
	_, stats, dead := connectortest.CheckSample(t, Kind(), ontology.Default())
	if len(stats) != 5 || len(dead.Letters) != 0 {
		t.Errorf("stats %+v, dead letters %+v", stats, dead.Letters)
	}
}

// The Mexico City feed: a BOM and LF line ends in agency.txt, CRLF in the
// other tables, a stray desktop.ini, larger tables.
func TestCDMX(t *testing.T) {
	if _, err := os.Stat(cdmxZip); errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s is absent", cdmxZip)
	}
	tests := []struct {
		table string
		want  int
	}{{"agency", 8}, {"stops", 6021}, {"stop_times", 70714}, {"trips", 1741}, {"routes", 145}}
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(cdmxZip, tt.table)
			cfg.FeedID = "CDMX"
			n := 0
			err := MustSource(t, cfg).Read(t.Context(), func(r connectors.Record) error {
				if r.Err != nil {
					return fmt.Errorf("%s: %v", r.Pos, r.Err)
				}
				if a, ok := r.Fields["agency_id"].(string); tt.table == "agency" && (!ok || a == "") {
					return fmt.Errorf("%s: no agency_id in %v", r.Pos, r.Fields)
				}
				n++
				return nil
			})
			if err != nil || n != tt.want {
				t.Errorf("%s: %d records, err %v; want %d", tt.table, n, err, tt.want)
			}
		})
	}
	t.Run("shapes", func(t *testing.T) {
		want := shapeOracle(t, zipMember(t, cdmxZip, "shapes.txt"))
		cfg := testConfig(cdmxZip, "shapes")
		got := shapesOf(t, readAll(t, MustSource(t, cfg)))
		if len(got) != len(want) || len(got) != 345 {
			t.Fatalf("%d shapes, want %d", len(got), len(want))
		}
		for id := range want {
			if !slices.Equal(got[id], want[id]) {
				t.Errorf("shape %s differs", id)
			}
		}
	})
}

func benchRead(b *testing.B, cfg Config) {
	s := MustSource(b, cfg)
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		b.Skipf("%s: %v", cfg.Path, err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		if err := s.Read(context.Background(), func(connectors.Record) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	_ = fi
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkRead(b *testing.B) {
	for _, bc := range []struct {
		name, path, table string
		shapes            bool
	}{
		{"caltrain/stop_times", caltrainZip, "stop_times", false},
		{"caltrain/shapes", caltrainZip, "shapes", false},
		{"caltrain/trips+shapes", caltrainZip, "trips", true},
		{"cdmx/stop_times", cdmxZip, "stop_times", false},
		{"cdmx/stops", cdmxZip, "stops", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(bc.path, bc.table)
			cfg.Shapes = bc.shapes
			benchRead(b, cfg)
		})
	}
}

func BenchmarkReadUnsortedShapes(b *testing.B) {
	path := writeZip(b, b.TempDir(), [2]string{"shapes.txt", shuffledShapes(b)})
	for _, maxPoints := range []int{5_000_000, 2000} {
		b.Run(fmt.Sprintf("max_shape_points=%d", maxPoints), func(b *testing.B) {
			cfg := testConfig(path, "shapes")
			cfg.MaxShapePoints = maxPoints
			benchRead(b, cfg)
		})
	}
}
