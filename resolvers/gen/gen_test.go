package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGenerateExtraClass generates a whole API from a test ontology with an
// extra class (Hydrant) and relation (SUPPLIES) in a temporary module, with
// no resolver written for either, compiles it, and queries it end to end
// over HTTP against the embedded store.
func TestGenerateExtraClass(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a generated module; skipped with -short")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	goVersion := strings.Fields(strings.SplitN(read(filepath.Join(repo, "go.mod")), "\ngo ", 2)[1])[0]
	write("go.mod", "module example.com/extcity\n\ngo "+goVersion+"\n\nrequire github.com/cityhub/cityhub v0.0.0\n\nreplace github.com/cityhub/cityhub => "+repo+"\n")
	write("go.sum", read(filepath.Join(repo, "go.sum")))
	write("ext.yaml", read("testdata/ext.yaml"))
	write("schema/common.graphqls", read(filepath.Join(repo, "schema/common.graphqls")))
	gqlgen := strings.ReplaceAll(read(filepath.Join(repo, "gqlgen.yml")), "github.com/cityhub/cityhub/resolvers/model", "example.com/extcity/resolvers/model")
	write("gqlgen.yml", gqlgen)
	write("resolvers/resolver.go", read(filepath.Join(repo, "resolvers/resolver.go")))
	common := read(filepath.Join(repo, "resolvers/common.resolvers.go"))
	for _, pkg := range []string{"generated", "model"} {
		common = strings.ReplaceAll(common, `"github.com/cityhub/cityhub/resolvers/`+pkg+`"`, `"example.com/extcity/resolvers/`+pkg+`"`)
	}
	write("resolvers/common.resolvers.go", common)
	write("main.go", read("testdata/extapp.go.txt"))

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = tmp
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("go", "run", "github.com/cityhub/cityhub/resolvers/gen", "-root", ".", "-ontology", "ext.yaml", "-config", "gqlgen.yml")
	for _, name := range []string{"ontology.resolvers.go", "entity.resolvers.go"} {
		resolversSrc := read(filepath.Join(tmp, "resolvers", name))
		if strings.Contains(resolversSrc, "not implemented") {
			t.Errorf("generated resolvers contain unimplemented bodies:\n%s", resolversSrc)
		}
	}
	// the federation entity resolvers batch: one engine call per class
	if src := read(filepath.Join(tmp, "resolvers", "entity.resolvers.go")); !strings.Contains(src,
		"FindManyHydrantByIDs(ctx context.Context, reps []*model.HydrantByIDsInput) ([]*model.Hydrant, error)") ||
		!strings.Contains(src, `r.Engine.Entities(ctx, "Hydrant", ids)`) {
		t.Errorf("no batched Hydrant entity resolver:\n%s", src)
	}
	out := run("go", "run", ".")
	var got struct {
		Data   map[string]any `json:"data"`
		Errors []any          `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &got); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, out)
	}
	if len(got.Errors) > 0 {
		t.Fatalf("errors: %v", got.Errors)
	}
	want := map[string]any{
		"hydrants": map[string]any{
			"totalCount": 1.0,
			"nodes": []any{map[string]any{
				"id": "urn:city:hydrant:test:h1", "name": "H-1", "flowGpm": 1250.5, "status": "OK",
				"location":    map[string]any{"lat": 42.36, "lon": -71.11},
				"_provenance": map[string]any{"source": "test"},
				"supplies": map[string]any{"edges": []any{map[string]any{
					"pressureKpa": 550.0,
					"node": map[string]any{"name": "Riverside", "officialCode": "D1",
						"suppliedBy": map[string]any{"totalCount": 1.0, "nodes": []any{map[string]any{"id": "urn:city:hydrant:test:h1"}}}},
				}}},
			}},
		},
		"assets": map[string]any{"nodes": []any{
			map[string]any{"__typename": "Hydrant", "id": "urn:city:hydrant:test:h1"},
			map[string]any{"__typename": "Hydrant", "id": "urn:city:hydrant:test:h2"},
		}},
		"_entities": []any{
			map[string]any{"__typename": "Hydrant", "name": "H-2", "status": "FAULTY"},
			map[string]any{"__typename": "District", "officialCode": "D1"},
			nil,
			nil,
		},
	}
	service, _ := got.Data["_service"].(map[string]any)
	sdl, _ := service["sdl"].(string)
	for _, def := range []string{
		`type Hydrant implements Node & Entity & Asset @key(fields: "id") {`,
		`type District implements Node & Entity & Place @key(fields: "id") {`,
		"interface Asset implements Node & Entity {",
	} {
		if !strings.Contains(sdl, def) {
			t.Errorf("_service.sdl has no line %q", def)
		}
	}
	delete(got.Data, "_service")
	if diff := cmp.Diff(want, got.Data); diff != "" {
		t.Errorf("response mismatch (-want +got):\n%s", diff)
	}
}
