package sqlite

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/cityhub/cityhub/graph"
)

// A node's geometry and provenance are stored twice: as columns that
// filters, orderings and the R*Tree use, and packed in the doc column,
// which reads return (one column instead of a dozen; times as integers).
// The doc is written with the row and never queried by SQL.
//
// Layout (version 1): version byte, flags byte (1: has geometry); with
// geometry: lat, lon (float64), kind, GeoJSON (string), min lat, min lon,
// max lat, max lon (float64); then source, source key, connector, run
// (string); fetched, ingested, source updated, valid from, valid to
// (time); the number of sources (uvarint) and each (string). A string is
// a uvarint length and bytes, a float64 its IEEE bits little endian, a
// time a zig-zag varint of Unix microseconds preceded by a presence byte.

const docVersion = 1

var errDoc = errors.New("sqlite: malformed node doc")

func appendDocString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendDocFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

func appendDocTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	return binary.AppendVarint(append(b, 1), t.UnixMicro())
}

// encodeDoc packs a node's geometry (nil for none) and provenance.
func encodeDoc(g *graph.Geometry, p graph.Provenance) []byte {
	b := make([]byte, 0, 96)
	b = append(b, docVersion)
	if g == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendDocFloat(b, g.Point.Lat)
		b = appendDocFloat(b, g.Point.Lon)
		b = appendDocString(b, g.Kind)
		b = appendDocString(b, g.GeoJSON)
		for _, f := range []float64{g.BBox.MinLat, g.BBox.MinLon, g.BBox.MaxLat, g.BBox.MaxLon} {
			b = appendDocFloat(b, f)
		}
	}
	for _, s := range []string{p.Source, p.SourceKey, p.Connector, p.Run} {
		b = appendDocString(b, s)
	}
	for _, t := range []time.Time{p.FetchedAt, p.IngestedAt, p.SrcUpdatedAt, p.ValidFrom, p.ValidTo} {
		b = appendDocTime(b, t)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Sources)))
	for _, s := range p.Sources {
		b = appendDocString(b, s)
	}
	return b
}

type docReader struct {
	s   string
	bad bool
}

func (r *docReader) byte() byte {
	if len(r.s) < 1 {
		r.bad = true
		return 0
	}
	c := r.s[0]
	r.s = r.s[1:]
	return c
}

func (r *docReader) uvarint() uint64 {
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if i >= len(r.s) {
			break
		}
		c := r.s[i]
		if c < 0x80 {
			r.s = r.s[i+1:]
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	r.bad = true
	return 0
}

// str returns a substring of the doc (no copy).
func (r *docReader) str() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.s)) {
		r.bad = true
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

func (r *docReader) float() float64 {
	if len(r.s) < 8 {
		r.bad = true
		return 0
	}
	var u uint64
	for i := 7; i >= 0; i-- {
		u = u<<8 | uint64(r.s[i])
	}
	f := math.Float64frombits(u)
	r.s = r.s[8:]
	return f
}

func (r *docReader) time() time.Time {
	if r.byte() == 0 || r.bad {
		return time.Time{}
	}
	u := r.uvarint()
	m := int64(u >> 1) // zig-zag
	if u&1 != 0 {
		m = ^m
	}
	return time.UnixMicro(m).UTC()
}

// decodeDoc unpacks a doc. Strings share memory with s.
func decodeDoc(s string) (*graph.Geometry, graph.Provenance, error) {
	r := docReader{s: s}
	var p graph.Provenance
	if r.byte() != docVersion {
		return nil, p, errDoc
	}
	var g *graph.Geometry
	if r.byte() == 1 {
		g = &graph.Geometry{}
		g.Point.Lat, g.Point.Lon = r.float(), r.float()
		g.Kind, g.GeoJSON = r.str(), r.str()
		g.BBox = graph.BBox{MinLat: r.float(), MinLon: r.float(), MaxLat: r.float(), MaxLon: r.float()}
	}
	p.Source, p.SourceKey, p.Connector, p.Run = r.str(), r.str(), r.str(), r.str()
	p.FetchedAt, p.IngestedAt, p.SrcUpdatedAt, p.ValidFrom, p.ValidTo = r.time(), r.time(), r.time(), r.time(), r.time()
	if n := r.uvarint(); n > 0 && n <= uint64(len(r.s)) {
		p.Sources = make([]string, n)
		for i := range p.Sources {
			p.Sources[i] = r.str()
		}
	} else if n > 0 {
		r.bad = true
	}
	if r.bad {
		return nil, graph.Provenance{}, errDoc
	}
	return g, p, nil
}

// normProv is the provenance as stored: times in UTC at microsecond
// precision (the precision of graph.TimeLayout), no empty source list.
func normProv(p graph.Provenance) graph.Provenance {
	for _, t := range []*time.Time{&p.FetchedAt, &p.IngestedAt, &p.SrcUpdatedAt, &p.ValidFrom, &p.ValidTo} {
		if !t.IsZero() {
			*t = t.UTC().Truncate(time.Microsecond)
		}
	}
	if len(p.Sources) == 0 {
		p.Sources = nil
	}
	return p
}

// sameGeometry compares stored geometries.
func sameGeometry(a, b *graph.Geometry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
