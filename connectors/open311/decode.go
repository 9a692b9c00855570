package open311

import (
	"bytes"
	stdjson "encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cityhub/cityhub/connectors"
)

// item is one element of a response, decoded or not.
type item struct {
	off    int64          // byte offset of the element in the response
	raw    []byte         // the element's bytes
	path   string         // e.g. $[3] or service_requests.request[3]
	fields map[string]any // nil when err is set
	err    error          // why the element is not a record
}

// FormatError is a response that is not a well-formed GeoReport document.
// The records before the fault have been read; nothing after it.
type FormatError struct {
	Location string // file path or URL (API key masked)
	Line     int    // 1-based line of the fault, 0 if unknown
	Offset   int64  // byte offset of the fault
	Records  int    // well-formed records read before the fault
	Err      error
}

func (e *FormatError) Error() string {
	pos := ""
	if e.Line > 0 {
		pos = fmt.Sprintf("line %d, ", e.Line)
	}
	return fmt.Sprintf("open311: %s: %soffset %d: %v (%d records read before it)", e.Location, pos, e.Offset, e.Err, e.Records)
}

func (e *FormatError) Unwrap() error { return e.Err }

// maxDepth bounds the nesting of XML elements inside a record.
const maxDepth = 32

var bom = []byte("\xef\xbb\xbf")

// decode reads every element of a response, in document order, calling
// each for it. It returns a *FormatError when the document is malformed
// (after the elements before the fault), or the error each returned.
func decode(data []byte, res Resource, f Format, location string, each func(item) error) error {
	start := int64(0)
	if bytes.HasPrefix(data, bom) {
		start = int64(len(bom))
	}
	d := &docDecoder{data: data, base: start, location: location, each: each}
	if f == XML {
		return d.xml(res)
	}
	return d.json()
}

type docDecoder struct {
	data     []byte
	base     int64 // bytes skipped at the start (a byte-order mark)
	location string
	each     func(item) error
	n        int // elements passed to each
}

// fail builds the FormatError of a fault at off (relative to base).
func (d *docDecoder) fail(off int64, err error) error {
	off += d.base
	off = min(max(off, 0), int64(len(d.data)))
	return &FormatError{Location: d.location, Line: 1 + bytes.Count(d.data[:off], []byte("\n")), Offset: off, Records: d.n, Err: err}
}

func (d *docDecoder) emit(it item) error {
	it.off += d.base
	d.n++
	return d.each(it)
}

// json reads a top-level array of objects.
func (d *docDecoder) json() error {
	body := d.data[d.base:]
	dec := stdjson.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return d.fail(dec.InputOffset(), d.jsonErr(body, err))
	}
	if delim, ok := tok.(stdjson.Delim); !ok || delim != '[' {
		return d.fail(dec.InputOffset(), fmt.Errorf("expected a JSON array of records, found %s", describeToken(tok)))
	}
	for i := 0; dec.More(); i++ {
		var raw stdjson.RawMessage
		if err := dec.Decode(&raw); err != nil {
			// the decoder stays at the start of the element at fault
			return d.fail(dec.InputOffset(), fmt.Errorf("$[%d]: %w", i, d.jsonErr(body, err)))
		}
		end := dec.InputOffset()
		it := item{off: end - int64(len(raw)), raw: raw, path: "$[" + strconv.Itoa(i) + "]"}
		it.fields, it.err = jsonObject(raw)
		if err := d.emit(it); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ]
		return d.fail(dec.InputOffset(), d.jsonErr(body, err))
	}
	return nil
}

// jsonErr explains a JSON decoding error.
func (d *docDecoder) jsonErr(body []byte, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if len(bytes.TrimSpace(body)) == 0 {
			return errors.New("empty response")
		}
		return errors.New("the JSON document ends early (truncated response)")
	}
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '<' {
		return fmt.Errorf("%w (the response looks like XML or HTML: set format: xml for an XML endpoint)", err)
	}
	return err
}

func describeToken(tok stdjson.Token) string {
	switch t := tok.(type) {
	case stdjson.Delim:
		if t == '{' {
			return "an object"
		}
		return strconv.Quote(t.String())
	case string:
		return "a string"
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%v", t)
	}
}

// jsonObject decodes one array element into record fields.
func jsonObject(raw []byte) (map[string]any, error) {
	dec := stdjson.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, errors.New("record is not a JSON object")
	}
	for k, v := range fields {
		fields[k] = connectors.NormalizeJSON(v)
	}
	return fields, nil
}

// rootNames are the GeoReport root and record element names per resource.
var rootNames = map[Resource][2]string{
	Services: {"services", "service"},
	Requests: {"service_requests", "request"},
}

const xsiNS = "http://www.w3.org/2001/XMLSchema-instance"

// xml reads a GeoReport XML document: <services><service>… or
// <service_requests><request>…, each record a flat element whose children
// are the fields (text; xsi:nil="true" is null; nested elements become
// maps, repeated ones lists).
func (d *docDecoder) xml(res Resource) error {
	body := d.data[d.base:]
	dec := xml.NewDecoder(bytes.NewReader(body))
	names := rootNames[res]
	var root xml.StartElement
prolog:
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("no root element (empty response)")
			}
			return d.fail(off, err)
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target == "xml" && off != 0 {
				return d.fail(off, fmt.Errorf("not well-formed XML: the XML declaration must open the document but is preceded by %s", plural(off, "byte")))
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return d.fail(off, errors.New("text before the root element"))
			}
		case xml.StartElement:
			root = t
			break prolog
		}
	}
	switch root.Name.Local {
	case names[0]:
	case "errors":
		return d.fail(0, serverErrors(dec))
	default:
		return d.fail(0, fmt.Errorf("expected root element <%s>, found <%s>", names[0], root.Name.Local))
	}
	for i := 0; ; {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return d.fail(off, xmlErr(err, names[0]))
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil // </services>: what follows the root is not read
		case xml.StartElement:
			v, err := elementValue(dec, t, 1)
			if err != nil {
				at := dec.InputOffset()
				var f *xmlFault
				if errors.As(err, &f) {
					at, err = f.off, f.err
				}
				return d.fail(at, xmlErr(err, names[0]))
			}
			end := dec.InputOffset()
			it := item{off: off, raw: body[off:end], path: names[0] + "." + t.Name.Local + "[" + strconv.Itoa(i) + "]"}
			i++
			switch m, _ := v.(map[string]any); {
			case t.Name.Local != names[1]:
				it.err = fmt.Errorf("unexpected element <%s> in <%s>", t.Name.Local, names[0])
			case m != nil:
				it.fields = m
			default: // <request/> or a text-only element: no fields
				it.fields = map[string]any{}
			}
			if err := d.emit(it); err != nil {
				return err
			}
		}
	}
}

// xmlErr explains an error of the XML decoder.
func xmlErr(err error, root string) error {
	var se *xml.SyntaxError
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &se) && se.Msg == "unexpected EOF") {
		return fmt.Errorf("the document ends inside <%s> (truncated response)", root)
	}
	return err
}

// xmlFault is an error inside a record element, at the offset of the
// token that failed.
type xmlFault struct {
	off int64
	err error
}

func (f *xmlFault) Error() string { return f.err.Error() }
func (f *xmlFault) Unwrap() error { return f.err }

// elementValue reads the content of start up to its end element.
func elementValue(dec *xml.Decoder, start xml.StartElement, depth int) (any, error) {
	if depth > maxDepth {
		return nil, &xmlFault{off: dec.InputOffset(), err: fmt.Errorf("elements nested deeper than %d", maxDepth)}
	}
	null := false
	for _, a := range start.Attr {
		if a.Name.Local == "nil" && (a.Name.Space == xsiNS || a.Name.Space == "xsi") && (a.Value == "true" || a.Value == "1") {
			null = true
		}
	}
	var text strings.Builder
	var children map[string]any
	var repeated map[string]bool // children that became lists
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, &xmlFault{off: off, err: err}
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.StartElement:
			v, err := elementValue(dec, t, depth+1)
			if err != nil {
				return nil, err
			}
			if children == nil {
				children, repeated = map[string]any{}, map[string]bool{}
			}
			name := t.Name.Local
			old, seen := children[name]
			switch {
			case !seen:
				children[name] = v
			case repeated[name]:
				children[name] = append(old.([]any), v)
			default:
				children[name], repeated[name] = []any{old, v}, true
			}
		case xml.EndElement:
			switch {
			case null:
				return nil, nil
			case children != nil:
				return children, nil
			default:
				return text.String(), nil
			}
		}
	}
}

// serverErrors reads a GeoReport <errors> document into one error.
func serverErrors(dec *xml.Decoder) error {
	var doc struct {
		Errors []struct {
			Code        string `xml:"code"`
			Description string `xml:"description"`
		} `xml:"error"`
	}
	if err := dec.DecodeElement(&doc, &xml.StartElement{Name: xml.Name{Local: "errors"}}); err != nil {
		return fmt.Errorf("the server answered with an <errors> document that does not parse: %w", err)
	}
	var parts []string
	for _, e := range doc.Errors {
		parts = append(parts, strings.TrimSpace(e.Code+" "+e.Description))
	}
	return fmt.Errorf("the server answered with errors: %s", strings.Join(parts, "; "))
}

// plural renders "1 byte", "2 bytes".
func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.FormatInt(n, 10) + " " + word + "s"
}
