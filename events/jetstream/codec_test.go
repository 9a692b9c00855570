package jetstream

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/graph"
)

// exact compares batches value for value: times by instant, offset and
// zone name (so a UTC time must come back as UTC), floats bit for bit
// (NaN as NaN, -0 as -0), and the dynamic types inside Props.
var exact = cmp.Options{
	cmp.Comparer(func(a, b time.Time) bool {
		an, ao := a.Zone()
		bn, bo := b.Zone()
		return a.Equal(b) && ao == bo && an == bn
	}),
	cmp.Comparer(func(a, b float64) bool {
		return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
	}),
}

// A Cambridge neighbourhood outline, cut to a few vertices (the shape of
// shared/data/geo/cambridge_BOUNDARY_CDDNeighborhoods.geojson).
const neighbourhoodPolygon = `{"type":"Polygon","coordinates":[[[-71.09852765295079,42.37183515142229],[-71.09845816605785,42.37177796928067],[-71.09824280037938,42.371600910427304],[-71.09852765295079,42.37183515142229]]]}`

func codecCases() []struct {
	name  string
	batch events.Batch
} {
	at := time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)
	plus2 := time.FixedZone("", 2*3600)
	return []struct {
		name  string
		batch events.Batch
	}{
		{"creation, no changed list", events.Batch{Changes: []graph.Change{
			{Seq: 1, Op: graph.OpCreate, ID: "sl-791-2", Class: "StreetLight", At: at},
		}}},
		{"update and edge in one batch, sequence beyond 2^53", events.Batch{Changes: []graph.Change{
			{Seq: 1<<53 + 1, Op: graph.OpUpdate, ID: "sl-791-2", Class: "StreetLight", Changed: []string{"status", "location"}, At: at},
			{Seq: 1<<53 + 2, Op: graph.OpEdgeAdd, ID: "sl-791-2", Class: "StreetLight", Changed: []string{}, At: at.Add(time.Nanosecond),
				Edge: &graph.EdgeKey{From: "sl-791-2", Rel: "LOCATED_IN", To: "nbhd-11"}},
		}}},
		{"deletion: every property type, nil geometry", events.Batch{
			Changes: []graph.Change{{Seq: 42, Op: graph.OpDelete, ID: "sl-456-7", Class: "StreetLight", At: at}},
			Deleted: map[string]*graph.Node{"sl-456-7": {ID: "sl-456-7", Class: "StreetLight", Props: map[string]any{
				"status":      "FAULTY",
				"statusRaw":   `<b>"broken" & dark</b> — ☀`,
				"lampCount":   int64(math.MaxInt64),
				"minInt":      int64(math.MinInt64),
				"beyond53":    int64(1<<53 + 1),
				"negative":    int64(-9007199254740993),
				"tenth":       0.1,
				"third":       1.0 / 3,
				"negZero":     math.Copysign(0, -1),
				"nan":         math.NaN(),
				"inf":         math.Inf(1),
				"negInf":      math.Inf(-1),
				"tiny":        math.SmallestNonzeroFloat64,
				"huge":        math.MaxFloat64,
				"wholeFloat":  float64(3), // stays a float64, not an int64
				"on":          true,
				"off":         false,
				"installedAt": time.Date(2014, 3, 9, 8, 7, 6, 1, time.UTC),
				"offsetTime":  time.Date(2014, 3, 9, 8, 7, 6, 999999999, plus2),
				"epoch":       time.Unix(0, 0).UTC(),
				"tags":        []any{"a", int64(1), 2.5, true, at, nil, []any{"nested", []any{}}},
				"empty":       []any{},
				"meta":        map[string]any{"k": "v", "n": 1.5, "deep": map[string]any{"list": []any{false, nil}}, "none": nil},
				"absent":      nil,
			}}},
		}},
		{"deletion: polygon geometry and full provenance", events.Batch{
			Changes: []graph.Change{
				{Seq: 7, Op: graph.OpEdgeRemove, ID: "sl-1", Class: "StreetLight", At: at, Edge: &graph.EdgeKey{From: "sl-1", Rel: "LOCATED_IN", To: "nbhd-11"}},
				{Seq: 8, Op: graph.OpDelete, ID: "nbhd-11", Class: "Neighbourhood", Changed: nil, At: at},
			},
			Deleted: map[string]*graph.Node{"nbhd-11": {
				ID: "nbhd-11", Class: "Neighbourhood", Props: map[string]any{"name": "North Cambridge", "officialCode": "11"},
				Geometry: &graph.Geometry{Point: graph.Point{Lat: 42.3717, Lon: -71.0984}, Kind: "Polygon", GeoJSON: neighbourhoodPolygon,
					BBox: graph.BBox{MinLat: 42.3716, MinLon: -71.09852765295079, MaxLat: 42.37183515142229, MaxLon: -71.09824280037938}},
				Prov: graph.Provenance{Source: "cambridge-gis", SourceKey: "11", Connector: "neighbourhoods", Run: "run-1",
					FetchedAt: at, IngestedAt: at.Add(time.Second), SrcUpdatedAt: time.Date(2023, 2, 16, 0, 0, 0, 0, time.UTC),
					ValidFrom: time.Date(2020, 1, 1, 0, 0, 0, 5, time.UTC), Sources: []string{"cambridge-gis", "osm"}},
			}},
		}},
		{"point geometry, empty props and sources, no provenance times", events.Batch{
			Changes: []graph.Change{{Seq: 3, Op: graph.OpDelete, ID: "sl-340-27", Class: "StreetLight", At: at}},
			Deleted: map[string]*graph.Node{"sl-340-27": {ID: "sl-340-27", Class: "StreetLight", Props: map[string]any{},
				Geometry: graph.PointGeometry(42.39754505123229, -71.13593190674109), Prov: graph.Provenance{Sources: []string{}}}},
		}},
		{"nil props, empty deleted map", events.Batch{
			Changes: []graph.Change{{Seq: 9, Op: graph.OpSourceState, ID: "src", Class: "", At: time.Time{}}},
			Deleted: map[string]*graph.Node{},
		}},
		{"a deleted entry without a node", events.Batch{
			Changes: []graph.Change{{Seq: 10, Op: graph.OpDelete, ID: "gone", Class: "StreetLight", At: at}},
			Deleted: map[string]*graph.Node{"gone": nil, "other": {ID: "other", Class: "StreetLight"}},
		}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, tt := range codecCases() {
		t.Run(tt.name, func(t *testing.T) {
			data, err := EncodeBatch(tt.batch)
			if err != nil {
				t.Fatalf("EncodeBatch: %v", err)
			}
			got, err := DecodeBatch(data)
			if err != nil {
				t.Fatalf("DecodeBatch(%s): %v", data, err)
			}
			if d := cmp.Diff(tt.batch, got, exact); d != "" {
				t.Errorf("round trip (-want +got):\n%s\nmessage: %s", d, data)
			}
			// UTC stays UTC exactly, not an equal instant in another zone
			for i, c := range got.Changes {
				if c.At != tt.batch.Changes[i].At {
					t.Errorf("change %d at %#v, want %#v", c.Seq, c.At, tt.batch.Changes[i].At)
				}
			}
			again, err := EncodeBatch(got)
			if err != nil || string(again) != string(data) {
				t.Errorf("encoding the decoded batch gives other bytes (%v):\n%s\n%s", err, data, again)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	del := func(props map[string]any) events.Batch {
		return events.Batch{
			Changes: []graph.Change{{Seq: 1, Op: graph.OpDelete, ID: "x", Class: "StreetLight", At: at}},
			Deleted: map[string]*graph.Node{"x": {ID: "x", Class: "StreetLight", Props: props}},
		}
	}
	tests := []struct {
		name  string
		batch events.Batch
		want  string
	}{
		{"no changes", events.Batch{}, "no changes"},
		{"int, not int64", del(map[string]any{"lampCount": 2}), `property "lampCount": unsupported value type int`},
		{"float32", del(map[string]any{"w": float32(1)}), "unsupported value type float32"},
		{"[]string, not []any", del(map[string]any{"tags": []string{"a"}}), "unsupported value type []string"},
		{"in a list", del(map[string]any{"tags": []any{"a", uint8(1)}}), "item 1: unsupported value type uint8"},
		{"year 10000", del(map[string]any{"t": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}), `property "t"`},
		{"change time out of range", events.Batch{Changes: []graph.Change{{Seq: 1, Op: graph.OpCreate, ID: "x", At: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}}, "change 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := EncodeBatch(tt.batch)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("EncodeBatch = %s, %v; want an error containing %q", data, err, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", ``, "unexpected end"},
		{"not an object", `[1]`, "cannot unmarshal"},
		{"other version", `{"v":2,"changes":[{"seq":1,"op":"CREATE","id":"x","at":""}]}`, "version 2"},
		{"no changes", `{"v":1,"changes":[]}`, "no changes"},
		{"sequence zero", `{"v":1,"changes":[{"seq":0,"op":"CREATE","id":"x","at":""}]}`, "sequence 0"},
		{"sequence going back", `{"v":1,"changes":[{"seq":5,"op":"CREATE","id":"x","at":""},{"seq":5,"op":"CREATE","id":"y","at":""}]}`, "sequence 5 does not follow 5"},
		{"negative sequence", `{"v":1,"changes":[{"seq":-1,"op":"CREATE","id":"x","at":""}]}`, "cannot unmarshal"},
		{"no op", `{"v":1,"changes":[{"seq":1,"id":"x","at":""}]}`, "no operation"},
		{"bad time", `{"v":1,"changes":[{"seq":1,"op":"CREATE","id":"x","at":"yesterday"}]}`, `time "yesterday"`},
		{"two types", `{"v":1,"changes":[{"seq":1,"op":"DELETE","id":"x","at":""}],"deleted":{"x":{"props":{"p":{"s":"a","i":"1"}}}}}`, "exactly one"},
		{"no type", `{"v":1,"changes":[{"seq":1,"op":"DELETE","id":"x","at":""}],"deleted":{"x":{"props":{"p":{"q":1}}}}}`, "exactly one"},
		{"integer overflow", `{"v":1,"changes":[{"seq":1,"op":"DELETE","id":"x","at":""}],"deleted":{"x":{"props":{"p":{"i":"9223372036854775808"}}}}}`, "out of range"},
		{"integer as number", `{"v":1,"changes":[{"seq":1,"op":"DELETE","id":"x","at":""}],"deleted":{"x":{"props":{"p":{"i":5}}}}}`, "cannot unmarshal"},
		{"float out of range", `{"v":1,"changes":[{"seq":1,"op":"DELETE","id":"x","at":""}],"deleted":{"x":{"props":{"p":{"f":"1e400"}}}}}`, "out of range"},
		{"bad list item", `{"v":1,"changes":[{"seq":1,"op":"DELETE","id":"x","at":""}],"deleted":{"x":{"props":{"p":{"l":[{"b":true},{"t":"x"}]}}}}}`, "item 1"},
		{"bad provenance time", `{"v":1,"changes":[{"seq":1,"op":"DELETE","id":"x","at":""}],"deleted":{"x":{"prov":{"fetched_at":"2024-13-01T00:00:00Z"}}}}`, "provenance"},
		{"too deep", `{"v":1,"changes":[{"seq":1,"op":"DELETE","id":"x","at":""}],"deleted":{"x":{"props":{"p":` +
			strings.Repeat(`{"l":[`, maxDepth+2) + `{"b":true}` + strings.Repeat(`]}`, maxDepth+2) + `}}}}`, "nested deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := DecodeBatch([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeBatch(%q) = %+v, %v; want an error containing %q", tt.data, b, err, tt.want)
			}
		})
	}
}

// The messages in testdata are version 1 as replicas exchange it: they
// decode, and encode back to the same bytes (a change of the format shows
// here; replicas of two versions must still understand each other).
func TestTestdataMessages(t *testing.T) {
	for _, name := range []string{"cambridge_streetlights.json", "cambridge_deletion.json"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.TrimSpace(data)
			b, err := DecodeBatch(data)
			if err != nil {
				t.Fatalf("DecodeBatch: %v", err)
			}
			again, err := EncodeBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(data) {
				t.Errorf("encoded again:\n%s\nwant\n%s", again, data)
			}
		})
	}
	data, err := os.ReadFile(filepath.Join("testdata", "cambridge_deletion.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	n := b.Deleted["cambridge-sl-340-27"]
	want := map[string]any{"fixtureType": "A2", "installedAt": time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC), "lampCount": int64(1),
		"poleNumber": "340-27", "powerRatingW": float64(100), "status": "DECOMMISSIONED", "statusRaw": "LEDchk: Yes"}
	if n == nil || n.Geometry == nil || n.Geometry.Point.Lat != 42.39754505123229 || n.Prov.FetchedAt.Nanosecond() != 500000000 {
		t.Fatalf("deleted node %+v", n)
	}
	if d := cmp.Diff(want, n.Props, exact); d != "" {
		t.Errorf("props (-want +got):\n%s", d)
	}
}
