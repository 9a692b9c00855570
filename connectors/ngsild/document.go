package ngsild

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/cityhub/cityhub/connectors"
)

var errTooLarge = errors.New("entity too large")

// limitReader fails once more than max bytes were read since mark, the
// start of the current entity, so that a huge entity is never buffered
// whole; entities that fit in the read buffer are measured after decoding.
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

// readDocument streams the entities of one JSON document: a single entity
// object (unless wantArray) or an array of entities. each gets every
// entity's bytes and position (Index counts from first). It returns the
// number of entities read; an error from each is returned unchanged.
func readDocument(ctx context.Context, r io.Reader, loc string, maxBytes int, wantArray bool, first int,
	each func(raw []byte, pos connectors.Position) error) (int, error) {
	lr := &limitReader{r: r, max: int64(maxBytes)}
	br := bufio.NewReader(lr)
	var skipped int64
	var c byte
	for {
		b, err := br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, &docError{loc: loc, err: errors.New("empty document")}
			}
			return 0, docErr(loc, skipped, maxBytes, err)
		}
		if c = b[0]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			break
		}
		br.Discard(1)
		skipped++
	}
	dec := json.NewDecoder(br)
	fail := func(err error) error { return docErr(loc, skipped+dec.InputOffset(), maxBytes, err) }
	switch {
	case c == '{' && !wantArray:
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, fail(err)
		}
		if len(raw) > maxBytes {
			return 0, docErr(loc, skipped, maxBytes, errTooLarge)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return 0, fail(errors.New("data after the entity"))
		}
		return 1, each(raw, connectors.Position{File: loc, Offset: skipped, Index: first, Path: "$"})
	case c == '[':
	case wantArray:
		return 0, fail(fmt.Errorf("expected a JSON array of entities, found %q", c))
	default:
		return 0, fail(fmt.Errorf("expected an entity object or an array of entities, found %q", c))
	}
	if _, err := dec.Token(); err != nil { // [
		return 0, fail(err)
	}
	n := 0
	for dec.More() {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		lr.mark = lr.read
		start := skipped + dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return n, fail(err)
		}
		end := skipped + dec.InputOffset()
		if len(raw) > maxBytes {
			return n, docErr(loc, start, maxBytes, errTooLarge)
		}
		pos := connectors.Position{File: loc, Offset: end - int64(len(raw)), Index: first + n, Path: "$[" + strconv.Itoa(n) + "]"}
		if pos.Offset < start {
			pos.Offset = start
		}
		n++
		if err := each(raw, pos); err != nil {
			return n, err
		}
	}
	if _, err := dec.Token(); err != nil { // ]
		return n, fail(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return n, fail(errors.New("data after the array"))
	}
	return n, nil
}

// docError is a document that cannot be read on: not JSON, not entities,
// cut short, too large.
type docError struct {
	loc    string
	offset int64
	err    error
}

func (e *docError) Error() string { return fmt.Sprintf("%s: offset %d: %v", e.loc, e.offset, e.err) }
func (e *docError) Unwrap() error { return e.err }

func docErr(loc string, offset int64, maxBytes int, err error) error {
	if errors.Is(err, errTooLarge) {
		err = fmt.Errorf("an entity exceeds max_entity_bytes (%d)", maxBytes)
	}
	return &docError{loc: loc, offset: offset, err: err}
}
