// Package gtfsrt is the GTFS-Realtime source (kind gtfs_rt): it decodes a
// FeedMessage (protocol buffers) from a file or an HTTP(S) URL and
// flattens each entity of one feed kind — vehicle positions, trip updates
// or service alerts — into a record. As a connectors.Streamer it polls
// the feed every poll_interval and emits only what is new since its
// checkpoint, the feed's header timestamp.
//
// Decoding uses the MobilityData bindings
// (github.com/MobilityData/gtfs-realtime-bindings/golang/gtfs) with
// google.golang.org/protobuf. The source knows nothing of the graph.
package gtfsrt

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
)

//go:embed sample.yaml
var sample []byte

// Config configures a GTFS-Realtime source.
type Config struct {
	// Path of a feed file, relative to the connector file's directory.
	Path string `yaml:"path"`
	// URL of the feed (http or https), instead of Path.
	URL string `yaml:"url"`
	// Feed is the entity kind read: vehicle_positions, trip_updates or
	// alerts.
	Feed string `yaml:"feed"`
	// FeedID scopes the feed's ids: every record carries it as feed_id.
	FeedID string `yaml:"feed_id"`
	// PollInterval is the time between two polls when streaming.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Timeout bounds one request.
	Timeout time.Duration `yaml:"timeout"`
	// MaxBytes bounds one feed message.
	MaxBytes int64 `yaml:"max_bytes"`
	// Headers are sent with every request.
	Headers map[string]string `yaml:"headers"`
	// APIKeyEnv names the environment variable holding an API key, read
	// at every request.
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
		PollInterval: 30 * time.Second,
		Timeout:      30 * time.Second,
		MaxBytes:     32 << 20,
		APIKeyHeader: "Authorization",
	}
}

var (
	feedIDRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
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
	switch c.Feed {
	case VehiclePositions, TripUpdates, Alerts:
	case "":
		bad("feed", "feed is required: vehicle_positions, trip_updates or alerts")
	default:
		bad("feed", "feed %q is not vehicle_positions, trip_updates or alerts", c.Feed)
	}
	if !feedIDRE.MatchString(c.FeedID) {
		bad("feed_id", "feed_id is required: 1 to 64 letters, digits, '.', '_' or '-', got %q", c.FeedID)
	}
	if c.PollInterval <= 0 {
		bad("poll_interval", "poll_interval must be positive")
	}
	if c.Timeout <= 0 {
		bad("timeout", "timeout must be positive")
	}
	if c.MaxBytes < 64 {
		bad("max_bytes", "max_bytes must be at least 64")
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

// Kind returns the gtfs_rt kind.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:    "gtfs_rt",
		Summary: "Reads a GTFS-Realtime feed (vehicle positions, trip updates or alerts) from a file or URL; streams by polling.",
		Config:  DefaultConfig(),
		New:     New,
		Sample:  sample,
	}
}

// Register adds the gtfs_rt kind to r.
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
		return nil, fmt.Errorf("gtfs_rt: %w", err)
	}
	return &Source{
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.Timeout},
		getenv: os.Getenv,
		log:    slog.New(slog.DiscardHandler),
	}, nil
}

// Source reads one GTFS-Realtime feed.
type Source struct {
	cfg    Config
	client *http.Client
	getenv func(string) string
	log    *slog.Logger
}

var (
	_ connectors.Source   = (*Source)(nil)
	_ connectors.Checker  = (*Source)(nil)
	_ connectors.Streamer = (*Source)(nil)
)

// SetLogger sets the logger that receives the failed polls Subscribe
// retries (nil discards them). Call it before Subscribe.
func (s *Source) SetLogger(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	s.log = l
}

// location names the feed in messages and positions: the path, or the
// URL without its query (which may carry a key).
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
	req.Header.Set("Accept", "application/x-protobuf, application/octet-stream")
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	if s.cfg.APIKeyEnv == "" {
		return req, "", nil
	}
	key := s.getenv(s.cfg.APIKeyEnv)
	if key == "" {
		return req, "", fmt.Errorf("gtfs_rt: %s: api_key_env: environment variable %s is not set", s.location(), s.cfg.APIKeyEnv)
	}
	if s.cfg.APIKeyQuery == "" {
		req.Header.Set(s.cfg.APIKeyHeader, key)
		return req, key, nil
	}
	u, err := url.Parse(s.cfg.URL)
	if err != nil {
		return req, "", fmt.Errorf("gtfs_rt: url: %w", err)
	}
	q := u.Query()
	q.Set(s.cfg.APIKeyQuery, key)
	u.RawQuery = q.Encode()
	req.Location = u.String()
	return req, key, nil
}

// fetchFeed reads the feed's bytes, at most max_bytes. Failures worth a
// retry (refused connections, timeouts, HTTP 429 and 5xx, a body that
// broke off) are connectors.Transient.
func (s *Source) fetchFeed(ctx context.Context) ([]byte, error) {
	req, secret, err := s.request()
	if err != nil {
		return nil, err
	}
	body, err := fetch.Open(ctx, req)
	if err != nil {
		return nil, redact(fmt.Errorf("gtfs_rt: %w", err), secret)
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, s.cfg.MaxBytes+1))
	if err != nil {
		err = redact(fmt.Errorf("gtfs_rt: read %s: %w", s.location(), err), secret)
		var ne net.Error
		if ctx.Err() == nil && (errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return nil, connectors.Transient(err)
		}
		return nil, err
	}
	if int64(len(data)) > s.cfg.MaxBytes {
		return nil, fmt.Errorf("gtfs_rt: %s: the feed is larger than max_bytes (%d)", s.location(), s.cfg.MaxBytes)
	}
	return data, nil
}

// load fetches and decodes the feed.
func (s *Source) load(ctx context.Context) (*Message, error) {
	data, err := s.fetchFeed(ctx)
	if err != nil {
		return nil, err
	}
	m, err := Decode(data, s.cfg.Feed, s.cfg.FeedID, s.location())
	if err != nil {
		return nil, fmt.Errorf("gtfs_rt: %s: %w", s.location(), err)
	}
	return m, nil
}

// Read implements connectors.Source: it reads the feed once and emits a
// record per entity of the configured kind. An empty feed is no error.
func (s *Source) Read(ctx context.Context, emit func(connectors.Record) error) error {
	m, err := s.load(ctx)
	if err != nil {
		return err
	}
	for _, rec := range m.Records {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
	return nil
}

// Check implements connectors.Checker: the feed can be fetched and
// decoded, and when it has entities, some are of the configured kind.
func (s *Source) Check(ctx context.Context) error {
	m, err := s.load(ctx)
	if err != nil {
		return err
	}
	if m.Entities > 0 && len(m.Records) == 0 {
		var kinds []string
		for k, n := range m.Other {
			kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
		}
		sort.Strings(kinds)
		return fmt.Errorf("gtfs_rt: %s: no %s among its %d entities (%s)", s.location(), s.cfg.Feed, m.Entities, strings.Join(kinds, ", "))
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
