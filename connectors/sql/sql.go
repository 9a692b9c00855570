// Package sql is the SQL database source: it reads a table or a SELECT
// query of a PostgreSQL (pgx) or MySQL/MariaDB (go-sql-driver/mysql)
// server page by page, in the order of a monotonic watermark column
// (updated_at, a serial) with a unique key column breaking ties, and
// resumes after a checkpoint: it is a connectors.Resumer and a
// connectors.Checker.
//
// Each page is one parameterised statement in a read-only transaction:
//
//	SELECT … FROM <table or (query)> AS cityhub_src
//	WHERE cityhub_src.wm IS NOT NULL AND cityhub_src.key IS NOT NULL
//	  AND (cityhub_src.wm, cityhub_src.key) > ($1, $2)
//	ORDER BY cityhub_src.wm, cityhub_src.key LIMIT $3
//
// Identifiers come only from the configuration, validated and quoted for
// the dialect; every value (checkpoint, page size) is a bound parameter.
// The package is named sql like the language; it imports database/sql as
// stdsql.
package sql

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/cityhub/cityhub/connectors"
)

//go:embed sample.yaml
var sample []byte

// The drivers.
const (
	DriverPostgres = "postgres"
	DriverMySQL    = "mysql"
)

// Config configures a SQL source.
type Config struct {
	// Driver is postgres or mysql (MySQL and MariaDB).
	Driver string `yaml:"driver"`
	// DSNEnv names the environment variable holding the DSN (the only way
	// to pass a password): a postgres:// URL or key=value string for
	// postgres, a go-sql-driver DSN (user:pass@tcp(host:port)/db) for mysql.
	DSNEnv string `yaml:"dsn_env"`
	// DSN is an inline DSN without a password, for local development.
	DSN string `yaml:"dsn"`
	// Schema qualifies Table (PostgreSQL schema, MySQL database); empty:
	// the connection's search path or database.
	Schema string `yaml:"schema"`
	// Table to read; or Query.
	Table string `yaml:"table"`
	// Columns of Table to read; empty: all. Watermark and Key are always read.
	Columns []string `yaml:"columns"`
	// Query is a SELECT (or WITH … SELECT) read as a subquery; or Table.
	Query string `yaml:"query"`
	// Watermark is the column that grows with every change.
	Watermark string `yaml:"watermark"`
	// Key is a unique column breaking ties on the watermark.
	Key string `yaml:"key"`
	// GeometryColumn holds GeoJSON geometry text (or json); it becomes the
	// record's Geometry instead of a field.
	GeometryColumn string `yaml:"geometry_column"`
	// BatchSize is the number of rows per page. Default 1000.
	BatchSize int `yaml:"batch_size"`
	// Timeout bounds connecting and each page's statement. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{BatchSize: 1000, Timeout: 30 * time.Second} }

// maxBatchSize bounds a page, which is held in memory.
const maxBatchSize = 100_000

// Kind returns the sql kind.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:    "sql",
		Summary: "Reads a PostgreSQL or MySQL table or SELECT query page by page in watermark order, resumable from a checkpoint.",
		Config:  DefaultConfig(),
		New:     New,
		Sample:  sample,
	}
}

// Register adds the sql kind to r.
func Register(r *connectors.Registry) { r.Register(Kind()) }

// alias names the table or subquery in every statement.
const alias = "cityhub_src"

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// New decodes and validates a config block. It opens nothing and reads no
// environment variable.
func New(raw connectors.RawConfig) (connectors.Source, error) {
	cfg := DefaultConfig()
	if err := raw.Decode(&cfg); err != nil {
		return nil, err
	}
	return compile(cfg, raw.Errorf)
}

// compile validates cfg and prepares the statement parts; errf positions
// an error at a config field.
func compile(cfg Config, errf func(field, format string, args ...any) error) (*Source, error) {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, errf(field, format, args...)) }
	d := dialectFor(cfg.Driver)
	if d == nil {
		if cfg.Driver == "" {
			bad("driver", "driver is required (postgres or mysql)")
		} else {
			bad("driver", "unknown driver %q (postgres or mysql)", cfg.Driver)
		}
		return nil, errors.Join(errs...)
	}
	switch {
	case cfg.DSNEnv == "" && cfg.DSN == "":
		bad("dsn_env", "dsn_env is required: the name of the environment variable holding the DSN")
	case cfg.DSNEnv != "" && cfg.DSN != "":
		bad("dsn", "set dsn_env or dsn, not both")
	case cfg.DSNEnv != "" && !envNameRE.MatchString(cfg.DSNEnv):
		bad("dsn_env", "dsn_env %q is not an environment variable name (it names the variable, it is not the DSN)", cfg.DSNEnv)
	case cfg.DSN != "":
		if pw, err := d.hasPassword(cfg.DSN); err != nil {
			bad("dsn", "dsn: %v", err)
		} else if pw {
			bad("dsn", "dsn holds a password: never write one in a connector file; put the DSN in an environment variable and name it in dsn_env")
		}
	}
	ident := func(field, name string) {
		if err := d.checkIdent(name); err != nil {
			bad(field, "%s %q %v", field, name, err)
		}
	}
	s := &Source{cfg: cfg, d: d, lookupEnv: os.LookupEnv}
	q := func(name string) string { return alias + "." + d.quote(name) }
	switch {
	case cfg.Table == "" && cfg.Query == "":
		bad("table", "table or query is required")
	case cfg.Table != "" && cfg.Query != "":
		bad("query", "set table or query, not both")
	case cfg.Table != "":
		ident("table", cfg.Table)
		from := d.quote(cfg.Table)
		if cfg.Schema != "" {
			ident("schema", cfg.Schema)
			from = d.quote(cfg.Schema) + "." + from
		}
		s.from = from + " AS " + alias
		s.label = cfg.Table
		s.sel = alias + ".*"
		if len(cfg.Columns) > 0 {
			seen := map[string]bool{}
			var sel []string
			for i, c := range cfg.Columns {
				ident(fmt.Sprintf("columns[%d]", i), c)
				if seen[c] {
					bad(fmt.Sprintf("columns[%d]", i), "column %q is listed twice", c)
				}
				seen[c] = true
				sel = append(sel, q(c))
			}
			for _, c := range []string{cfg.Watermark, cfg.Key} {
				if c != "" && !seen[c] {
					seen[c] = true
					sel = append(sel, q(c))
				}
			}
			s.sel = strings.Join(sel, ", ")
		}
	default:
		if cfg.Schema != "" {
			bad("schema", "schema goes with table; qualify the names inside query instead")
		}
		if len(cfg.Columns) > 0 {
			bad("columns", "columns go with table; list the columns in the query's SELECT instead")
		}
		body, err := checkQuery(cfg.Query)
		if err != nil {
			bad("query", "query %v", err)
		}
		// On its own lines, so that a trailing -- comment ends before our text.
		s.from = "(\n" + body + "\n) AS " + alias
		s.label = "query"
		s.sel = alias + ".*"
	}
	for _, f := range []struct{ field, name string }{{"watermark", cfg.Watermark}, {"key", cfg.Key}} {
		if f.name == "" {
			bad(f.field, "%s is required: the column the source orders and resumes by", f.field)
			continue
		}
		ident(f.field, f.name)
	}
	if cfg.GeometryColumn != "" {
		ident("geometry_column", cfg.GeometryColumn)
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > maxBatchSize {
		bad("batch_size", "batch_size must be between 1 and %d", maxBatchSize)
	}
	if cfg.Timeout < time.Millisecond {
		bad("timeout", "timeout must be a positive duration such as 30s")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.wm, s.key = q(cfg.Watermark), q(cfg.Key)
	return s, nil
}

var leadingComment = regexp.MustCompile(`^(\s+|--[^\n]*(\n|$)|/\*(?s:.*?)\*/)`)

// checkQuery returns the query without trailing semicolons and blanks. It
// must start (after blanks and comments) with SELECT or WITH; the server
// parses the rest.
func checkQuery(query string) (string, error) {
	body := strings.TrimRight(query, " \t\r\n;")
	rest := body
	for {
		m := leadingComment.FindString(rest)
		if m == "" {
			break
		}
		rest = rest[len(m):]
	}
	if rest == "" {
		return "", errors.New("is empty")
	}
	word := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }); i >= 0 {
		word = rest[:i]
	}
	switch strings.ToUpper(word) {
	case "SELECT", "WITH":
		return body, nil
	case "":
		start := []rune(rest)
		if len(start) > 12 {
			start = start[:12]
		}
		return "", fmt.Errorf("must be a SELECT (or WITH … SELECT), not %q…", string(start))
	}
	return "", fmt.Errorf("must be a SELECT (or WITH … SELECT), not %s", strings.ToUpper(word))
}

// Source reads one table or query. A Read, ReadFrom or Check opens its own
// connection and closes it before returning.
type Source struct {
	cfg   Config
	d     dialect
	from  string // FROM clause: quoted table or (query), with the alias
	sel   string // select list
	wm    string // alias-qualified quoted watermark column
	key   string // alias-qualified quoted key column
	label string // the table's name, or "query", for messages
	// lookupEnv reads dsn_env (os.LookupEnv; tests inject theirs).
	lookupEnv func(string) (string, bool)
}

var (
	_ connectors.Source  = (*Source)(nil)
	_ connectors.Resumer = (*Source)(nil)
	_ connectors.Checker = (*Source)(nil)
)

// Read reads every row: ReadFrom with no checkpoint.
func (s *Source) Read(ctx context.Context, emit func(connectors.Record) error) error {
	return s.ReadFrom(ctx, "", emit)
}

// ReadFrom reads the rows after checkpoint ("" for all) in (watermark,
// key) order, a page of batch_size rows at a time until a short page.
// Each record carries the checkpoint that resumes after it. Rows whose
// watermark or key is NULL are not read. Errors worth retrying (the
// server unreachable or shutting down, a serialisation failure, a
// timeout) are connectors.Transient; a bad query, a missing table or
// column, failed authentication or a bad checkpoint are not.
func (s *Source) ReadFrom(ctx context.Context, checkpoint string, emit func(connectors.Record) error) error {
	var after *Checkpoint
	if checkpoint != "" {
		c, err := DecodeCheckpoint(checkpoint)
		if err != nil {
			return fmt.Errorf("sql: %s: %w", s.label, err)
		}
		after = &c
	}
	sess, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close(ctx, sess)
	index := 0
	for {
		recs, last, err := s.page(ctx, sess, after, s.cfg.BatchSize, index)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := emit(r); err != nil {
				return err
			}
		}
		index += len(recs)
		if len(recs) < s.cfg.BatchSize {
			return nil
		}
		after = last
	}
}

// Check connects, runs the first page's statement with a limit of 0 (so
// the server checks the table, the columns, the query and the ordering)
// and checks that the watermark, key and geometry columns are in the
// result.
func (s *Source) Check(ctx context.Context) error {
	sess, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close(ctx, sess)
	_, _, err = s.page(ctx, sess, nil, 0, 0)
	return err
}

func (s *Source) connect(ctx context.Context) (session, error) {
	dsn := s.cfg.DSN
	if s.cfg.DSNEnv != "" {
		v, ok := s.lookupEnv(s.cfg.DSNEnv)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("sql: %s: environment variable %s (dsn_env) is not set", s.label, s.cfg.DSNEnv)
		}
		dsn = v
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	sess, err := s.d.open(cctx, dsn, s.cfg.Timeout)
	if err != nil {
		return nil, s.fail(ctx, "connect", err)
	}
	return sess, nil
}

func (s *Source) close(ctx context.Context, sess session) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = sess.close(cctx) // the rows are read; a failed goodbye loses nothing
}

// fail wraps err with what failed and classifies it. When ctx itself has
// ended, that is the error.
func (s *Source) fail(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	err = fmt.Errorf("sql: %s %s: %s: %w", s.cfg.Driver, s.label, op, err)
	if s.d.transient(err) {
		return connectors.Transient(err)
	}
	return err
}

// pageQuery returns the statement and parameters of the page after after
// (nil: the first page).
func (s *Source) pageQuery(after *Checkpoint, limit int) (string, []any) {
	p := &params{d: s.d}
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(s.sel)
	b.WriteString(" FROM ")
	b.WriteString(s.from)
	b.WriteString(" WHERE ")
	b.WriteString(s.wm)
	b.WriteString(" IS NOT NULL AND ")
	b.WriteString(s.key)
	b.WriteString(" IS NOT NULL")
	if after != nil {
		b.WriteString(" AND ")
		b.WriteString(s.d.keyset(p, s.wm, s.key, after.Watermark, after.Key))
	}
	b.WriteString(" ORDER BY ")
	b.WriteString(s.wm)
	b.WriteString(", ")
	b.WriteString(s.key)
	b.WriteString(" LIMIT ")
	b.WriteString(p.add(int64(limit)))
	return b.String(), p.args
}

// layout says where the special columns are in a result.
type layout struct {
	wm, key, geom int
}

// columnsLayout finds the watermark, key and geometry columns and refuses
// a result with two columns of the same name.
func (s *Source) columnsLayout(cols []column) (layout, error) {
	l := layout{wm: -1, key: -1, geom: -1}
	seen := make(map[string]bool, len(cols))
	for _, c := range cols {
		if seen[c.name] {
			return l, fmt.Errorf("the result has two columns named %q: give them distinct names (AS)", c.name)
		}
		seen[c.name] = true
	}
	find := func(name string) int {
		for i, c := range cols {
			if c.name == name {
				return i
			}
		}
		if s.cfg.Driver == DriverMySQL { // MySQL column names ignore case
			for i, c := range cols {
				if strings.EqualFold(c.name, name) {
					return i
				}
			}
		}
		return -1
	}
	var missing []string
	l.wm, l.key = find(s.cfg.Watermark), find(s.cfg.Key)
	if l.wm < 0 {
		missing = append(missing, fmt.Sprintf("watermark column %q", s.cfg.Watermark))
	}
	if l.key < 0 {
		missing = append(missing, fmt.Sprintf("key column %q", s.cfg.Key))
	}
	if s.cfg.GeometryColumn != "" {
		if l.geom = find(s.cfg.GeometryColumn); l.geom < 0 {
			missing = append(missing, fmt.Sprintf("geometry column %q", s.cfg.GeometryColumn))
		}
	}
	for _, c := range []struct {
		role string
		i    int
	}{{"watermark", l.wm}, {"key", l.key}} {
		if c.i >= 0 && !resumable(cols[c.i].typ) {
			return l, fmt.Errorf("%s column %q (%s) cannot order a resumable read: use an integer, timestamp, number or text column",
				c.role, cols[c.i].name, strings.ToLower(cols[c.i].typ))
		}
	}
	if len(missing) > 0 {
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.name
		}
		return l, fmt.Errorf("the result has no %s (columns: %s)", strings.Join(missing, ", no "), strings.Join(names, ", "))
	}
	return l, nil
}

// page reads one page into records (emitted after its transaction ends,
// so that a slow consumer holds no statement open) and returns the
// checkpoint of its last row.
func (s *Source) page(ctx context.Context, sess session, after *Checkpoint, limit, index int) ([]connectors.Record, *Checkpoint, error) {
	qctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	q, args := s.pageQuery(after, limit)
	var recs []connectors.Record
	var last *Checkpoint
	var l layout
	var rowErr error // an error of ours, not the server's
	cols, err := sess.query(qctx, q, args, func(cols []column, vals []any) error {
		if len(recs) == 0 {
			var err error
			if l, err = s.columnsLayout(cols); err != nil {
				rowErr = err
				return err
			}
		}
		rec, cp, err := s.record(cols, vals, l, index+len(recs))
		if err != nil {
			rowErr = err
			return err
		}
		recs = append(recs, rec)
		last = &cp
		return nil
	})
	if rowErr != nil {
		return nil, nil, fmt.Errorf("sql: %s %s: %w", s.cfg.Driver, s.label, rowErr)
	}
	if err != nil {
		op := "first page"
		if after != nil {
			op = "page after " + after.Encode()
		}
		return nil, nil, s.fail(ctx, op, err)
	}
	if len(recs) == 0 && cols != nil {
		if _, err := s.columnsLayout(cols); err != nil {
			return nil, nil, fmt.Errorf("sql: %s %s: %w", s.cfg.Driver, s.label, err)
		}
	}
	return recs, last, nil
}

// record builds the record of one row. Its error stops the read: a
// watermark or key that cannot make a checkpoint.
func (s *Source) record(cols []column, vals []any, l layout, index int) (connectors.Record, Checkpoint, error) {
	var cp Checkpoint
	var err error
	if cp.Watermark, err = checkpointOf(vals[l.wm]); err != nil {
		return connectors.Record{}, cp, fmt.Errorf("watermark column %q (%s) %w", cols[l.wm].name, strings.ToLower(cols[l.wm].typ), err)
	}
	if cp.Key, err = checkpointOf(vals[l.key]); err != nil {
		return connectors.Record{}, cp, fmt.Errorf("key column %q (%s) %w", cols[l.key].name, strings.ToLower(cols[l.key].typ), err)
	}
	rec := connectors.Record{
		Fields:     make(map[string]any, len(cols)),
		Pos:        connectors.Position{Index: index, Message: s.label + " " + s.cfg.Key + "=" + cp.Key.String()},
		Checkpoint: cp.Encode(),
	}
	var bad []string
	for i, c := range cols {
		v := vals[i]
		if b, ok := v.(badValue); ok {
			bad = append(bad, fmt.Sprintf("column %q (%s): %v", c.name, strings.ToLower(c.typ), b.err))
			continue
		}
		if i == l.geom {
			g, err := geometry(v)
			if err != nil {
				bad = append(bad, fmt.Sprintf("geometry column %q %v", c.name, err))
				continue
			}
			rec.Geometry = g
			continue
		}
		rec.Fields[c.name] = recordValue(v)
	}
	if len(bad) > 0 {
		rec.Err = errors.New(strings.Join(bad, "; "))
		rec.Fields, rec.Geometry = nil, nil
	}
	return rec, cp, nil
}

// resumable reports whether a column of a type can be a watermark or a
// key: the types whose values become no checkpoint value are refused.
func resumable(typ string) bool {
	if strings.HasPrefix(typ, "_") { // PostgreSQL arrays
		return false
	}
	switch typ {
	case "JSON", "JSONB", "BYTEA", "BOOL", "XML", // PostgreSQL
		"BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "BINARY", "VARBINARY", "GEOMETRY", "BIT": // MySQL
		return false
	}
	return true
}

// badValue stands for a value the source could not convert; its row
// becomes an error record.
type badValue struct{ err error }
