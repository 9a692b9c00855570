package connectors

import (
	"fmt"
	"testing"

	"github.com/cityhub/cityhub/graph"
)

// BenchmarkMapRecord maps street-light records (template key, typed
// properties, value map, datetime, lat/lon, point-in-polygon).
func BenchmarkMapRecord(b *testing.B) {
	conns, err := LoadFile("testdata/run.yaml", mustOntology(b), testRegistry())
	if err != nil {
		b.Fatal(err)
	}
	var c *Connector
	for _, x := range conns {
		if x.Name == "lights" {
			c = x
		}
	}
	store := newFakeStore(mustOntology(b))
	if _, err := NewRunner(RunnerConfig{}).Run(b.Context(), conns[0], store); err != nil {
		b.Fatal(err)
	}
	ix, _, err := loadAreas(b.Context(), store, "Neighbourhood")
	if err != nil {
		b.Fatal(err)
	}
	mp := newMapper(c.Mapping, c.Source, graph.Provenance{Source: c.Source}, func(_ string, p graph.Point) (string, bool) { return ix.locate(p) })
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Fields: map[string]any{
			"PoleID": fmt.Sprintf("%d-%d", i/10, i%10), "Lat": "0.5", "Lon": "0.25", "Watts": "100", "Lamps": int64(2),
			"Status": "In Service", "Installed": "3/14/10 9:30", "tags": "a, b", "led": "Yes", "Edited": "2023-02-16",
		}, Pos: Position{Line: i + 2, Index: i}}
	}
	var out mapped
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := &recs[n%len(recs)]
		if err := mp.mapRecord(r, &out); err != nil || len(out.nodes) != 1 {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkMapRepeat maps one traffic-count row into a sensor, a
// datastream and its yearly observations.
func BenchmarkMapRepeat(b *testing.B) {
	conns, err := LoadFile("testdata/run.yaml", mustOntology(b), testRegistry())
	if err != nil {
		b.Fatal(err)
	}
	c := conns[2]
	mp := newMapper(c.Mapping, c.Source, graph.Provenance{Source: c.Source}, nil)
	fields := map[string]any{"ID": int64(7), "Lat": 0.5, "Lon": 0.75}
	for y := 1972; y <= 2017; y++ {
		fields[fmt.Sprint(y)] = ""
		fields[fmt.Sprintf("AMPeak%d", y)] = ""
	}
	fields["1999"], fields["2008"], fields["2017"] = "100", "200", "300"
	rec := Record{Fields: fields}
	var out mapped
	b.ReportAllocs()
	for b.Loop() {
		if err := mp.mapRecord(&rec, &out); err != nil || len(out.nodes) != 5 {
			b.Fatal(err, len(out.nodes))
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
