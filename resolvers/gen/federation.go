package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/99designs/gqlgen/codegen"
	"github.com/99designs/gqlgen/codegen/config"
	"github.com/99designs/gqlgen/plugin/federation"
)

// gqlgen's federation plugin declares its entity resolvers as the fields of
// a schema type named Entity, which the resolver root then exposes as
// Entity(). The city ontology has an abstract class of that name (the
// GraphQL interface every class implements), so the two would clash. The
// wrapper below gives the resolver type another name; everything else is
// gqlgen's plugin unchanged.
const (
	// upstreamResolverType is the name gqlgen's plugin gives the type.
	upstreamResolverType = "Entity"
	// entityResolverType is the name it takes here: the resolver root's
	// method FederationEntity() returns the generated entity resolvers.
	entityResolverType = "FederationEntity"
)

// federationPlugin is gqlgen's federation plugin with its resolver type
// renamed to entityResolverType. It replaces the stock plugin, which
// gqlgen.yml's federation section enables, under the same name.
type federationPlugin struct {
	*federation.Federation
}

// newFederation builds the plugin from the federation section of cfg.
func newFederation(cfg *config.Config) (*federationPlugin, error) {
	f, err := federation.New(cfg.Federation.Version, cfg)
	if err != nil {
		return nil, fmt.Errorf("federation plugin: %w", err)
	}
	return &federationPlugin{Federation: f}, nil
}

// InjectSourcesLate implements plugin.LateSourcesInjector: gqlgen's
// sources with the resolver type renamed.
func (p *federationPlugin) InjectSourcesLate(schema *ast.Schema) ([]*ast.Source, error) {
	srcs, err := p.Federation.InjectSourcesLate(schema)
	if err != nil {
		return nil, err
	}
	if len(p.Entities) == 0 {
		return srcs, nil
	}
	from, to := "\ntype "+upstreamResolverType+" {\n", "\ntype "+entityResolverType+" {\n"
	renamed := 0
	for _, s := range srcs {
		renamed += strings.Count(s.Input, from)
		s.Input = strings.ReplaceAll(s.Input, from, to)
	}
	if renamed != 1 {
		return nil, fmt.Errorf("federation: found %d definitions of gqlgen's resolver type %s, want 1", renamed, upstreamResolverType)
	}
	return srcs, nil
}

// MutateConfig implements plugin.ConfigMutator. gqlgen's plugin refuses a
// config that already binds its reserved type names; autobind has bound
// some of them to ontology types whose Go names they share (_Service to
// Service, _Entity and Entity to Entity). They are unbound for gqlgen's
// plugin to bind its own; then the ontology's Entity gets its binding back
// and the renamed resolver type takes the one gqlgen gave Entity.
func (p *federationPlugin) MutateConfig(cfg *config.Config) error {
	own, hadOwn := cfg.Models[upstreamResolverType]
	for _, name := range []string{upstreamResolverType, "_Entity", "_Service"} {
		delete(cfg.Models, name)
	}
	if err := p.Federation.MutateConfig(cfg); err != nil {
		return err
	}
	cfg.Models[entityResolverType] = cfg.Models[upstreamResolverType]
	if hadOwn {
		cfg.Models[upstreamResolverType] = own
	} else {
		delete(cfg.Models, upstreamResolverType)
	}
	return nil
}

// GenerateCode implements plugin.CodeGenerator: gqlgen's federation.go,
// calling the resolver root's method of the renamed type.
func (p *federationPlugin) GenerateCode(data *codegen.Data) error {
	if len(p.Entities) == 0 {
		return p.Federation.GenerateCode(data)
	}
	obj := data.Objects.ByName(entityResolverType)
	if obj == nil {
		return fmt.Errorf("federation: no type %s in the schema", entityResolverType)
	}
	// its fields are resolved without a parent object, like Query's
	obj.Root = true
	if err := p.Federation.GenerateCode(data); err != nil {
		return err
	}
	path := data.Config.Federation.Filename
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	from := []byte("ec.Resolvers." + upstreamResolverType + "()")
	if !bytes.Contains(src, from) {
		return fmt.Errorf("federation: %s calls no %s", path, from)
	}
	src = bytes.ReplaceAll(src, from, []byte("ec.Resolvers."+entityResolverType+"()"))
	return os.WriteFile(path, src, 0o644)
}
