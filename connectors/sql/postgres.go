package sql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// postgres is PostgreSQL through pgx's native interface.
type postgres struct{}

// maxPostgresIdent is NAMEDATALEN-1: longer names are silently truncated
// by the server, so they are refused.
const maxPostgresIdent = 63

func (postgres) checkIdent(name string) error {
	if err := identCommon(name); err != nil {
		return err
	}
	if len(name) > maxPostgresIdent {
		return fmt.Errorf("is %d bytes long; PostgreSQL names have at most %d", len(name), maxPostgresIdent)
	}
	return nil
}

// quote doubles embedded double quotes: a"b becomes "a""b".
func (postgres) quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func (postgres) placeholder(n int) string { return "$" + strconv.Itoa(n) }

func (postgres) bind(a *params, v Value) string {
	if v.Type == TypeDecimal {
		var n pgtype.Numeric
		if err := n.Scan(v.Text); err == nil {
			return a.add(n)
		}
	}
	return a.add(v.param())
}

// keyset uses a row comparison, which PostgreSQL answers from an index on
// (wm, key).
func (d postgres) keyset(a *params, wm, key string, w, k Value) string {
	return "(" + wm + ", " + key + ") > (" + d.bind(a, w) + ", " + d.bind(a, k) + ")"
}

var pgPasswordKV = regexp.MustCompile(`(?i)(^|\s)password\s*=`)

func (postgres) hasPassword(dsn string) (bool, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return false, errors.New("the DSN is not a valid postgres:// URL")
		}
		_, pw := u.User.Password()
		return pw || u.Query().Has("password"), nil
	}
	return pgPasswordKV.MatchString(dsn), nil
}

func (postgres) open(ctx context.Context, dsn string, timeout time.Duration) (session, error) {
	cfg, err := pgx.ParseConfig(dsn) // its errors hide the password
	if err != nil {
		return nil, dsnError(err)
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > timeout {
		cfg.ConnectTimeout = timeout
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "cityhub"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// json and jsonb documents keep exact numbers.
	m := conn.TypeMap()
	js := &pgtype.Type{Name: "json", OID: pgtype.JSONOID, Codec: &pgtype.JSONCodec{Marshal: json.Marshal, Unmarshal: unmarshalJSON}}
	jsb := &pgtype.Type{Name: "jsonb", OID: pgtype.JSONBOID, Codec: &pgtype.JSONBCodec{Marshal: json.Marshal, Unmarshal: unmarshalJSON}}
	m.RegisterType(js)
	m.RegisterType(jsb)
	m.RegisterType(&pgtype.Type{Name: "_json", OID: pgtype.JSONArrayOID, Codec: &pgtype.ArrayCodec{ElementType: js}})
	m.RegisterType(&pgtype.Type{Name: "_jsonb", OID: pgtype.JSONBArrayOID, Codec: &pgtype.ArrayCodec{ElementType: jsb}})
	return &pgSession{conn: conn}, nil
}

// transient: connection exceptions (class 08), serialisation failures and
// deadlocks, insufficient resources (class 53), shutdowns and start-ups
// (57P01-57P03), cancelled statements (57014), lock timeouts (55P03), and
// broken connections. Syntax errors, missing tables and columns, failed
// authentication are not.
func (postgres) transient(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"):
			return true
		}
		switch pe.Code {
		case "40001", "40P01", "57P01", "57P02", "57P03", "57014", "55P03":
			return true
		}
		return false
	}
	return netTransient(err) || pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}

type pgSession struct{ conn *pgx.Conn }

func (s *pgSession) close(ctx context.Context) error { return s.conn.Close(ctx) }

func (s *pgSession) query(ctx context.Context, q string, args []any, row func([]column, []any) error) (cols []column, err error) {
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := s.conn.TypeMap()
	for _, fd := range rows.FieldDescriptions() {
		typ := strconv.FormatUint(uint64(fd.DataTypeOID), 10)
		if t, ok := m.TypeForOID(fd.DataTypeOID); ok {
			typ = strings.ToUpper(t.Name)
		}
		cols = append(cols, column{name: fd.Name, typ: typ})
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return cols, err
		}
		for i, v := range vals {
			c, err := pgValue(cols[i].typ, v)
			if err != nil {
				c = badValue{err}
			}
			vals[i] = c
		}
		if err := row(cols, vals); err != nil {
			return cols, err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return cols, err
	}
	return cols, tx.Commit(ctx)
}

// pgValue normalises a value of pgx's Values to a canonical value. typ
// is the column's type name (arrays: _ and the element's).
func pgValue(typ string, v any) (any, error) {
	switch x := v.(type) {
	case time.Time:
		switch strings.TrimPrefix(typ, "_") {
		case "TIMESTAMP":
			return timeValue{t: x, kind: local}, nil
		case "DATE":
			return timeValue{t: x, kind: date}, nil
		}
		return timeValue{t: x, kind: instant}, nil
	case []byte:
		return binary(x), nil
	case pgtype.Numeric:
		s, err := x.Value()
		if err != nil {
			return nil, err
		}
		if s == nil {
			return nil, nil
		}
		return decimalText(s.(string)), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = pgValue(typ, e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any: // a json document decoded by a codec other than ours
		return jsonDoc{x}, nil
	}
	if c, ok := commonValue(v); ok {
		return c, nil
	}
	return valuerValue(v)
}
