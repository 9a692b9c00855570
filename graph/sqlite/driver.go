package sqlite

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	sqlitedrv "modernc.org/sqlite"

	"github.com/cityhub/cityhub/graph/geo"
)

// SQL functions this package registers on its own driver (never on the
// process-wide "sqlite" driver):
//
//	cityhub_lower(blob)                     Unicode lower case (Go bytes.ToLower), as a blob
//	cityhub_distance(lat1, lon1, lat2, lon2) great-circle metres (geo.Distance)
//	cityhub_in_polygon(blob, lat, lon)       point in an encoded polygon set (see encodePolygons)
//	cityhub_nearest(k, meters, lat, lon, node_lat, node_lon, rid, id)
//	    aggregate: the rows within meters of (lat, lon) and the k nearest (see nearest)
//
// They are pure functions, so the driver is built once and never changes.
var sqlDriver = newDriver()

func newDriver() *sqlitedrv.Driver {
	d := &sqlitedrv.Driver{}
	d.MustRegisterFunction("cityhub_lower", &sqlitedrv.FunctionImpl{
		NArgs: 1, Deterministic: true, Scalar: lowerFunc,
		VolatileArgs: true, // bytes.ToLower always returns a copy
	})
	d.MustRegisterFunction("cityhub_distance", &sqlitedrv.FunctionImpl{
		NArgs: 4, Deterministic: true, Scalar: distanceFunc,
	})
	d.MustRegisterFunction("cityhub_nearest", &sqlitedrv.FunctionImpl{
		NArgs: 8, Deterministic: true,
		MakeAggregate: func(sqlitedrv.FunctionContext) (sqlitedrv.AggregateFunction, error) { return &nearest{}, nil },
		// an ID is cloned when kept
		VolatileArgs: true,
	})
	d.MustRegisterFunction("cityhub_in_polygon", &sqlitedrv.FunctionImpl{
		NArgs: 3, Deterministic: true, Scalar: inPolygonFunc,
		// the blob is only read during the call
		VolatileArgs: true,
	})
	return d
}

// connector opens connections to one DSN with the package's driver.
type connector struct{ dsn string }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return sqlDriver.Open(c.dsn)
}

func (c connector) Driver() driver.Driver { return sqlDriver }

// lowerFunc lower-cases text passed as a blob (text arguments reach Go
// cut at the first NUL byte; blobs keep every byte) and returns a blob.
func lowerFunc(_ *sqlitedrv.FunctionContext, args []driver.Value) (driver.Value, error) {
	switch v := args[0].(type) {
	case []byte:
		return bytes.ToLower(v), nil
	case string:
		return []byte(strings.ToLower(v)), nil
	}
	return nil, nil
}

func toFloat(v driver.Value) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

func distanceFunc(_ *sqlitedrv.FunctionContext, args []driver.Value) (driver.Value, error) {
	var f [4]float64
	for i := range f {
		x, ok := toFloat(args[i])
		if !ok {
			return nil, nil
		}
		f[i] = x
	}
	return geo.Distance(f[0], f[1], f[2], f[3]), nil
}

func inPolygonFunc(_ *sqlitedrv.FunctionContext, args []driver.Value) (driver.Value, error) {
	blob, _ := args[0].([]byte)
	lat, ok1 := toFloat(args[1])
	lon, ok2 := toFloat(args[2])
	if !ok1 || !ok2 {
		return int64(0), nil
	}
	if polygonsContain(blob, lat, lon) {
		return int64(1), nil
	}
	return int64(0), nil
}

// encodePolygons renders the polygons of a shape as a compact blob that
// polygonsContain reads without allocating: the bounding box (min lat, min
// lon, max lat, max lon), then per polygon its ring count and per ring its
// vertex count and [lon, lat] vertices; counts are uint32, coordinates
// float64, little endian.
func encodePolygons(s *geo.Shape) []byte {
	n := 32 + 4
	for _, p := range s.Polygons {
		n += 4
		for _, r := range p {
			n += 4 + 16*len(r)
		}
	}
	b := make([]byte, 0, n)
	f := func(x float64) { b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x)) }
	u := func(x int) { b = binary.LittleEndian.AppendUint32(b, uint32(x)) }
	f(s.MinLat)
	f(s.MinLon)
	f(s.MaxLat)
	f(s.MaxLon)
	u(len(s.Polygons))
	for _, p := range s.Polygons {
		u(len(p))
		for _, r := range p {
			u(len(r))
			for _, c := range r {
				f(c[0])
				f(c[1])
			}
		}
	}
	return b
}

// polygonsContain is geo.Shape.Contains over the encodePolygons form: the
// point is inside when it lies in a polygon's outer ring and in none of its
// holes (even-odd rule, the same arithmetic as package geo).
func polygonsContain(b []byte, lat, lon float64) bool {
	rd := blobReader{b: b}
	minLat, minLon, maxLat, maxLon := rd.f64(), rd.f64(), rd.f64(), rd.f64()
	if rd.bad || lat < minLat || lat > maxLat || lon < minLon || lon > maxLon {
		return false
	}
	np := rd.u32()
	for range np {
		nr := rd.u32()
		inside := false
		for i := range nr {
			in := rd.ring(lat, lon)
			if rd.bad {
				return false
			}
			switch {
			case i == 0:
				inside = in
			case in:
				inside = false
			}
		}
		if inside {
			return true
		}
	}
	return false
}

type blobReader struct {
	b   []byte
	bad bool
}

func (r *blobReader) f64() float64 {
	if len(r.b) < 8 {
		r.bad = true
		return 0
	}
	x := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return x
}

func (r *blobReader) u32() int {
	if len(r.b) < 4 {
		r.bad = true
		return 0
	}
	x := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return int(x)
}

// ring consumes one ring and reports whether (lat, lon) is inside it.
func (r *blobReader) ring(lat, lon float64) bool {
	n := r.u32()
	if r.bad || n == 0 || len(r.b) < 16*n {
		r.bad = true
		return false
	}
	v := r.b[:16*n]
	r.b = r.b[16*n:]
	at := func(i int) (x, y float64) {
		return math.Float64frombits(binary.LittleEndian.Uint64(v[16*i:])),
			math.Float64frombits(binary.LittleEndian.Uint64(v[16*i+8:]))
	}
	in := false
	xj, yj := at(n - 1)
	for i := range n {
		xi, yi := at(i)
		if (yi > lat) != (yj > lat) && lon < (xj-xi)*(lat-yi)/(yj-yi)+xi {
			in = !in
		}
		xj, yj = xi, yi
	}
	return in
}

// nearest is the cityhub_nearest aggregate: it counts the rows whose node
// lies within meters of the point (great-circle distance, geo.Distance)
// and keeps the k nearest, ties by ID, in a max-heap (worst at the root).
// Its value is a JSON array: the count, then the rids of the k nearest,
// nearest first. It replaces sorting every row in SQL: one Go call per
// row and O(log k) work for the few rows that enter the heap.
type nearest struct {
	total int64
	heap  []nearHit
}

type nearHit struct {
	dist float64
	id   string
	rid  int64
}

// worse reports whether a ranks after b: farther, or as far with a larger ID.
func (a *nearHit) worse(b *nearHit) bool {
	return a.dist > b.dist || a.dist == b.dist && a.id > b.id
}

func (g *nearest) Step(_ *sqlitedrv.FunctionContext, args []driver.Value) error {
	k, ok := args[0].(int64)
	if !ok || k < 0 {
		return errors.New("cityhub_nearest: k must be a non-negative integer")
	}
	meters, ok1 := toFloat(args[1])
	lat, ok2 := toFloat(args[2])
	lon, ok3 := toFloat(args[3])
	nlat, ok4 := toFloat(args[4])
	nlon, ok5 := toFloat(args[5])
	rid, ok6 := args[6].(int64)
	id, ok7 := args[7].(string)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !ok7 {
		return nil // a node without a point (or a bad argument) is not near
	}
	d := geo.Distance(lat, lon, nlat, nlon)
	if !(d <= meters) {
		return nil
	}
	g.total++
	if k == 0 {
		return nil
	}
	h := nearHit{dist: d, id: id, rid: rid}
	if int64(len(g.heap)) < k {
		h.id = strings.Clone(id)
		g.heap = append(g.heap, h)
		g.up(len(g.heap) - 1)
		return nil
	}
	if !g.heap[0].worse(&h) {
		return nil
	}
	h.id = strings.Clone(id)
	g.heap[0] = h
	g.down(0)
	return nil
}

func (g *nearest) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !g.heap[i].worse(&g.heap[p]) {
			return
		}
		g.heap[i], g.heap[p] = g.heap[p], g.heap[i]
		i = p
	}
}

func (g *nearest) down(i int) {
	n := len(g.heap)
	for {
		w := i
		if l := 2*i + 1; l < n && g.heap[l].worse(&g.heap[w]) {
			w = l
		}
		if r := 2*i + 2; r < n && g.heap[r].worse(&g.heap[w]) {
			w = r
		}
		if w == i {
			return
		}
		g.heap[i], g.heap[w] = g.heap[w], g.heap[i]
		i = w
	}
}

func (g *nearest) WindowInverse(*sqlitedrv.FunctionContext, []driver.Value) error {
	return errors.New("cityhub_nearest: not a window function")
}

func (g *nearest) WindowValue(*sqlitedrv.FunctionContext) (driver.Value, error) {
	hits := slices.Clone(g.heap)
	slices.SortFunc(hits, func(a, b nearHit) int {
		if a.worse(&b) {
			return 1
		}
		if b.worse(&a) {
			return -1
		}
		return 0
	})
	buf := make([]byte, 0, 8+12*len(hits))
	buf = append(buf, '[')
	buf = strconv.AppendInt(buf, g.total, 10)
	for _, h := range hits {
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, h.rid, 10)
	}
	return string(append(buf, ']')), nil
}

func (g *nearest) Final(*sqlitedrv.FunctionContext) {}
