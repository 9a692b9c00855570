package sql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/ontology"
	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// mustCompile builds a source from a config, failing the test on errors.
func mustCompile(t testing.TB, cfg Config) *Source {
	t.Helper()
	s, err := compile(cfg, func(field, format string, args ...any) error {
		return fmt.Errorf(field+": "+format, args...)
	})
	if err != nil {
		t.Fatalf("compile(%+v): %v", cfg, err)
	}
	return s
}

func TestConfigErrors(t *testing.T) {
	reg := connectors.NewRegistry()
	Register(reg)
	tests := []struct {
		name   string
		config string
		want   []string
	}{
		{"no driver", "table: t\nwatermark: w\nkey: k\ndsn_env: X", []string{`:6: connectors[0].config.driver: driver is required`}},
		{"unknown driver", "driver: oracle\ntable: t\nwatermark: w\nkey: k\ndsn_env: X", []string{`:6: connectors[0].config.driver: unknown driver "oracle"`}},
		{"nothing to read", "driver: postgres\ndsn_env: X\nwatermark: w\nkey: k", []string{`config.table: table or query is required`}},
		{"no dsn", "driver: postgres\ntable: t\nwatermark: w\nkey: k", []string{`config.dsn_env: dsn_env is required`}},
		{"dsn_env holds a DSN", "driver: postgres\ndsn_env: postgres://x@h/db\ntable: t\nwatermark: w\nkey: k", []string{`config.dsn_env: dsn_env "postgres://x@h/db" is not an environment variable name`}},
		{"postgres URL with password", "driver: postgres\ndsn: postgres://u:secret@h/db\ntable: t\nwatermark: w\nkey: k", []string{`:7: connectors[0].config.dsn: dsn holds a password`}},
		{"postgres URL password parameter", "driver: postgres\ndsn: postgres://u@h/db?password=secret\ntable: t\nwatermark: w\nkey: k", []string{`config.dsn: dsn holds a password`}},
		{"postgres key=value password", "driver: postgres\ndsn: host=h user=u  password = secret\ntable: t\nwatermark: w\nkey: k", []string{`config.dsn: dsn holds a password`}},
		{"mysql password", "driver: mysql\ndsn: \"u:secret@tcp(h:3306)/db\"\ntable: t\nwatermark: w\nkey: k", []string{`config.dsn: dsn holds a password`}},
		{"both dsn forms", "driver: postgres\ndsn: host=h\ndsn_env: X\ntable: t\nwatermark: w\nkey: k", []string{`config.dsn: set dsn_env or dsn, not both`}},
		{"table and query", "driver: postgres\ndsn_env: X\ntable: t\nquery: SELECT 1\nwatermark: w\nkey: k", []string{`config.query: set table or query, not both`}},
		{"not a select", "driver: postgres\ndsn_env: X\nquery: \"-- hi\\nDELETE FROM t\"\nwatermark: w\nkey: k", []string{`config.query: query must be a SELECT (or WITH … SELECT), not DELETE`}},
		{"columns with query", "driver: postgres\ndsn_env: X\nquery: SELECT 1\ncolumns: [a]\nwatermark: w\nkey: k", []string{`config.columns: columns go with table`}},
		{"no watermark, no key", "driver: postgres\ndsn_env: X\ntable: t", []string{`config.watermark: watermark is required`, `config.key: key is required`}},
		{"NUL in a name", "driver: postgres\ndsn_env: X\ntable: \"a\\0b\"\nwatermark: w\nkey: k", []string{`config.table: table "a\x00b" contains a NUL character`}},
		{"long postgres name", "driver: postgres\ndsn_env: X\ntable: " + strings.Repeat("t", 64) + "\nwatermark: w\nkey: k", []string{`is 64 bytes long; PostgreSQL names have at most 63`}},
		{"mysql name ending in a space", "driver: mysql\ndsn_env: X\ntable: \"t \"\nwatermark: w\nkey: k", []string{`config.table: table "t " ends with a space`}},
		{"duplicate column", "driver: postgres\ndsn_env: X\ntable: t\ncolumns: [a, b, a]\nwatermark: w\nkey: k", []string{`config.columns[2]: column "a" is listed twice`}},
		{"bad sizes", "driver: postgres\ndsn_env: X\ntable: t\nwatermark: w\nkey: k\nbatch_size: 0\ntimeout: 0s", []string{`config.batch_size: batch_size must be between 1 and 100000`, `config.timeout: timeout must be a positive duration`}},
		{"unknown field", "driver: postgres\ndsn_env: X\ntable: t\nwatermark: w\nkey: k\npassword: x", []string{`config.password: unknown field "password"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			indented := "      " + strings.ReplaceAll(tt.config, "\n", "\n      ")
			src := "connectors:\n  - name: x\n    source: xx\n    kind: sql\n    config:\n" + indented +
				"\n    mapping: {nodes: [{class: Neighbourhood, key: x, properties: {officialCode: x}}]}\n"
			_, err := connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
			for _, want := range tt.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error = %v, want %q", err, want)
				}
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

func TestConfigAccepts(t *testing.T) {
	for _, cfg := range []string{
		"driver: postgres\ndsn: postgres://cityhub@127.0.0.1/cityhub\ntable: t\nwatermark: w\nkey: k",
		"driver: postgres\ndsn: host=/run/postgresql dbname=cityhub\ntable: t\nwatermark: w\nkey: w",
		"driver: mysql\ndsn: \"cityhub@tcp(127.0.0.1:3306)/cityhub\"\nquery: \"/* c */ with x as (select 1) select * from x;\"\nwatermark: w\nkey: k",
		"driver: postgres\ndsn_env: CITYHUB_POSTGRES_URL\nschema: s\ntable: 'it''s \"quoted\"'\ncolumns: ['a\"b']\nwatermark: w\nkey: k\ntimeout: 2s\nbatch_size: 100000",
	} {
		raw, err := connectors.ParseRawConfig("f.yaml", []byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(raw); err != nil {
			t.Errorf("New(%q) = %v", cfg, err)
		}
	}
}

func TestPageQuery(t *testing.T) {
	ts := time.Date(2022, 1, 21, 18, 47, 0, 123456000, time.UTC)
	after := &Checkpoint{Watermark: Value{Type: TypeTime, Time: ts}, Key: Value{Type: TypeInt, Int: 42}}
	tests := []struct {
		name  string
		cfg   Config
		after *Checkpoint
		want  string
		args  []any
	}{
		{
			"postgres table, first page",
			Config{Driver: DriverPostgres, Table: "boston_311", Watermark: "updated_at", Key: "id"}, nil,
			`SELECT cityhub_src.* FROM "boston_311" AS cityhub_src WHERE cityhub_src."updated_at" IS NOT NULL AND cityhub_src."id" IS NOT NULL ORDER BY cityhub_src."updated_at", cityhub_src."id" LIMIT $1`,
			[]any{int64(1000)},
		},
		{
			"postgres quoted names, columns, after",
			Config{Driver: DriverPostgres, Schema: `my "schema"`, Table: `it's "t"`, Columns: []string{`a"b`, "id"}, Watermark: `w"m`, Key: "id"}, after,
			`SELECT cityhub_src."a""b", cityhub_src."id", cityhub_src."w""m" FROM "my ""schema"""."it's ""t""" AS cityhub_src WHERE cityhub_src."w""m" IS NOT NULL AND cityhub_src."id" IS NOT NULL AND (cityhub_src."w""m", cityhub_src."id") > ($1, $2) ORDER BY cityhub_src."w""m", cityhub_src."id" LIMIT $3`,
			[]any{ts, int64(42), int64(1000)},
		},
		{
			"postgres query",
			Config{Driver: DriverPostgres, Query: "SELECT * FROM t -- all\n;", Watermark: "w", Key: "k"}, nil,
			"SELECT cityhub_src.* FROM (\nSELECT * FROM t -- all\n) AS cityhub_src WHERE cityhub_src.\"w\" IS NOT NULL AND cityhub_src.\"k\" IS NOT NULL ORDER BY cityhub_src.\"w\", cityhub_src.\"k\" LIMIT $1",
			[]any{int64(1000)},
		},
		{
			"mysql backticks, after",
			Config{Driver: DriverMySQL, Table: "t`x", Watermark: "w", Key: "k"}, after,
			"SELECT cityhub_src.* FROM `t``x` AS cityhub_src WHERE cityhub_src.`w` IS NOT NULL AND cityhub_src.`k` IS NOT NULL AND (cityhub_src.`w` > ? OR (cityhub_src.`w` = ? AND cityhub_src.`k` > ?)) ORDER BY cityhub_src.`w`, cityhub_src.`k` LIMIT ?",
			[]any{ts, ts, int64(42), int64(1000)},
		},
		{
			"mysql decimal key",
			Config{Driver: DriverMySQL, Table: "t", Watermark: "w", Key: "k"}, &Checkpoint{Watermark: Value{Type: TypeInt, Int: 7}, Key: Value{Type: TypeDecimal, Text: "12.50"}},
			"SELECT cityhub_src.* FROM `t` AS cityhub_src WHERE cityhub_src.`w` IS NOT NULL AND cityhub_src.`k` IS NOT NULL AND (cityhub_src.`w` > ? OR (cityhub_src.`w` = ? AND cityhub_src.`k` > CAST(? AS DECIMAL(65,30)))) ORDER BY cityhub_src.`w`, cityhub_src.`k` LIMIT ?",
			[]any{int64(7), int64(7), "12.50", int64(1000)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.DSNEnv, cfg.BatchSize, cfg.Timeout = "X", 1000, time.Second
			s := mustCompile(t, cfg)
			q, args := s.pageQuery(tt.after, cfg.BatchSize)
			if q != tt.want {
				t.Errorf("pageQuery =\n%s\nwant\n%s", q, tt.want)
			}
			if diff := cmp.Diff(tt.args, args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	values := []Value{
		{Type: TypeInt, Int: math.MaxInt64},
		{Type: TypeInt, Int: math.MinInt64},
		{Type: TypeFloat, Num: 0.1},
		{Type: TypeFloat, Num: math.Nextafter(1, 2)},
		{Type: TypeFloat, Num: math.Inf(-1)},
		{Type: TypeDecimal, Text: "-12345678901234567890.000000000000000001"},
		{Type: TypeString, Text: `it's "quoted" \ back\slash, ünïcödé 🚲, "}{`},
		{Type: TypeString, Text: ""},
		{Type: TypeTime, Time: time.Date(2022, 1, 21, 13, 47, 0, 123456789, ny)},
		{Type: TypeTime, Time: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, w := range values {
		for _, k := range values {
			c := Checkpoint{Watermark: w, Key: k}
			text := c.Encode()
			got, err := DecodeCheckpoint(text)
			if err != nil {
				t.Fatalf("DecodeCheckpoint(%s): %v", text, err)
			}
			if !sameValue(got.Watermark, w) || !sameValue(got.Key, k) {
				t.Errorf("DecodeCheckpoint(%s) = %+v, want %+v", text, got, c)
			}
			if again := got.Encode(); again != text {
				t.Errorf("re-encoded %s as %s", text, again)
			}
		}
	}
	want := `{"watermark":{"time":"2022-01-21T13:47:00.123456789-05:00"},"key":{"int":"9223372036854775807"}}`
	if got := (Checkpoint{Watermark: values[8], Key: values[0]}).Encode(); got != want {
		t.Errorf("Encode = %s, want %s", got, want)
	}
}

func sameValue(a, b Value) bool {
	if a.Type != b.Type {
		return false
	}
	switch a.Type {
	case TypeTime:
		_, ao := a.Time.Zone()
		_, bo := b.Time.Zone()
		return a.Time.Equal(b.Time) && ao == bo
	case TypeFloat:
		return math.Float64bits(a.Num) == math.Float64bits(b.Num)
	}
	return a == b
}

func TestDecodeCheckpointErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "not a checkpoint"},
		{`[]`, "not a checkpoint"},
		{`{"watermark":{"int":"1"},"key":{"int":"1"},"x":1}`, `unknown field "x"`},
		{`{"watermark":{"int":"1"}}`, "checkpoint key: want one typed member"},
		{`{"watermark":{"int":"1","string":"a"},"key":{"int":"1"}}`, "found 2"},
		{`{"watermark":{"int":"1.5"},"key":{"int":"1"}}`, `int "1.5": invalid syntax`},
		{`{"watermark":{"int":"99999999999999999999"},"key":{"int":"1"}}`, "value out of range"},
		{`{"watermark":{"time":"2022-01-21T13:47:00"},"key":{"int":"1"}}`, "not RFC 3339 with a zone"},
		{`{"watermark":{"decimal":"1e5"},"key":{"int":"1"}}`, "not a decimal number"},
		{`{"watermark":{"blob":"AA=="},"key":{"int":"1"}}`, `unknown value type "blob"`},
		{`{"watermark":{"int":1},"key":{"int":"1"}}`, "not a checkpoint"},
		{`{"watermark":{"int":"1"},"key":{"int":"1"}} {}`, "data after"},
	}
	for _, tt := range tests {
		if _, err := DecodeCheckpoint(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeCheckpoint(%s) error = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestValues(t *testing.T) {
	ts := time.Date(2022, 1, 21, 13, 47, 0, 500000000, time.UTC)
	num := pgtype.Numeric{}
	if err := num.Scan("12345678901234567890.123"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pg   bool
		typ  string
		in   any
		want any
	}{
		{"pg timestamptz", true, "TIMESTAMPTZ", ts.In(time.FixedZone("x", 3600)), "2022-01-21T13:47:00.5Z"},
		{"pg timestamp", true, "TIMESTAMP", ts, "2022-01-21T13:47:00.5"},
		{"pg date", true, "DATE", ts, "2022-01-21"},
		{"pg numeric", true, "NUMERIC", num, "12345678901234567890.123"},
		{"pg bytea", true, "BYTEA", []byte{0, 1, 0xff}, "AAH/"},
		{"pg int2", true, "INT2", int16(-7), int64(-7)},
		{"pg float4", true, "FLOAT4", float32(0.1), 0.1},
		{"pg NaN", true, "FLOAT8", math.NaN(), "NaN"},
		{"pg uuid", true, "UUID", [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}, "12345678-9abc-def0-0102-030405060708"},
		{"pg inet", true, "INET", netip.MustParsePrefix("10.1.2.3/32"), "10.1.2.3"},
		{"pg array", true, "_TIMESTAMP", []any{ts, nil}, []any{"2022-01-21T13:47:00.5", nil}},
		{"pg interval", true, "INTERVAL", pgtype.Interval{Days: 1, Microseconds: 3_600_000_000, Valid: true}, "1 day 01:00:00"},
		{"mysql text int", false, "BIGINT", []byte("-9223372036854775808"), int64(math.MinInt64)},
		{"mysql unsigned beyond int64", false, "UNSIGNED BIGINT", []byte("18446744073709551615"), "18446744073709551615"},
		{"mysql decimal", false, "DECIMAL", []byte("0.10"), "0.10"},
		{"mysql double", false, "DOUBLE", []byte("2.5"), 2.5},
		{"mysql json", false, "JSON", []byte(`{"n":9007199254740993,"f":1.5,"l":[true,null]}`), map[string]any{"n": int64(9007199254740993), "f": 1.5, "l": []any{true, nil}}},
		{"mysql blob", false, "BLOB", []byte("\x00\xfe"), "AP4="},
		{"mysql text", false, "VARCHAR", []byte("Mayor's \"24\" Hour \\ Hotline ✓"), "Mayor's \"24\" Hour \\ Hotline ✓"},
		{"mysql bit", false, "BIT", []byte{1, 2}, int64(258)},
		{"mysql datetime", false, "DATETIME", ts, "2022-01-21T13:47:00.5"},
		{"mysql timestamp", false, "TIMESTAMP", ts, "2022-01-21T13:47:00.5Z"},
		{"mysql float32", false, "FLOAT", float32(1.1), 1.1},
		{"null", false, "INT", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c any
			var err error
			if tt.pg {
				c, err = pgValue(tt.typ, tt.in)
			} else {
				c, err = mysqlValue(tt.typ, tt.in)
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, recordValue(c)); diff != "" {
				t.Errorf("value(%s, %#v) (-want +got):\n%s", tt.typ, tt.in, diff)
			}
		})
	}
	if _, err := mysqlValue("INT", []byte("x")); err == nil {
		t.Error("mysqlValue(INT, x) = nil error")
	}
}

func TestGeometry(t *testing.T) {
	tests := []struct {
		in   any
		want string
		err  string
	}{
		{`{"type":"Point","coordinates":[-71.0566,42.3634]}`, `{"type":"Point","coordinates":[-71.0566,42.3634]}`, ""},
		{jsonDoc{map[string]any{"type": "Point", "coordinates": []any{1.5, int64(2)}}}, `{"coordinates":[1.5,2],"type":"Point"}`, ""},
		{nil, "", ""},
		{"  ", "", ""},
		{"POINT(1 2)", "", "is not a GeoJSON geometry"},
		{`{"coordinates":[1,2]}`, "", "no type"},
		{int64(3), "", "not GeoJSON text"},
	}
	for _, tt := range tests {
		g, err := geometry(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("geometry(%#v) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || string(g) != tt.want {
			t.Errorf("geometry(%#v) = %s, %v; want %s", tt.in, g, err, tt.want)
		}
	}
}

func TestTransient(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		d    dialect
		err  error
		want bool
	}{
		{"pg serialization failure", postgres{}, &pgconn.PgError{Code: "40001"}, true},
		{"pg deadlock", postgres{}, &pgconn.PgError{Code: "40P01"}, true},
		{"pg admin shutdown", postgres{}, fmt.Errorf("page: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"pg too many connections", postgres{}, &pgconn.PgError{Code: "53300"}, true},
		{"pg connection failure", postgres{}, &pgconn.PgError{Code: "08006"}, true},
		{"pg syntax error", postgres{}, &pgconn.PgError{Code: "42601"}, false},
		{"pg undefined table", postgres{}, &pgconn.PgError{Code: "42P01"}, false},
		{"pg bad password", postgres{}, &pgconn.PgError{Code: "28P01"}, false},
		{"pg refused", postgres{}, fmt.Errorf("connect: %w", refused), true},
		{"pg cut short", postgres{}, io.ErrUnexpectedEOF, true},
		{"pg timeout", postgres{}, context.DeadlineExceeded, true},
		{"pg other", postgres{}, errors.New("checkpoint"), false},
		{"mysql deadlock", mysqlDialect{}, &mysql.MySQLError{Number: 1213}, true},
		{"mysql shutdown", mysqlDialect{}, &mysql.MySQLError{Number: 1053}, true},
		{"mysql no table", mysqlDialect{}, &mysql.MySQLError{Number: 1146}, false},
		{"mysql syntax", mysqlDialect{}, &mysql.MySQLError{Number: 1064}, false},
		{"mysql invalid conn", mysqlDialect{}, mysql.ErrInvalidConn, true},
		{"mysql refused", mysqlDialect{}, refused, true},
	}
	for _, tt := range tests {
		if got := tt.d.transient(tt.err); got != tt.want {
			t.Errorf("%s: transient(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestCheckQuery(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"select 1", "select 1", ""},
		{"  /* a\n b */ -- c\n  WITH x AS (SELECT 1) SELECT * FROM x ;; \n", "  /* a\n b */ -- c\n  WITH x AS (SELECT 1) SELECT * FROM x", ""},
		{"SELECT\t*", "SELECT\t*", ""},
		{"update t set a = 1", "", "not UPDATE"},
		{"-- only a comment", "", "is empty"},
		{";", "", "is empty"},
		{"(SELECT 1)", "", "must be a SELECT"},
	}
	for _, tt := range tests {
		got, err := checkQuery(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("checkQuery(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("checkQuery(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestMissingEnv(t *testing.T) {
	s := mustCompile(t, Config{Driver: DriverPostgres, DSNEnv: "CITYHUB_TEST_UNSET", Table: "t", Watermark: "w", Key: "k", BatchSize: 10, Timeout: time.Second})
	s.lookupEnv = func(string) (string, bool) { return "", false }
	err := s.Read(t.Context(), func(connectors.Record) error { return nil })
	if err == nil || connectors.IsTransient(err) || !strings.Contains(err.Error(), "environment variable CITYHUB_TEST_UNSET (dsn_env) is not set") {
		t.Errorf("Read = %v, want a permanent error naming the variable", err)
	}
	if err := s.ReadFrom(t.Context(), "garbage", func(connectors.Record) error { return nil }); err == nil || !strings.Contains(err.Error(), "not a checkpoint") {
		t.Errorf("ReadFrom(garbage) = %v", err)
	}
}

// TestSampleLoads checks, without a server, that sample.yaml decodes
// strictly and maps onto the ontology (TestIntegrationPostgresSample runs it).
func TestSampleLoads(t *testing.T) {
	reg := connectors.NewRegistry()
	Register(reg)
	conns, err := connectors.Parse("sample.yaml", Kind().Sample, ontology.Default(), reg)
	if err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	if len(conns) != 1 || conns[0].Name != "boston-311-requests" {
		t.Fatalf("connectors = %+v", conns)
	}
	if got := conns[0].Mapping.Classes(); !slices.Equal(got, []string{"ServiceRequest"}) {
		t.Errorf("classes = %v, want [ServiceRequest]", got)
	}
	s, ok := conns[0].Reader.(*Source)
	if !ok || s.cfg.DSNEnv != "CITYHUB_POSTGRES_URL" || s.cfg.Table != "boston_311" || s.cfg.BatchSize != 1000 || s.cfg.Timeout != 30*time.Second {
		t.Errorf("source = %+v", conns[0].Reader)
	}
}
