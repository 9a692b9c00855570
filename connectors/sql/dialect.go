package sql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
	"unicode/utf8"
)

// dialect is what differs between database servers: identifier rules and
// quoting, parameter placeholders, the keyset predicate, connecting, and
// which errors are worth retrying.
type dialect interface {
	// checkIdent reports why name cannot be an identifier, or nil.
	checkIdent(name string) error
	// quote returns name as a quoted identifier.
	quote(name string) string
	// placeholder returns the text of the n-th (1-based) parameter.
	placeholder(n int) string
	// bind adds v to a and returns its placeholder expression.
	bind(a *params, v Value) string
	// keyset returns the predicate "(wm, key) > (w, k)" on quoted columns.
	keyset(a *params, wm, key string, w, k Value) string
	// hasPassword reports whether a DSN holds a password.
	hasPassword(dsn string) (bool, error)
	// open connects.
	open(ctx context.Context, dsn string, timeout time.Duration) (session, error)
	// transient reports whether err may pass on a later try.
	transient(err error) bool
}

// session is one open connection.
type session interface {
	// query runs q in a read-only transaction and calls row for each row
	// with the values normalised to canonical values (see value.go); a
	// value it cannot convert is a badValue. It returns the result's
	// columns; row's error ends the query and is returned.
	query(ctx context.Context, q string, args []any, row func(cols []column, vals []any) error) ([]column, error)
	close(ctx context.Context) error
}

// column is one result column.
type column struct {
	name string
	typ  string // the server's type name, upper case: TIMESTAMPTZ, JSONB, DATETIME, ...
}

// params collects a query's parameters in order.
type params struct {
	d    dialect
	args []any
}

func (p *params) add(v any) string {
	p.args = append(p.args, v)
	return p.d.placeholder(len(p.args))
}

func dialectFor(driver string) dialect {
	switch driver {
	case DriverPostgres:
		return postgres{}
	case DriverMySQL:
		return mysqlDialect{}
	}
	return nil
}

// identCommon holds the rules both servers share.
func identCommon(name string) error {
	switch {
	case name == "":
		return errors.New("is empty")
	case !utf8.ValidString(name):
		return errors.New("is not valid UTF-8")
	}
	for _, r := range name {
		if r == 0 {
			return errors.New("contains a NUL character")
		}
	}
	return nil
}

// netTransient reports failures of the connection itself: refused, reset,
// timed out, cut short.
func netTransient(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}

// dsnError keeps a driver's DSN parse error but never the DSN itself.
func dsnError(err error) error {
	return fmt.Errorf("the DSN does not parse: %w", err)
}
