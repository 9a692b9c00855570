package sql

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
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
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// envURL is the variable scripts/postgres.sh prints and the sample reads.
const envURL = "CITYHUB_POSTGRES_URL"

// postgresURL returns the test server's URL. Without one the test is
// skipped, or fails when CITYHUB_REQUIRE_INTEGRATION=1 (CI).
func postgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(envURL)
	if u == "" {
		if os.Getenv("CITYHUB_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s is not set and CITYHUB_REQUIRE_INTEGRATION=1: start PostgreSQL with scripts/postgres.sh", envURL)
		}
		t.Skipf("%s is not set: run `export $(scripts/postgres.sh start --data /tmp/cityhub-pg --port 0)` to run the PostgreSQL tests", envURL)
	}
	return u
}

// pgDB is a schema of the test's own on the test server, dropped at the
// end, and a connection for setting it up.
type pgDB struct {
	conn   *pgx.Conn
	schema string
	url    string // the server's URL with search_path set to the schema
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// mustPG creates the test's schema.
func mustPG(t testing.TB) *pgDB {
	t.Helper()
	base := postgresURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", envURL, err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	schema := "t_" + name + "_" + hex.EncodeToString(rnd[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	// Unqualified names in the test's statements are the schema's too.
	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		conn.Close(context.Background())
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return &pgDB{conn: conn, schema: schema, url: u.String()}
}

func (db *pgDB) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := db.conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// source builds a postgres source reading through the test's schema.
func (db *pgDB) source(t testing.TB, cfg Config) *Source {
	t.Helper()
	cfg.Driver, cfg.DSNEnv = DriverPostgres, envURL
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 1000
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	s := mustCompile(t, cfg)
	s.lookupEnv = db.env
	return s
}

func (db *pgDB) env(name string) (string, bool) {
	if name == envURL {
		return db.url, true
	}
	return "", false
}

// request is one row of the Boston 311 sample.
type request struct {
	id        int64
	fields    map[string]string
	updatedAt time.Time
}

// boston returns Boston's wall-clock zone.
func boston(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// read311 reads testdata/boston_311_sample_2022-01.csv.
func read311(t testing.TB) ([]string, []request) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "boston_311_sample_2022-01.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := rows[0]
	loc := boston(t)
	var out []request
	for _, row := range rows[1:] {
		r := request{fields: map[string]string{}}
		for i, h := range header {
			r.fields[h] = row[i]
		}
		if r.id, err = strconv.ParseInt(r.fields["case_enquiry_id"], 10, 64); err != nil {
			t.Fatal(err)
		}
		opened, err := time.ParseInLocation("2006-01-02 15:04:05", r.fields["open_dt"], loc)
		if err != nil {
			t.Fatal(err)
		}
		r.updatedAt = opened.UTC()
		out = append(out, r)
	}
	return header, out
}

// mustLoad311 creates table and copies the Boston 311 sample into it,
// with updated_at set to the time each request was opened. It returns
// the rows and their keys in (updated_at, case_enquiry_id) order.
func mustLoad311(t testing.TB, db *pgDB, table string, copies int) ([]request, []int64) {
	t.Helper()
	header, reqs := read311(t)
	var defs []string
	for _, h := range header {
		typ := "text"
		switch h {
		case "case_enquiry_id":
			typ = "bigint PRIMARY KEY"
		case "open_dt", "target_dt", "closed_dt":
			typ = "timestamp"
		case "latitude", "longitude":
			typ = "double precision"
		}
		defs = append(defs, pgx.Identifier{h}.Sanitize()+" "+typ)
	}
	defs = append(defs, "updated_at timestamptz NOT NULL")
	db.exec(t, "CREATE TABLE "+pgx.Identifier{db.schema, table}.Sanitize()+" ("+strings.Join(defs, ", ")+")")
	cols := append(slices.Clone(header), "updated_at")
	var all []request
	var rows [][]any
	for c := range copies {
		for _, r := range reqs {
			r.id += int64(c) * 1_000_000_000_000
			row := make([]any, 0, len(cols))
			for _, h := range header {
				v := r.fields[h]
				if strings.TrimSpace(v) == "" {
					row = append(row, nil)
					continue
				}
				switch h {
				case "case_enquiry_id":
					row = append(row, r.id)
				case "open_dt", "target_dt", "closed_dt":
					ts, err := time.Parse("2006-01-02 15:04:05", v)
					if err != nil {
						t.Fatal(err)
					}
					row = append(row, ts)
				case "latitude", "longitude":
					f, err := strconv.ParseFloat(v, 64)
					if err != nil {
						t.Fatal(err)
					}
					row = append(row, f)
				default:
					row = append(row, v)
				}
			}
			rows = append(rows, append(row, r.updatedAt))
			all = append(all, r)
		}
	}
	n, err := db.conn.CopyFrom(context.Background(), pgx.Identifier{db.schema, table}, cols, pgx.CopyFromRows(rows))
	if err != nil || int(n) != len(rows) {
		t.Fatalf("copy into %s: %d rows, %v", table, n, err)
	}
	// The index the README asks for: each page is an index range scan.
	db.exec(t, "CREATE INDEX ON "+pgx.Identifier{db.schema, table}.Sanitize()+" (updated_at, case_enquiry_id)")
	db.exec(t, "ANALYZE "+pgx.Identifier{db.schema, table}.Sanitize())
	return all, orderedKeys(all)
}

func orderedKeys(reqs []request) []int64 {
	s := slices.Clone(reqs)
	slices.SortFunc(s, func(a, b request) int {
		if c := a.updatedAt.Compare(b.updatedAt); c != 0 {
			return c
		}
		return int(a.id - b.id)
	})
	keys := make([]int64, len(s))
	for i, r := range s {
		keys[i] = r.id
	}
	return keys
}

// readAll reads from checkpoint and returns the records, failing on an
// error.
func readAll(t testing.TB, s *Source, checkpoint string) []connectors.Record {
	t.Helper()
	recs, err := tryRead(t.Context(), s, checkpoint)
	if err != nil {
		t.Fatalf("ReadFrom(%q): %v", checkpoint, err)
	}
	return recs
}

func tryRead(ctx context.Context, s *Source, checkpoint string) ([]connectors.Record, error) {
	var recs []connectors.Record
	err := s.ReadFrom(ctx, checkpoint, func(r connectors.Record) error {
		recs = append(recs, r)
		return nil
	})
	return recs, err
}

func keysOf(t testing.TB, recs []connectors.Record, field string) []int64 {
	t.Helper()
	var keys []int64
	for _, r := range recs {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Pos, r.Err)
		}
		k, ok := r.Fields[field].(int64)
		if !ok {
			t.Fatalf("%s: %s = %#v, want an int64", r.Pos, field, r.Fields[field])
		}
		keys = append(keys, k)
	}
	return keys
}

func TestIntegrationPostgresFullRead(t *testing.T) {
	t.Parallel()
	db := mustPG(t)
	reqs, want := mustLoad311(t, db, "boston_311", 1)
	// 7 rows a page: 15 pages, the last one short.
	s := db.source(t, Config{Table: "boston_311", Watermark: "updated_at", Key: "case_enquiry_id", BatchSize: 7})
	recs := readAll(t, s, "")
	if len(recs) != 100 || len(reqs) != 100 {
		t.Fatalf("read %d records of %d rows, want 100", len(recs), len(reqs))
	}
	if diff := cmp.Diff(want, keysOf(t, recs, "case_enquiry_id")); diff != "" {
		t.Errorf("keys not in (updated_at, key) order (-want +got):\n%s", diff)
	}
	var nullClosed, nullTarget int
	for i, r := range recs {
		if r.Pos.Index != i || len(r.Fields) != 30 {
			t.Errorf("record %d: index %d, %d fields", i, r.Pos.Index, len(r.Fields))
		}
		if r.Fields["closed_dt"] == nil {
			nullClosed++
		}
		if r.Fields["target_dt"] == nil {
			nullTarget++
		}
	}
	if nullClosed != 15 || nullTarget != 11 {
		t.Errorf("NULL closed_dt %d, target_dt %d; want 15 and 11 (the CSV's empty cells)", nullClosed, nullTarget)
	}
	i := slices.Index(want, 101004130437)
	r := recs[i]
	wantFields := map[string]any{
		"case_enquiry_id": int64(101004130437),
		"open_dt":         "2022-01-19T11:18:00",
		"target_dt":       nil,
		"closed_dt":       "2022-01-19T11:42:16",
		"case_title":      "Needle Pickup",
		"subject":         "Mayor's 24 Hour Hotline",
		"closure_reason":  "Case Closed. Closed date : Wed Jan 19 11:42:16 EST 2022 Resolved Removed df  ",
		"latitude":        42.3634,
		"longitude":       -71.0566,
		"updated_at":      "2022-01-19T16:18:00Z",
	}
	for k, v := range wantFields {
		if !cmp.Equal(r.Fields[k], v) {
			t.Errorf("101004130437 %s = %#v, want %#v", k, r.Fields[k], v)
		}
	}
	if r.Pos.Message != "boston_311 case_enquiry_id=101004130437" {
		t.Errorf("position = %q", r.Pos.Message)
	}
	if want := `{"watermark":{"time":"2022-01-19T16:18:00Z"},"key":{"int":"101004130437"}}`; r.Checkpoint != want {
		t.Errorf("checkpoint = %s, want %s", r.Checkpoint, want)
	}
	// Read and ReadFrom("") are the same.
	var n int
	if err := s.Read(t.Context(), func(connectors.Record) error { n++; return nil }); err != nil || n != 100 {
		t.Errorf("Read: %d records, %v", n, err)
	}
}

func TestIntegrationPostgresIncremental(t *testing.T) {
	t.Parallel()
	db := mustPG(t)
	_, order := mustLoad311(t, db, "requests", 1)
	s := db.source(t, Config{Table: "requests", Columns: []string{"case_status", "case_title"}, Watermark: "updated_at", Key: "case_enquiry_id", BatchSize: 10})
	first := readAll(t, s, "")
	if len(first) != 100 {
		t.Fatalf("first read: %d records, want 100", len(first))
	}
	if got := len(first[0].Fields); got != 4 {
		t.Errorf("fields = %v, want the 2 columns plus watermark and key", first[0].Fields)
	}
	cp := first[len(first)-1].Checkpoint
	if again := readAll(t, s, cp); len(again) != 0 {
		t.Fatalf("read after the last checkpoint: %d records, want none", len(again))
	}
	// Three requests change (two at the same instant), two are new (one
	// of them at that instant too).
	base := time.Date(2022, 2, 1, 12, 0, 0, 123456000, time.UTC)
	changed := []int64{order[10], order[50], order[90]}
	db.exec(t, "UPDATE requests SET updated_at = $1, case_status = 'Closed' WHERE case_enquiry_id = $2", base.Add(time.Hour), changed[0])
	db.exec(t, "UPDATE requests SET updated_at = $1 WHERE case_enquiry_id = $2", base.Add(time.Hour), changed[1])
	db.exec(t, "UPDATE requests SET updated_at = $1 WHERE case_enquiry_id = $2", base.Add(2*time.Hour), changed[2])
	db.exec(t, "INSERT INTO requests (case_enquiry_id, case_title, case_status, updated_at) VALUES ($1, $2, 'Open', $3), ($4, $5, 'Open', $6)",
		int64(101004999999), "New: O'Brien St \"pothole\"", base.Add(time.Hour),
		int64(101004000001), "New: Tremont St", base.Add(3*time.Hour))
	second := readAll(t, s, cp)
	want := []int64{min(changed[0], changed[1]), 0, 0, changed[2], 101004000001}
	tied := []int64{changed[0], changed[1], 101004999999}
	slices.Sort(tied)
	copy(want, tied)
	if diff := cmp.Diff(want, keysOf(t, second, "case_enquiry_id")); diff != "" {
		t.Fatalf("incremental read (-want +got):\n%s", diff)
	}
	for _, r := range second {
		if r.Fields["case_enquiry_id"] == changed[0] && r.Fields["case_status"] != "Closed" {
			t.Errorf("changed request %d: status %v, want the new value", changed[0], r.Fields["case_status"])
		}
		if r.Fields["case_enquiry_id"] == int64(101004999999) && r.Fields["case_title"] != "New: O'Brien St \"pothole\"" {
			t.Errorf("new request title = %q", r.Fields["case_title"])
		}
	}
	if w := second[4].Fields["updated_at"]; w != "2022-02-01T15:00:00.123456Z" {
		t.Errorf("last watermark = %v, want microseconds kept", w)
	}
	if again := readAll(t, s, second[len(second)-1].Checkpoint); len(again) != 0 {
		t.Errorf("read after the new checkpoint: %d records, want none", len(again))
	}
}

func TestIntegrationPostgresTies(t *testing.T) {
	t.Parallel()
	db := mustPG(t)
	db.exec(t, "CREATE TABLE ties (id bigint PRIMARY KEY, wm timestamptz, label text)")
	tie := time.Date(2022, 1, 21, 13, 47, 0, 123456000, time.UTC)
	// Five rows share a watermark, inserted out of key order; a page
	// boundary (2 rows a page) falls inside them twice.
	for _, id := range []int64{5, 3, 1, 4, 2} {
		db.exec(t, "INSERT INTO ties VALUES ($1, $2, $3)", id, tie, fmt.Sprintf("tie %d", id))
	}
	db.exec(t, "INSERT INTO ties VALUES (0, $1, 'before'), (9, $2, 'after'), (7, NULL, 'never')",
		tie.Add(-time.Microsecond), tie.Add(time.Microsecond))
	s := db.source(t, Config{Table: "ties", Watermark: "wm", Key: "id", BatchSize: 2})
	recs := readAll(t, s, "")
	want := []int64{0, 1, 2, 3, 4, 5, 9}
	if diff := cmp.Diff(want, keysOf(t, recs, "id")); diff != "" {
		t.Fatalf("read (-want +got):\n%s", diff)
	}
	// Resuming after any record reads exactly the ones after it.
	for i, r := range recs {
		got := keysOf(t, readAll(t, s, r.Checkpoint), "id")
		if diff := cmp.Diff(want[i+1:], got, cmp.Comparer(func(a, b []int64) bool { return slices.Equal(a, b) })); diff != "" {
			t.Errorf("after %s (-want +got):\n%s", r.Checkpoint, diff)
		}
	}
	// A serial is its own tie-break.
	serial := db.source(t, Config{Table: "ties", Watermark: "id", Key: "id", BatchSize: 3})
	if diff := cmp.Diff([]int64{0, 1, 2, 3, 4, 5, 7, 9}, keysOf(t, readAll(t, serial, ""), "id")); diff != "" {
		t.Errorf("serial watermark (-want +got):\n%s", diff)
	}
}

func TestIntegrationPostgresValues(t *testing.T) {
	t.Parallel()
	db := mustPG(t)
	table, col := `odd "table"'s name`, `it's a "col"`
	db.exec(t, "CREATE TABLE "+pgx.Identifier{db.schema, table}.Sanitize()+` (
		id int PRIMARY KEY, wm bigint NOT NULL, `+pgx.Identifier{col}.Sanitize()+` text,
		i2 smallint, i8 bigint, f4 real, f8 double precision, num numeric(40,20), b boolean, by bytea,
		j json, jb jsonb, d date, ts timestamp, tstz timestamptz, u uuid, arr int[], ip inet, iv interval, geo text)`)
	text := "Mayor's \"24\" Hour \\ Hotline — ünïcödé 🚲 '; DROP TABLE x; --"
	db.exec(t, "INSERT INTO "+pgx.Identifier{db.schema, table}.Sanitize()+` VALUES
		(1, 10, $1, -32768, 9223372036854775807, 0.1, 0.1, 12345678901234567890.12345678901234567890, true, '\x00ff'::bytea,
		 '{"n": 9007199254740993, "s": "a\"b"}', '[1, 2.5, {"x": null}]', '2022-01-21', '2022-01-21 13:47:00.123456',
		 '2022-01-21 13:47:00.123456-05', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '10.0.0.1', '1 day 02:00:00',
		 '{"type":"Point","coordinates":[-71.0566,42.3634]}'),
		(2, 20, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`, text)
	s := db.source(t, Config{Table: table, Schema: db.schema, Watermark: "wm", Key: "id", GeometryColumn: "geo"})
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	recs := readAll(t, s, "")
	if len(recs) != 2 || recs[0].Err != nil || recs[1].Err != nil {
		t.Fatalf("records = %+v", recs)
	}
	want := map[string]any{
		"id": int64(1), "wm": int64(10), col: text,
		"i2": int64(-32768), "i8": int64(9223372036854775807), "f4": 0.1, "f8": 0.1,
		"num": "12345678901234567890.12345678901234567890", "b": true, "by": "AP8=",
		"j":  map[string]any{"n": int64(9007199254740993), "s": `a"b`},
		"jb": []any{int64(1), 2.5, map[string]any{"x": nil}},
		"d":  "2022-01-21", "ts": "2022-01-21T13:47:00.123456", "tstz": "2022-01-21T18:47:00.123456Z",
		"u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "arr": []any{int64(1), nil, int64(3)}, "ip": "10.0.0.1",
		"iv": "1 day 02:00:00",
	}
	if diff := cmp.Diff(want, recs[0].Fields); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if string(recs[0].Geometry) != `{"type":"Point","coordinates":[-71.0566,42.3634]}` {
		t.Errorf("geometry = %s", recs[0].Geometry)
	}
	for k, v := range recs[1].Fields {
		if k != "id" && k != "wm" && v != nil {
			t.Errorf("row 2 %s = %#v, want nil", k, v)
		}
	}
	if len(recs[1].Fields) != 19 || recs[1].Geometry != nil {
		t.Errorf("row 2: %d fields, geometry %s", len(recs[1].Fields), recs[1].Geometry)
	}
	// A string watermark and key with the same characters resume exactly.
	db.exec(t, "CREATE TABLE texts (k text PRIMARY KEY, w text NOT NULL)")
	for _, k := range []string{text, "a", "a'", `a"`, `a\`, "ä", "🚲"} {
		db.exec(t, "INSERT INTO texts VALUES ($1, 'same')", k)
	}
	ts := db.source(t, Config{Table: "texts", Watermark: "w", Key: "k", BatchSize: 1})
	all := readAll(t, ts, "")
	if len(all) != 7 {
		t.Fatalf("texts: %d records", len(all))
	}
	for i, r := range all {
		if n := len(readAll(t, ts, r.Checkpoint)); n != len(all)-i-1 {
			t.Errorf("after %s: %d records, want %d", r.Checkpoint, n, len(all)-i-1)
		}
	}
}

func TestIntegrationPostgresQuery(t *testing.T) {
	t.Parallel()
	db := mustPG(t)
	reqs, _ := mustLoad311(t, db, "boston_311", 1)
	s := db.source(t, Config{
		Query: `-- open Boston requests, as GeoJSON points
			SELECT case_enquiry_id, case_title, updated_at,
			       json_build_object('type', 'Point', 'coordinates', json_build_array(longitude, latitude))::text AS geojson
			FROM boston_311 WHERE case_status = 'Open'; `,
		Watermark: "updated_at", Key: "case_enquiry_id", GeometryColumn: "geojson", BatchSize: 4,
	})
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	recs := readAll(t, s, "")
	if len(recs) != 15 {
		t.Fatalf("%d open requests, want 15", len(recs))
	}
	for _, r := range recs {
		var g struct {
			Type        string
			Coordinates []float64
		}
		if err := json.Unmarshal(r.Geometry, &g); err != nil || g.Type != "Point" || len(g.Coordinates) != 2 || g.Coordinates[1] < 42 {
			t.Errorf("%s: geometry %s (%v)", r.Pos, r.Geometry, err)
		}
		if _, ok := r.Fields["geojson"]; ok || len(r.Fields) != 3 {
			t.Errorf("%s: fields %v, want 3 without geojson", r.Pos, r.Fields)
		}
		if !strings.HasPrefix(r.Pos.Message, "query case_enquiry_id=") {
			t.Errorf("position %q", r.Pos.Message)
		}
	}
	var open []request
	for _, r := range reqs {
		if r.fields["case_status"] == "Open" {
			open = append(open, r)
		}
	}
	if diff := cmp.Diff(orderedKeys(open), keysOf(t, recs, "case_enquiry_id")); diff != "" {
		t.Errorf("open requests (-want +got):\n%s", diff)
	}
}

// freePort returns a loopback port nothing listens on.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}

func TestIntegrationPostgresErrors(t *testing.T) {
	t.Parallel()
	db := mustPG(t)
	db.exec(t, "CREATE TABLE boston_311 (case_enquiry_id bigint PRIMARY KEY, updated_at timestamptz, body jsonb)")
	db.exec(t, "INSERT INTO boston_311 VALUES (1, now(), '{}'), (2, now(), '{}'), (3, now(), '{}')")
	withURL := func(s *Source, f func(*url.URL)) *Source {
		u, err := url.Parse(db.url)
		if err != nil {
			t.Fatal(err)
		}
		f(u)
		s.lookupEnv = func(string) (string, bool) { return u.String(), true }
		return s
	}
	good := Config{Table: "boston_311", Watermark: "updated_at", Key: "case_enquiry_id", Timeout: 5 * time.Second}
	tests := []struct {
		name      string
		src       *Source
		transient bool
		want      []string
	}{
		{"server unreachable", withURL(db.source(t, good), func(u *url.URL) { u.Host = "127.0.0.1:" + freePort(t) }), true,
			[]string{"sql: postgres boston_311: connect:", "connection refused"}},
		{"wrong password", withURL(db.source(t, good), func(u *url.URL) { u.User = url.UserPassword(u.User.Username(), "wrong") }), false,
			[]string{"28P01"}},
		{"missing database", withURL(db.source(t, good), func(u *url.URL) { u.Path = "/no_such_db" }), false,
			[]string{`database "no_such_db" does not exist`}},
		{"missing table", db.source(t, Config{Query: "SELECT * FROM no_such_table_311", Watermark: "updated_at", Key: "case_enquiry_id"}), false,
			[]string{"sql: postgres query: first page:", `relation "no_such_table_311" does not exist`, "42P01"}},
		{"syntax error", db.source(t, Config{Query: "SELECT case_enquiry_id updated_at FROM boston_311 WHERE", Watermark: "updated_at", Key: "case_enquiry_id"}), false,
			[]string{"syntax error", "42601"}},
		{"multiple statements", db.source(t, Config{Query: "SELECT * FROM boston_311; DROP TABLE boston_311", Watermark: "updated_at", Key: "case_enquiry_id"}), false,
			[]string{"syntax error"}},
		{"missing watermark column", db.source(t, Config{Table: "boston_311", Watermark: "last_edited", Key: "case_enquiry_id"}), false,
			[]string{`column cityhub_src.last_edited does not exist`}},
		{"key not in the query", db.source(t, Config{Query: "SELECT updated_at FROM boston_311", Watermark: "updated_at", Key: "case_enquiry_id"}), false,
			[]string{`case_enquiry_id does not exist`}},
		{"watermark of a type that cannot resume", db.source(t, Config{Table: "boston_311", Watermark: "updated_at", Key: "body"}), false,
			[]string{`key column "body" (jsonb) cannot order a resumable read`}},
		{"dsn_env unset", func() *Source {
			s := db.source(t, good)
			s.lookupEnv = func(string) (string, bool) { return "", false }
			return s
		}(), false, []string{"environment variable CITYHUB_POSTGRES_URL (dsn_env) is not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, op := range []string{"read", "check"} {
				var err error
				if op == "read" {
					_, err = tryRead(t.Context(), tt.src, "")
				} else {
					err = tt.src.Check(t.Context())
				}
				if err == nil {
					t.Fatalf("%s: no error", op)
				}
				if connectors.IsTransient(err) != tt.transient {
					t.Errorf("%s: %v: transient = %v, want %v", op, err, !tt.transient, tt.transient)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not say %q", op, err, w)
					}
				}
				if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), db.password()) {
					t.Errorf("%s: error %q repeats a password", op, err)
				}
			}
		})
	}
	// A key of a type that can order but not make a checkpoint stops the
	// read with a clear message.
	db.exec(t, "CREATE TABLE boxes (id bytea PRIMARY KEY, w int NOT NULL)")
	db.exec(t, `INSERT INTO boxes VALUES ('\x01', 1)`)
	_, err := tryRead(t.Context(), db.source(t, Config{Table: "boxes", Watermark: "w", Key: "id"}), "")
	if err == nil || connectors.IsTransient(err) || !strings.Contains(err.Error(), `key column "id" (bytea) cannot order a resumable read`) {
		t.Errorf("bytea key: %v", err)
	}
}

func (db *pgDB) password() string {
	u, _ := url.Parse(db.url)
	pw, _ := u.User.Password()
	return pw
}

// TestIntegrationPostgresTerminated ends the source's server process in
// the middle of a read (pg_terminate_backend, as an administrator or a
// shutdown would): the error is transient, and a read resumed from the
// last checkpoint delivered reads the rest exactly once.
func TestIntegrationPostgresTerminated(t *testing.T) {
	t.Parallel()
	db := mustPG(t)
	_, order := mustLoad311(t, db, "boston_311", 1)
	s := db.source(t, Config{Table: "boston_311", Watermark: "updated_at", Key: "case_enquiry_id", BatchSize: 10})
	app := "cityhub_" + db.schema
	u, _ := url.Parse(db.url)
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	s.lookupEnv = func(string) (string, bool) { return u.String(), true }
	var got []connectors.Record
	err := s.Read(t.Context(), func(r connectors.Record) error {
		got = append(got, r)
		if len(got) == 15 { // inside the second page: the third page's statement meets a dead connection
			var n int
			if err := db.conn.QueryRow(context.Background(),
				"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil || n != 1 {
				t.Fatalf("terminate: %d backends, %v", n, err)
			}
		}
		return nil
	})
	if err == nil || !connectors.IsTransient(err) {
		t.Fatalf("Read after termination = %v, want a transient error", err)
	}
	if len(got) != 20 {
		t.Errorf("read %d records before the error, want the 2 pages read (20)", len(got))
	}
	rest := readAll(t, s, got[len(got)-1].Checkpoint)
	if diff := cmp.Diff(order, append(keysOf(t, got, "case_enquiry_id"), keysOf(t, rest, "case_enquiry_id")...)); diff != "" {
		t.Errorf("resumed read (-want +got):\n%s", diff)
	}
}

func TestIntegrationPostgresCancel(t *testing.T) {
	t.Parallel()
	db := mustPG(t)
	mustLoad311(t, db, "boston_311", 1)
	s := db.source(t, Config{Table: "boston_311", Watermark: "updated_at", Key: "case_enquiry_id", BatchSize: 10})
	ctx, cancel := context.WithCancel(t.Context())
	n := 0
	err := s.Read(ctx, func(connectors.Record) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if err != context.Canceled || n != 10 {
		t.Errorf("Read with a cancelled context = %v after %d records, want context.Canceled after 10", err, n)
	}
}

// TestIntegrationPostgresSample loads the kind's sample.yaml against the
// ontology and runs it, over a real PostgreSQL table holding the Boston
// 311 sample, into the embedded SQLite graph store.
func TestIntegrationPostgresSample(t *testing.T) {
	t.Parallel()
	db := mustPG(t)
	reqs, order := mustLoad311(t, db, "boston_311", 1)
	kind := Kind()
	kind.New = func(raw connectors.RawConfig) (connectors.Source, error) {
		src, err := New(raw)
		if err == nil {
			src.(*Source).lookupEnv = db.env
		}
		return src, err
	}
	reg := connectors.NewRegistry()
	reg.Register(kind)
	ont := ontology.Default()
	conns, err := connectors.Parse("sample.yaml", kind.Sample, ont, reg)
	if err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "city.db")
	st, err := sqlite.Open(t.Context(), cfg, ont)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dead := &connectortest.DeadLetters{}
	r := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), Now: connectortest.Now, DeadLetters: dead})
	stats, err := r.RunAll(t.Context(), conns, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Read != 100 || stats[0].Written != 100 || len(dead.Letters) != 0 {
		t.Fatalf("stats = %+v, dead letters = %+v", stats, dead.Letters)
	}
	p, err := st.Find(t.Context(), graph.FindQuery{Class: "ServiceRequest", First: 1, Count: true})
	if err != nil || p.Total != 100 {
		t.Fatalf("ServiceRequest nodes: %+v, %v; want 100", p, err)
	}
	nodes, err := st.Nodes(t.Context(), []string{"urn:city:service-request:boston-311:101004130437"})
	if err != nil || len(nodes) != 1 || nodes[0] == nil {
		t.Fatalf("request 101004130437: %v, %v", nodes, err)
	}
	n := nodes[0]
	want := map[string]any{
		"name": "Needle Pickup", "requestNumber": "101004130437", "status": "CLOSED", "statusRaw": "Closed",
		"channel": "PHONE", "srcType": "Mayor's 24 Hour Hotline", "subCategory": "Needle Pickup",
		"description": "42 Cross St  Boston  MA  02113",
	}
	for k, v := range want {
		if n.Props[k] != v {
			t.Errorf("101004130437 %s = %#v, want %#v", k, n.Props[k], v)
		}
	}
	for k, v := range map[string]string{"reportedAt": "2022-01-19T16:18:00Z", "closedAt": "2022-01-19T16:42:16Z"} {
		if got := fmt.Sprint(timeText(n.Props[k])); got != v {
			t.Errorf("101004130437 %s = %v, want %s (Boston wall clock in UTC)", k, n.Props[k], v)
		}
	}
	if _, ok := n.Props["slaDueAt"]; ok {
		t.Errorf("slaDueAt = %v, want none (NULL target_dt)", n.Props["slaDueAt"])
	}
	if !n.Prov.SrcUpdatedAt.Equal(time.Date(2022, 1, 19, 16, 18, 0, 0, time.UTC)) || n.Geometry == nil ||
		n.Geometry.Point.Lat != 42.3634 || n.Geometry.Point.Lon != -71.0566 {
		t.Errorf("provenance %+v, geometry %+v", n.Prov, n.Geometry)
	}
	open, err := st.Find(t.Context(), graph.FindQuery{Class: "ServiceRequest", First: 1, Count: true,
		Filter: graph.Cmp{Field: "status", Op: graph.OpEq, Value: "SUBMITTED"}})
	if err != nil || open.Total != 15 {
		t.Errorf("SUBMITTED requests: %+v, %v; want the 15 open ones", open, err)
	}

	// With the runner's journal, runs resume from the committed checkpoint:
	// the first reads everything, the next nothing, then only what changed.
	jr := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), Now: connectortest.Now, Journal: true})
	run := func() connectors.RunStats {
		t.Helper()
		stats, err := jr.RunAll(t.Context(), conns, st)
		if err != nil || len(stats) != 1 {
			t.Fatalf("run: %+v, %v", stats, err)
		}
		return stats[0]
	}
	lastKey := order[len(order)-1]
	var lastAt time.Time
	for _, r := range reqs {
		if r.id == lastKey {
			lastAt = r.updatedAt
		}
	}
	wantCP := Checkpoint{Watermark: Value{Type: TypeTime, Time: lastAt}, Key: Value{Type: TypeInt, Int: lastKey}}.Encode()
	if st := run(); st.Read != 100 || st.Checkpoint != wantCP {
		t.Errorf("first journaled run: read %d, checkpoint %s, want %s", st.Read, st.Checkpoint, wantCP)
	}
	if st := run(); st.Read != 0 {
		t.Errorf("second run read %d records, want 0", st.Read)
	}
	db.exec(t, "UPDATE boston_311 SET case_status = 'Closed', closed_dt = '2022-02-01 09:30:00', updated_at = '2022-02-01 14:30:00+00' WHERE case_enquiry_id IN (101004143000, 101004155594)")
	if st := run(); st.Read != 2 || st.Written != 2 {
		t.Errorf("run after 2 updates: %+v", st)
	}
	nodes, err = st.Nodes(t.Context(), []string{"urn:city:service-request:boston-311:101004143000"})
	if err != nil || len(nodes) != 1 || nodes[0].Props["status"] != "CLOSED" || timeText(nodes[0].Props["closedAt"]) != "2022-02-01T14:30:00Z" {
		t.Errorf("updated request: %+v, %v", nodes, err)
	}
}

func timeText(v any) string {
	if t, ok := v.(time.Time); ok {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// BenchmarkIntegrationPostgresRead reads 10,000 rows (the Boston 311
// sample a hundred times, 30 columns) in pages of 1000.
func BenchmarkIntegrationPostgresRead(b *testing.B) {
	db := mustPG(b)
	mustLoad311(b, db, "boston_311", 100)
	s := db.source(b, Config{Table: "boston_311", Watermark: "updated_at", Key: "case_enquiry_id", BatchSize: 1000})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		if err := s.Read(context.Background(), func(connectors.Record) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	if n != 10_000 {
		b.Fatalf("read %d rows, want 10000", n)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
