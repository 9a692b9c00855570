package json

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
)

// ReadFrom streams the records of r. index, when not nil, holds the join
// document's records by key (cfg.Join says how to merge them). cfg.Path
// (or cfg.HTTP.URL) names the document in positions and errors.
func ReadFrom(ctx context.Context, r io.Reader, cfg Config, index map[string]map[string]any, emit func(connectors.Record) error) error {
	name := cfg.Path
	if name == "" {
		name = cfg.HTTP.URL
	}
	o := docOpts{name: name, isURL: fetch.IsURL(name), records: cfg.Records, maxBytes: cfg.MaxRecordBytes}
	if index != nil {
		o.join, o.index = cfg.Join, index
	}
	_, err := readDoc(ctx, r, o, emit)
	return err
}

// docOpts says how to read one document (a file or a page).
type docOpts struct {
	name     string // file path or page URL, for positions and errors
	what     string // error prefix: "json" or "json: join"
	isURL    bool   // positions carry name in Message, not File
	records  string // dotted path of the records array; "" for the root
	value    string // dotted path of a value to return (next link, cursor); "" for none
	base     int    // index of the document's first record over the whole read
	maxBytes int
	join     *Join
	index    map[string]map[string]any
}

// docResult is what reading one document found.
type docResult struct {
	records int    // elements of the records array
	value   string // text at docOpts.value, "" when absent or null
}

var errTooLarge = errors.New("value too large")

// limitReader fails once the decoder has read more than max bytes past
// mark (the start of the current record or member).
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

// emitError carries an error returned by emit, to return it unchanged.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }

// readDoc walks one document token by token: it streams the elements of
// the records array to emit and picks up the value at o.value, skipping
// everything else without buffering it. It stops reading as soon as both
// are found, so the rest of a document is never read for nothing.
func readDoc(ctx context.Context, r io.Reader, o docOpts, emit func(connectors.Record) error) (docResult, error) {
	if o.what == "" {
		o.what = "json"
	}
	lr := &limitReader{r: r, max: int64(o.maxBytes)}
	dec := stdjson.NewDecoder(lr)
	dec.UseNumber()
	w := &walker{ctx: ctx, dec: dec, lr: lr, o: o, emit: emit, label: o.records}
	if o.records != "" {
		w.records = strings.Split(o.records, ".")
	} else {
		w.label = "$"
	}
	if o.value != "" {
		w.value = strings.Split(o.value, ".")
	}
	err := w.root()
	if err == nil {
		return w.res, nil
	}
	var ee *emitError
	switch {
	case errors.As(err, &ee):
		return w.res, ee.err
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return w.res, ctx.Err()
	case errors.Is(err, errTooLarge):
		return w.res, fmt.Errorf("%s: %s: value at offset %d exceeds max_record_bytes (%d)", o.what, o.name, lr.mark, o.maxBytes)
	}
	err = fmt.Errorf("%s: %s: offset %d: %w", o.what, o.name, dec.InputOffset(), err)
	if o.isURL && errors.Is(err, io.ErrUnexpectedEOF) && !connectors.IsTransient(err) {
		// the body ended mid-document: the connection broke off
		return w.res, connectors.Transient(err)
	}
	return w.res, err
}

type walker struct {
	ctx            context.Context
	dec            *stdjson.Decoder
	lr             *limitReader
	o              docOpts
	emit           func(connectors.Record) error
	records, value []string
	label          string // records path for positions, "$" for the root
	res            docResult
	gotRecords     bool
	gotValue       bool
}

func (w *walker) done() bool { return w.gotRecords && (w.value == nil || w.gotValue) }

func (w *walker) root() error {
	if w.records == nil {
		return w.array()
	}
	if err := expectDelim(w.dec, '{'); err != nil {
		return fmt.Errorf("$: %w", err)
	}
	return w.object(nil)
}

// object walks the members of an object whose '{' has been read; path is
// its place in the document. It returns early once done.
func (w *walker) object(path []string) error {
	for w.dec.More() {
		w.lr.mark = w.dec.InputOffset()
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		p := append(path[:len(path):len(path)], key)
		switch {
		case !w.gotRecords && equal(p, w.records):
			if err := w.array(); err != nil {
				return err
			}
			w.gotRecords = true
		case w.value != nil && !w.gotValue && equal(p, w.value):
			if err := w.readValue(); err != nil {
				return err
			}
			w.gotValue = true
		case !w.gotRecords && prefix(p, w.records):
			if err := expectDelim(w.dec, '{'); err != nil {
				return fmt.Errorf("%s: %w", strings.Join(p, "."), err)
			}
			if err := w.object(p); err != nil {
				return err
			}
		case w.value != nil && !w.gotValue && prefix(p, w.value):
			// on the way to the value; anything but an object means no value
			tok, err := w.dec.Token()
			if err != nil {
				return err
			}
			switch tok {
			case stdjson.Delim('{'):
				err = w.object(p)
			case stdjson.Delim('['):
				err = skipRest(w.dec, 1)
			}
			if err != nil {
				return err
			}
		default:
			if err := skipValue(w.dec); err != nil {
				return err
			}
		}
		if w.done() {
			return nil
		}
	}
	if !w.gotRecords && prefix(path, w.records) {
		return fmt.Errorf("no member %q at %s", w.records[len(path)], strings.Join(append([]string{"$"}, path...), "."))
	}
	_, err := w.dec.Token() // }
	return err
}

// array streams the records array, the next token.
func (w *walker) array() error {
	if err := expectDelim(w.dec, '['); err != nil {
		return fmt.Errorf("records: %w", err)
	}
	for i := 0; w.dec.More(); i++ {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		w.lr.mark = w.dec.InputOffset()
		var raw stdjson.RawMessage
		if err := w.dec.Decode(&raw); err != nil {
			return err
		}
		end := w.dec.InputOffset()
		rec := connectors.Record{Raw: raw, Pos: connectors.Position{Offset: end - int64(len(raw)), Index: w.o.base + i, Path: w.label + "[" + strconv.Itoa(i) + "]"}}
		if w.o.isURL {
			rec.Pos.Message = w.o.name
		} else {
			rec.Pos.File = w.o.name
		}
		d := stdjson.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&rec.Fields); err != nil || rec.Fields == nil {
			rec.Fields, rec.Err = nil, errors.New("record is not an object")
		} else {
			for k, v := range rec.Fields {
				rec.Fields[k] = connectors.NormalizeJSON(v)
			}
			if w.o.index != nil {
				join(&rec, w.o.join, w.o.index)
			}
		}
		w.res.records++
		if err := w.emit(rec); err != nil {
			return &emitError{err}
		}
	}
	_, err := w.dec.Token() // ]
	return err
}

// readValue decodes the value at the value path: a string or a number
// (its text); null is no value.
func (w *walker) readValue() error {
	var v any
	if err := w.dec.Decode(&v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
	case string:
		w.res.value = x
	case stdjson.Number:
		w.res.value = x.String()
	default:
		return fmt.Errorf("%s is %s, want a string, a number or null", strings.Join(w.value, "."), jsonType(v))
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

func equal(a, b []string) bool {
	if len(a) != len(b) || b == nil {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// prefix reports whether p is a strict prefix of full.
func prefix(p, full []string) bool {
	if len(p) >= len(full) {
		return false
	}
	for i := range p {
		if p[i] != full[i] {
			return false
		}
	}
	return true
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

// skipValue consumes one JSON value token by token (no buffering of large
// foreign members).
func skipValue(dec *stdjson.Decoder) error { return skipRest(dec, 0) }

// skipRest consumes tokens until depth open arrays or objects are closed
// (depth 0: one whole value).
func skipRest(dec *stdjson.Decoder, depth int) error {
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
