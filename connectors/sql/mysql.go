package sql

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
)

// mysqlDialect is MySQL and MariaDB through go-sql-driver/mysql.
type mysqlDialect struct{}

// maxMySQLIdent is the length limit of table and column names, in
// characters.
const maxMySQLIdent = 64

func (mysqlDialect) checkIdent(name string) error {
	if err := identCommon(name); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(name); n > maxMySQLIdent {
		return fmt.Errorf("is %d characters long; MySQL names have at most %d", n, maxMySQLIdent)
	}
	if strings.HasSuffix(name, " ") {
		return errors.New("ends with a space, which MySQL does not allow")
	}
	for _, r := range name {
		if r > 0xFFFF {
			return fmt.Errorf("contains %U, outside the Basic Multilingual Plane MySQL names are limited to", r)
		}
	}
	return nil
}

// quote wraps name in backticks, doubling each backtick inside it.
func (mysqlDialect) quote(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

func (mysqlDialect) placeholder(int) string { return "?" }

// bind casts decimal text back to DECIMAL: MySQL compares a DECIMAL column
// with a string parameter as doubles.
func (mysqlDialect) bind(a *params, v Value) string {
	if v.Type == TypeDecimal {
		return "CAST(" + a.add(v.Text) + " AS DECIMAL(65,30))"
	}
	return a.add(v.param())
}

// keyset spells the row comparison out, which MySQL plans on an index on
// (wm, key) more reliably than (wm, key) > (?, ?).
func (d mysqlDialect) keyset(a *params, wm, key string, w, k Value) string {
	return "(" + wm + " > " + d.bind(a, w) + " OR (" + wm + " = " + d.bind(a, w) + " AND " + key + " > " + d.bind(a, k) + "))"
}

func (mysqlDialect) hasPassword(dsn string) (bool, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return false, dsnError(err)
	}
	return cfg.Passwd != "", nil
}

func (mysqlDialect) open(ctx context.Context, dsn string, timeout time.Duration) (session, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, dsnError(err)
	}
	// DATETIME and TIMESTAMP as time.Time; TIMESTAMP read in UTC.
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	// Values travel as parameters of server-side prepared statements,
	// never spliced into the query text by the client.
	cfg.InterpolateParams = false
	if cfg.Timeout == 0 || cfg.Timeout > timeout {
		cfg.Timeout = timeout
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, dsnError(err)
	}
	db := stdsql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return &mysqlSession{db: db}, nil
}

// transient: too many connections (1040), shutdown (1053), lock wait
// timeout (1205), deadlock (1213), killed connection (1927), statement
// timeouts (1969 MariaDB, 3024 MySQL), idle disconnect (4031), lost
// connections (2006, 2013) and broken connections.
func (mysqlDialect) transient(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, 1053, 1205, 1213, 1927, 1969, 2006, 2013, 3024, 4031:
			return true
		}
		return false
	}
	return errors.Is(err, mysql.ErrInvalidConn) || netTransient(err)
}

type mysqlSession struct{ db *stdsql.DB }

func (s *mysqlSession) close(context.Context) error { return s.db.Close() }

func (s *mysqlSession) query(ctx context.Context, q string, args []any, row func([]column, []any) error) (cols []column, err error) {
	tx, err := s.db.BeginTx(ctx, &stdsql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	for _, ct := range cts {
		cols = append(cols, column{name: ct.Name(), typ: strings.ToUpper(ct.DatabaseTypeName())})
	}
	dest := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for rows.Next() {
		for i := range dest {
			dest[i] = nil
			ptrs[i] = &dest[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return cols, err
		}
		vals := make([]any, len(cols))
		for i, v := range dest {
			c, err := mysqlValue(cols[i].typ, v)
			if err != nil {
				c = badValue{err}
			}
			vals[i] = c
		}
		if err := row(cols, vals); err != nil {
			return cols, err
		}
	}
	if err := rows.Err(); err != nil {
		return cols, err
	}
	if err := rows.Close(); err != nil {
		return cols, err
	}
	return cols, tx.Commit()
}

// mysqlValue normalises a value scanned from go-sql-driver/mysql. Without
// parameters the server answers in text, so numbers may come as bytes:
// typ says how to read them.
func mysqlValue(typ string, v any) (any, error) {
	switch x := v.(type) {
	case []byte:
		return mysqlBytes(typ, x)
	case time.Time:
		switch typ {
		case "DATE":
			return timeValue{t: x, kind: date}, nil
		case "TIMESTAMP":
			return timeValue{t: x, kind: instant}, nil
		}
		return timeValue{t: x, kind: local}, nil
	}
	if c, ok := commonValue(v); ok {
		return c, nil
	}
	return valuerValue(v)
}

func mysqlBytes(typ string, b []byte) (any, error) {
	s := string(b)
	switch typ {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	case "UNSIGNED TINYINT", "UNSIGNED SMALLINT", "UNSIGNED MEDIUMINT", "UNSIGNED INT", "UNSIGNED BIGINT":
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an unsigned integer", s)
		}
		c, _ := commonValue(n)
		return c, nil
	case "FLOAT", "DOUBLE":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	case "DECIMAL":
		if !isDecimal(s) {
			return nil, fmt.Errorf("%q is not a decimal number", s)
		}
		return decimalText(s), nil
	case "JSON":
		doc, err := decodeJSON(b)
		if err != nil {
			return nil, err
		}
		return jsonDoc{doc}, nil
	case "BIT":
		if len(b) > 8 {
			return binary(append([]byte(nil), b...)), nil
		}
		var n uint64
		for _, c := range b {
			n = n<<8 | uint64(c)
		}
		c, _ := commonValue(n)
		return c, nil
	case "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "BINARY", "VARBINARY", "GEOMETRY":
		return binary(append([]byte(nil), b...)), nil
	}
	return textOrBinary(b), nil
}
