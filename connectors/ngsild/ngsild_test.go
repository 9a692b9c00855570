package ngsild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/ontology"
)

// mustSource builds a source from a YAML config block as a connector file
// in dir would hold it.
func mustSource(t testing.TB, dir, block string) *Source {
	t.Helper()
	raw, err := connectors.ParseRawConfig(filepath.Join(dir, "connectors.yaml"), []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	src, err := New(raw)
	if err != nil {
		t.Fatalf("New(%s): %v", block, err)
	}
	return src.(*Source)
}

func readAll(t testing.TB, s *Source) ([]connectors.Record, error) {
	t.Helper()
	var out []connectors.Record
	err := s.Read(t.Context(), func(r connectors.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

func readFrom(t testing.TB, s *Source, checkpoint string) ([]connectors.Record, error) {
	t.Helper()
	var out []connectors.Record
	err := s.ReadFrom(t.Context(), checkpoint, func(r connectors.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// mustJSONArray writes the entities (raw JSON documents) as one array file.
func mustJSONArray(t testing.TB, path string, entities ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("[\n")
	for i, e := range entities {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.Write(bytes.TrimSpace(e))
	}
	b.WriteString("\n]\n")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mustEdit decodes a real entity, lets edit change it, and encodes it again.
func mustEdit(t testing.TB, raw []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// malformedDoc is an array of real entities in which three cannot be read:
// a Streetlight without id, a WasteContainer whose binColor has neither
// value nor object, and a number.
func malformedDoc(t testing.TB, path string) []byte {
	return mustJSONArray(t, path,
		mustRead(t, "ParkingSpot", ldNormalized),
		mustEdit(t, mustRead(t, "Streetlight", ldNormalized), func(m map[string]any) { delete(m, "id") }),
		mustRead(t, "Alert", ldKeyValues),
		mustEdit(t, mustRead(t, "WasteContainer", ldNormalized), func(m map[string]any) {
			m["binColor"] = map[string]any{"type": "Property", "observedAt": "2021-03-11T15:51:02Z"}
		}),
		[]byte("42"),
		mustRead(t, "OffStreetParking", v2KeyValues),
	)
}

// TestMalformedEntities: entities that cannot be flattened become error
// records at their position; the others are read.
func TestMalformedEntities(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "entities.json")
	doc := malformedDoc(t, path)
	recs, err := readAll(t, mustSource(t, dir, "path: entities.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ id, err string }{
		{"urn:ngsi-ld:ParkingSpot:santander:daoiz_velarde_1_5:3", ""},
		{"", "entity has no id"},
		{"urn:ngsi-ld:Alert:Alert:1", ""},
		{"", `entity "urn:ngsi-ld:wastecontainer:1021:AAWD": attribute "binColor": neither value nor object`},
		{"", "entity is not a JSON object"},
		{"porto-ParkingLot-23889", ""},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		if r.Pos.Index != i || r.Pos.Path != "$["+string(rune('0'+i))+"]" || r.Pos.File != path {
			t.Errorf("record %d at %+v", i, r.Pos)
		}
		if got := string(doc[r.Pos.Offset : r.Pos.Offset+int64(len(r.Raw))]); got != string(r.Raw) {
			t.Errorf("record %d: offset %d does not locate its bytes", i, r.Pos.Offset)
		}
		switch {
		case want[i].err == "" && (r.Err != nil || r.Fields["id"] != want[i].id):
			t.Errorf("record %d = %v %v, want entity %s", i, r.Fields["id"], r.Err, want[i].id)
		case want[i].err != "" && (r.Err == nil || r.Err.Error() != want[i].err || r.Fields != nil):
			t.Errorf("record %d error = %v, want %q", i, r.Err, want[i].err)
		}
	}
	// a mixed file: entities are detected one by one
	if recs[0].Fields["status_observedAt"] != "2018-09-21T12:00:00Z" || recs[2].Fields["severity"] != "high" || recs[5].Fields["occupancy"] != 0.68 {
		t.Errorf("fields: %v / %v / %v", recs[0].Fields, recs[2].Fields, recs[5].Fields)
	}
}

func TestTypeFilter(t *testing.T) {
	dir := t.TempDir()
	malformedDoc(t, filepath.Join(dir, "entities.json"))
	recs, err := readAll(t, mustSource(t, dir, "path: entities.json\ntype: Alert, OffStreetParking"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		if r.Err != nil {
			got = append(got, r.Pos.Path+" error")
		} else {
			got = append(got, r.Pos.Path+" "+r.Fields["type"].(string))
		}
	}
	// the Streetlight without id is of another type: dropped; the number
	// has no type to filter by: it stays an error
	want := "$[2] Alert,$[4] error,$[5] OffStreetParking"
	if strings.Join(got, ",") != want {
		t.Errorf("records = %s, want %s", strings.Join(got, ","), want)
	}
	// max_entities counts every entity of the file, filtered or not
	_, err = readFrom(t, mustSource(t, dir, "path: entities.json\ntype: Alert\nmax_entities: 5"), "")
	if err == nil || !strings.Contains(err.Error(), "entities.json: more than max_entities (5) entities") {
		t.Errorf("max_entities: %v", err)
	}
}

func TestSingleEntityFile(t *testing.T) {
	for _, m := range models {
		for _, f := range []string{v2KeyValues, v2Normalized, ldKeyValues, ldNormalized} {
			recs, err := readAll(t, mustSource(t, ".", "path: testdata/"+m+"/"+f))
			if err != nil || len(recs) != 1 || recs[0].Err != nil {
				t.Fatalf("%s/%s: %d records, %v", m, f, len(recs), err)
			}
			r := recs[0]
			want, geom := mustFlatten(t, m, f, FormatAuto)
			if r.Pos.Path != "$" || r.Pos.Index != 0 || !bytes.Equal(r.Raw, bytes.TrimSpace(mustRead(t, m, f))) || !sameValue(r.Fields, want) || !bytes.Equal(r.Geometry, geom) {
				t.Errorf("%s/%s: record %+v", m, f, r.Pos)
			}
		}
	}
}

func TestDocumentErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "empty document"},
		{`  "x"`, `expected an entity object or an array of entities, found '"'`},
		{`[{"id":"a","type":"T"},`, "offset"},
		{`{"id":"a","type":"T"} {"id":"b"}`, "data after the entity"},
		{`[{"id":"a","type":"T"}] x`, "data after the array"},
		{`[{"id":"a","type":"T","p":"` + strings.Repeat("x", 4000) + `"}]`, "max_entity_bytes (1024)"},
	}
	for _, tt := range tests {
		_, err := readDocument(context.Background(), strings.NewReader(tt.in), "f.json", 1024, false, 0, func([]byte, connectors.Position) error { return nil })
		var de *docError
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.As(err, &de) {
			t.Errorf("readDocument(%.40q) error = %v, want %q", tt.in, err, tt.want)
		}
	}
	_, err := readDocument(context.Background(), strings.NewReader(`{"id":"a","type":"T"}`), "page", 1024, true, 0, func([]byte, connectors.Position) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "expected a JSON array of entities") {
		t.Errorf("a broker page that is not an array: %v", err)
	}
}

func TestCheckpoint(t *testing.T) {
	for _, s := range []string{"", "2018-09-21T12:00:05Z|porto-ParkingLot-23889", "2024-05-01T10:06:00.5Z|urn:ngsi-ld:Device:device-9845A|x"} {
		p, err := parseCheckpoint(s)
		if err != nil {
			t.Fatalf("parseCheckpoint(%q): %v", s, err)
		}
		if s != "" && p.String() != s {
			t.Errorf("parseCheckpoint(%q).String() = %q", s, p.String())
		}
	}
	for _, s := range []string{"x", "|id", "2018-09-21|id", "2018-09-21T12:00:05Z|", "0001-01-01T00:00:00Z|id"} {
		if _, err := parseCheckpoint(s); err == nil {
			t.Errorf("parseCheckpoint(%q) accepted", s)
		}
	}
	src := mustSource(t, ".", "path: testdata/OffStreetParking/example.json")
	if _, err := readFrom(t, src, "garbage"); err == nil || !strings.Contains(err.Error(), `ngsild: checkpoint "garbage"`) {
		t.Errorf("ReadFrom(garbage) error = %v", err)
	}
}

// TestReadFromFile: an entity with a modification time resumes after it;
// one without is read on every run.
func TestReadFromFile(t *testing.T) {
	dir := t.TempDir()
	mustJSONArray(t, filepath.Join(dir, "e.json"),
		mustRead(t, "Streetlight", ldNormalized),       // no modification time
		mustRead(t, "OffStreetParking", v2KeyValues),   // dateModified 2018-09-21T12:00:05Z
		mustRead(t, "DeviceMeasurement", ldNormalized), // dateModified 2021-09-03T07:33:18Z
		mustRead(t, "Alert", v2Normalized),             // dateModified 2019-06-07T12:07:06 (UTC)
	)
	src := mustSource(t, dir, "path: e.json")
	run := func(checkpoint string) (ids, checkpoints []string) {
		recs, err := readFrom(t, src, checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			ids = append(ids, r.Fields["id"].(string))
			checkpoints = append(checkpoints, r.Checkpoint)
		}
		return ids, checkpoints
	}
	ids, cps := run("")
	wantIDs := []string{"urn:ngsi-ld:Streetlight:streetlight:guadalajara:4567", "porto-ParkingLot-23889", "Alert:1", "urn:ngsi-ld:MEASUREMENT:id:PMZY:77452386"}
	wantCPs := []string{"", "2018-09-21T12:00:05Z|porto-ParkingLot-23889", "2019-06-07T12:07:06Z|Alert:1", "2021-09-03T07:33:18Z|urn:ngsi-ld:MEASUREMENT:id:PMZY:77452386"}
	if strings.Join(ids, " ") != strings.Join(wantIDs, " ") || strings.Join(cps, " ") != strings.Join(wantCPs, " ") {
		t.Errorf("ReadFrom(\"\") = %q %q,\nwant %q %q", ids, cps, wantIDs, wantCPs)
	}
	ids, cps = run(wantCPs[2])
	if strings.Join(ids, " ") != wantIDs[0]+" "+wantIDs[3] || cps[0] != wantCPs[2] || cps[1] != wantCPs[3] {
		t.Errorf("ReadFrom(after Alert) = %q %q", ids, cps)
	}
	if ids, _ = run(wantCPs[3]); len(ids) != 1 || ids[0] != wantIDs[0] {
		t.Errorf("ReadFrom(after all) = %q, want only the entity without time", ids)
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	mustJSONArray(t, filepath.Join(dir, "bad.json"), mustEdit(t, mustRead(t, "Alert", ldNormalized), func(m map[string]any) {
		m["severity"] = map[string]any{"type": "Property"}
	}), mustRead(t, "Alert", ldKeyValues))
	tests := []struct{ path, want string }{
		{"testdata/Alert/example-normalized.jsonld", ""},
		{"missing.json", "ngsild: open"},
		{"bad.json", `ngsild: check ` + filepath.Join(dir, "bad.json") + `: $[0] (offset 2): entity "urn:ngsi-ld:Alert:Alert:1": attribute "severity": neither value nor object`},
	}
	for _, tt := range tests {
		d := dir
		if strings.HasPrefix(tt.path, "testdata") {
			d = "."
		}
		err := mustSource(t, d, "path: "+tt.path).Check(t.Context())
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Check(%s) = %v, want %q", tt.path, err, tt.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	reg := connectors.NewRegistry()
	Register(reg)
	tests := []struct{ config, want string }{
		{"{}", "f.yaml:6: connectors[0].config.path: one of path, url and broker is required"},
		{"{path: a.json, broker: 'http://b'}", "connectors[0].config.broker: give one of path, url and broker"},
		{"{path: 'http://h/a.json'}", "set url instead"},
		{"{path: a.json, headers: {A: b}}", "headers applies to url only"},
		{"{path: a.json, api: ngsi_v3}", `api must be ngsi_ld or ngsi_v2, not "ngsi_v3"`},
		{"{path: a.json, format: compact}", `format must be auto, normalized or key_values, not "compact"`},
		{"{path: a.json, api: ngsi_v2, accept: application/ld+json}", "NGSI v2 serves application/json only"},
		{"{path: a.json, q: 'a>1'}", "connectors[0].config.q: q applies to broker queries only"},
		{"{broker: 'http://b:1026'}", "connectors[0].config.type: an NGSI-LD broker query needs type or q"},
		{"{broker: 'ftp://b', type: T}", "broker must be an http(s) base URL"},
		{"{broker: 'http://b', type: T, page_size: 5000}", "page_size must be between 1 and 1000"},
		{"{broker: 'http://b', type: T, service_path: /x}", "service_path applies to ngsi_v2 only"},
		{"{broker: 'http://b', api: ngsi_v2, service_path: x}", "service_path must start with /"},
		{"{broker: 'http://b', api: ngsi_v2, context: 'http://c'}", "context applies to ngsi_ld only"},
		{"{broker: 'http://b', type: 'A B'}", "expected entity type names separated by commas"},
		{"{broker: 'http://b', type: T, resume_filter: server}", `resume_filter must be client or query, not "server"`},
		{"{broker: 'http://b', type: T, timeout: -1s}", "timeout must be positive"},
		{"{path: a.json, max_entity_bytes: 10}", "max_entity_bytes must be at least 1024"},
		{"{path: a.json, pages: 3}", `connectors[0].config.pages: unknown field "pages"`},
	}
	for _, tt := range tests {
		src := "connectors:\n  - name: x\n    source: xx\n    kind: ngsi_ld\n    config:\n      " + tt.config +
			"\n    mapping: {nodes: [{class: Neighbourhood, key: x, properties: {officialCode: x}}]}\n"
		_, err := connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, connectors.ErrConfig) {
			t.Errorf("config %s: error = %v, want %q", tt.config, err, tt.want)
		}
	}
}
