package core

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

func TestWhere(t *testing.T) {
	ont := ontology.Default()
	a := NewArgs(ont, 1000)
	tests := []struct {
		name   string
		class  string
		in     map[string]any
		want   graph.Filter
		class2 string // the class the filter narrows to
	}{
		{"empty", "StreetLight", map[string]any{}, nil, "StreetLight"},
		{"eq and in", "StreetLight", map[string]any{
			"poleNumber": map[string]any{"eq": "791-2"},
			"status":     map[string]any{"in": []any{"OK", "FAULTY"}},
		}, graph.And{
			graph.Cmp{Field: "poleNumber", Op: graph.OpEq, Value: "791-2"},
			graph.Cmp{Field: "status", Op: graph.OpIn, Value: []any{"OK", "FAULTY"}},
		}, "StreetLight"},
		{"empty in list matches nothing", "StreetLight", map[string]any{"status": map[string]any{"in": []any{}}},
			graph.Cmp{Field: "status", Op: graph.OpIn, Value: []any{}}, "StreetLight"},
		{"variables give json numbers", "Neighbourhood", map[string]any{"population": map[string]any{"gte": int64(1000), "lt": 2500.0}},
			graph.And{
				graph.Cmp{Field: "population", Op: graph.OpGte, Value: int64(1000)},
				graph.Cmp{Field: "population", Op: graph.OpLt, Value: int64(2500)},
			}, "Neighbourhood"},
		{"datetime", "Incident", map[string]any{"reportedAt": map[string]any{"gte": "2016-01-01T00:00:00-05:00"}},
			graph.Cmp{Field: "reportedAt", Op: graph.OpGte, Value: time.Date(2016, 1, 1, 5, 0, 0, 0, time.UTC)}, "Incident"},
		{"geo and boolean logic", "StreetLight", map[string]any{
			"near": map[string]any{"lat": 42.36, "lon": -71.1, "meters": int64(50)},
			"or":   []any{map[string]any{"name": map[string]any{"contains": "mass"}}, map[string]any{"not": map[string]any{"status": map[string]any{"isNull": true}}}},
		}, graph.And{
			graph.Near{Center: graph.Point{Lat: 42.36, Lon: -71.1}, Meters: 50},
			graph.Or{graph.Cmp{Field: "name", Op: graph.OpContains, Value: "mass"}, graph.Not{F: graph.Cmp{Field: "status", Op: graph.OpIsNull, Value: true}}},
		}, "StreetLight"},
		{"class narrows an abstract class", "Asset", map[string]any{"class": "STREET_LIGHT", "withinArea": "urn:x"},
			graph.WithinArea{AreaID: "urn:x"}, "StreetLight"},
		{"provenance", "Entity", map[string]any{"_provenance": map[string]any{"source": map[string]any{"eq": "cambridge-gis"}}},
			graph.Cmp{Field: "_source", Op: graph.OpEq, Value: "cambridge-gis"}, "Entity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, c, err := a.Where(ont.Class(tt.class), RolePublic, "where", tt.in)
			if err != nil {
				t.Fatalf("Where: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("filter (-want +got):\n%s", diff)
			}
			if c.Name != tt.class2 {
				t.Errorf("class = %s, want %s", c.Name, tt.class2)
			}
		})
	}
}

func TestWhereErrors(t *testing.T) {
	ont := ontology.Default()
	a := NewArgs(ont, 1000)
	tests := []struct {
		name, class string
		in          map[string]any
		wantPath    string
	}{
		{"latitude out of range", "StreetLight", map[string]any{"near": map[string]any{"lat": 200.0, "lon": 0.0, "meters": 1.0}}, "where.near.lat"},
		{"negative radius", "StreetLight", map[string]any{"near": map[string]any{"lat": 1.0, "lon": 0.0, "meters": -1.0}}, "where.near.meters"},
		{"inverted box", "StreetLight", map[string]any{"within": map[string]any{"minLat": 2.0, "minLon": 0.0, "maxLat": 1.0, "maxLon": 1.0}}, "where.within"},
		{"bad date", "Incident", map[string]any{"reportedAt": map[string]any{"lt": "soon"}}, "where.reportedAt.lt"},
		{"unknown property", "StreetLight", map[string]any{"wattage": map[string]any{"eq": 1.0}}, "where.wattage"},
		{"nested class", "Asset", map[string]any{"and": []any{map[string]any{"class": "STREET_LIGHT"}}}, "where.and[0].class"},
		{"class not a subclass", "Asset", map[string]any{"class": "INCIDENT"}, "where.class"},
		{"fraction for int", "Neighbourhood", map[string]any{"population": map[string]any{"eq": 1.5}}, "where.population.eq"},
		{"bad enum in list", "StreetLight", map[string]any{"status": map[string]any{"in": []any{"OK", "BROKEN"}}}, "where.status.in[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := a.Where(ont.Class(tt.class), RolePublic, "where", tt.in)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Where(%v) error = %v, want an InputError", tt.in, err)
			}
			if ie.Path != tt.wantPath {
				t.Errorf("path = %q, want %q (%v)", ie.Path, tt.wantPath, err)
			}
			if !errors.Is(err, graph.ErrInvalid) {
				t.Error("error does not match graph.ErrInvalid")
			}
		})
	}
}

func TestFirstAndOrder(t *testing.T) {
	ont := ontology.Default()
	a := NewArgs(ont, 100)
	neg, big, ok := -1, 101, 7
	if _, err := a.First("first", &neg, 20); err == nil {
		t.Error("negative first accepted")
	}
	if _, err := a.First("first", &big, 20); err == nil {
		t.Error("first above the maximum accepted")
	}
	if n, err := a.First("first", &ok, 20); err != nil || n != 7 {
		t.Errorf("First(7) = %d, %v", n, err)
	}
	if n, _ := a.First("first", nil, 20); n != 20 {
		t.Errorf("default first = %d", n)
	}
	got, err := a.Order(ont.Class("Incident"), RolePublic, "orderBy", []map[string]any{{"field": "REPORTED_AT", "direction": "DESC"}, {"field": "PROVENANCE_FETCHED_AT"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []graph.Order{{Field: "reportedAt", Desc: true}, {Field: "_fetchedAt"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if _, err := a.Order(ont.Class("Incident"), RolePublic, "orderBy", []map[string]any{{"field": "NOPE"}}); err == nil {
		t.Error("unknown order field accepted")
	}
}

func TestRestrictedProperties(t *testing.T) {
	ont := ontology.Default()
	a := NewArgs(ont, 1000)
	camera := ont.Class("Camera")
	where := map[string]any{"streamRef": map[string]any{"startsWith": "rtsp://"}}
	_, _, err := a.Where(camera, RolePublic, "where", where)
	var fe *ForbiddenError
	if !errors.As(err, &fe) || fe.Need != RoleOperator || fe.Path != "where.streamRef" {
		t.Errorf("public filter on streamRef: err = %v, want ForbiddenError needing OPERATOR at where.streamRef", err)
	}
	if _, _, err := a.Where(camera, RoleOperator, "where", where); err != nil {
		t.Errorf("operator filter on streamRef: %v", err)
	}
	if _, err := a.Order(camera, RoleApp, "orderBy", []map[string]any{{"field": "STREAM_REF"}}); !errors.As(err, &fe) {
		t.Errorf("app ordering by streamRef: err = %v, want ForbiddenError", err)
	}
	group := "STREAM_REF"
	if _, err := a.OrderField(camera, RolePublic, "groupBy", &group); !errors.As(err, &fe) {
		t.Errorf("public grouping by streamRef: err = %v, want ForbiddenError", err)
	}
}
