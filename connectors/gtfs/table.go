package gtfs

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/cityhub/cityhub/connectors"
)

// table streams the rows of one GTFS table, a CSV file of the feed. GTFS
// tables are UTF-8 (an optional byte-order mark is skipped), comma
// separated, with LF or CRLF line breaks and a header naming the columns.
type table struct {
	file   string   // member name in positions, e.g. stops.txt
	header []string // column names; "" for unnamed columns (ignored)
	cr     *csv.Reader
	tap    *rawTap
	base   int64 // bytes before the CSV text (the byte-order mark)
	index  int   // index of the next data row
}

// row is one data row. values is nil when err is set; cells holds what
// the CSV reader parsed even when the row is malformed (nil when it could
// not parse it). Both are only valid until the next call of next.
type row struct {
	values []string
	cells  []string
	pos    connectors.Position
	raw    []byte
	err    error
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// errRecordTooLarge ends a table whose row exceeds max_record_bytes.
var errRecordTooLarge = errors.New("record too large")

// openTable reads the header of the table in r. file names the table in
// positions and errors; maxRecord bounds one row in bytes.
func openTable(r io.Reader, file string, maxRecord int) (*table, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	t := &table{file: file}
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
		t.base = int64(len(utf8BOM))
	}
	t.tap = &rawTap{r: br, max: maxRecord}
	t.cr = csv.NewReader(t.tap)
	t.cr.FieldsPerRecord = -1 // checked per row, so that a short row is one bad record
	t.cr.ReuseRecord = true
	head, err := t.cr.Read()
	switch {
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s is empty: no header", file)
	case errors.Is(err, errRecordTooLarge):
		return nil, fmt.Errorf("%s: header exceeds max_record_bytes (%d)", file, maxRecord)
	case err != nil:
		return nil, fmt.Errorf("%s: header: %w", file, err)
	}
	t.tap.take(0, t.cr.InputOffset())
	seen := make(map[string]bool, len(head))
	t.header = make([]string, len(head))
	for i, h := range head {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF"))
		if !utf8.ValidString(h) {
			return nil, fmt.Errorf("%s: header column %d is not valid UTF-8", file, i+1)
		}
		if h != "" && seen[h] {
			return nil, fmt.Errorf("%s: header names column %q twice", file, h)
		}
		seen[h] = true
		t.header[i] = h
	}
	return t, nil
}

// column returns the index of a named column, or -1.
func (t *table) column(name string) int {
	for i, h := range t.header {
		if h == name {
			return i
		}
	}
	return -1
}

// next returns the next data row, io.EOF at the end, or an error when the
// table cannot be read further (a row beyond max_record_bytes, a broken
// archive member).
func (t *table) next() (row, error) {
	start := t.cr.InputOffset()
	values, err := t.cr.Read()
	end := t.cr.InputOffset()
	if errors.Is(err, io.EOF) {
		return row{}, io.EOF
	}
	if errors.Is(err, errRecordTooLarge) {
		return row{}, fmt.Errorf("%s: row at offset %d exceeds max_record_bytes (%d)", t.file, t.base+start, t.tap.max)
	}
	raw, skipped := t.tap.take(start, end)
	r := row{raw: raw, pos: connectors.Position{File: t.file, Offset: t.base + start + int64(skipped), Index: t.index}}
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe):
		t.index++
		r.pos.Line = pe.StartLine
		r.err = fmt.Errorf("%v (column %d)", pe.Err, pe.Column)
		return r, nil
	case err != nil:
		return row{}, fmt.Errorf("%s: %w", t.file, err)
	}
	t.index++
	r.pos.Line, _ = t.cr.FieldPos(0)
	r.cells = values
	if len(values) != len(t.header) {
		r.err = fmt.Errorf("row has %d fields, the header has %d", len(values), len(t.header))
		return r, nil
	}
	for i, v := range values {
		if !utf8.ValidString(v) {
			r.err = fmt.Errorf("field %q is not valid UTF-8", t.header[i])
			return r, nil
		}
	}
	r.values = values
	return r, nil
}

// fields turns a row's values into record fields named by the header.
func (t *table) fields(values []string, extra int) map[string]any {
	m := make(map[string]any, len(values)+extra)
	for i, v := range values {
		if t.header[i] != "" {
			m[t.header[i]] = v
		}
	}
	return m
}

// rawTap keeps the bytes the CSV reader consumed since the start of the
// current row so that each row's raw text can go to the dead letters. It
// holds one row plus the reader's read-ahead, and fails a row longer than
// max bytes so that a runaway quoted field cannot exhaust memory.
type rawTap struct {
	r   io.Reader
	buf []byte
	off int64 // stream offset of buf[0]
	max int
}

func (t *rawTap) Read(p []byte) (int, error) {
	if len(t.buf) > t.max+len(p) {
		return 0, errRecordTooLarge
	}
	n, err := t.r.Read(p)
	t.buf = append(t.buf, p[:n]...)
	return n, err
}

// take returns a copy of the stream bytes [start, end) without the blank
// lines before the row and the line break after it, with the number of
// bytes skipped at the front, and forgets every byte before end.
func (t *rawTap) take(start, end int64) ([]byte, int) {
	lo := min(max(int(start-t.off), 0), len(t.buf))
	hi := min(max(int(end-t.off), lo), len(t.buf))
	seg := t.buf[lo:hi]
	body := bytes.TrimLeft(seg, "\r\n")
	skipped := len(seg) - len(body)
	body = bytes.TrimRight(body, "\r\n")
	out := bytes.Clone(body)
	n := copy(t.buf, t.buf[hi:])
	t.buf = t.buf[:n]
	t.off += int64(hi)
	return out, skipped
}
