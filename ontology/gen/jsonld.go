package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cityhub/cityhub/ontology"
)

// JSONLD renders the ontology as a JSON-LD 1.1 document. Its @context maps
// every prefix, class, enum, property and relation field (inverse fields
// included) to its IRI, with the value type of typed properties and @id for
// relations, so the same context serves exported data. Its @graph describes
// the ontology in RDFS/OWL/SKOS terms; see rdf.go for the modelling choices.
// The output is deterministic and carries exactly the triples of Turtle.
//
// It fails when two names would need the same context term, a name is used
// for different IRIs or value types, or an IRI uses an undeclared prefix.
func JSONLD(o *ontology.Ontology) ([]byte, error) {
	m, err := buildRDF(o)
	if err != nil {
		return nil, fmt.Errorf("gen: jsonld: %w", err)
	}
	ctx := map[string]any{"@version": 1.1}
	for _, p := range m.prefixes {
		if strings.ContainsAny(p.iri[len(p.iri)-1:], ":/?#[]@") {
			ctx[p.name] = p.iri
		} else {
			ctx[p.name] = map[string]any{"@id": p.iri, "@prefix": true}
		}
	}
	for name, t := range m.terms {
		id := m.ldCompact(t.iri)
		switch t.coerce {
		case "":
			ctx[name] = id
		case "@id", "@json":
			ctx[name] = map[string]any{"@id": id, "@type": t.coerce}
		default:
			ctx[name] = map[string]any{"@id": id, "@type": m.ldCompact(t.coerce)}
		}
	}
	graph := []any{}
	for _, n := range m.subjects() {
		graph = append(graph, m.ldNode(n))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	// encoding/json writes map keys sorted, which makes the output stable.
	if err := enc.Encode(map[string]any{"@context": ctx, "@graph": graph}); err != nil {
		return nil, fmt.Errorf("gen: jsonld: %w", err)
	}
	return buf.Bytes(), nil
}

// ldCompact returns iri as a compact IRI when a prefix covers it.
func (m *rdfModel) ldCompact(iri string) string {
	c := m.compact(iri, func(_, local string) bool { return local != "" && !strings.HasPrefix(local, "//") })
	if c == "" {
		return iri
	}
	return c
}

// ldNode renders a subject, or a blank node in place, as a JSON-LD node
// object.
func (m *rdfModel) ldNode(n *rdfNode) map[string]any {
	obj := map[string]any{}
	if n.iri != "" {
		obj["@id"] = m.ldCompact(n.iri)
	}
	for _, p := range n.predicates() {
		objs := n.objects(p)
		if p == rdfType {
			types := make([]any, len(objs))
			for i, o := range objs {
				types[i] = m.ldCompact(o.value)
			}
			obj["@type"] = ldOneOrMany(types)
			continue
		}
		vals := make([]any, len(objs))
		for i, o := range objs {
			vals[i] = m.ldValue(o)
		}
		obj[m.ldCompact(p)] = ldOneOrMany(vals)
	}
	return obj
}

func (m *rdfModel) ldValue(t rdfTerm) any {
	switch t.kind {
	case rdfIRI:
		return map[string]any{"@id": m.ldCompact(t.value)}
	case rdfLiteral:
		if t.dt == "" {
			return t.value
		}
		return map[string]any{"@value": t.value, "@type": m.ldCompact(t.dt)}
	case rdfBlank:
		return m.ldNode(t.node)
	default:
		items := make([]any, len(t.items))
		for i, it := range t.items {
			items[i] = m.ldValue(it)
		}
		return map[string]any{"@list": items}
	}
}

func ldOneOrMany(vals []any) any {
	if len(vals) == 1 {
		return vals[0]
	}
	return vals
}
