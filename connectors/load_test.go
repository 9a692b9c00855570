package connectors

import (
	"errors"
	"strings"
	"testing"
)

const validConnector = `
connectors:
  - name: lights
    source: city-gis
    kind: memory
    config:
      records: []
    mapping:
      nodes:
        - class: StreetLight
          key: "{PoleID}"
          properties:
            poleNumber: "{PoleID}"
            status: {value: OK}
`

func TestParseValid(t *testing.T) {
	conns := mustParse(t, validConnector)
	if len(conns) != 1 {
		t.Fatalf("got %d connectors", len(conns))
	}
	c := conns[0]
	if c.Name != "lights" || c.Source != "city-gis" || c.Kind != "memory" || c.Line != 3 {
		t.Errorf("connector = %+v", c)
	}
	if got := c.Mapping.Classes(); len(got) != 1 || got[0] != "StreetLight" {
		t.Errorf("Classes() = %v", got)
	}
}

// TestParseErrors checks that every kind of bad configuration is refused
// at load with the file, line and field path.
func TestParseErrors(t *testing.T) {
	head := "connectors:\n  - name: lights\n    source: city-gis\n    kind: memory\n    mapping:\n      nodes:\n"
	node := func(lines ...string) string {
		return head + "        - " + strings.Join(lines, "\n          ") + "\n"
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top key", "connector: []\n", `testdata/test.yaml:1: connector: unknown field "connector"`},
		{"unknown connector key", "connectors:\n  - name: x\n    sauce: y\n", `testdata/test.yaml:3: connectors[0].sauce: unknown field "sauce"`},
		{"bad source code", strings.Replace(head, "city-gis", "City_GIS", 1) + "        - {class: City, key: x, properties: {officialCode: x}}\n", `testdata/test.yaml:3: connectors[0].source: source code "City_GIS" must match`},
		{"unknown kind", strings.Replace(head, "memory", "ftp", 1) + "        - {class: City, key: x, properties: {officialCode: x}}\n", `testdata/test.yaml:4: connectors[0].kind: unknown kind "ftp"`},
		{"unknown config key", strings.Replace(head, "    mapping:", "    config: {recods: []}\n    mapping:", 1) + "        - {class: City, key: x, properties: {officialCode: x}}\n", `testdata/test.yaml:5: connectors[0].config.recods: unknown field "recods" (allowed: fail_after, records)`},
		{"config wrong type", strings.Replace(head, "    mapping:", "    config:\n      fail_after: lots\n    mapping:", 1) + "        - {class: City, key: x, properties: {officialCode: x}}\n", `testdata/test.yaml:6: connectors[0].config.fail_after: cannot unmarshal !!str`},
		{"unknown class", node("class: Lamp", "key: x"), `testdata/test.yaml:7: connectors[0].mapping.nodes[0].class: unknown class "Lamp"`},
		{"abstract class", node("class: Asset", "key: x"), `class Asset is abstract`},
		{"unknown property", node("class: StreetLight", "key: x", "properties:", "  status: OK", "  watts: 5"), `testdata/test.yaml:11: connectors[0].mapping.nodes[0].properties.watts: unknown property "watts" on class StreetLight`},
		{"wrong constant type", node("class: StreetLight", "key: x", "properties:", "  status: OK", "  powerRatingW: {value: bright}"), `testdata/test.yaml:11: connectors[0].mapping.nodes[0].properties.powerRatingW: "bright" is not a number`},
		{"bad enum constant", node("class: StreetLight", "key: x", "properties:", "  status: SHINY"), `connectors[0].mapping.nodes[0].properties.status: "SHINY" is not a value of enum AssetStatus`},
		{"bad enum in value map", node("class: StreetLight", "key: x", "properties:", "  status:", "    field: S", "    map: {In Service: OK, Broken: BROKE}"), `testdata/test.yaml:12: connectors[0].mapping.nodes[0].properties.status.map.Broken: "BROKE" is not a value of enum AssetStatus`},
		{"bad default", node("class: StreetLight", "key: x", "properties:", "  status: {field: S, default: MEH}"), `properties.status: default: "MEH" is not a value of enum AssetStatus`},
		{"required not mapped", node("class: StreetLight", "key: x"), `connectors[0].mapping.nodes[0].properties: required property "status" of class StreetLight is not mapped`},
		{"bad template syntax", node("class: StreetLight", "key: \"{PoleID\"", "properties: {status: OK}"), `connectors[0].mapping.nodes[0].key: template "{PoleID": unclosed {`},
		{"unknown filter", node("class: StreetLight", "key: \"{PoleID|shout}\"", "properties: {status: OK}"), `unknown filter "shout"`},
		{"capture outside repeat", node("class: StreetLight", "key: \"{$1}\"", "properties: {status: OK}"), `connectors[0].mapping.nodes[0].key: {$1} used outside repeat or last_of`},
		{"too many captures", node("class: Observation", "key: \"{$2}\"", "repeat: '^(\\d{4})$'", "properties: {phenomenonTime: {template: \"{$1}\", layout: \"2006\", timezone: UTC}}"), `{$2}: regex "^(\\d{4})$" has 1 capture group(s)`},
		{"undeclared field", strings.Replace(head, "      nodes:", "      fields: [PoleID]\n      nodes:", 1) + "        - {class: StreetLight, key: \"{Pole}\", properties: {status: OK}}\n", `connectors[0].mapping.nodes[0].key: {Pole}: unknown field "Pole" (not in mapping.fields)`},
		{"prop ref in property", node("class: StreetLight", "key: x", "properties: {status: OK, poleNumber: \"{@status}\"}"), `property references are allowed in key, name and edges only`},
		{"unmapped prop ref", node("class: StreetLight", "key: \"{@poleNumber}\"", "properties: {status: OK}"), `{@poleNumber}: property "poleNumber" is not mapped on this node`},
		{"colon in key literal", node("class: StreetLight", "key: \"a:{PoleID}\"", "properties: {status: OK}"), `literal text "a:" in a key`},
		{"layout without zone", node("class: StreetLight", "key: x", "properties: {status: OK, installedAt: {field: D, layout: \"1/2/06\"}}"), `layout "1/2/06" has no zone: set timezone`},
		{"bad timezone", node("class: StreetLight", "key: x", "properties: {status: OK, installedAt: {field: D, layout: \"1/2/06\", timezone: Mars/Olympus}}"), `unknown timezone "Mars/Olympus"`},
		{"layout on non-time", node("class: StreetLight", "key: x", "properties: {status: OK, poleNumber: {field: D, layout: \"2006\"}}"), `layout applies to DateTime values, not String`},
		{"two sources", node("class: StreetLight", "key: x", "properties: {status: OK, poleNumber: {field: D, value: x}}"), `only one of field, template, value and last_of`},
		{"provenance property", node("class: StreetLight", "key: x", "properties: {status: OK, srcUpdatedAt: \"{D}\"}"), `srcUpdatedAt is provenance: set it with the node's src_updated_at`},
		{"relation as property", node("class: StreetLight", "key: x", "properties: {status: OK, locatedIn: \"{D}\"}"), `"locatedIn" is a relation of class StreetLight: map it under edges`},
		{"location on unlocated class", node("class: Datastream", "key: x", "properties: {unitUcum: /d}", "location: geometry"), `connectors[0].mapping.nodes[0].location: class Datastream carries no geometry`},
		{"location half", node("class: StreetLight", "key: x", "properties: {status: OK}", "location: {lat: Lat}"), `lat and lon are both required`},
		{"locate_in point class", node("class: StreetLight", "key: x", "properties: {status: OK}", "locate_in: Incident"), `class Incident has no polygon geometry`},
		{"locate_in unknown", node("class: StreetLight", "key: x", "properties: {status: OK}", "locate_in: Ward"), `locate_in: unknown class "Ward"`},
		{"unknown relation", node("class: StreetLight", "key: x", "properties: {status: OK}", "edges: [{rel: LIT_BY, to_id: x}]"), `connectors[0].mapping.nodes[0].edges[0].rel: unknown relation "LIT_BY"`},
		{"relation wrong from", node("class: StreetLight", "key: x", "properties: {status: OK}", "edges: [{rel: OBSERVED_BY, to_id: x}]"), `relation OBSERVED_BY does not start at class StreetLight`},
		{"relation wrong to", node("class: Datastream", "key: x", "properties: {unitUcum: /d}", "edges: [{rel: OBSERVED_BY, to_class: City, to_key: x}]"), `relation OBSERVED_BY does not lead to class City`},
		{"edge unknown ref", node("class: Datastream", "key: x", "properties: {unitUcum: /d}", "edges: [{rel: OBSERVED_BY, to: sensor}]"), `no node template with ref "sensor"`},
		{"edge two targets", node("class: Datastream", "key: x", "properties: {unitUcum: /d}", "edges: [{rel: OBSERVED_BY, to_id: a, to_class: Sensor, to_key: b}]"), `give exactly one of to, to_id and to_class`},
		{"edge unknown prop", node("class: StreetLight", "key: x", "properties: {status: OK}", "edges: [{rel: PART_OF, to_id: x, properties: {role: x}}]"), `relation PART_OF has no property "role"`},
		{"repeat constant key", node("class: Observation", "key: x", "repeat: '^y(\\d+)$'", "properties: {phenomenonTime: {template: \"{$1}\", layout: \"2006\", timezone: UTC}}"), `a repeated node needs a key that varies`},
		{"resolve_by scheme not produced", node("class: StreetLight", "key: x", "properties: {status: OK}", "resolve_by: [poleNumber]"), `testdata/test.yaml:10: connectors[0].mapping.nodes[0].resolve_by[0]: scheme "poleNumber" is produced neither by external_ids nor by a properties.externalIds template starting with "poleNumber:"`},
		{"resolve_by constant identifier", node("class: StreetLight", "key: x", "properties: {status: OK}", "external_ids: {poleNumber: P-1}", "resolve_by: poleNumber"), `testdata/test.yaml:11: connectors[0].mapping.nodes[0].resolve_by: scheme "poleNumber" comes from a constant: every record would resolve to one node`},
		{"resolve_by constant externalIds", node("class: StreetLight", "key: x", "properties: {status: OK, externalIds: {value: [\"poleNumber:P-1\"]}}", "resolve_by: [poleNumber]"), `resolve_by[0]: scheme "poleNumber" comes from a constant`},
		{"resolve_by observation", node("class: Observation", "key: \"{T}\"", "properties: {phenomenonTime: {field: T}}", "external_ids: {ds: \"{D}\"}", "resolve_by: [ds]"), `testdata/test.yaml:11: connectors[0].mapping.nodes[0].resolve_by: class Observation cannot resolve_by: observations are never merged across sources (ONTOLOGY.md §4)`},
		{"resolve_by twice", node("class: StreetLight", "key: x", "properties: {status: OK}", "external_ids: {poleNumber: \"{P}\"}", "resolve_by: [poleNumber, poleNumber]"), `resolve_by[1]: scheme "poleNumber" is listed twice`},
		{"resolve_by empty", node("class: StreetLight", "key: x", "properties: {status: OK}", "resolve_by: []"), `resolve_by: list at least one scheme`},
		{"resolve_by urn", node("class: StreetLight", "key: x", "properties: {status: OK}", "resolve_by: [urn]"), `scheme "urn" needs no resolve_by: a resolving node is always found by its own URN`},
		{"external_ids reserved urn", node("class: StreetLight", "key: x", "properties: {status: OK}", "external_ids: {urn: \"{P}\"}"), `testdata/test.yaml:10: connectors[0].mapping.nodes[0].external_ids.urn: scheme "urn" is reserved`},
		{"external_ids bad scheme", node("class: StreetLight", "key: x", "properties: {status: OK}", "external_ids: {pole_number: \"{P}\"}"), `external_ids.pole_number: scheme "pole_number" must be a lower camel case word`},
		{"external_ids bad value", node("class: StreetLight", "key: x", "properties: {status: OK}", "external_ids: {poleNumber: \"{P\"}"), `external_ids.poleNumber: template "{P": unclosed {`},
		{"resolve_by templates disagree", head + "        - {class: StreetLight, key: \"{P}\", properties: {status: OK}, external_ids: {poleNumber: \"{P}\"}, resolve_by: [poleNumber]}\n        - {ref: other, class: StreetLight, key: \"{Q}\", properties: {status: OK}}\n", `testdata/test.yaml:8: connectors[0].mapping.nodes[1]: node templates of class StreetLight must declare the same resolve_by (nodes[0] declares [poleNumber], this one [])`},
		{"duplicate names", "connectors:\n  - {name: a, source: xx, kind: memory, mapping: {nodes: [{class: City, key: x, properties: {officialCode: x}}]}}\n  - {name: a, source: xx, kind: memory, mapping: {nodes: [{class: City, key: x, properties: {officialCode: x}}]}}\n", `testdata/test.yaml:3: connectors[1].name: duplicate connector name "a"`},
		{"missing mapping", "connectors:\n  - {name: a, source: xx, kind: memory}\n", `connectors[0].mapping: mapping is required`},
		{"empty file", "", `empty connector file`},
		{"not yaml", "connectors: [\n", `testdata/test.yaml: yaml:`},
	}
	ont := mustOntology(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("testdata/test.yaml", []byte(tt.yaml), ont, testRegistry())
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %q, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error does not match ErrConfig: %v", err)
			}
		})
	}
}

// TestParseReportsAll checks that several problems are reported at once.
func TestParseReportsAll(t *testing.T) {
	src := "connectors:\n  - name: a\n    source: xx\n    kind: memory\n    mapping:\n      nodes:\n        - class: StreetLight\n          key: x\n          properties: {status: OK, watts: 1, lampCount: many}\n"
	_, err := Parse("f.yaml", []byte(src), mustOntology(t), testRegistry())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`f.yaml:9: connectors[0].mapping.nodes[0].properties.watts: unknown property`, `f.yaml:9: connectors[0].mapping.nodes[0].properties.lampCount: "many" is not an integer`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestRegistryDuplicatePanics(t *testing.T) {
	r := NewRegistry()
	r.Register(memoryKind())
	defer func() {
		if recover() == nil {
			t.Error("second Register did not panic")
		}
	}()
	r.Register(memoryKind())
}

func TestRawConfigDecode(t *testing.T) {
	type inner struct {
		Key string `yaml:"key"`
	}
	type cfg struct {
		Path  string `yaml:"path"`
		Join  *inner `yaml:"join"`
		Count int    `yaml:"count"`
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"ok", "path: a.csv\njoin: {key: id}\n", ""},
		{"unknown nested", "path: a.csv\njoin:\n  kee: id\n", `dir/c.yaml:3: config.join.kee: unknown field "kee" (allowed: key)`},
		{"type", "count: [1]\n", `dir/c.yaml:1: config.count: cannot unmarshal`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := ParseRawConfig("dir/c.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			var c cfg
			err = raw.Decode(&c)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if c.Path != "a.csv" || c.Join == nil || c.Join.Key != "id" {
					t.Errorf("decoded %+v", c)
				}
				if got := raw.ResolvePath(c.Path); got != "dir/a.csv" {
					t.Errorf("ResolvePath = %q", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode error = %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(validConnector))
	f.Add([]byte("connectors:\n  - {name: a, source: xx, kind: memory, mapping: {nodes: [{class: City, key: \"{a}~{$1}\", repeat: x, properties: {officialCode: x}}]}}\n"))
	f.Add([]byte("connectors:\n  - {name: a, source: xx, kind: memory, mapping: {nodes: [{class: StreetLight, key: \"{P}\", properties: {status: OK, externalIds: \"assetTag:{T}\"}, external_ids: {poleNumber: \"{P}\"}, resolve_by: [poleNumber, assetTag]}]}}\n"))
	ont := mustOntology(f)
	reg := testRegistry()
	f.Fuzz(func(t *testing.T, b []byte) {
		conns, err := Parse("fuzz.yaml", b, ont, reg)
		if err == nil && len(conns) == 0 {
			t.Fatal("no error and no connectors")
		}
	})
}
