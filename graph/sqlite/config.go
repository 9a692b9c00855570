package sqlite

import (
	"errors"
	"log/slog"
	"time"
)

// Config says where the database lives and how it is used.
type Config struct {
	// Path of the database file; parent directories are created. The WAL
	// and shared-memory files live beside it.
	Path string `yaml:"path"`
	// ReadConns is the size of the reader connection pool.
	ReadConns int `yaml:"read_conns"`
	// CacheMiB is SQLite's page cache per connection, in MiB.
	CacheMiB int `yaml:"cache_mib"`
}

// DefaultConfig returns the configuration used when none is given.
func DefaultConfig() Config {
	return Config{Path: "data/cityhub.db", ReadConns: 4, CacheMiB: 32}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	switch c.Path {
	case "":
		errs = append(errs, errors.New("sqlite: path is required"))
	case ":memory:":
		errs = append(errs, errors.New("sqlite: path: an in-memory database cannot be shared by the reader pool; use a file"))
	}
	if c.ReadConns < 1 {
		errs = append(errs, errors.New("sqlite: read_conns must be at least 1"))
	}
	if c.CacheMiB < 0 {
		errs = append(errs, errors.New("sqlite: cache_mib must not be negative"))
	}
	return errors.Join(errs...)
}

// Option changes how Open builds a Store.
type Option func(*options)

type options struct {
	log *slog.Logger
	now func() time.Time
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithNow sets the clock used for IngestedAt and change times (default
// time.Now).
func WithNow(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}
