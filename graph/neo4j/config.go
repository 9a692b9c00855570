package neo4j

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"
)

// Config says which Neo4j database holds the graph and how to reach it.
type Config struct {
	// URI of the server: bolt://host:7687 for one server, neo4j://host:7687
	// for a cluster (routing); +s and +ssc variants use TLS.
	URI string `yaml:"uri"`
	// User and Password authenticate with basic auth. Both empty: no
	// authentication (a server started with auth disabled). The password is
	// never read from configuration files: cmd/ fills it from the
	// environment variable the configuration names.
	User     string `yaml:"user"`
	Password string `yaml:"-"`
	// Database is the database name; empty for the server's default.
	Database string `yaml:"database"`
	// MaxConnections bounds the driver's connection pool.
	MaxConnections int `yaml:"max_connections"`
	// ConnectTimeout bounds establishing one connection.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxRetryTime bounds how long a managed transaction is retried after
	// transient errors (deadlocks, leader switches, lost connections). A
	// call's context deadline, when sooner, wins.
	MaxRetryTime time.Duration `yaml:"max_retry_time"`
}

// DefaultConfig returns the configuration used when none is given: a local
// server without authentication.
func DefaultConfig() Config {
	return Config{
		URI:            "bolt://127.0.0.1:7687",
		MaxConnections: 64,
		ConnectTimeout: 5 * time.Second,
		MaxRetryTime:   10 * time.Second,
	}
}

var uriSchemes = map[string]bool{
	"bolt": true, "bolt+s": true, "bolt+ssc": true,
	"neo4j": true, "neo4j+s": true, "neo4j+ssc": true,
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.URI == "" {
		errs = append(errs, errors.New("neo4j: uri is required"))
	} else if u, err := url.Parse(c.URI); err != nil {
		errs = append(errs, fmt.Errorf("neo4j: uri: %v", err))
	} else if !uriSchemes[u.Scheme] {
		errs = append(errs, fmt.Errorf("neo4j: uri: scheme %q is not one of bolt, bolt+s, bolt+ssc, neo4j, neo4j+s, neo4j+ssc", u.Scheme))
	} else if u.Host == "" {
		errs = append(errs, errors.New("neo4j: uri: no host"))
	}
	if c.User == "" && c.Password != "" {
		errs = append(errs, errors.New("neo4j: a password is set but no user"))
	}
	if c.MaxConnections < 1 {
		errs = append(errs, errors.New("neo4j: max_connections must be at least 1"))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, errors.New("neo4j: connect_timeout must be positive"))
	}
	if c.MaxRetryTime < 0 {
		errs = append(errs, errors.New("neo4j: max_retry_time must not be negative"))
	}
	return errors.Join(errs...)
}

// redactedURI is the URI without user information, for logs.
func (c Config) redactedURI() string {
	u, err := url.Parse(c.URI)
	if err != nil {
		return "<invalid uri>"
	}
	u.User = nil
	return u.String()
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
