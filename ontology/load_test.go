package ontology

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseMini(t *testing.T) {
	data, err := os.ReadFile("testdata/mini.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o, err := Parse("testdata/mini.yaml", data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	sl := o.Class("StreetLight")
	if got := strings.Join(sl.Labels(), ","); got != "Entity,Asset,StreetLight" {
		t.Errorf("labels = %q", got)
	}
	if sl.Geometry != GeometryPoint {
		t.Errorf("inherited geometry = %q", sl.Geometry)
	}
	if sl.Property("name") == nil || sl.Property("status").Enum == nil {
		t.Errorf("inherited properties not resolved")
	}
	if got := strings.Join(o.Class("Asset").ConcreteDescendants(), ","); got != "Camera,StreetLight" {
		t.Errorf("descendants = %q", got)
	}
	if e := o.Class("District").RelationField("contains"); e == nil || e.Target.Name != "Entity" || e.Direction != In {
		t.Errorf("inverse end = %+v", e)
	}
	if e := sl.RelationField("locatedIn"); e == nil || e.Many() {
		t.Errorf("locatedIn end = %+v, want single", e)
	}
}

func TestParseErrors(t *testing.T) {
	base := "namespace: x\nclasses:\n  Entity: {abstract: true}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown parent", base + "  Light:\n    parent: Asett\n", "f.yaml:4: class Light: unknown parent class \"Asett\""},
		{"duplicate class", base + "  Entity: {}\n", "f.yaml:4: duplicate key \"Entity\""},
		{"unknown type", base + "  Light:\n    parent: Entity\n    properties:\n      watts: Flaot\n", "f.yaml:7: class Light: property watts: unknown type \"Flaot\""},
		{"relation to unknown class", base + "relations:\n  LIT_BY:\n    from: Entity\n    to: Lamp\n    field: litBy\n", "f.yaml:5: relation LIT_BY: unknown class \"Lamp\" in to"},
		{"unknown key", base + "  Light:\n    parnt: Entity\n", "f.yaml:5: class Light: unknown field \"parnt\""},
		{"reserved property", base + "  Light:\n    parent: Entity\n    properties:\n      location: String\n", "\"location\" is reserved"},
		{"duplicate inherited property", "namespace: x\nclasses:\n  Entity:\n    abstract: true\n    properties: {name: String}\n  Light:\n    parent: Entity\n    properties: {name: String}\n", "f.yaml:8: class Light: property name: duplicate property \"name\""},
		{"concrete with children", "namespace: x\nclasses:\n  Entity: {}\n  Light: {parent: Entity}\n", "concrete class cannot have subclasses"},
		{"bad enum value", "namespace: x\nenums:\n  S: [ok]\nclasses:\n  Entity: {}\n", "value \"ok\" is not SCREAMING_SNAKE_CASE"},
		{"two roots", base + "  Other: {}\n", "exactly one root class"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %q, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	data, _ := os.ReadFile("testdata/mini.yaml")
	f.Add(data)
	f.Add([]byte("namespace: x\nclasses:\n  Entity: {}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := Parse("fuzz.yaml", b)
		if err == nil && o.Root() == nil {
			t.Fatal("valid ontology without root")
		}
	})
}
