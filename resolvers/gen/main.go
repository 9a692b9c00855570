// Command gen regenerates the GraphQL API from the ontology, in one process
// and a fixed order: it renders schema/ontology.graphqls and the Go model
// types in resolvers/model from the ontology file, then runs gqlgen with a
// plugin that writes every ontology-derived resolver body as a call into
// the generic engine (resolvers/core), the batched Apollo Federation entity
// resolvers included. Hand-written resolvers (for hand-written schema) are
// kept as they are.
//
// It imports nothing generated, so it runs even when generated code is
// stale or broken. Run it with `go generate ./...` (resolvers/generate.go).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/99designs/gqlgen/api"
	"github.com/99designs/gqlgen/codegen/config"

	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/ontology/gen"
)

func main() {
	root := flag.String("root", "..", "repository root (holds gqlgen.yml)")
	ontPath := flag.String("ontology", "ontology/city.yaml", "ontology file, relative to -root")
	cfgPath := flag.String("config", "gqlgen.yml", "gqlgen config, relative to -root")
	flag.Parse()
	if err := run(*root, *ontPath, *cfgPath); err != nil {
		fmt.Fprintln(os.Stderr, "resolvers/gen:", err)
		os.Exit(1)
	}
}

func run(root, ontPath, cfgPath string) error {
	if err := os.Chdir(root); err != nil {
		return err
	}
	o, err := ontology.LoadFile(ontPath)
	if err != nil {
		return err
	}
	cfg, err := config.LoadConfig(cfgPath)
	if err != nil {
		return fmt.Errorf("load %s: %w", cfgPath, err)
	}
	schemaDir := "schema"
	if len(cfg.SchemaFilename) > 0 {
		schemaDir = filepath.Dir(cfg.SchemaFilename[0])
	}
	if err := os.WriteFile(filepath.Join(schemaDir, "ontology.graphqls"), gen.SDL(o), 0o644); err != nil {
		return err
	}
	modelDir := filepath.Dir(cfg.Model.Filename)
	src, err := renderModel(o, cfg.Model.Package)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(modelDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(modelDir, "ontology_gen.go"), src, 0o644); err != nil {
		return err
	}
	// reload: the schema file list is resolved when the config is loaded
	if cfg, err = config.LoadConfig(cfgPath); err != nil {
		return fmt.Errorf("load %s: %w", cfgPath, err)
	}
	// gqlgen logs every resolver it adds; those are expected here.
	log.SetOutput(io.Discard)
	opts := []api.Option{api.AddPlugin(&implementer{ont: o, model: cfg.Model.Package})}
	if cfg.Federation.IsDefined() {
		fed, err := newFederation(cfg)
		if err != nil {
			return err
		}
		opts = append(opts, api.ReplacePlugin(fed))
	}
	return api.Generate(cfg, opts...)
}
