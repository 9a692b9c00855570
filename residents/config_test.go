package residents_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/residents"
)

func TestLoadServicesDemo(t *testing.T) {
	t.Parallel()
	cfg := MustServices(t)
	var codes []string
	assets := map[string]string{}
	for _, s := range cfg.Services {
		codes = append(codes, s.Code)
		if s.Asset != nil {
			assets[s.Code] = s.Asset.Class
		}
	}
	wantCodes := []string{"streetlight-out", "pothole", "graffiti", "traffic-signal", "parking-meter", "bike-share-station", "missed-trash"}
	if !slices.Equal(codes, wantCodes) {
		t.Errorf("codes = %v, want %v", codes, wantCodes)
	}
	wantAssets := map[string]string{"streetlight-out": "StreetLight", "traffic-signal": "TrafficSignal", "parking-meter": "ParkingSpot", "bike-share-station": "BikeShareStation"}
	if diff := cmp.Diff(wantAssets, assets); diff != "" {
		t.Errorf("asset classes (-want +got):\n%s", diff)
	}
	if cfg.AreaClass != "Neighbourhood" || cfg.CityClass != "City" || cfg.Source != "residents" || cfg.Service("streetlight-out").Asset.Within != 50 {
		t.Errorf("config = %+v", cfg)
	}
	if s := cfg.Service("streetlight-out"); s.Line != 29 || s.Group != "Streets & Sidewalks" || s.Domain != "ENERGY" {
		t.Errorf("streetlight-out = %+v", s)
	}
}

func TestParseServices(t *testing.T) {
	t.Parallel()
	ont := ontology.Default()
	full, err := residents.LoadServices("testdata/full.yaml", ont)
	if err != nil {
		t.Fatalf("full.yaml: %v", err)
	}
	light := &residents.AssetRule{Class: "StreetLight", Within: 50, Impact: "OUTAGE"}
	want := &residents.Config{
		File: "testdata/full.yaml", Source: "test-desk", Connector: "test-desk-1", AreaClass: "District", CityClass: "City",
		CityID: "urn:city:city:test:somewhere", MaxDescription: 500, MaxMediaURLs: 0, AreaRefresh: 90 * time.Minute,
		Services: []residents.Service{
			{Code: "streetlight.out_1", Name: "Street light out", Group: "Streets", Description: "A light is out.",
				Keywords: []string{"light", "lamp post"}, Domain: "ENERGY", SLAHours: 36.5, Asset: light, Line: 11},
			{Code: "bin", Name: "Overflowing bin", Asset: &residents.AssetRule{Class: "WasteContainer", Within: residents.DefaultAssetDistance}, Line: 19},
			{Code: "lamp-flicker", Name: "Flickering lamp", Asset: light, Line: 22},
		},
	}
	if diff := cmp.Diff(want, full); diff != "" {
		t.Errorf("full.yaml (-want +got):\n%s", diff)
	}
	min, err := residents.LoadServices("testdata/minimal.yaml", ont)
	if err != nil {
		t.Fatal(err)
	}
	def := residents.DefaultConfig()
	def.File, def.Services = "testdata/minimal.yaml", []residents.Service{{Code: "pothole", Name: "Pothole", Line: 3}}
	if diff := cmp.Diff(&def, min); diff != "" {
		t.Errorf("minimal.yaml (-want +got):\n%s", diff)
	}

	tests := []struct {
		name string
		yaml string
		want []string // every error, in order
	}{
		{"invalid.yaml", mustRead(t, "testdata/invalid.yaml"), []string{
			`x.yaml:4: services[0].asset.within: expected a distance such as 50m or 0.2km, got "50 feet"`,
			`x.yaml:7: services[1].colour: unknown field "colour" (allowed: code, name, group, description, keywords, domain, sla_hours, asset)`,
		}},
		{"validation after decoding", "services:\n  - code: a\n    name: A\n    asset: {class: Streetlight}\n  - code: a\n    name: \"\"\n", []string{
			`x.yaml:4: services[0].asset.class: unknown class "Streetlight"`,
			`x.yaml:5: services[1].code: duplicate service code "a" (first at services[0])`,
			`x.yaml:6: services[1].name: must not be empty`,
		}},
		{"unknown top-level key", "servces: []\n", []string{
			`x.yaml:1: servces: unknown field "servces" (allowed: source, connector, area_class, city_class, city_id, max_description, max_media_urls, area_refresh, services)`,
		}},
		{"no services", "area_class: Neighbourhood\n", []string{`x.yaml:1: services: no services declared`}},
		{"missing code and name", "services:\n  - group: Streets\n", []string{
			`x.yaml:2: services[0].code: code is required`, `x.yaml:2: services[0].name: name is required`,
		}},
		{"area class without polygons", "area_class: Street\ncity_class: Towne\nservices: [{code: a, name: A}]\n", []string{
			`x.yaml:1: area_class: class Street has no polygon geometry`, `x.yaml:2: city_class: unknown class "Towne"`,
		}},
		{"asset class without geometry", "services: [{code: a, name: A, asset: {class: Service}}]\n", []string{
			`x.yaml:1: services[0].asset.class: class Service has no geometry to measure a distance to`,
		}},
		{"distance out of range", "services:\n- {code: a, name: A, asset: {class: StreetLight, within: 6km}}\n- {code: b, name: B, asset: {class: StreetLight, within: -1}}\n", []string{
			`x.yaml:2: services[0].asset.within: distance must be above 0 and at most 5000m`,
			`x.yaml:3: services[1].asset.within: distance must be above 0 and at most 5000m`,
		}},
		{"enums", "services:\n- code: a\n  name: A\n  domain: LIGHTING\n  asset:\n    class: StreetLight\n    impact: BROKEN\n", []string{
			`x.yaml:4: services[0].domain: "LIGHTING" is not a ServiceDomain`,
			`x.yaml:7: services[0].asset.impact: "BROKEN" is not a Impact`,
		}},
		{"bad code", "services: [{code: 'street light', name: A}]\n", []string{`x.yaml:1: services[0].code: service code "street light" must be`}},
		{"wrong types", "max_description: lots\narea_refresh: soon\nservices:\n  - code: [a]\n    name: A\n    keywords: light\n    sla_hours: two\n", []string{
			`x.yaml:1: max_description: expected an integer`,
			`x.yaml:2: area_refresh: expected a duration such as 10m or 1h, got "soon"`,
			`x.yaml:4: services[0].code: expected a string`,
			`x.yaml:6: services[0].keywords: expected a list of strings`,
			`x.yaml:7: services[0].sla_hours: expected a number`,
		}},
		{"duplicate key", "services:\n  - code: a\n    code: b\n    name: A\n", []string{`x.yaml:3: services[0].code: duplicate key "code"`}},
		{"services not a list", "services: {code: a}\n", []string{`x.yaml:1: services: expected a list of services`}},
		{"not a mapping", "- code: a\n", []string{`x.yaml:1: expected a mapping`}},
		{"limits", "source: Residents\nmax_description: 0\nmax_media_urls: 51\narea_refresh: -1m\nservices: [{code: a, name: A}]\n", []string{
			`x.yaml:1: source: source code "Residents" must match [a-z0-9-]{2,32}`,
			`x.yaml:2: max_description: must be between 1 and 100000`,
			`x.yaml:3: max_media_urls: must be between 0 and 50`,
			`x.yaml:4: area_refresh: must not be negative`,
		}},
		{"empty file", "", []string{`x.yaml:1: empty service list`}},
		{"bad YAML", "services: [\n", []string{`x.yaml: line 1: did not find expected node content`}},
	}
	for _, tc := range tests {
		cfg, err := residents.ParseServices("x.yaml", []byte(tc.yaml), ont)
		if err == nil {
			t.Errorf("%s: ParseServices = %+v, want errors", tc.name, cfg)
			continue
		}
		if !errors.Is(err, residents.ErrConfig) {
			t.Errorf("%s: %v is not an ErrConfig", tc.name, err)
		}
		got := strings.Split(err.Error(), "\n")
		if len(got) != len(tc.want) {
			t.Errorf("%s: errors\n%s\nwant\n%s", tc.name, err, strings.Join(tc.want, "\n"))
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.want[i]) {
				t.Errorf("%s: error %d = %q, want %q", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ont := ontology.Default()
	cfg := residents.DefaultConfig()
	cfg.Services = []residents.Service{{Code: "x", Name: "X", Asset: &residents.AssetRule{Class: "TrafficSignal", Within: 30}}}
	if err := cfg.Validate(ont); err != nil {
		t.Errorf("Validate: %v", err)
	}
	cfg.AreaClass = "Nope"
	err := cfg.Validate(ont)
	if !errors.Is(err, residents.ErrConfig) || err.Error() != `service list: area_class: unknown class "Nope"` {
		t.Errorf("Validate = %v", err)
	}
	if _, err := residents.New(nil, ont, cfg); err == nil {
		t.Error("New without a store succeeded")
	}
	if _, err := residents.New(MustDemoStore(t), ont, cfg); !errors.Is(err, residents.ErrConfig) {
		t.Errorf("New with a bad config: %v", err)
	}
	// an ontology without the classes the desk writes
	small, err := ontology.Parse("small.yaml", []byte("version: 0.0.1\nnamespace: https://x.example/#\nclasses:\n  Entity: {abstract: true}\n  Place: {parent: Entity, abstract: true, geometry: point}\n  Neighbourhood: {parent: Place, geometry: polygon}\n  City: {parent: Place, geometry: polygon}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = residents.DefaultConfig()
	cfg.Services = []residents.Service{{Code: "x", Name: "X"}}
	if _, err := residents.New(MustDemoStore(t), small, cfg); err == nil || !strings.Contains(err.Error(), "class ServiceRequest") {
		t.Errorf("New with an ontology lacking ServiceRequest: %v", err)
	}
}

// TestSeed writes the services and their groups once.
func TestSeed(t *testing.T) {
	t.Parallel()
	d, st, _ := MustDesk(t) // seeds once
	before := mustWrites(t, st)
	if err := d.Seed(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := mustWrites(t, st); after != before {
		t.Errorf("a second Seed wrote: %+v → %+v", before, after)
	}
	p, err := st.Find(t.Context(), graph.FindQuery{Class: "Service", First: 50, Count: true, Order: []graph.Order{{Field: "name"}}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range p.Nodes {
		names = append(names, n.Props["name"].(string))
	}
	want := []string{"Bike share station issue", "Graffiti", "Missed trash pickup", "Parking meter broken", "Pothole",
		"Street light out", "Streets & Sidewalks", "Traffic & Parking", "Traffic signal problem", "Trash & Recycling"}
	if !slices.Equal(names, want) {
		t.Errorf("services %v, want %v", names, want)
	}
	sl := mustNode(t, st, "urn:city:service:residents:streetlight-out")
	if sl.Props["serviceCode"] != "streetlight-out" || sl.Props["requestable"] != true || sl.Props["slaHours"] != 120.0 || sl.Props["domain"] != "ENERGY" {
		t.Errorf("streetlight-out = %v", sl.Props)
	}
	if kw, _ := sl.Props["keywords"].([]any); len(kw) != 5 || kw[0] != "street light" {
		t.Errorf("keywords = %v", sl.Props["keywords"])
	}
	if ids, _ := neighbors(t, st, sl.ID, "PART_OF"); len(ids) != 1 || ids[0] != "urn:city:service:residents:group~Streets%20&%20Sidewalks" {
		t.Errorf("PART_OF %v", ids)
	}
	group := mustNode(t, st, "urn:city:service:residents:group~Streets%20&%20Sidewalks")
	if group.Props["requestable"] != false {
		t.Errorf("group = %v", group.Props)
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzLoadServices feeds service lists to the loader: it must never panic,
// and what it accepts must validate and be usable.
func FuzzLoadServices(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	seeds = append(seeds, servicesFile)
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("services: [{code: a, name: A, asset: {class: StreetLight, within: 1e400}}]"))
	f.Add([]byte("a: &a [*a]\nservices: *a"))
	f.Add([]byte("services:\n  - &s {code: a, name: A}\n  - *s\n"))
	ont := ontology.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := residents.ParseServices("fuzz.yaml", data, ont)
		if err != nil {
			// every problem is a positioned config error
			var list []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				list = j.Unwrap()
			} else {
				list = []error{err}
			}
			for _, e := range list {
				var ce *residents.ConfigError
				if !errors.As(e, &ce) || ce.File != "fuzz.yaml" {
					t.Fatalf("error %v is not a *ConfigError of fuzz.yaml", e)
				}
			}
			return
		}
		if err := cfg.Validate(ont); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		for _, s := range cfg.Services {
			if cfg.Service(s.Code) == nil || s.Name == "" {
				t.Fatalf("service %+v", s)
			}
			if s.Asset != nil && !(s.Asset.Within > 0 && s.Asset.Within <= residents.MaxAssetDistance) {
				t.Fatalf("asset distance %v", s.Asset.Within)
			}
		}
	})
}
