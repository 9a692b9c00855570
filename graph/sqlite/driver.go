package sqlite

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/binary"
	"math"
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
