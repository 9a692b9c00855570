// Package json is the JSON file source: the records are the objects of an
// array found at a dotted path in the document (for example data.stations
// in a GBFS feed), streamed element by element with encoding/json's token
// API. Optionally each record is joined, by a key field, with the records
// of a second file (GBFS station_status by station_id); the second file is
// indexed in memory, bounded by join.max_records.
//
// The package is named json like the format; it imports encoding/json as
// stdjson.
package json

import (
	"bytes"
	"context"
	_ "embed"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cityhub/cityhub/connectors"
)

//go:embed sample.yaml
var sample []byte

// Config configures a JSON source.
type Config struct {
	// Path of the file, relative to the connector file's directory.
	Path string `yaml:"path"`
	// Records is the dotted path of the array of records, e.g.
	// data.stations; empty when the document itself is the array.
	Records string `yaml:"records"`
	// Join merges the fields of a second file's records into each record.
	Join *Join `yaml:"join"`
	// MaxRecordBytes bounds one record; a larger one fails the run.
	// Default 16 MiB.
	MaxRecordBytes int `yaml:"max_record_bytes"`
}

// Join configures the join with a second file.
type Join struct {
	// Path of the second file.
	Path string `yaml:"path"`
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

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{MaxRecordBytes: 16 << 20} }

// Kind returns the json kind.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:    "json",
		Summary: "Reads the array of objects at a dotted path of a JSON file, optionally joined with a second file by key.",
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
	if cfg.Path == "" {
		errs = append(errs, raw.Errorf("path", "path is required"))
	}
	if bad := badPath(cfg.Records); bad != "" {
		errs = append(errs, raw.Errorf("records", "%s", bad))
	}
	if cfg.MaxRecordBytes < 1024 {
		errs = append(errs, raw.Errorf("max_record_bytes", "max_record_bytes must be at least 1024"))
	}
	if j := cfg.Join; j != nil {
		if j.Path == "" {
			errs = append(errs, raw.Errorf("join.path", "path is required"))
		}
		if j.Key == "" {
			errs = append(errs, raw.Errorf("join.key", "key is required"))
		}
		if bad := badPath(j.Records); bad != "" {
			errs = append(errs, raw.Errorf("join.records", "%s", bad))
		}
		if j.MaxRecords == 0 {
			j.MaxRecords = 1_000_000
		}
		if j.MaxRecords < 0 {
			errs = append(errs, raw.Errorf("join.max_records", "max_records must be positive"))
		}
		j.Path = raw.ResolvePath(j.Path)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.Path = raw.ResolvePath(cfg.Path)
	return &Source{cfg: cfg}, nil
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

// Source reads one JSON file.
type Source struct{ cfg Config }

var _ connectors.Source = (*Source)(nil)

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context, emit func(connectors.Record) error) error {
	var index map[string]map[string]any
	if j := s.cfg.Join; j != nil {
		f, err := os.Open(j.Path)
		if err != nil {
			return fmt.Errorf("json: join: %w", err)
		}
		index, err = loadIndex(ctx, f, j, s.cfg.MaxRecordBytes)
		f.Close()
		if err != nil {
			return err
		}
	}
	f, err := os.Open(s.cfg.Path)
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	defer f.Close()
	return ReadFrom(ctx, f, s.cfg, index, emit)
}

// loadIndex reads the join file into a map from key text to fields.
func loadIndex(ctx context.Context, r io.Reader, j *Join, maxBytes int) (map[string]map[string]any, error) {
	index := map[string]map[string]any{}
	cfg := Config{Path: j.Path, Records: j.Records, MaxRecordBytes: maxBytes}
	err := ReadFrom(ctx, r, cfg, nil, func(rec connectors.Record) error {
		if rec.Err != nil {
			return fmt.Errorf("json: join file %s: %s: %v", j.Path, rec.Pos, rec.Err)
		}
		k, ok := keyText(rec.Fields[j.Key])
		if !ok {
			return fmt.Errorf("json: join file %s: %s: key %q is missing", j.Path, rec.Pos, j.Key)
		}
		if _, dup := index[k]; dup {
			return fmt.Errorf("json: join file %s: %s: duplicate key %q", j.Path, rec.Pos, k)
		}
		if len(index) >= j.MaxRecords {
			return fmt.Errorf("json: join file %s has more than max_records (%d) records", j.Path, j.MaxRecords)
		}
		index[k] = rec.Fields
		return nil
	})
	return index, err
}

func keyText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, x != ""
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

var errTooLarge = errors.New("record too large")

type limitReader struct {
	r          io.Reader
	read, mark int64
	max        int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.read-l.mark > l.max {
		return 0, errTooLarge
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}

// ReadFrom streams the records of r. index, when not nil, holds the join
// file's records by key (cfg.Join says how to merge them).
func ReadFrom(ctx context.Context, r io.Reader, cfg Config, index map[string]map[string]any, emit func(connectors.Record) error) error {
	lr := &limitReader{r: r, max: int64(cfg.MaxRecordBytes)}
	dec := stdjson.NewDecoder(lr)
	dec.UseNumber()
	fail := func(err error) error {
		if errors.Is(err, errTooLarge) {
			return fmt.Errorf("json: %s: record at offset %d exceeds max_record_bytes (%d)", cfg.Path, lr.mark, cfg.MaxRecordBytes)
		}
		return fmt.Errorf("json: %s: offset %d: %w", cfg.Path, dec.InputOffset(), err)
	}
	var segs []string
	if cfg.Records != "" {
		segs = strings.Split(cfg.Records, ".")
	}
	if err := descend(dec, segs); err != nil {
		return fail(err)
	}
	label := cfg.Records
	if label == "" {
		label = "$"
	}
	for i := 0; dec.More(); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		lr.mark = dec.InputOffset()
		var raw stdjson.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fail(err)
		}
		end := dec.InputOffset()
		rec := connectors.Record{Raw: raw, Pos: connectors.Position{File: cfg.Path, Offset: end - int64(len(raw)), Index: i, Path: label + "[" + strconv.Itoa(i) + "]"}}
		d := stdjson.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&rec.Fields); err != nil || rec.Fields == nil {
			rec.Fields, rec.Err = nil, errors.New("record is not an object")
		} else {
			for k, v := range rec.Fields {
				rec.Fields[k] = connectors.NormalizeJSON(v)
			}
			if index != nil {
				join(&rec, cfg.Join, index)
			}
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ]
		return fail(err)
	}
	return nil
}

func join(rec *connectors.Record, j *Join, index map[string]map[string]any) {
	k, ok := keyText(rec.Fields[j.Key])
	other := index[k]
	if !ok || other == nil {
		if j.Required {
			rec.Fields, rec.Err = nil, fmt.Errorf("no record with %s %s in the join file", j.Key, describeKey(rec.Fields[j.Key]))
		}
		return
	}
	for name, v := range other {
		name = j.Prefix + name
		if _, clash := rec.Fields[name]; !clash {
			rec.Fields[name] = v
		}
	}
}

func describeKey(v any) string {
	if s, ok := keyText(v); ok {
		return strconv.Quote(s)
	}
	return "(missing)"
}

// descend moves the decoder into the array at the dotted path.
func descend(dec *stdjson.Decoder, segs []string) error {
	for depth, seg := range segs {
		if err := expectDelim(dec, '{'); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(segs[:depth], "."), err)
		}
		found := false
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			if tok == seg {
				found = true
				break
			}
			if err := skipValue(dec); err != nil {
				return err
			}
		}
		if !found {
			return fmt.Errorf("no member %q at %s", seg, strings.Join(append([]string{"$"}, segs[:depth]...), "."))
		}
	}
	if err := expectDelim(dec, '['); err != nil {
		return fmt.Errorf("records: %w", err)
	}
	return nil
}

func expectDelim(dec *stdjson.Decoder, want stdjson.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(stdjson.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", want, tok)
	}
	return nil
}

func skipValue(dec *stdjson.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case stdjson.Delim('{'), stdjson.Delim('['):
			depth++
		case stdjson.Delim('}'), stdjson.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
