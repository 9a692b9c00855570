// Package json is the JSON document source: the records are the objects
// of an array found at a dotted path in the document (for example
// data.stations in a GBFS feed), streamed element by element with
// encoding/json's token API. The document is a file or an HTTP(S) URL;
// a URL may be paged (offset, page number, next link or cursor), each
// page a document of the same shape. Optionally each record is joined, by
// a key field, with the records of a second document (GBFS station_status
// by station_id); the second document is indexed in memory, bounded by
// join.max_records.
//
// The package is named json like the format; it imports encoding/json as
// stdjson.
package json

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
	"github.com/cityhub/cityhub/connectors/paging"
)

//go:embed sample.yaml
var sample []byte

// Config configures a JSON source.
type Config struct {
	// Path of the file, relative to the connector file's directory; or
	// give url (HTTP.URL) instead.
	Path string `yaml:"path"`
	// HTTP holds url, headers, api_key_env, api_key_header and timeout.
	HTTP paging.HTTP `yaml:",inline"`
	// Records is the dotted path of the array of records, e.g.
	// data.stations; empty when the document itself is the array.
	Records string `yaml:"records"`
	// Paging holds pagination (none, offset, page, next_link, cursor) and
	// its parameters; URLs only.
	Paging paging.Config `yaml:",inline"`
	// Join merges the fields of a second document's records into each
	// record.
	Join *Join `yaml:"join"`
	// MaxRecordBytes bounds one record; a larger one fails the run.
	// Default 16 MiB.
	MaxRecordBytes int `yaml:"max_record_bytes"`
}

// Join configures the join with a second document.
type Join struct {
	// Path of the second file, relative to the connector file's
	// directory; or give URL instead.
	Path string `yaml:"path"`
	// URL of the second document, read once (never paged) with the
	// source's headers, API key and timeout.
	URL string `yaml:"url"`
	// Records is the dotted path of its array of records.
	Records string `yaml:"records"`
	// Key is the field that must be equal in both records (compared as text).
	Key string `yaml:"key"`
	// Prefix is put before the joined field names (default none). On a
	// name clash the main record's field wins.
	Prefix string `yaml:"prefix"`
	// Required rejects records without a match (default: they pass
	// without the joined fields).
	Required bool `yaml:"required"`
	// MaxRecords bounds the in-memory index. Default 1,000,000.
	MaxRecords int `yaml:"max_records"`
}

// location is the file path or URL of the join document.
func (j *Join) location() string {
	if j.URL != "" {
		return j.URL
	}
	return j.Path
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{MaxRecordBytes: 16 << 20} }

// Kind returns the json kind.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:    "json",
		Summary: "Reads the array of objects at a dotted path of a JSON file or (paged) HTTP resource, optionally joined with a second document by key.",
		Config:  DefaultConfig(),
		New:     New,
		Sample:  sample,
	}
}

// Register adds the json kind to r.
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
	joinURL := ""
	if cfg.Join != nil {
		joinURL = cfg.Join.URL
	}
	cfg.HTTP.Validate(report, cfg.HTTP.URL != "" || joinURL != "")
	cfg.Paging.Validate(report, cfg.HTTP.URL != "")
	if bad := badPath(cfg.Records); bad != "" {
		report("records", "%s", bad)
	}
	if bp := cfg.Paging.BodyPath(); bp != "" {
		field := map[paging.Strategy]string{paging.NextLink: "next_link_path", paging.Cursor: "cursor_path"}[cfg.Paging.Pagination]
		switch {
		case cfg.Records == "":
			report(field, "records is empty (the document is the array), so no %s can be found in it", field)
		case overlap(bp, cfg.Records):
			report(field, "%s %q overlaps records %q", field, bp, cfg.Records)
		}
	}
	if cfg.MaxRecordBytes < 1024 {
		report("max_record_bytes", "max_record_bytes must be at least 1024")
	}
	if j := cfg.Join; j != nil {
		paging.ValidateLocation(report, "join.", j.Path, j.URL)
		if j.Key == "" {
			report("join.key", "key is required")
		}
		if bad := badPath(j.Records); bad != "" {
			report("join.records", "%s", bad)
		}
		if j.MaxRecords == 0 {
			j.MaxRecords = 1_000_000
		}
		if j.MaxRecords < 0 {
			report("join.max_records", "max_records must be positive")
		}
		j.Path = raw.ResolvePath(j.Path)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.Path = raw.ResolvePath(cfg.Path)
	return &Source{cfg: cfg, fetch: paging.NewFetcher(cfg.HTTP, cfg.HTTP.URL, joinURL)}, nil
}

func badPath(p string) string {
	if p == "" {
		return ""
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Sprintf("records path %q has an empty segment", p)
		}
	}
	return ""
}

// overlap reports whether one dotted path is the other or inside it.
func overlap(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
}

// Source reads one JSON document, or the pages of a paged URL.
type Source struct {
	cfg   Config
	fetch *paging.Fetcher
}

var (
	_ connectors.Source  = (*Source)(nil)
	_ connectors.Checker = (*Source)(nil)
)

// Read implements connectors.Source. Records of a URL carry the page URL
// in Pos.Message and their index over the whole read in Pos.Index.
// Network failures (refused connections, 5xx, a body that broke off) are
// connectors.Transient; a next link or cursor seen before, or a read
// needing more than max_pages pages, fails the read.
func (s *Source) Read(ctx context.Context, emit func(connectors.Record) error) error {
	index, err := s.loadJoin(ctx)
	if err != nil {
		return err
	}
	if s.cfg.HTTP.URL == "" {
		_, _, err := s.readOne(ctx, s.cfg.Path, 0, index, emit)
		return err
	}
	pager, err := s.cfg.Paging.NewPager(s.cfg.HTTP.URL)
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	read := 0
	for {
		page, err := pager.Next()
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		if page == "" {
			return nil
		}
		res, hdr, err := s.readOne(ctx, page, read, index, emit)
		if err != nil {
			return err
		}
		read += res.records
		if err := pager.Advance(paging.Result{Records: res.records, Value: res.value, Header: hdr}); err != nil {
			return fmt.Errorf("json: %s: %w", page, err)
		}
	}
}

// readOne reads one document (a file or a page) whose first record has
// index base.
func (s *Source) readOne(ctx context.Context, loc string, base int, index map[string]map[string]any, emit func(connectors.Record) error) (docResult, http.Header, error) {
	body, err := s.fetch.Open(ctx, loc)
	if err != nil {
		return docResult{}, nil, fmt.Errorf("json: %w", err)
	}
	defer body.Close()
	o := s.opts(loc, s.cfg.Records, base)
	o.value = s.cfg.Paging.BodyPath()
	if index != nil {
		o.join, o.index = s.cfg.Join, index
	}
	res, err := readDoc(ctx, body, o, emit)
	return res, body.Header, err
}

func (s *Source) opts(loc, records string, base int) docOpts {
	return docOpts{name: loc, isURL: fetch.IsURL(loc), records: records, base: base, maxBytes: s.cfg.MaxRecordBytes}
}

// errStop ends a read after the first record (Check).
var errStop = errors.New("stop")

// Check implements connectors.Checker: it opens the join document and
// the file or first page, and reads up to the first record of each. It
// fails when a document cannot be opened, the records path is missing or
// not an array, or the first record of the main document is not an
// object.
func (s *Source) Check(ctx context.Context) error {
	if j := s.cfg.Join; j != nil {
		if err := s.checkDoc(ctx, "json: join", j.location(), j.Records, false); err != nil {
			return err
		}
	}
	loc := s.cfg.Path
	if s.cfg.HTTP.URL != "" {
		pager, err := s.cfg.Paging.NewPager(s.cfg.HTTP.URL)
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		if loc, err = pager.Next(); err != nil {
			return fmt.Errorf("json: %w", err)
		}
	}
	return s.checkDoc(ctx, "json", loc, s.cfg.Records, true)
}

// checkDoc opens one document and reads up to its first record; what
// prefixes errors.
func (s *Source) checkDoc(ctx context.Context, what, loc, records string, strict bool) error {
	body, err := s.fetch.Open(ctx, loc)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer body.Close()
	o := s.opts(loc, records, 0)
	o.what = what
	_, err = readDoc(ctx, body, o, func(rec connectors.Record) error {
		if strict && rec.Err != nil {
			return fmt.Errorf("%s: %s: %s: %v", what, loc, rec.Pos.Path, rec.Err)
		}
		return errStop
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}
