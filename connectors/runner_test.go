package connectors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
)

var testNow = time.Date(2025, 1, 5, 2, 0, 0, 0, time.UTC)

func loadRunFile(t *testing.T) map[string]*Connector {
	t.Helper()
	conns, err := LoadFile("testdata/run.yaml", mustOntology(t), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Connector{}
	for _, c := range conns {
		out[c.Name] = c
	}
	return out
}

func newTestRunner(sink DeadLetterSink) *Runner {
	return NewRunner(RunnerConfig{Now: func() time.Time { return testNow }, DeadLetters: sink, BatchSize: 2})
}

func TestRun(t *testing.T) {
	conns := loadRunFile(t)
	store := newFakeStore(mustOntology(t))
	sink := &memSink{}
	r := newTestRunner(sink)
	ctx := t.Context()

	areas, err := r.Run(ctx, conns["areas"], store)
	if err != nil {
		t.Fatal(err)
	}
	if areas.Read != 3 || areas.Written != 2 || areas.Rejected != 1 {
		t.Errorf("areas stats = %+v", areas)
	}
	n := store.nodes["urn:city:neighbourhood:city-gis:N"]
	if n.Geometry == nil || n.Geometry.Kind != "Polygon" || n.Geometry.GeoJSON == "" || n.Props["name"] != "North" {
		t.Errorf("neighbourhood N = %+v", n)
	}
	if _, ok := store.edges[graph.EdgeKey{From: n.ID, Rel: "PART_OF", To: "urn:city:city:city-gis:cambridge"}]; !ok {
		t.Errorf("PART_OF edge missing")
	}

	st, err := r.Run(ctx, conns["lights"], store)
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 10 || st.Written != 3 || st.Rejected != 6 || st.Skipped != 1 {
		t.Errorf("lights stats = %+v", st)
	}
	if st.Read != st.Written+st.Rejected+st.Skipped {
		t.Errorf("read %d != written %d + rejected %d + skipped %d", st.Read, st.Written, st.Rejected, st.Skipped)
	}
	if st.Located != 1 {
		t.Errorf("located = %d, want 1", st.Located)
	}

	l := store.nodes["urn:city:street-light:city-gis:791-2"]
	wantProps := map[string]any{
		"name": "Light 791-2", "poleNumber": "791-2", "powerRatingW": 0.1, "lampCount": int64(2),
		"status": "OK", "statusRaw": "In Service", "installedAt": time.Date(2010, 3, 14, 13, 30, 0, 0, time.UTC),
		"tags": []any{"a", "b"}, "led": true, "attrs": map[string]any{"k": int64(1)},
	}
	for k, want := range wantProps {
		if got := l.Props[k]; !equalValue(got, want) {
			t.Errorf("light prop %s = %#v, want %#v", k, got, want)
		}
	}
	if len(l.Props) != len(wantProps) {
		t.Errorf("light props = %v", l.Props)
	}
	if l.Geometry == nil || l.Geometry.Point != (graph.Point{Lat: 0.5, Lon: 0.25}) {
		t.Errorf("light geometry = %+v", l.Geometry)
	}
	wantProv := graph.Provenance{Source: "city-gis", SourceKey: "791-2", Connector: "lights", Run: st.Run,
		FetchedAt: testNow, SrcUpdatedAt: time.Date(2023, 2, 16, 5, 0, 0, 0, time.UTC)}
	if !equalProv(l.Prov, wantProv) {
		t.Errorf("light prov = %+v, want %+v", l.Prov, wantProv)
	}
	e, ok := store.edges[graph.EdgeKey{From: l.ID, Rel: "LOCATED_IN", To: "urn:city:neighbourhood:city-gis:N"}]
	if !ok || e.Props["method"] != "POINT_IN_POLYGON" || e.Props["confidence"] != 1.0 || e.Prov.Run != st.Run {
		t.Errorf("LOCATED_IN edge = %+v (found %v)", e, ok)
	}
	// escaped key, no location, status mapped case-insensitively
	esc := store.nodes["urn:city:street-light:city-gis:a%2Fb%20c"]
	if esc.ID == "" || esc.Geometry != nil || esc.Props["status"] != "FAULTY" || esc.Props["statusRaw"] != "broken" {
		t.Errorf("escaped light = %+v", esc)
	}
	// unmapped value falls back to the default, raw kept
	if x4 := store.nodes["urn:city:street-light:city-gis:x4"]; x4.Props["status"] != "UNKNOWN" || x4.Props["statusRaw"] != "Leaning" {
		t.Errorf("x4 = %+v", x4.Props)
	}
	wantReasons := []string{
		`line 4: field "Lat": "abc" is not a number`,
		`line 5: field "Lat": "200" is out of range [-90, 90]`,
		`line 6: StreetLight.key: {PoleID} is missing`,
		`line 7: StreetLight.powerRatingW: field "Watts": "bright" is not a number`,
		`line 8: bare " in non-quoted field`,
		`line 11: StreetLight.installedAt: field "Installed": "14/3/10 9:30" does not match layout "1/2/06 15:04"`,
	}
	var got []string
	for _, d := range sink.letters[1:] {
		got = append(got, d.Reason)
		if d.Connector != "lights" || d.Source != "city-gis" || d.Run != st.Run || len(d.Raw) == 0 || d.Pos.Line == 0 {
			t.Errorf("dead letter fields = %+v", d)
		}
	}
	if strings.Join(got, "\n") != strings.Join(wantReasons, "\n") {
		t.Errorf("dead letter reasons:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantReasons, "\n"))
	}

	cs, err := r.Run(ctx, conns["counts"], store)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Read != 2 || cs.Written != 2 || cs.Nodes != 6 {
		t.Errorf("counts stats = %+v", cs)
	}
	ds := store.nodes["urn:city:datastream:traffic:7~adt"]
	if ds.Props["lastValue"] != 300.0 || ds.Props["lastObservedAt"] != time.Date(2017, 1, 1, 5, 0, 0, 0, time.UTC) {
		t.Errorf("datastream = %+v", ds.Props)
	}
	if ds8 := store.nodes["urn:city:datastream:traffic:8~adt"]; ds8.ID == "" || ds8.Props["lastValue"] != nil {
		t.Errorf("datastream 8 = %+v", ds8)
	}
	obsID := "urn:city:observation:traffic:7~adt~" + "915166800000" // 1999-01-01T05:00Z
	obs := store.nodes[obsID]
	if obs.Props["value"] != 100.0 || store.count("Observation") != 2 {
		t.Errorf("observation %s = %+v (%d observations)", obsID, obs, store.count("Observation"))
	}
	for _, k := range []graph.EdgeKey{
		{From: obsID, Rel: "IN_DATASTREAM", To: ds.ID},
		{From: ds.ID, Rel: "OBSERVED_BY", To: "urn:city:sensor:traffic:7"},
		{From: "urn:city:sensor:traffic:7", Rel: "LOCATED_IN", To: "urn:city:neighbourhood:city-gis:N"},
		{From: "urn:city:sensor:traffic:8", Rel: "LOCATED_IN", To: "urn:city:neighbourhood:city-gis:S"},
	} {
		if _, ok := store.edges[k]; !ok {
			t.Errorf("missing edge %+v", k)
		}
	}

	// a second run changes nothing but provenance
	before := len(store.nodes)
	if _, err := r.Run(ctx, conns["lights"], store); err != nil {
		t.Fatal(err)
	}
	if len(store.nodes) != before {
		t.Errorf("second run: %d nodes, want %d", len(store.nodes), before)
	}
}

func equalValue(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !equalValue(x[k], y[k]) {
				return false
			}
		}
		return true
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y) && x.Location() == time.UTC
	}
	return a == b
}

func equalProv(a, b graph.Provenance) bool {
	return a.Source == b.Source && a.SourceKey == b.SourceKey && a.Connector == b.Connector && a.Run == b.Run &&
		a.FetchedAt.Equal(b.FetchedAt) && a.SrcUpdatedAt.Equal(b.SrcUpdatedAt) && a.ValidFrom.Equal(b.ValidFrom)
}

func TestRunStoreRejectsRecord(t *testing.T) {
	conns := loadRunFile(t)
	store := newFakeStore(mustOntology(t))
	store.reject = "urn:city:street-light:city-gis:x4"
	sink := &memSink{}
	st, err := newTestRunner(sink).Run(t.Context(), conns["lights"], store)
	if err != nil {
		t.Fatal(err)
	}
	if st.Written != 2 || st.Rejected != 7 {
		t.Errorf("stats = %+v", st)
	}
	found := false
	for _, d := range sink.letters {
		if strings.HasPrefix(d.Reason, "line 10: store: ") && strings.Contains(d.Reason, "invalid request") {
			found = true
		}
	}
	if !found {
		t.Errorf("no store rejection among %+v", sink.letters)
	}
}

func TestRunStoreDown(t *testing.T) {
	conns := loadRunFile(t)
	store := newFakeStore(mustOntology(t))
	store.fail = graph.ErrUnavailable
	_, err := newTestRunner(&memSink{}).Run(t.Context(), conns["areas"], store)
	if !errors.Is(err, graph.ErrUnavailable) {
		t.Errorf("Run error = %v, want ErrUnavailable", err)
	}
}

func TestRunSourceFails(t *testing.T) {
	src := strings.Replace(validConnector, "records: []", "records: [{PoleID: a}, {PoleID: b}, {PoleID: c}]\n      fail_after: 2", 1)
	conns := mustParse(t, src)
	store := newFakeStore(mustOntology(t))
	st, err := NewRunner(RunnerConfig{BatchSize: 10}).Run(t.Context(), conns[0], store)
	if err == nil || !strings.Contains(err.Error(), "source broke") {
		t.Fatalf("Run error = %v", err)
	}
	if st.Read != 2 || st.Written != 2 || len(store.nodes) != 2 {
		t.Errorf("stats = %+v, %d nodes", st, len(store.nodes))
	}
}

func TestRunCanceled(t *testing.T) {
	conns := loadRunFile(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := newTestRunner(&memSink{}).Run(ctx, conns["lights"], newFakeStore(mustOntology(t)))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", err)
	}
}

func TestFileDeadLetters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.jsonl")
	s, err := NewFileDeadLetters(path)
	if err != nil {
		t.Fatal(err)
	}
	conns := loadRunFile(t)
	if _, err := newTestRunner(s).Run(t.Context(), conns["lights"], newFakeStore(mustOntology(t))); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), DeadLetter{Reason: "binary", Raw: []byte{0xff, 0xfe}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 7 {
		t.Fatalf("got %d lines:\n%s", len(lines), data)
	}
	if !strings.Contains(lines[0], `"reason":"line 4: field \"Lat\": \"abc\" is not a number"`) || !strings.Contains(lines[0], `"pos":{"file":"memory","line":4,"offset":0,"index":2}`) {
		t.Errorf("first line = %s", lines[0])
	}
	if !strings.Contains(lines[6], `"raw_base64":"//4="`) {
		t.Errorf("binary line = %s", lines[6])
	}
}
