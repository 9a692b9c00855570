package ontology

import (
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestDefaultLoads(t *testing.T) {
	o := Default()
	if o != Default() {
		t.Error("Default() returned a different ontology on the second call")
	}
	// The embedded copy is the file on disk.
	data, err := os.ReadFile(path.Base(DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(DefaultFile, data); err != nil {
		t.Fatalf("Parse(%s): %v", DefaultFile, err)
	}
	if got := len(o.Concrete()); got < 30 {
		t.Errorf("concrete classes = %d, want >= 30", got)
	}
	if got, want := len(o.Classes)-len(o.Concrete()), 9; got != want {
		t.Errorf("abstract classes = %d, want %d", got, want)
	}
	if r := o.Root(); r == nil || r.Name != "Entity" {
		t.Errorf("root = %v, want Entity", r)
	}
}

func TestDefaultHierarchy(t *testing.T) {
	o := Default()
	labels := []struct {
		class, want string
	}{
		{"StreetLight", "Entity,Asset,StreetLight"},
		{"Sensor", "Entity,Asset,Device,Sensor"},
		{"Hospital", "Entity,Place,Facility,Hospital"},
		{"BikeShareStation", "Entity,Place,Facility,BikeShareStation"},
		{"Agency", "Entity,Agent,Organization,Agency"},
		{"Neighbourhood", "Entity,Place,AdministrativeArea,Neighbourhood"},
		{"ServiceRequest", "Entity,Event,ServiceRequest"},
		{"IngestRun", "Entity,IngestRun"},
	}
	for _, tt := range labels {
		c := o.Class(tt.class)
		if c == nil {
			t.Errorf("class %s missing", tt.class)
			continue
		}
		if got := strings.Join(c.Labels(), ","); got != tt.want {
			t.Errorf("%s.Labels() = %q, want %q", tt.class, got, tt.want)
		}
	}
	abstract := []string{"Entity", "Agent", "Organization", "Place", "AdministrativeArea", "Facility", "Asset", "Device", "Event"}
	for _, c := range o.Classes {
		if got, want := c.Abstract, slices.Contains(abstract, c.Name); got != want {
			t.Errorf("%s.Abstract = %v, want %v", c.Name, got, want)
		}
	}
	if got := strings.Join(o.Class("Device").ConcreteDescendants(), ","); got != "Camera,EnergyMeter,Sensor,WaterMeter" {
		t.Errorf("Device.ConcreteDescendants() = %q", got)
	}
	geometry := map[string]string{
		"StreetLight": GeometryPoint, "District": GeometryPolygon, "Park": GeometryPolygon,
		"Street": GeometryLine, "Route": GeometryLine, "Stop": GeometryPoint,
		"VehiclePosition": GeometryPoint, "Incident": GeometryPoint, "Person": GeometryNone,
		"Observation": GeometryNone,
	}
	for name, want := range geometry {
		if got := o.Class(name).Geometry; got != want {
			t.Errorf("%s.Geometry = %q, want %q", name, got, want)
		}
	}
}

func TestDefaultProperties(t *testing.T) {
	o := Default()
	tests := []struct {
		class, prop string
		check       func(p *Property) bool
		what        string
	}{
		{"Camera", "streamRef", func(p *Property) bool { return p.Access == AccessOperator }, "operator access"},
		{"Person", "pseudonym", func(p *Property) bool { return p.Access == AccessOperator && p.Required }, "required, operator access"},
		{"WaterMeter", "accountRef", func(p *Property) bool { return p.Access == AccessOperator }, "operator access"},
		{"ServiceRequest", "publicToken", func(p *Property) bool { return p.Access == AccessAdmin && p.Indexed }, "admin access, indexed"},
		{"ServiceRequest", "status", func(p *Property) bool { return p.Enum != nil && p.Enum.Name == "ServiceRequestStatus" && p.Indexed }, "indexed ServiceRequestStatus"},
		{"ServiceRequest", "reportedAt", func(p *Property) bool { return p.Type == TypeDateTime && p.Required && p.Owner == "Event" }, "inherited DateTime!"},
		{"Observation", "phenomenonTime", func(p *Property) bool { return p.Indexed && p.Required }, "indexed, required"},
		{"StreetLight", "powerRatingW", func(p *Property) bool { return p.Unit == "W" }, "unit W"},
		{"StreetLight", "name", func(p *Property) bool { return p.Searchable && p.IRI == "schema:name" }, "searchable schema:name"},
		{"Incident", "incidentType", func(p *Property) bool { return p.Enum != nil && slices.Contains(p.Enum.Values, "ROAD_ACCIDENT") }, "enum with ROAD_ACCIDENT"},
		{"Incident", "objects", func(p *Property) bool { return p.List && p.Type == TypeString }, "[String]"},
		{"ParkingSpot", "smartMeter", func(p *Property) bool { return p.Type == TypeBoolean }, "Boolean"},
		{"BikeShareStation", "capacity", func(p *Property) bool { return p.Owner == "Facility" }, "inherited from Facility"},
		{"Datastream", "aggregation", func(p *Property) bool { return p.Enum != nil && slices.Contains(p.Enum.Values, "MEAN") }, "enum with MEAN"},
	}
	for _, tt := range tests {
		p := o.Class(tt.class).Property(tt.prop)
		if p == nil {
			t.Errorf("%s.%s missing", tt.class, tt.prop)
			continue
		}
		if !tt.check(p) {
			t.Errorf("%s.%s = %+v, want %s", tt.class, tt.prop, p, tt.what)
		}
	}
	// Provenance lives outside the property map (graph.Provenance).
	provenance := []string{"src", "srcKey", "connector", "run", "ingestRunId", "fetchedAt", "ingestedAt", "srcUpdatedAt", "validFrom", "validTo", "sources"}
	for _, c := range o.Classes {
		for _, p := range c.Own {
			if slices.Contains(provenance, p.Name) {
				t.Errorf("%s declares provenance field %q as a property", c.Name, p.Name)
			}
		}
	}
	for _, r := range o.Relations {
		for _, p := range r.Props {
			if slices.Contains(provenance, p.Name) {
				t.Errorf("relation %s declares provenance field %q as a property", r.Name, p.Name)
			}
		}
	}
}

var curieRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_.-]*):(.+)$`)

// checkIRI reports why iri is neither an absolute http(s) IRI nor a CURIE
// with a declared prefix.
func checkIRI(o *Ontology, iri string) string {
	if strings.HasPrefix(iri, "http://") || strings.HasPrefix(iri, "https://") {
		return ""
	}
	m := curieRE.FindStringSubmatch(iri)
	if m == nil {
		return "not a CURIE"
	}
	if _, ok := o.Prefixes[m[1]]; !ok {
		return "undeclared prefix " + m[1]
	}
	return ""
}

func TestDefaultIRIs(t *testing.T) {
	o := Default()
	for _, c := range o.Classes {
		if len(c.IRIs) == 0 {
			t.Errorf("class %s has no external IRI", c.Name)
		}
		if c.Description == "" {
			t.Errorf("class %s has no description", c.Name)
		}
		for _, iri := range c.IRIs {
			if why := checkIRI(o, iri); why != "" {
				t.Errorf("class %s: IRI %q: %s", c.Name, iri, why)
			}
		}
		for _, p := range c.Own {
			if p.IRI == "" {
				continue
			}
			if why := checkIRI(o, p.IRI); why != "" {
				t.Errorf("%s.%s: IRI %q: %s", c.Name, p.Name, p.IRI, why)
			}
		}
	}
	for _, r := range o.Relations {
		if r.IRI != "" {
			if why := checkIRI(o, r.IRI); why != "" {
				t.Errorf("relation %s: IRI %q: %s", r.Name, r.IRI, why)
			}
		}
	}
	if o.Namespace != "https://data.example-city.org/def/cdf#" {
		t.Errorf("namespace = %q", o.Namespace)
	}
}

func TestDefaultRelations(t *testing.T) {
	o := Default()
	if got := len(o.Relations); got < 20 {
		t.Errorf("relations = %d, want >= 20", got)
	}
	for _, r := range o.Relations {
		if r.To == nil || len(r.From) != len(r.FromNames) || r.InverseTarget == nil {
			t.Errorf("relation %s does not resolve: to=%v from=%v inverse target=%v", r.Name, r.To, r.From, r.InverseTarget)
		}
		if r.Description == "" {
			t.Errorf("relation %s has no description", r.Name)
		}
		if r.Inverse == "" {
			t.Errorf("relation %s has no inverse field", r.Name)
		}
	}
	// A field name means one relation end everywhere, so that it maps to one
	// IRI in the JSON-LD context.
	type end struct {
		rel string
		dir Direction
	}
	fields := map[string]end{}
	for _, c := range o.Classes {
		for _, e := range c.Relations() {
			if prev, ok := fields[e.Field]; ok && prev != (end{e.Relation.Name, e.Direction}) {
				t.Errorf("field %q is used by %s/%s and %s/%s", e.Field, prev.rel, prev.dir, e.Relation.Name, e.Direction)
			}
			fields[e.Field] = end{e.Relation.Name, e.Direction}
		}
	}
	ends := []struct {
		class, field, target string
		many                 bool
	}{
		{"StreetLight", "locatedIn", "Place", true},
		{"District", "contains", "Entity", true},
		{"Sensor", "hostedBy", "Entity", false},
		{"StreetLight", "hosts", "Device", true},
		{"Datastream", "observedBy", "Device", false},
		{"Observation", "datastream", "Datastream", false},
		{"Trip", "calls", "Stop", true},
		{"Stop", "calledAtBy", "Trip", true},
		{"ServiceRequest", "statusHistory", "StatusChange", true},
		{"StatusChange", "event", "Event", false},
		{"ServiceRequest", "forService", "Service", false},
		{"Agency", "operates", "Entity", true},
		{"BikeShareStation", "operatedBy", "Organization", true},
	}
	for _, tt := range ends {
		e := o.Class(tt.class).RelationField(tt.field)
		if e == nil {
			t.Errorf("%s.%s missing", tt.class, tt.field)
			continue
		}
		if e.Target.Name != tt.target || e.Many() != tt.many {
			t.Errorf("%s.%s = (target %s, many %v), want (%s, %v)", tt.class, tt.field, e.Target.Name, e.Many(), tt.target, tt.many)
		}
	}
	if p := o.Relation("CALLS_AT").Props; len(p) == 0 || p[0].Name != "stopSequence" || !p[0].Required {
		t.Errorf("CALLS_AT properties = %+v, want stopSequence Int! first", p)
	}
}
