package ingestbench

import (
	"fmt"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// TestCSVIngestStreams proves that ingestion streams: the runner reading a
// crash file of ten times the rows into SQLite (journal on) needs no more
// heap than the smaller file did, give or take half of it and 8 MiB. A
// source or runner that held the file, its records or their nodes would
// hold ~100 MiB more for 100,000 rows. The peak is HeapInuse sampled every
// 5 ms after a GC, so it counts the live data and the garbage of the run
// (SQLite's own pages live outside the Go heap).
func TestCSVIngestStreams(t *testing.T) {
	small, large := 10_000, 100_000
	if raceEnabled {
		// SQLite under the race detector writes ~300 records/s: ten
		// times the rows still, the large file through crash 30927 (row
		// 5,001)
		small, large = 600, 6_000
	}
	peak := map[int]uint64{}
	for _, rows := range []int{small, large} {
		w := newCrashWorkload(t, rows)
		s, closeStore := w.open(t, backend{"sqlite", openSQLite})
		hs := gcAndSample()
		st := w.ingest(t, s)
		peak[rows] = hs.Stop()
		checkIncidents(t, s, rows)
		closeStore()
		t.Logf("%d rows: %d written in %v, peak heap %.1f MiB", rows, st.Written, st.Duration, mib(peak[rows]))
	}
	const slack = 8 << 20
	if bound := peak[small] + peak[small]/2 + slack; peak[large] > bound {
		t.Errorf("peak heap %.1f MiB for %d rows, %.1f MiB for %d: more than 1.5× + 8 MiB (%.1f MiB); ingestion does not stream",
			mib(peak[large]), large, mib(peak[small]), small, mib(bound))
	}
}

// checkIncidents checks what an ingest of a file of rows rows wrote:
// every row an incident, the first row of the demo's file in the last
// repetition (no coordinates, so no location), and crash 30927 of the
// first, which an independent ray-casting check places in Mid-Cambridge
// (see demo/cambridge/cambridge_test.go).
func checkIncidents(t *testing.T, s graph.Store, rows int) {
	t.Helper()
	ctx := t.Context()
	if n := count(t, s, "Incident"); n != rows {
		t.Errorf("%d incidents, want %d", n, rows)
	}
	last := (rows - 1) / crashRows
	first := fmt.Sprintf("urn:city:incident:cambridge-police:24029-%d", last)
	ns, err := s.Nodes(ctx, []string{first, "urn:city:incident:cambridge-police:30927-0"})
	if err != nil {
		t.Fatal(err)
	}
	if n := ns[0]; n == nil || n.Geometry != nil || n.Props["incidentNumber"] != fmt.Sprintf("24029-%d", last) ||
		!sameTime(n.Props["reportedAt"], time.Date(2010, 4, 10, 13, 39, 0, 0, time.UTC)) { // 4/10/10 9:39 EDT
		t.Errorf("%s = %+v", first, n)
	}
	if rows < 5_001 {
		return
	}
	if n := ns[1]; n == nil || n.Props["street"] != "Massachusetts Ave" || n.Props["crossStreet"] != "HANCOCK ST" ||
		!sameTime(n.Props["reportedAt"], time.Date(2012, 6, 20, 21, 41, 0, 0, time.UTC)) { // 6/20/12 17:41 EDT
		t.Errorf("crash 30927-0 = %+v", n)
	}
	pages, err := s.Neighbors(ctx, graph.NeighborQuery{IDs: []string{"urn:city:incident:cambridge-police:30927-0"}, Rel: "LOCATED_IN", Dir: ontology.Out, First: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 1 || len(pages[0].Nodes) != 1 || pages[0].Nodes[0].ID != "urn:city:neighbourhood:cambridge-gis:6" {
		t.Errorf("crash 30927-0 LOCATED_IN %+v, want Mid-Cambridge (neighbourhood 6)", pages)
	}
}

func sameTime(v any, want time.Time) bool {
	got, ok := v.(time.Time)
	return ok && got.Equal(want)
}
