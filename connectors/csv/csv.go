// Package csv is the CSV source: it streams a delimited text file or
// HTTP(S) resource record by record with encoding/csv (never loading it
// whole), whatever its line endings (LF, CRLF, classic Mac CR-only, or a
// mix), with quoted fields that span lines and an optional UTF-8
// byte-order mark. Each record carries the physical line it starts on, its
// byte offset and its raw bytes; a malformed row becomes an error record
// that the runner dead-letters while the rest of the document lands.
package csv

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/paging"
)

//go:embed sample.yaml
var sample []byte

// Config configures a CSV source.
type Config struct {
	// Path of the file, relative to the connector file's directory; or
	// give url (HTTP.URL) instead.
	Path string `yaml:"path"`
	// HTTP holds url, headers, api_key_env, api_key_header and timeout.
	HTTP paging.HTTP `yaml:",inline"`
	// Delimiter is the one-character field separator (default ",").
	Delimiter string `yaml:"delimiter"`
	// Comment, when set, is a character that starts comment lines.
	Comment string `yaml:"comment"`
	// Header says whether the first record names the columns (default true).
	Header bool `yaml:"header"`
	// Columns names the columns when Header is false, or renames them.
	Columns []string `yaml:"columns"`
	// LazyQuotes accepts quotes inside unquoted fields and unescaped quotes
	// inside quoted fields.
	LazyQuotes bool `yaml:"lazy_quotes"`
	// TrimLeadingSpace ignores spaces after a delimiter.
	TrimLeadingSpace bool `yaml:"trim_leading_space"`
	// Encoding of the file: utf-8 (default; invalid bytes reject the
	// record) or latin-1 (ISO 8859-1, converted to UTF-8).
	Encoding string `yaml:"encoding"`
	// MaxRecordBytes bounds one record (a runaway quoted field cannot eat
	// the memory): default 1 MiB.
	MaxRecordBytes int `yaml:"max_record_bytes"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Delimiter: ",", Header: true, Encoding: "utf-8", MaxRecordBytes: 1 << 20}
}

// Validate checks the configuration. Errors name the offending field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	paging.ValidateLocation(bad, "", c.Path, c.HTTP.URL)
	c.HTTP.Validate(bad, c.HTTP.URL != "")
	if utf8.RuneCountInString(c.Delimiter) != 1 || c.Delimiter == "\"" || c.Delimiter == "\n" || c.Delimiter == "\r" {
		bad("delimiter", "delimiter must be one character other than a quote or line break, got %q", c.Delimiter)
	}
	if c.Comment != "" && (utf8.RuneCountInString(c.Comment) != 1 || c.Comment == c.Delimiter) {
		bad("comment", "comment must be one character different from the delimiter, got %q", c.Comment)
	}
	if !c.Header && len(c.Columns) == 0 {
		bad("columns", "columns are required when header is false")
	}
	seen := map[string]bool{}
	for _, col := range c.Columns {
		if seen[col] {
			bad("columns", "duplicate column %q", col)
		}
		seen[col] = true
	}
	switch c.Encoding {
	case "utf-8", "latin-1":
	default:
		bad("encoding", "encoding must be utf-8 or latin-1, got %q", c.Encoding)
	}
	if c.MaxRecordBytes < 1024 {
		bad("max_record_bytes", "max_record_bytes must be at least 1024")
	}
	return errors.Join(errs...)
}

// FieldError is a configuration problem of one field.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Kind returns the csv kind.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:    "csv",
		Summary: "Reads a delimited text file or HTTP resource (CSV) row by row; the header names the fields.",
		Config:  DefaultConfig(),
		New:     New,
		Sample:  sample,
	}
}

// Register adds the csv kind to r.
func Register(r *connectors.Registry) { r.Register(Kind()) }

// New decodes and validates a config block. It opens nothing.
func New(raw connectors.RawConfig) (connectors.Source, error) {
	cfg := DefaultConfig()
	if err := raw.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, positioned(raw, err)
	}
	cfg.Path = raw.ResolvePath(cfg.Path)
	return &Source{cfg: cfg, fetch: paging.NewFetcher(cfg.HTTP, cfg.HTTP.URL)}, nil
}

// positioned turns FieldErrors into the framework's positioned errors.
func positioned(raw connectors.RawConfig, err error) error {
	var out []error
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, raw.Errorf(fe.Field, "%s", fe.Msg))
		} else {
			out = append(out, raw.Errorf("", "%v", e))
		}
	}
	return errors.Join(out...)
}

// Source reads one CSV file or URL.
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
		return fmt.Errorf("csv: %w", err)
	}
	defer body.Close()
	_, err = readFrom(ctx, body, s.cfg, loc, emit)
	return err
}

// errStop ends a read after the first record (Check).
var errStop = errors.New("stop")

// Check implements connectors.Checker: it opens the file or URL and
// reads the header row and the first record. It fails when the origin
// cannot be opened, when the header is missing (header: true) or does not
// parse, or when it does not match columns.
func (s *Source) Check(ctx context.Context) error {
	loc := s.location()
	body, err := s.fetch.Open(ctx, loc)
	if err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	defer body.Close()
	names, err := readFrom(ctx, body, s.cfg, loc, func(connectors.Record) error { return errStop })
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if names == nil {
		return fmt.Errorf("csv: %s: no header row (the document is empty)", loc)
	}
	return nil
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// ReadFrom reads CSV records from r with cfg (Path names the file in
// positions). It is Read without the file, for tests and other sources.
func ReadFrom(ctx context.Context, r io.Reader, cfg Config, emit func(connectors.Record) error) error {
	_, err := readFrom(ctx, r, cfg, cfg.Path, emit)
	return err
}

// readFrom is ReadFrom with the name of the document (a path or a URL)
// for positions and errors; it also returns the column names once the
// header has been read (cfg.Columns without a header), nil before.
func readFrom(ctx context.Context, r io.Reader, cfg Config, name string, emit func(connectors.Record) error) ([]string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	base := int64(0)
	if b, _ := br.Peek(3); bytes.Equal(b, bom) {
		br.Discard(3)
		base = 3
	}
	rec := &recorder{r: br, max: cfg.MaxRecordBytes}
	cr := stdcsv.NewReader(&crReader{r: rec, buf: make([]byte, 32<<10)})
	cr.Comma, _ = utf8.DecodeRuneInString(cfg.Delimiter)
	if cfg.Comment != "" {
		cr.Comment, _ = utf8.DecodeRuneInString(cfg.Comment)
	}
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = cfg.LazyQuotes
	cr.TrimLeadingSpace = cfg.TrimLeadingSpace

	names := cfg.Columns
	headerPending := cfg.Header
	header := func() []string {
		if headerPending {
			return nil
		}
		return names
	}
	index := 0
	for {
		if err := ctx.Err(); err != nil {
			return header(), err
		}
		start := cr.InputOffset()
		row, err := cr.Read()
		end := cr.InputOffset()
		if errors.Is(err, io.EOF) {
			return header(), nil
		}
		if errors.Is(err, errTooLong) {
			return header(), fmt.Errorf("csv: %s: record at offset %d exceeds max_record_bytes (%d)", name, base+start, cfg.MaxRecordBytes)
		}
		raw, skipped := rec.take(start, end)
		pos := connectors.Position{File: name, Offset: base + start + int64(skipped), Index: index}
		var pe *stdcsv.ParseError
		switch {
		case errors.As(err, &pe) && headerPending:
			return header(), fmt.Errorf("csv: %s: header: %v", name, err)
		case errors.As(err, &pe):
			pos.Line = pe.StartLine
			index++
			if err := emit(connectors.Record{Pos: pos, Raw: raw, Err: fmt.Errorf("%v (column %d)", pe.Err, pe.Column)}); err != nil {
				return header(), err
			}
			continue
		case err != nil:
			return header(), fmt.Errorf("csv: %s: %w", name, err)
		}
		pos.Line, _ = cr.FieldPos(0)
		if headerPending {
			headerPending = false
			if names != nil { // columns rename the header
				if len(row) != len(names) {
					return header(), fmt.Errorf("csv: %s: line %d: header has %d columns, config columns has %d", name, pos.Line, len(row), len(names))
				}
				continue
			}
			if names, err = headerNames(row, cfg.Encoding); err != nil {
				return header(), fmt.Errorf("csv: %s: line %d: %w", name, pos.Line, err)
			}
			continue
		}
		index++
		out := connectors.Record{Pos: pos, Raw: raw}
		if len(row) != len(names) {
			out.Err = fmt.Errorf("record has %d fields, header has %d", len(row), len(names))
		} else {
			out.Fields = make(map[string]any, len(names))
			for i, v := range row {
				v, err := decode(v, cfg.Encoding)
				if err != nil {
					out.Fields, out.Err = nil, fmt.Errorf("field %q: %w", names[i], err)
					break
				}
				out.Fields[names[i]] = v
			}
		}
		if err := emit(out); err != nil {
			return header(), err
		}
	}
}

func headerNames(row []string, enc string) ([]string, error) {
	names := make([]string, len(row))
	seen := map[string]bool{}
	for i, h := range row {
		h, err := decode(h, enc)
		if err != nil {
			return nil, fmt.Errorf("header column %d: %w", i+1, err)
		}
		if i == 0 {
			h = string(bytes.TrimPrefix([]byte(h), bom))
		}
		if h == "" {
			h = "column" + strconv.Itoa(i+1)
		}
		if seen[h] {
			return nil, fmt.Errorf("duplicate header column %q", h)
		}
		seen[h] = true
		names[i] = h
	}
	return names, nil
}

var errInvalidUTF8 = errors.New("invalid UTF-8 (set encoding: latin-1 if the file is ISO 8859-1)")

func decode(s, enc string) (string, error) {
	if enc == "latin-1" {
		ascii := true
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				ascii = false
				break
			}
		}
		if ascii {
			return s, nil
		}
		rs := make([]rune, len(s))
		for i := 0; i < len(s); i++ {
			rs[i] = rune(s[i])
		}
		return string(rs), nil
	}
	if !utf8.ValidString(s) {
		return "", errInvalidUTF8
	}
	return s, nil
}

var errTooLong = errors.New("record too long")

// recorder keeps the bytes read since the start of the current record so
// that each record's raw bytes can be handed out; it holds at most one
// record plus the csv reader's read-ahead.
type recorder struct {
	r    io.Reader
	buf  []byte
	base int64 // stream offset of buf[0]
	max  int
}

func (r *recorder) Read(p []byte) (int, error) {
	if len(r.buf) > r.max+len(p) {
		return 0, errTooLong
	}
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// take returns a copy of the bytes [start, end) without leading line
// breaks (blank lines before the record), with the number skipped, and
// forgets everything before end.
func (r *recorder) take(start, end int64) ([]byte, int) {
	lo, hi := int(start-r.base), int(end-r.base)
	if lo < 0 {
		lo = 0
	}
	if hi > len(r.buf) {
		hi = len(r.buf)
	}
	if lo > hi {
		lo = hi
	}
	seg := r.buf[lo:hi]
	trimmed := bytes.TrimLeft(seg, "\r\n")
	skipped := len(seg) - len(trimmed)
	trimmed = bytes.TrimRight(trimmed, "\r\n")
	out := bytes.Clone(trimmed)
	n := copy(r.buf, r.buf[hi:])
	r.buf = r.buf[:n]
	r.base += int64(hi)
	return out, skipped
}

// crReader turns every CR that is not followed by LF into LF, so that
// encoding/csv (which splits lines on LF) reads CR-only and mixed files.
// It keeps the byte count, so offsets stay those of the original file.
type crReader struct {
	r       io.Reader
	buf     []byte
	start   int // next byte to hand out
	scanned int // bytes before this index are translated
	end     int
	err     error
}

func (c *crReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.scanned > c.start {
			n := copy(p, c.buf[c.start:c.scanned])
			c.start += n
			return n, nil
		}
		if c.err != nil {
			return 0, c.err
		}
		// compact, then read more
		copy(c.buf, c.buf[c.start:c.end])
		c.end -= c.start
		c.scanned -= c.start
		c.start = 0
		n, err := c.r.Read(c.buf[c.end:])
		c.end += n
		if err != nil {
			c.err = err
		}
		for c.scanned < c.end {
			i := c.scanned
			if c.buf[i] == '\r' {
				if i+1 < c.end {
					if c.buf[i+1] != '\n' {
						c.buf[i] = '\n'
					}
				} else if c.err != nil {
					c.buf[i] = '\n'
				} else {
					break // decide when the next byte is known
				}
			}
			c.scanned++
		}
	}
}
