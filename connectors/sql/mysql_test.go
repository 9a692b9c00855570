package sql

import (
	"context"
	"crypto/rand"
	stdsql "database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
)

// envMySQL is the variable scripts/mysql.sh prints.
const envMySQL = "CITYHUB_MYSQL_DSN"

// myDB is a database of the test's own on the test server, dropped at the
// end, and a connection for setting it up.
type myDB struct {
	db   *stdsql.DB
	name string
	dsn  string // the server's DSN with the test's database
}

// mustMySQL creates the test's database. Without CITYHUB_MYSQL_DSN the
// test is skipped, or fails when CITYHUB_REQUIRE_INTEGRATION=1.
func mustMySQL(t testing.TB) *myDB {
	t.Helper()
	base := os.Getenv(envMySQL)
	if base == "" {
		if os.Getenv("CITYHUB_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s is not set and CITYHUB_REQUIRE_INTEGRATION=1: start MariaDB with scripts/mysql.sh", envMySQL)
		}
		t.Skipf(`%s is not set: run export "$(scripts/mysql.sh start --data /tmp/cityhub-mysql --port 0)" to run the MySQL tests`, envMySQL)
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("%s: %v", envMySQL, err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name = "cityhub_" + name + "_" + hex.EncodeToString(rnd[:])
	admin, err := stdsql.Open("mysql", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	admin.Close()
	cfg.DBName = name
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	db, err := stdsql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // one session: its settings hold for every statement
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE `" + name + "`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		db.Close()
	})
	cfg.ParseTime, cfg.Params = false, nil
	return &myDB{db: db, name: name, dsn: cfg.FormatDSN()}
}

func (m *myDB) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := m.db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (m *myDB) source(t testing.TB, cfg Config) *Source {
	t.Helper()
	cfg.Driver, cfg.DSNEnv = DriverMySQL, envMySQL
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 1000
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	s := mustCompile(t, cfg)
	s.lookupEnv = func(name string) (string, bool) { return m.dsn, name == envMySQL }
	return s
}

// mustLoad311MySQL creates table with the Boston 311 sample (empty cells
// NULL, updated_at the opening time) and returns the rows and the keys in
// (updated_at, key) order.
func mustLoad311MySQL(t testing.TB, m *myDB, table string) ([]request, []int64) {
	t.Helper()
	header, reqs := read311(t)
	var defs, marks []string
	for _, h := range header {
		typ := "TEXT"
		switch h {
		case "case_enquiry_id":
			typ = "BIGINT PRIMARY KEY"
		case "open_dt", "target_dt", "closed_dt":
			typ = "DATETIME"
		case "latitude", "longitude":
			typ = "DOUBLE"
		}
		defs = append(defs, "`"+h+"` "+typ)
		marks = append(marks, "?")
	}
	m.exec(t, "CREATE TABLE `"+table+"` ("+strings.Join(defs, ", ")+", updated_at TIMESTAMP(6) NOT NULL, INDEX (updated_at, case_enquiry_id))")
	insert := "INSERT INTO `" + table + "` VALUES (" + strings.Join(marks, ", ") + ", ?)"
	for _, r := range reqs {
		args := make([]any, 0, len(header)+1)
		for _, h := range header {
			v := r.fields[h]
			switch {
			case strings.TrimSpace(v) == "":
				args = append(args, nil)
			case h == "case_enquiry_id":
				args = append(args, r.id)
			case h == "open_dt" || h == "target_dt" || h == "closed_dt":
				ts, err := time.Parse("2006-01-02 15:04:05", v)
				if err != nil {
					t.Fatal(err)
				}
				args = append(args, ts)
			case h == "latitude" || h == "longitude":
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				args = append(args, f)
			default:
				args = append(args, v)
			}
		}
		m.exec(t, insert, append(args, r.updatedAt)...)
	}
	return reqs, orderedKeys(reqs)
}

func TestIntegrationMySQLRead(t *testing.T) {
	t.Parallel()
	m := mustMySQL(t)
	_, order := mustLoad311MySQL(t, m, "boston_311")
	s := m.source(t, Config{Table: "boston_311", Watermark: "updated_at", Key: "case_enquiry_id", BatchSize: 7})
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	recs := readAll(t, s, "")
	if diff := cmp.Diff(order, keysOf(t, recs, "case_enquiry_id")); diff != "" {
		t.Fatalf("full read (-want +got):\n%s", diff)
	}
	r := recs[slices.Index(order, 101004130437)]
	want := map[string]any{
		"case_enquiry_id": int64(101004130437), "open_dt": "2022-01-19T11:18:00", "target_dt": nil,
		"closed_dt": "2022-01-19T11:42:16", "subject": "Mayor's 24 Hour Hotline", "latitude": 42.3634,
		"updated_at": "2022-01-19T16:18:00Z",
	}
	for k, v := range want {
		if !cmp.Equal(r.Fields[k], v) {
			t.Errorf("101004130437 %s = %#v, want %#v", k, r.Fields[k], v)
		}
	}
	if want := `{"watermark":{"time":"2022-01-19T16:18:00Z"},"key":{"int":"101004130437"}}`; r.Checkpoint != want {
		t.Errorf("checkpoint = %s, want %s", r.Checkpoint, want)
	}
	cp := recs[len(recs)-1].Checkpoint
	if again := readAll(t, s, cp); len(again) != 0 {
		t.Fatalf("after the last checkpoint: %d records", len(again))
	}
	base := time.Date(2022, 2, 1, 12, 0, 0, 123456000, time.UTC)
	changed := []int64{order[10], order[50], order[90]}
	m.exec(t, "UPDATE boston_311 SET updated_at = ? WHERE case_enquiry_id IN (?, ?)", base.Add(time.Hour), changed[0], changed[1])
	m.exec(t, "UPDATE boston_311 SET updated_at = ? WHERE case_enquiry_id = ?", base.Add(2*time.Hour), changed[2])
	m.exec(t, "INSERT INTO boston_311 (case_enquiry_id, case_title, updated_at) VALUES (?, ?, ?), (?, ?, ?)",
		int64(101004999999), "New: O'Brien St `pothole`", base.Add(time.Hour), int64(101004000001), "New", base.Add(3*time.Hour))
	tied := []int64{changed[0], changed[1], 101004999999}
	slices.Sort(tied)
	second := readAll(t, s, cp)
	if diff := cmp.Diff(append(tied, changed[2], 101004000001), keysOf(t, second, "case_enquiry_id")); diff != "" {
		t.Errorf("incremental read (-want +got):\n%s", diff)
	}
	if len(second) == 5 && second[4].Fields["updated_at"] != "2022-02-01T15:00:00.123456Z" {
		t.Errorf("last watermark = %v, want microseconds kept", second[4].Fields["updated_at"])
	}
}

func TestIntegrationMySQLTiesAndDecimals(t *testing.T) {
	t.Parallel()
	m := mustMySQL(t)
	m.exec(t, "CREATE TABLE ties (id DECIMAL(30,10) PRIMARY KEY, wm DATETIME(6) NULL)")
	tie := time.Date(2022, 1, 21, 13, 47, 0, 123456000, time.UTC)
	// 12345678901234567890.x differ beyond a double's precision.
	for _, id := range []string{"12345678901234567890.0000000005", "12345678901234567890.0000000003", "12345678901234567890.0000000001", "12345678901234567890.0000000004", "12345678901234567890.0000000002"} {
		m.exec(t, "INSERT INTO ties VALUES (?, ?)", id, tie)
	}
	m.exec(t, "INSERT INTO ties VALUES (0, ?), (9, ?), (7, NULL)", tie.Add(-time.Microsecond), tie.Add(time.Microsecond))
	s := m.source(t, Config{Table: "ties", Watermark: "wm", Key: "id", BatchSize: 2})
	recs := readAll(t, s, "")
	ids := func(recs []connectors.Record) []string {
		var out []string
		for _, r := range recs {
			out = append(out, fmt.Sprint(r.Fields["id"]))
		}
		return out
	}
	want := []string{"0.0000000000", "12345678901234567890.0000000001", "12345678901234567890.0000000002", "12345678901234567890.0000000003",
		"12345678901234567890.0000000004", "12345678901234567890.0000000005", "9.0000000000"}
	if diff := cmp.Diff(want, ids(recs)); diff != "" {
		t.Fatalf("read (-want +got):\n%s", diff)
	}
	for i, r := range recs {
		if diff := cmp.Diff(want[i+1:], ids(readAll(t, s, r.Checkpoint)), cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })); diff != "" {
			t.Errorf("after %s (-want +got):\n%s", r.Checkpoint, diff)
		}
	}
}

func TestIntegrationMySQLValues(t *testing.T) {
	t.Parallel()
	m := mustMySQL(t)
	table, col := "odd `table`'s \"name\"", "it's a `col`"
	q := mysqlDialect{}.quote
	m.exec(t, "CREATE TABLE "+q(table)+" (id INT PRIMARY KEY, wm BIGINT NOT NULL, "+q(col)+` TEXT,
		ti TINYINT, ui INT UNSIGNED, ub BIGINT UNSIGNED, f FLOAT, d DOUBLE, num DECIMAL(40,20), bits BIT(16), j JSON, bl BLOB,
		dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL, e ENUM('a','b'), geo TEXT)`)
	text := "Mayor's \"24\" Hour \\ Hotline — ünïcödé 🚲 '; DROP TABLE x; --"
	m.exec(t, "INSERT INTO "+q(table)+` VALUES (1, 10, ?, -128, 4294967295, 18446744073709551615, 1.1, 0.1,
		'12345678901234567890.12345678901234567890', b'0000000100000010', '{"n": 9007199254740993}', x'00ff',
		'2022-01-21', '2022-01-21 13:47:00.123456', '2022-01-21 18:47:00.123456', 'b', '{"type":"Point","coordinates":[-71.0566,42.3634]}'),
		(2, 20, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`, text)
	s := m.source(t, Config{Schema: m.name, Table: table, Watermark: "wm", Key: "id", GeometryColumn: "geo"})
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	recs := readAll(t, s, "")
	if len(recs) != 2 || recs[0].Err != nil || recs[1].Err != nil {
		t.Fatalf("records = %+v", recs)
	}
	want := map[string]any{
		"id": int64(1), "wm": int64(10), col: text, "ti": int64(-128), "ui": int64(4294967295), "ub": "18446744073709551615",
		"f": 1.1, "d": 0.1, "num": "12345678901234567890.12345678901234567890", "bits": int64(258),
		// MariaDB keeps JSON as LONGTEXT: it comes as text.
		"j":  `{"n": 9007199254740993}`,
		"bl": "AP8=", "dt": "2022-01-21", "dtm": "2022-01-21T13:47:00.123456", "ts": "2022-01-21T18:47:00.123456Z", "e": "b",
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
}

func TestIntegrationMySQLErrors(t *testing.T) {
	t.Parallel()
	m := mustMySQL(t)
	m.exec(t, "CREATE TABLE boston_311 (case_enquiry_id BIGINT PRIMARY KEY, updated_at TIMESTAMP(6) NOT NULL)")
	m.exec(t, "INSERT INTO boston_311 VALUES (1, NOW(6))")
	withDSN := func(s *Source, f func(*mysql.Config)) *Source {
		cfg, err := mysql.ParseDSN(m.dsn)
		if err != nil {
			t.Fatal(err)
		}
		f(cfg)
		dsn := cfg.FormatDSN()
		s.lookupEnv = func(string) (string, bool) { return dsn, true }
		return s
	}
	good := Config{Table: "boston_311", Watermark: "updated_at", Key: "case_enquiry_id", Timeout: 5 * time.Second}
	tests := []struct {
		name      string
		src       *Source
		transient bool
		want      []string
	}{
		{"server unreachable", withDSN(m.source(t, good), func(c *mysql.Config) { c.Addr = "127.0.0.1:" + freePort(t) }), true,
			[]string{"sql: mysql boston_311: connect:", "connection refused"}},
		{"wrong password", withDSN(m.source(t, good), func(c *mysql.Config) { c.Passwd = "wrong" }), false,
			[]string{"Error 1045"}},
		{"missing table", m.source(t, Config{Query: "SELECT * FROM no_such_table_311", Watermark: "updated_at", Key: "case_enquiry_id"}), false,
			[]string{"sql: mysql query: first page:", "no_such_table_311' doesn't exist", "1146"}},
		{"syntax error", m.source(t, Config{Query: "SELECT case_enquiry_id updated_at FROM boston_311 WHERE", Watermark: "updated_at", Key: "case_enquiry_id"}), false,
			[]string{"1064"}},
		{"missing watermark column", m.source(t, Config{Table: "boston_311", Watermark: "last_edited", Key: "case_enquiry_id"}), false,
			[]string{"Unknown column 'cityhub_src.last_edited'"}},
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
			}
		})
	}
}

// BenchmarkIntegrationMySQLRead reads the Boston 311 sample (100 rows, 30
// columns) in pages of 1000.
func BenchmarkIntegrationMySQLRead(b *testing.B) {
	m := mustMySQL(b)
	mustLoad311MySQL(b, m, "boston_311")
	s := m.source(b, Config{Table: "boston_311", Watermark: "updated_at", Key: "case_enquiry_id"})
	b.ReportAllocs()
	ctx := context.Background()
	n := 0
	for b.Loop() {
		n = 0
		if err := s.Read(ctx, func(connectors.Record) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
