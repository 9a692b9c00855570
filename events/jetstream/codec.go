package jetstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/graph"
)

// A message carries one events.Batch as JSON (version 1):
//
//	{"v":1,
//	 "changes":[{"seq":7,"op":"DELETE","id":"l1","class":"StreetLight","changed":null,"at":"2024-05-01T10:00:00.123456789Z"}],
//	 "deleted":{"l1":{"id":"l1","class":"StreetLight","props":{"lampCount":{"i":"2"}},"geometry":null,"prov":{...}}}}
//
// Property values are typed so that they read back as the Go type they
// were written as: {"s":"text"} string, {"i":"-9007199254740993"} int64
// (decimal text: exact beyond 2^53), {"f":"0.1"} float64 (shortest text
// that reads back bit for bit, NaN and ±Inf included), {"b":true} bool,
// {"t":"2024-05-01T10:00:00.000000001Z"} time.Time (RFC 3339 with
// nanoseconds and the offset), {"l":[...]} []any, {"m":{...}}
// map[string]any (JSON properties), and null for nil. Times are RFC 3339
// text, so years must lie within 0–9999 (the stores refuse others too).

// wireVersion is the version of the message format.
const wireVersion = 1

// maxDepth bounds the nesting of property values a message may carry.
const maxDepth = 100

type wireBatch struct {
	V       int                  `json:"v"`
	Changes []wireChange         `json:"changes"`
	Deleted map[string]*wireNode `json:"deleted"`
}

type wireChange struct {
	Seq     uint64    `json:"seq"`
	Op      string    `json:"op"`
	ID      string    `json:"id"`
	Class   string    `json:"class"`
	Changed []string  `json:"changed"`
	Edge    *wireEdge `json:"edge,omitempty"`
	At      string    `json:"at"`
}

type wireEdge struct {
	From string `json:"from"`
	Rel  string `json:"rel"`
	To   string `json:"to"`
}

type wireNode struct {
	ID       string                `json:"id"`
	Class    string                `json:"class"`
	Props    map[string]*wireValue `json:"props"`
	Geometry *wireGeometry         `json:"geometry"`
	Prov     wireProv              `json:"prov"`
}

type wireGeometry struct {
	Lat     float64    `json:"lat"`
	Lon     float64    `json:"lon"`
	Kind    string     `json:"kind"`
	GeoJSON string     `json:"geojson,omitempty"`
	BBox    [4]float64 `json:"bbox"` // min lat, min lon, max lat, max lon
}

type wireProv struct {
	Source       string   `json:"source,omitempty"`
	SourceKey    string   `json:"source_key,omitempty"`
	Connector    string   `json:"connector,omitempty"`
	Run          string   `json:"run,omitempty"`
	FetchedAt    string   `json:"fetched_at,omitempty"`
	IngestedAt   string   `json:"ingested_at,omitempty"`
	SrcUpdatedAt string   `json:"src_updated_at,omitempty"`
	ValidFrom    string   `json:"valid_from,omitempty"`
	ValidTo      string   `json:"valid_to,omitempty"`
	Sources      []string `json:"sources"`
}

// wireValue is one typed property value: exactly one field is set.
type wireValue struct {
	S *string                `json:"s,omitempty"`
	I *string                `json:"i,omitempty"`
	F *string                `json:"f,omitempty"`
	B *bool                  `json:"b,omitempty"`
	T *string                `json:"t,omitempty"`
	L *[]*wireValue          `json:"l,omitempty"`
	M *map[string]*wireValue `json:"m,omitempty"`
}

// EncodeBatch renders b as a message body. It fails for a batch without
// changes and for property values of other types than graph.Node allows.
func EncodeBatch(b events.Batch) ([]byte, error) {
	if len(b.Changes) == 0 {
		return nil, errors.New("encode batch: no changes")
	}
	w := wireBatch{V: wireVersion, Changes: make([]wireChange, len(b.Changes))}
	for i, c := range b.Changes {
		at, err := encodeTime(c.At)
		if err != nil {
			return nil, fmt.Errorf("encode batch: change %d: %w", c.Seq, err)
		}
		wc := wireChange{Seq: c.Seq, Op: string(c.Op), ID: c.ID, Class: c.Class, Changed: c.Changed, At: at}
		if c.Edge != nil {
			wc.Edge = &wireEdge{From: c.Edge.From, Rel: c.Edge.Rel, To: c.Edge.To}
		}
		w.Changes[i] = wc
	}
	if b.Deleted != nil {
		w.Deleted = make(map[string]*wireNode, len(b.Deleted))
		for id, n := range b.Deleted {
			wn, err := encodeNode(n)
			if err != nil {
				return nil, fmt.Errorf("encode batch: deleted node %q: %w", id, err)
			}
			w.Deleted[id] = wn
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodeBatch reads a message body made by EncodeBatch. Any other input
// is an error, never a panic: a message of another version, without
// changes, with sequence numbers that do not increase, or with a value
// that is not one of the typed forms.
func DecodeBatch(data []byte) (events.Batch, error) {
	var w wireBatch
	if err := json.Unmarshal(data, &w); err != nil {
		return events.Batch{}, fmt.Errorf("decode batch: %w", err)
	}
	if w.V != wireVersion {
		return events.Batch{}, fmt.Errorf("decode batch: version %d, want %d", w.V, wireVersion)
	}
	if len(w.Changes) == 0 {
		return events.Batch{}, errors.New("decode batch: no changes")
	}
	b := events.Batch{Changes: make([]graph.Change, len(w.Changes))}
	var prev uint64
	for i, wc := range w.Changes {
		if wc.Seq <= prev {
			return events.Batch{}, fmt.Errorf("decode batch: change %d: sequence %d does not follow %d", i, wc.Seq, prev)
		}
		prev = wc.Seq
		if wc.Op == "" || wc.ID == "" {
			return events.Batch{}, fmt.Errorf("decode batch: change %d: no operation or node ID", wc.Seq)
		}
		at, err := decodeTime(wc.At)
		if err != nil {
			return events.Batch{}, fmt.Errorf("decode batch: change %d: %w", wc.Seq, err)
		}
		c := graph.Change{Seq: wc.Seq, Op: graph.Op(wc.Op), ID: wc.ID, Class: wc.Class, Changed: wc.Changed, At: at}
		if wc.Edge != nil {
			c.Edge = &graph.EdgeKey{From: wc.Edge.From, Rel: wc.Edge.Rel, To: wc.Edge.To}
		}
		b.Changes[i] = c
	}
	if w.Deleted != nil {
		b.Deleted = make(map[string]*graph.Node, len(w.Deleted))
		for id, wn := range w.Deleted {
			n, err := decodeNode(wn)
			if err != nil {
				return events.Batch{}, fmt.Errorf("decode batch: deleted node %q: %w", id, err)
			}
			b.Deleted[id] = n
		}
	}
	return b, nil
}

func encodeNode(n *graph.Node) (*wireNode, error) {
	if n == nil {
		return nil, nil
	}
	w := &wireNode{ID: n.ID, Class: n.Class}
	if n.Props != nil {
		w.Props = make(map[string]*wireValue, len(n.Props))
		for k, v := range n.Props {
			wv, err := encodeValue(v, 0)
			if err != nil {
				return nil, fmt.Errorf("property %q: %w", k, err)
			}
			w.Props[k] = wv
		}
	}
	if g := n.Geometry; g != nil {
		w.Geometry = &wireGeometry{Lat: g.Point.Lat, Lon: g.Point.Lon, Kind: g.Kind, GeoJSON: g.GeoJSON,
			BBox: [4]float64{g.BBox.MinLat, g.BBox.MinLon, g.BBox.MaxLat, g.BBox.MaxLon}}
	}
	p := n.Prov
	w.Prov = wireProv{Source: p.Source, SourceKey: p.SourceKey, Connector: p.Connector, Run: p.Run, Sources: p.Sources}
	for _, f := range []struct {
		dst *string
		t   time.Time
	}{
		{&w.Prov.FetchedAt, p.FetchedAt}, {&w.Prov.IngestedAt, p.IngestedAt}, {&w.Prov.SrcUpdatedAt, p.SrcUpdatedAt},
		{&w.Prov.ValidFrom, p.ValidFrom}, {&w.Prov.ValidTo, p.ValidTo},
	} {
		s, err := encodeTime(f.t)
		if err != nil {
			return nil, fmt.Errorf("provenance: %w", err)
		}
		*f.dst = s
	}
	return w, nil
}

func decodeNode(w *wireNode) (*graph.Node, error) {
	if w == nil {
		return nil, nil
	}
	n := &graph.Node{ID: w.ID, Class: w.Class}
	if w.Props != nil {
		n.Props = make(map[string]any, len(w.Props))
		for k, wv := range w.Props {
			v, err := decodeValue(wv, 0)
			if err != nil {
				return nil, fmt.Errorf("property %q: %w", k, err)
			}
			n.Props[k] = v
		}
	}
	if g := w.Geometry; g != nil {
		n.Geometry = &graph.Geometry{Point: graph.Point{Lat: g.Lat, Lon: g.Lon}, Kind: g.Kind, GeoJSON: g.GeoJSON,
			BBox: graph.BBox{MinLat: g.BBox[0], MinLon: g.BBox[1], MaxLat: g.BBox[2], MaxLon: g.BBox[3]}}
	}
	p := w.Prov
	n.Prov = graph.Provenance{Source: p.Source, SourceKey: p.SourceKey, Connector: p.Connector, Run: p.Run, Sources: p.Sources}
	for _, f := range []struct {
		dst *time.Time
		s   string
	}{
		{&n.Prov.FetchedAt, p.FetchedAt}, {&n.Prov.IngestedAt, p.IngestedAt}, {&n.Prov.SrcUpdatedAt, p.SrcUpdatedAt},
		{&n.Prov.ValidFrom, p.ValidFrom}, {&n.Prov.ValidTo, p.ValidTo},
	} {
		t, err := decodeTime(f.s)
		if err != nil {
			return nil, fmt.Errorf("provenance: %w", err)
		}
		*f.dst = t
	}
	return n, nil
}

func encodeValue(v any, depth int) (*wireValue, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return &wireValue{S: &x}, nil
	case int64:
		s := strconv.FormatInt(x, 10)
		return &wireValue{I: &s}, nil
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		return &wireValue{F: &s}, nil
	case bool:
		return &wireValue{B: &x}, nil
	case time.Time:
		b, err := x.MarshalText()
		if err != nil {
			return nil, err
		}
		s := string(b)
		return &wireValue{T: &s}, nil
	case []any:
		l := make([]*wireValue, len(x))
		for i, e := range x {
			wv, err := encodeValue(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			l[i] = wv
		}
		return &wireValue{L: &l}, nil
	case map[string]any:
		m := make(map[string]*wireValue, len(x))
		for k, e := range x {
			wv, err := encodeValue(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			m[k] = wv
		}
		return &wireValue{M: &m}, nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

func decodeValue(w *wireValue, depth int) (any, error) {
	if w == nil {
		return nil, nil
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	set := 0
	for _, ok := range []bool{w.S != nil, w.I != nil, w.F != nil, w.B != nil, w.T != nil, w.L != nil, w.M != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("a value needs exactly one of s, i, f, b, t, l, m; it has %d", set)
	}
	switch {
	case w.S != nil:
		return *w.S, nil
	case w.I != nil:
		i, err := strconv.ParseInt(*w.I, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("integer %q: %w", *w.I, err)
		}
		return i, nil
	case w.F != nil:
		f, err := strconv.ParseFloat(*w.F, 64)
		if err != nil {
			return nil, fmt.Errorf("float %q: %w", *w.F, err)
		}
		return f, nil
	case w.B != nil:
		return *w.B, nil
	case w.T != nil:
		var t time.Time
		if err := t.UnmarshalText([]byte(*w.T)); err != nil {
			return nil, fmt.Errorf("time %q: %w", *w.T, err)
		}
		return t, nil
	case w.L != nil:
		l := make([]any, len(*w.L))
		for i, e := range *w.L {
			v, err := decodeValue(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			l[i] = v
		}
		return l, nil
	default:
		m := make(map[string]any, len(*w.M))
		for k, e := range *w.M {
			v, err := decodeValue(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			m[k] = v
		}
		return m, nil
	}
}

// encodeTime renders t as RFC 3339 text with nanoseconds; the zero
// time.Time{} is "".
func encodeTime(t time.Time) (string, error) {
	if t == (time.Time{}) {
		return "", nil
	}
	b, err := t.MarshalText()
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func decodeTime(s string) (time.Time, error) {
	var t time.Time
	if s == "" {
		return t, nil
	}
	if err := t.UnmarshalText([]byte(s)); err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", s, err)
	}
	return t, nil
}
