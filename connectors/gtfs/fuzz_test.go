package gtfs

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/cityhub/cityhub/connectors"
)

// seeds are the heads of real tables of the Caltrain feed.
func seeds(f *testing.F, names ...string) {
	for _, name := range names {
		data := zipMember(f, caltrainZip, name)
		f.Add(data[:min(len(data), 2048)])
	}
}

// FuzzTable feeds arbitrary bytes to the table reader: no panic, every row
// is either values matching the header or an error, and every row's raw
// text is found at its offset.
func FuzzTable(f *testing.F) {
	seeds(f, "stops.txt", "stop_times.txt", "agency.txt")
	f.Add([]byte("\xEF\xBB\xBFa,b\r\n1,\"x\r\ny\"\r\n\r\n2,3"))
	f.Add([]byte("a,b\n1,\"2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := openTable(bytes.NewReader(data), "t.txt", 1024)
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			r, err := tb.next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				return // a row beyond the bound ends the table
			}
			if (r.err == nil) == (r.values == nil) || (r.values != nil && len(r.values) != len(tb.header)) {
				t.Fatalf("row %d: values %q, err %v", i, r.values, r.err)
			}
			if r.pos.Index != i || r.pos.Offset < 0 || int(r.pos.Offset)+len(r.raw) > len(data) ||
				!bytes.Equal(data[r.pos.Offset:int(r.pos.Offset)+len(r.raw)], r.raw) {
				t.Fatalf("row %d: raw %q not at offset %d", i, r.raw, r.pos.Offset)
			}
		}
	})
}

// FuzzShapes feeds arbitrary shapes.txt content through both passes: no
// panic, exactly one of Err and Fields per record, geometries are
// LineStrings of at least two points, each shape id at most once.
func FuzzShapes(f *testing.F) {
	seeds(f, "shapes.txt")
	f.Add([]byte("shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\na,1,2,1\nb,1,2,1\na,1,3,2\nb,2,2,0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("shapes.txt")
		w.Write(data)
		zw.Close()
		zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig("fuzz.zip", "shapes")
		cfg.MaxRecordBytes, cfg.MaxShapePoints = 1024, 4
		s := MustSource(t, cfg)
		seen := map[string]bool{}
		_ = s.readShapes(context.Background(), &feed{name: "fuzz.zip", zr: zr}, func(r connectors.Record) error {
			if (r.Err == nil) == (r.Fields == nil) {
				t.Fatalf("record %+v: exactly one of Err and Fields must be set", r)
			}
			if r.Err != nil {
				return nil
			}
			id := r.Fields["shape_id"].(string)
			if seen[id] {
				t.Fatalf("shape %q emitted twice", id)
			}
			seen[id] = true
			var g struct {
				Type        string
				Coordinates [][2]float64
			}
			if err := json.Unmarshal(r.Geometry, &g); err != nil || g.Type != "LineString" || len(g.Coordinates) < 2 {
				t.Fatalf("shape %q: geometry %s: %v", id, r.Geometry, err)
			}
			return nil
		})
	})
}
