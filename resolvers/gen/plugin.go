package main

import (
	"fmt"

	"github.com/99designs/gqlgen/codegen"

	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/ontology/gen"
)

// implementer writes the body of every ontology-derived resolver as a call
// into the generic engine; other resolvers keep their hand-written bodies.
type implementer struct {
	ont   *ontology.Ontology
	model string // model package name
}

func (*implementer) Name() string { return "cityhub-resolvers" }

// Implement implements plugin.ResolverImplementer.
func (p *implementer) Implement(prev string, f *codegen.Field) string {
	if body := p.body(f); body != "" {
		return body
	}
	if prev != "" {
		return prev
	}
	return fmt.Sprintf("panic(fmt.Errorf(\"not implemented: %s - %s\"))", f.GoFieldName, f.Name)
}

func (p *implementer) typ(c *ontology.Class) string {
	if c.Abstract {
		return p.model + "." + c.Name
	}
	return "*" + p.model + "." + c.Name
}

func (p *implementer) body(f *codegen.Field) string {
	var n gen.Names
	m := p.model
	if f.Object.Name == "Query" {
		for _, c := range p.ont.Classes {
			switch f.Name {
			case n.List(c):
				return fmt.Sprintf("c, err := r.Engine.Find(ctx, %q, where, orderBy, first, after)\n\tif err != nil {\n\t\treturn nil, err\n\t}\n\treturn %s.New%s(c), nil",
					c.Name, m, n.Connection(c))
			case n.Single(c):
				return fmt.Sprintf("n, err := r.Engine.Get(ctx, %q, id)\n\tif err != nil || n == nil {\n\t\treturn nil, err\n\t}\n\tv, _ := %s.Wrap(n).(%s)\n\treturn v, nil",
					c.Name, m, p.typ(c))
			case n.Aggregate(c):
				return fmt.Sprintf("return r.Engine.Aggregate(ctx, %q, where, (*string)(groupBy), (*string)(field))", c.Name)
			}
		}
		return ""
	}
	if f.Object.Name == entityResolverType {
		return p.entities(f)
	}
	if f.Object.Name == "Subscription" {
		for _, c := range p.ont.Classes {
			if f.Name == n.Changed(c) {
				return fmt.Sprintf("return r.Engine.Subscribe(ctx, %q, where, since, coalesceMs)", c.Name)
			}
		}
		return ""
	}
	for _, c := range p.ont.Classes {
		if f.Object.Name == n.ChangeEvent(c) && f.Name == "node" {
			return fmt.Sprintf("v, _ := %s.Wrap(obj.Node).(%s)\n\treturn v, nil", m, p.typ(c))
		}
	}
	c := p.ont.Class(f.Object.Name)
	if c == nil {
		return ""
	}
	if f.Name == "nearby" && c.Located() {
		return fmt.Sprintf("return r.Engine.Nearby(ctx, obj, string(class), meters, first, %s.Wrap)", m)
	}
	e := c.RelationField(f.Name)
	if e == nil {
		return ""
	}
	if !e.Many() {
		return fmt.Sprintf("n, err := r.Engine.One(ctx, obj, %q)\n\tif err != nil || n == nil {\n\t\treturn nil, err\n\t}\n\tv, _ := %s.Wrap(n).(%s)\n\treturn v, nil",
			f.Name, m, p.typ(e.Target))
	}
	return fmt.Sprintf("c, err := r.Engine.Relation(ctx, obj, %q, where, orderBy, first, after)\n\tif err != nil {\n\t\treturn nil, err\n\t}\n\treturn %s.New%s(c), nil",
		f.Name, m, n.RelConnection(e))
}

// entities writes a federation entity resolver (findMany<Class>ByIDs): the
// batch of representations of one class becomes one engine call, which
// answers in order with nil for IDs that name no node of the class.
func (p *implementer) entities(f *codegen.Field) string {
	c := p.ont.Class(f.TypeReference.Definition.Name)
	if c == nil || c.Abstract || len(f.Args) != 1 {
		return ""
	}
	reps := f.Args[0].VarName
	return fmt.Sprintf(`ids := make([]string, len(%s))
	for i, rep := range %s {
		ids[i] = rep.ID
	}
	nodes, err := r.Engine.Entities(ctx, %q, ids)
	if err != nil {
		return nil, err
	}
	out := make([]%s, len(nodes))
	for i, n := range nodes {
		out[i], _ = %s.Wrap(n).(%s)
	}
	return out, nil`, reps, reps, c.Name, p.typ(c), p.model, p.typ(c))
}
