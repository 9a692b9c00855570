// Package gtfs is the GTFS Schedule source: it reads one table (stops.txt,
// trips.txt, stop_times.txt, ...) of a GTFS zip, from a local file or an
// HTTP(S) URL, and streams its rows as records. One connector reads one
// table; a connector file with one connector per table loads a whole feed
// (see sample.yaml).
//
// Rows become records whose fields are the table's columns, as text, plus
// feed_id (the configured feed id, which scopes every GTFS id: node keys
// are <feed_id>~<id>) and feed_updated_at (the newest modification time
// in the zip, for src_updated_at). The shapes table is special: it yields
// one record per shape_id with a GeoJSON LineString of its points in
// shape_pt_sequence order; the trips table can carry the LineString of
// each trip's shape as its geometry (config shapes).
//
// The source parses no mapping and knows nothing of the graph; it imports
// the connector framework and its fetch helper only.
package gtfs

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
)

//go:embed sample.yaml
var sample []byte

// Config configures a GTFS source.
type Config struct {
	// Path of the feed zip, relative to the connector file's directory.
	Path string `yaml:"path"`
	// URL of the feed zip (http or https), instead of Path.
	URL string `yaml:"url"`
	// FeedID scopes the feed's ids: every record carries it as feed_id.
	FeedID string `yaml:"feed_id"`
	// Table is the table to read, without .txt: agency, stops, routes,
	// trips, stop_times, shapes, calendar, calendar_dates, ...
	Table string `yaml:"table"`
	// Shapes, for the trips table, gives each trip the LineString of its
	// shape (shapes.txt) as geometry.
	Shapes bool `yaml:"shapes"`
	// MaxBytes bounds the feed zip (a download stops beyond it).
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxRecordBytes bounds one CSV row.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// MaxShapePoints bounds the shape points held in memory at once.
	MaxShapePoints int `yaml:"max_shape_points"`
	// Timeout bounds one download.
	Timeout time.Duration `yaml:"timeout"`
	// Headers are sent with the download.
	Headers map[string]string `yaml:"headers"`
	// APIKeyEnv names the environment variable holding an API key.
	APIKeyEnv string `yaml:"api_key_env"`
	// APIKeyHeader is the header that carries the key.
	APIKeyHeader string `yaml:"api_key_header"`
	// APIKeyQuery, when set, is the URL query parameter that carries the
	// key instead of a header.
	APIKeyQuery string `yaml:"api_key_query"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxBytes:       1 << 30,
		MaxRecordBytes: 1 << 20,
		MaxShapePoints: 5_000_000,
		Timeout:        10 * time.Minute,
		APIKeyHeader:   "Authorization",
	}
}

var (
	feedIDRE    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	tableNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	envNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// FieldError is a configuration problem of one field.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks the configuration; every problem is a *FieldError.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case c.Path == "" && c.URL == "":
		bad("path", "give path or url")
	case c.Path != "" && c.URL != "":
		bad("url", "give path or url, not both")
	case c.URL != "" && !fetch.IsURL(c.URL):
		bad("url", "url %q is not an http or https URL", c.URL)
	}
	if c.URL != "" {
		if _, err := url.Parse(c.URL); err != nil {
			bad("url", "%v", err)
		}
	}
	if !feedIDRE.MatchString(c.FeedID) {
		bad("feed_id", "feed_id is required: 1 to 64 letters, digits, '.', '_' or '-', got %q", c.FeedID)
	}
	switch {
	case c.Table == "":
		bad("table", "table is required (agency, stops, routes, trips, stop_times, shapes, calendar, ...)")
	case strings.HasSuffix(c.Table, ".txt"):
		bad("table", "table names the table without .txt: %q", strings.TrimSuffix(c.Table, ".txt"))
	case !tableNameRE.MatchString(c.Table):
		bad("table", "table %q is not a GTFS table name (lower case letters, digits and _)", c.Table)
	}
	if c.Shapes && c.Table != "trips" {
		bad("shapes", "shapes applies to the trips table only")
	}
	if c.MaxBytes < 1024 {
		bad("max_bytes", "max_bytes must be at least 1024")
	}
	if c.MaxRecordBytes < 1024 {
		bad("max_record_bytes", "max_record_bytes must be at least 1024")
	}
	if c.MaxShapePoints < 2 {
		bad("max_shape_points", "max_shape_points must be at least 2")
	}
	if c.Timeout <= 0 {
		bad("timeout", "timeout must be positive")
	}
	if c.URL == "" && (len(c.Headers) > 0 || c.APIKeyEnv != "" || c.APIKeyQuery != "") {
		bad("url", "headers and api_key_* apply to url only")
	}
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			bad("headers", "bad header name %q", k)
		}
	}
	if c.APIKeyEnv != "" && !envNameRE.MatchString(c.APIKeyEnv) {
		bad("api_key_env", "%q is not an environment variable name", c.APIKeyEnv)
	}
	if c.APIKeyEnv == "" && c.APIKeyQuery != "" {
		bad("api_key_query", "api_key_query needs api_key_env")
	}
	if c.APIKeyHeader == "" || strings.ContainsAny(c.APIKeyHeader, " :\r\n") {
		bad("api_key_header", "bad header name %q", c.APIKeyHeader)
	}
	return errors.Join(errs...)
}

// Kind returns the gtfs kind.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:    "gtfs",
		Summary: "Reads one table of a GTFS Schedule zip (file or URL): rows as text fields, shapes as LineStrings.",
		Config:  DefaultConfig(),
		New:     New,
		Sample:  sample,
	}
}

// Register adds the gtfs kind to r.
func Register(r *connectors.Registry) { r.Register(Kind()) }

// New decodes and validates a config block. It opens nothing.
func New(raw connectors.RawConfig) (connectors.Source, error) {
	cfg := DefaultConfig()
	if err := raw.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		var out []error
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *FieldError
			if errors.As(e, &fe) {
				out = append(out, raw.Errorf(fe.Field, "%s", fe.Msg))
			} else {
				out = append(out, raw.Errorf("", "%v", e))
			}
		}
		return nil, errors.Join(out...)
	}
	cfg.Path = raw.ResolvePath(cfg.Path)
	return NewSource(cfg)
}

// NewSource returns a source for a validated configuration (paths already
// resolved). It opens nothing.
func NewSource(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gtfs: %w", err)
	}
	return &Source{
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.Timeout},
		getenv: os.Getenv,
		log:    slog.New(slog.DiscardHandler),
	}, nil
}

// Source reads one table of a GTFS feed.
type Source struct {
	cfg    Config
	client *http.Client
	getenv func(string) string
	log    *slog.Logger
}

var (
	_ connectors.Source  = (*Source)(nil)
	_ connectors.Checker = (*Source)(nil)
)

// SetLogger sets the logger for the source's lifecycle messages (nil
// discards them). Call it before Read.
func (s *Source) SetLogger(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	s.log = l
}

// location names the feed in messages: the path, or the URL without its
// query (which may carry a key).
func (s *Source) location() string {
	if s.cfg.URL == "" {
		return s.cfg.Path
	}
	u, err := url.Parse(s.cfg.URL)
	if err != nil {
		return s.cfg.URL
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}

// request builds the fetch request and returns the API key, so that
// errors can be cleaned of it.
func (s *Source) request() (fetch.Request, string, error) {
	if s.cfg.URL == "" {
		return fetch.Request{Location: s.cfg.Path}, "", nil
	}
	req := fetch.Request{Location: s.cfg.URL, Header: http.Header{}, Client: s.client}
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	if s.cfg.APIKeyEnv == "" {
		return req, "", nil
	}
	key := s.getenv(s.cfg.APIKeyEnv)
	if key == "" {
		return req, "", fmt.Errorf("gtfs: %s: api_key_env: environment variable %s is not set", s.location(), s.cfg.APIKeyEnv)
	}
	if s.cfg.APIKeyQuery == "" {
		req.Header.Set(s.cfg.APIKeyHeader, key)
		return req, key, nil
	}
	u, err := url.Parse(s.cfg.URL)
	if err != nil {
		return req, "", fmt.Errorf("gtfs: url: %w", err)
	}
	q := u.Query()
	q.Set(s.cfg.APIKeyQuery, key)
	u.RawQuery = q.Encode()
	req.Location = u.String()
	return req, key, nil
}

// Read implements connectors.Source: it streams the configured table.
func (s *Source) Read(ctx context.Context, emit func(connectors.Record) error) error {
	f, err := s.openFeed(ctx)
	if err != nil {
		return err
	}
	defer f.close()
	s.log.DebugContext(ctx, "feed opened", "feed", f.name, "table", s.cfg.Table, "feed_updated_at", f.updated)
	if s.cfg.Table == "shapes" {
		return s.readShapes(ctx, f, emit)
	}
	var shapes map[string]json.RawMessage
	if s.cfg.Shapes {
		if shapes, err = s.shapeIndex(ctx, f); err != nil {
			return err
		}
	}
	return s.readTable(ctx, f, shapes, emit)
}

// agencyTables carry agency_id, which a feed with a single agency may
// leave out; the record then names the agency by the feed id.
var agencyTables = map[string]bool{"agency": true, "routes": true}

// readTable streams the rows of the configured table.
func (s *Source) readTable(ctx context.Context, f *feed, shapes map[string]json.RawMessage, emit func(connectors.Record) error) error {
	t, rc, err := f.openTable(s.cfg.Table, s.cfg.MaxRecordBytes)
	if err != nil {
		return err
	}
	defer rc.Close()
	shapeCol := t.column("shape_id")
	fillAgency := agencyTables[s.cfg.Table]
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := t.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gtfs: %s: %w", f.name, err)
		}
		rec := connectors.Record{Pos: r.pos, Raw: r.raw, Err: r.err}
		if r.err == nil {
			rec.Fields = t.fields(r.values, 3)
			rec.Fields["feed_id"] = s.cfg.FeedID
			if f.updated != "" {
				rec.Fields["feed_updated_at"] = f.updated
			}
			if fillAgency {
				if a, _ := rec.Fields["agency_id"].(string); strings.TrimSpace(a) == "" {
					rec.Fields["agency_id"] = s.cfg.FeedID
				}
			}
			if shapes != nil && shapeCol >= 0 {
				rec.Geometry = shapes[strings.TrimSpace(r.values[shapeCol])]
			}
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
}

// Check implements connectors.Checker: the zip opens, the table (and
// shapes.txt for the shapes join) is present and its header parses.
func (s *Source) Check(ctx context.Context) error {
	f, err := s.openFeed(ctx)
	if err != nil {
		return err
	}
	defer f.close()
	tables := []string{s.cfg.Table}
	if s.cfg.Shapes {
		tables = append(tables, "shapes")
	}
	for _, name := range tables {
		t, rc, err := f.openTable(name, s.cfg.MaxRecordBytes)
		if err != nil {
			return err
		}
		rc.Close()
		if name == "shapes" {
			if _, err := shapeColumns(t); err != nil {
				return fmt.Errorf("gtfs: %s: %w", f.name, err)
			}
		}
	}
	return nil
}

// redactedError hides an API key in the message of the error it wraps.
type redactedError struct {
	err    error
	secret string
}

func (e *redactedError) Error() string {
	msg := strings.ReplaceAll(e.err.Error(), e.secret, "REDACTED")
	return strings.ReplaceAll(msg, url.QueryEscape(e.secret), "REDACTED")
}

// Unwrap keeps errors.Is and errors.As (connectors.IsTransient) working.
func (e *redactedError) Unwrap() error { return e.err }

// redact wraps err so that its message does not show secret.
func redact(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	return &redactedError{err: err, secret: secret}
}
