// Package geojson is the GeoJSON source: it streams a FeatureCollection,
// from a file or an HTTP(S) URL, feature by feature with encoding/json's
// token API (the document is never loaded whole). Each feature's
// properties become the record's fields, its geometry the record's
// geometry; the feature index and byte offset are its position. A feature
// that is not a valid Feature object becomes an error record; a syntax
// error ends the read.
package geojson

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
	"github.com/cityhub/cityhub/connectors/paging"
)

//go:embed sample.yaml
var sample []byte

// Config configures a GeoJSON source.
type Config struct {
	// Path of the file, relative to the connector file's directory; or
	// give url (HTTP.URL) instead.
	Path string `yaml:"path"`
	// HTTP holds url, headers, api_key_env, api_key_header and timeout.
	HTTP paging.HTTP `yaml:",inline"`
	// IDField, when set, is the field that receives each feature's
	// top-level "id" member (properties of the same name are overwritten).
	IDField string `yaml:"id_field"`
	// MaxFeatureBytes bounds one feature; a larger one fails the run.
	// Default 64 MiB.
	MaxFeatureBytes int `yaml:"max_feature_bytes"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{MaxFeatureBytes: 64 << 20} }

// Kind returns the geojson kind.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:    "geojson",
		Summary: "Reads a GeoJSON FeatureCollection (file or HTTP) feature by feature; properties are the fields, the geometry is kept.",
		Config:  DefaultConfig(),
		New:     New,
		Sample:  sample,
	}
}

// Register adds the geojson kind to r.
func Register(r *connectors.Registry) { r.Register(Kind()) }

// New decodes and validates a config block. It opens nothing.
func New(raw connectors.RawConfig) (connectors.Source, error) {
	cfg := DefaultConfig()
	if err := raw.Decode(&cfg); err != nil {
		return nil, err
	}
	var errs []error
	report := func(field, format string, args ...any) {
		errs = append(errs, raw.Errorf(field, format, args...))
	}
	paging.ValidateLocation(report, "", cfg.Path, cfg.HTTP.URL)
	cfg.HTTP.Validate(report, cfg.HTTP.URL != "")
	if cfg.MaxFeatureBytes < 1024 {
		report("max_feature_bytes", "max_feature_bytes must be at least 1024")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.Path = raw.ResolvePath(cfg.Path)
	return &Source{cfg: cfg, fetch: paging.NewFetcher(cfg.HTTP, cfg.HTTP.URL)}, nil
}

// Source reads one GeoJSON file or URL.
type Source struct {
	cfg   Config
	fetch *paging.Fetcher
}

var (
	_ connectors.Source  = (*Source)(nil)
	_ connectors.Checker = (*Source)(nil)
)

// location is the file path or the URL.
func (s *Source) location() string {
	if s.cfg.HTTP.URL != "" {
		return s.cfg.HTTP.URL
	}
	return s.cfg.Path
}

// Read implements connectors.Source. A URL is streamed as it arrives;
// its records carry the URL in Pos.File. Network failures (refused
// connections, 5xx, a body that broke off) are connectors.Transient.
func (s *Source) Read(ctx context.Context, emit func(connectors.Record) error) error {
	loc := s.location()
	body, err := s.fetch.Open(ctx, loc)
	if err != nil {
		return fmt.Errorf("geojson: %w", err)
	}
	defer body.Close()
	return readFrom(ctx, body, s.cfg, loc, emit)
}

// errStop ends a read after the first feature (Check).
var errStop = errors.New("stop")

// Check implements connectors.Checker: it opens the file or URL and reads
// up to the start of the features array and the first feature. It fails
// when the origin cannot be opened or the document is not a
// FeatureCollection with a features array.
func (s *Source) Check(ctx context.Context) error {
	loc := s.location()
	body, err := s.fetch.Open(ctx, loc)
	if err != nil {
		return fmt.Errorf("geojson: %w", err)
	}
	defer body.Close()
	if err := readFrom(ctx, body, s.cfg, loc, func(connectors.Record) error { return errStop }); err != nil && !errors.Is(err, errStop) {
		return err
	}
	return nil
}

var errTooLarge = errors.New("feature too large")

// limitReader fails once the decoder has buffered more than max bytes past
// mark (the start of the current feature).
type limitReader struct {
	r    io.Reader
	read int64
	mark int64
	max  int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.read-l.mark > l.max {
		return 0, errTooLarge
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}

// ReadFrom reads a FeatureCollection from r (cfg.Path names it in
// positions).
func ReadFrom(ctx context.Context, r io.Reader, cfg Config, emit func(connectors.Record) error) error {
	return readFrom(ctx, r, cfg, cfg.Path, emit)
}

// readFrom is ReadFrom with the name of the document (a path or a URL)
// for positions and errors.
func readFrom(ctx context.Context, r io.Reader, cfg Config, name string, emit func(connectors.Record) error) error {
	lr := &limitReader{r: r, max: int64(cfg.MaxFeatureBytes)}
	dec := json.NewDecoder(lr)
	fail := func(err error) error {
		if errors.Is(err, errTooLarge) {
			return fmt.Errorf("geojson: %s: feature at offset %d exceeds max_feature_bytes (%d)", name, lr.mark, cfg.MaxFeatureBytes)
		}
		err = fmt.Errorf("geojson: %s: offset %d: %w", name, dec.InputOffset(), err)
		if fetch.IsURL(name) && errors.Is(err, io.ErrUnexpectedEOF) && !connectors.IsTransient(err) {
			// the body ended mid-document: the connection broke off
			return connectors.Transient(err)
		}
		return err
	}
	if err := expectDelim(dec, '{'); err != nil {
		return fail(fmt.Errorf("not a GeoJSON object: %w", err))
	}
	sawFeatures := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		key, _ := tok.(string)
		switch key {
		case "type":
			var typ string
			if err := dec.Decode(&typ); err != nil || typ != "FeatureCollection" {
				if err == nil {
					err = fmt.Errorf("type is %q, want FeatureCollection", typ)
				}
				return fail(err)
			}
		case "features":
			sawFeatures = true
			if err := readFeatures(ctx, dec, lr, cfg, name, emit); err != nil {
				var emitErr *emitError
				if errors.As(err, &emitErr) {
					return emitErr.err
				}
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					return err
				}
				return fail(err)
			}
		default:
			if err := skipValue(dec); err != nil {
				return fail(err)
			}
		}
	}
	if !sawFeatures {
		return fail(errors.New("no features member"))
	}
	return nil
}

// emitError carries an error returned by emit, to return it unchanged.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }

func readFeatures(ctx context.Context, dec *json.Decoder, lr *limitReader, cfg Config, name string, emit func(connectors.Record) error) error {
	if err := expectDelim(dec, '['); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	for i := 0; dec.More(); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		lr.mark = dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		end := dec.InputOffset()
		rec := parseFeature(raw, cfg.IDField)
		rec.Pos = connectors.Position{File: name, Offset: end - int64(len(raw)), Index: i, Path: "features[" + strconv.Itoa(i) + "]"}
		if err := emit(rec); err != nil {
			return &emitError{err}
		}
	}
	_, err := dec.Token() // ]
	return err
}

type feature struct {
	Type       string          `json:"type"`
	ID         any             `json:"id"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties map[string]any  `json:"properties"`
}

// parseFeature turns one feature's bytes into a record (with Err set when
// it is not a valid Feature).
func parseFeature(raw json.RawMessage, idField string) connectors.Record {
	rec := connectors.Record{Raw: raw}
	var f feature
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&f); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "properties" {
			rec.Err = errors.New("properties are not an object")
		} else {
			rec.Err = fmt.Errorf("not a Feature object: %v", err)
		}
		return rec
	}
	if f.Type != "Feature" {
		rec.Err = fmt.Errorf("type is %q, want Feature", f.Type)
		return rec
	}
	rec.Fields = f.Properties
	if rec.Fields == nil {
		rec.Fields = map[string]any{}
	}
	for k, v := range rec.Fields {
		rec.Fields[k] = connectors.NormalizeJSON(v)
	}
	if idField != "" && f.ID != nil {
		rec.Fields[idField] = connectors.NormalizeJSON(f.ID)
	}
	if g := bytes.TrimSpace(f.Geometry); len(g) > 0 && string(g) != "null" {
		if g[0] != '{' {
			rec.Fields = nil
			rec.Err = fmt.Errorf("geometry is not an object")
			return rec
		}
		rec.Geometry = g
	}
	return rec
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", want, tok)
	}
	return nil
}

// skipValue consumes one JSON value token by token (no buffering of
// large foreign members).
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
