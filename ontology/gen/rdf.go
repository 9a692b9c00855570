package gen

// This file builds the RDF view of an ontology that JSONLD and Turtle
// serialise. Both renderers walk the same rdfModel, so they always carry the
// same triples; only the syntax differs.
//
// Modelling choices:
//   - Hub terms live under the ontology namespace: classes (owl:Class with
//     rdfs:subClassOf), enums, properties without an `iri`, relation fields
//     without an `iri` and every inverse field.
//   - A class's external IRIs are alignments of unknown exactness, so they
//     are skos:closeMatch, never owl:equivalentClass or rdfs:subClassOf.
//   - A property or relation with an `iri` IS that external term: the JSON-LD
//     context maps its name there, so exported data speaks the standard
//     vocabulary. External terms are not redefined: they get their OWL
//     property type and schema:domainIncludes/schema:rangeIncludes (which
//     entail nothing), never rdfs:domain/rdfs:range, labels or comments.
//   - Hub properties get rdfs:domain and rdfs:range. A name declared on
//     several classes (status on Facility, Asset, ServiceRequest, ...) has
//     one IRI, so its domain and range are owl:unionOf lists: several
//     rdfs:domain triples would mean the intersection.
//   - Edge properties (CALLS_AT stopSequence, ...) describe a relation
//     instance, so their domain is rdf:Statement (the reified edge).
//   - An enum is an rdfs:Datatype defined as owl:oneOf its values (the
//     stored strings) and, punned, a skos:ConceptScheme with one skos:Concept
//     per value (skos:notation = the stored string).
//   - A hub property is an owl:FunctionalProperty when every use of it is
//     single-valued.
//   - Units are annotated with the hub annotation property ucumCode.

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/cityhub/cityhub/ontology"
)

// Well-known namespaces the renderers use themselves.
const (
	nsRDF    = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
	nsRDFS   = "http://www.w3.org/2000/01/rdf-schema#"
	nsOWL    = "http://www.w3.org/2002/07/owl#"
	nsXSD    = "http://www.w3.org/2001/XMLSchema#"
	nsSKOS   = "http://www.w3.org/2004/02/skos/core#"
	nsSchema = "https://schema.org/"

	rdfType = nsRDF + "type"

	// rdfHubPrefix is the prefix name of the ontology namespace when the
	// ontology does not declare one (ONTOLOGY.md calls it cdf:).
	rdfHubPrefix = "cdf"
	// rdfUnitTerm is the hub annotation property carrying UCUM units.
	rdfUnitTerm = "ucumCode"
)

// rdfWellKnownPrefixes are added to the ontology's own prefixes unless it
// declares the same names.
var rdfWellKnownPrefixes = map[string]string{
	"owl": nsOWL, "rdf": nsRDF, "rdfs": nsRDFS, "schema": nsSchema, "skos": nsSKOS, "xsd": nsXSD,
}

// rdfScalarRanges maps property types to the datatype of their values.
var rdfScalarRanges = map[string]string{
	ontology.TypeString:   nsXSD + "string",
	ontology.TypeInt:      nsXSD + "integer",
	ontology.TypeFloat:    nsXSD + "double",
	ontology.TypeBoolean:  nsXSD + "boolean",
	ontology.TypeDateTime: nsXSD + "dateTime",
	ontology.TypeJSON:     nsRDF + "JSON",
}

// rdfCoercions maps property types to their JSON-LD context @type. Strings
// and enums are plain strings and need none.
var rdfCoercions = map[string]string{
	ontology.TypeInt:      nsXSD + "integer",
	ontology.TypeFloat:    nsXSD + "double",
	ontology.TypeBoolean:  nsXSD + "boolean",
	ontology.TypeDateTime: nsXSD + "dateTime",
	ontology.TypeJSON:     "@json",
}

type rdfKind int

const (
	rdfIRI rdfKind = iota
	rdfLiteral
	rdfBlank
	rdfList
)

// rdfTerm is an RDF object: an IRI, a literal, a blank node described
// inline, or a collection.
type rdfTerm struct {
	kind  rdfKind
	value string    // the IRI, or the literal's lexical form
	dt    string    // literal datatype IRI; "" means xsd:string
	node  *rdfNode  // rdfBlank
	items []rdfTerm // rdfList
}

func rdfIRIs(iris ...string) []rdfTerm {
	out := make([]rdfTerm, len(iris))
	for i, s := range iris {
		out[i] = rdfTerm{kind: rdfIRI, value: s}
	}
	return out
}

func rdfString(s string) rdfTerm { return rdfTerm{kind: rdfLiteral, value: s} }

// rdfNode is a subject with its predicates; iri is "" for a blank node.
type rdfNode struct {
	iri   string
	preds map[string][]rdfTerm
}

func newRDFNode(iri string) *rdfNode { return &rdfNode{iri: iri, preds: map[string][]rdfTerm{}} }

func (n *rdfNode) add(pred string, objs ...rdfTerm) { n.preds[pred] = append(n.preds[pred], objs...) }

// predicates returns the node's predicates: rdf:type first, then by IRI.
func (n *rdfNode) predicates() []string {
	out := make([]string, 0, len(n.preds))
	for p := range n.preds {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i] == rdfType) != (out[j] == rdfType) {
			return out[i] == rdfType
		}
		return out[i] < out[j]
	})
	return out
}

// objects returns the distinct objects of pred in a stable order.
func (n *rdfNode) objects(pred string) []rdfTerm {
	objs := n.preds[pred]
	keys := make(map[string]rdfTerm, len(objs))
	for _, o := range objs {
		keys[o.sortKey()] = o
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	out := make([]rdfTerm, len(sorted))
	for i, k := range sorted {
		out[i] = keys[k]
	}
	return out
}

// sortKey orders objects (IRIs, then literals, then blank nodes, then
// lists) and identifies duplicates.
func (t rdfTerm) sortKey() string {
	switch t.kind {
	case rdfIRI:
		return "0" + t.value
	case rdfLiteral:
		return "1" + t.value + "\x00" + t.dt
	case rdfBlank:
		var b strings.Builder
		b.WriteString("2[")
		for _, p := range t.node.predicates() {
			b.WriteString(p + "=")
			for _, o := range t.node.objects(p) {
				b.WriteString(o.sortKey() + ",")
			}
			b.WriteString(";")
		}
		return b.String() + "]"
	default:
		var b strings.Builder
		b.WriteString("3(")
		for _, it := range t.items {
			b.WriteString(it.sortKey() + ",")
		}
		return b.String() + ")"
	}
}

// rdfPrefix is a CURIE prefix used to compact IRIs.
type rdfPrefix struct{ name, iri string }

// ldTerm is one JSON-LD context term.
type ldTerm struct {
	iri    string
	coerce string // @type of the values: a datatype IRI, "@id", "@json" or ""
}

// rdfModel is the RDF description of an ontology.
type rdfModel struct {
	ontologyIRI string
	prefixes    []rdfPrefix // sorted by name
	terms       map[string]ldTerm
	nodes       map[string]*rdfNode
}

// subjects returns the described nodes: the ontology first, then by IRI.
func (m *rdfModel) subjects() []*rdfNode {
	out := make([]*rdfNode, 0, len(m.nodes))
	for _, n := range m.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].iri == m.ontologyIRI) != (out[j].iri == m.ontologyIRI) {
			return out[i].iri == m.ontologyIRI
		}
		return out[i].iri < out[j].iri
	})
	return out
}

// compact returns iri as prefix:local with the longest matching namespace
// whose prefix and local part the syntax accepts, or "" when none fits.
func (m *rdfModel) compact(iri string, ok func(prefix, local string) bool) string {
	best, bestLen := "", 0
	for _, p := range m.prefixes {
		if len(p.iri) <= bestLen || !strings.HasPrefix(iri, p.iri) {
			continue
		}
		local := iri[len(p.iri):]
		if !ok(p.name, local) {
			continue
		}
		best, bestLen = p.name+":"+local, len(p.iri)
	}
	return best
}

var rdfCURIERE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_.-]*):(.*)$`)

// rdfProp accumulates what the ontology says about one property IRI, over
// every class, relation and field name that uses it.
type rdfProp struct {
	hub       bool                // under the ontology namespace, so described in full
	object    bool                // a relation end
	comments  map[string][]string // description → users that give it
	domains   map[string]bool
	ranges    map[string]bool
	units     map[string]bool
	inverseOf map[string]bool
	ends      map[string]bool // relation ends (LOCATED_IN, LOCATED_IN~) named by a hub IRI
	multi     bool            // some use holds several values
}

// rdfBuilder turns an ontology into an rdfModel, collecting every problem.
type rdfBuilder struct {
	o     *ontology.Ontology
	m     *rdfModel
	ns    string
	props map[string]*rdfProp
	order []string // property IRIs in first-use order
	errs  []error
}

func (b *rdfBuilder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}

func (b *rdfBuilder) hub(name string) string { return b.ns + name }

// expand resolves a CURIE with the ontology's prefixes, or accepts an
// absolute http(s) or urn IRI.
func (b *rdfBuilder) expand(iri, where string) string {
	full := ""
	switch m := rdfCURIERE.FindStringSubmatch(iri); {
	case m != nil && b.o.Prefixes[m[1]] != "":
		full = b.o.Prefixes[m[1]] + m[2]
	case strings.HasPrefix(iri, "http://"), strings.HasPrefix(iri, "https://"), strings.HasPrefix(iri, "urn:"):
		full = iri
	case m != nil:
		b.errorf("%s: IRI %q: undeclared prefix %q", where, iri, m[1])
		return ""
	default:
		b.errorf("%s: IRI %q is neither a CURIE nor an absolute IRI", where, iri)
		return ""
	}
	if !rdfIRIOK(full) {
		b.errorf("%s: IRI %q contains characters not allowed in an IRI", where, full)
		return ""
	}
	return full
}

// rdfIRIOK reports whether s can be written as an IRI reference in Turtle
// and N-Triples without escapes.
func rdfIRIOK(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || strings.ContainsRune("<>\"{}|^`\\", r) {
			return false
		}
	}
	return true
}

// term records a JSON-LD context term; one name maps to one definition.
func (b *rdfBuilder) term(name, iri, coerce, where string) {
	if prev, ok := b.m.terms[name]; ok {
		if prev != (ldTerm{iri, coerce}) {
			b.errorf("%s: name %q maps to %s (values %s) but was already mapped to %s (values %s)",
				where, name, iri, rdfOr(coerce, "plain"), prev.iri, rdfOr(prev.coerce, "plain"))
		}
		return
	}
	b.m.terms[name] = ldTerm{iri, coerce}
}

func rdfOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (b *rdfBuilder) prop(iri string, object bool, where string) *rdfProp {
	p := b.props[iri]
	if p == nil {
		p = &rdfProp{
			hub: strings.HasPrefix(iri, b.ns), object: object,
			comments: map[string][]string{}, domains: map[string]bool{},
			ranges: map[string]bool{}, units: map[string]bool{}, inverseOf: map[string]bool{}, ends: map[string]bool{},
		}
		b.props[iri] = p
		b.order = append(b.order, iri)
	} else if p.object != object {
		b.errorf("%s: %s is used both for a property and for a relation", where, iri)
	}
	return p
}

// property records a class or edge property owned by owner (a class IRI or
// rdf:Statement).
func (b *rdfBuilder) property(p *ontology.Property, owner, user, where string) {
	iri := b.hub(p.Name)
	if p.IRI != "" {
		iri = b.expand(p.IRI, where)
	}
	rng := rdfScalarRanges[p.Type]
	if p.Enum != nil {
		rng = b.hub(p.Enum.Name)
	}
	if iri == "" || rng == "" {
		return
	}
	b.term(p.Name, iri, rdfCoercions[p.Type], where)
	rp := b.prop(iri, false, where)
	rp.domains[owner] = true
	rp.ranges[rng] = true
	rp.multi = rp.multi || p.List
	if p.Unit != "" {
		rp.units[p.Unit] = true
	}
	if p.Description != "" {
		rp.comments[p.Description] = append(rp.comments[p.Description], user)
	}
}

func buildRDF(o *ontology.Ontology) (*rdfModel, error) {
	b := &rdfBuilder{
		o:     o,
		ns:    o.Namespace,
		props: map[string]*rdfProp{},
		m:     &rdfModel{terms: map[string]ldTerm{}, nodes: map[string]*rdfNode{}},
	}
	if !rdfIRIOK(b.ns) {
		return nil, fmt.Errorf("namespace %q is not an IRI", b.ns)
	}
	b.prefixes()
	b.m.ontologyIRI = strings.TrimRight(b.ns, "#/")
	if b.m.ontologyIRI == "" {
		b.m.ontologyIRI = b.ns
	}
	onto := b.node(b.m.ontologyIRI)
	onto.add(rdfType, rdfIRIs(nsOWL+"Ontology")...)
	if o.Version != "" {
		onto.add(nsOWL+"versionInfo", rdfString(o.Version))
	}
	for _, c := range o.Classes {
		b.class(c)
	}
	for _, e := range o.Enums {
		b.enum(e)
	}
	for _, c := range o.Classes {
		for _, p := range c.Own {
			b.property(p, b.hub(c.Name), c.Name, "class "+c.Name+": property "+p.Name)
		}
	}
	for _, r := range o.Relations {
		b.relation(r)
	}
	b.describeProps()
	for _, p := range b.m.prefixes {
		if t, ok := b.m.terms[p.name]; ok {
			b.errorf("prefix %q is also the name of %s", p.name, t.iri)
		}
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return b.m, nil
}

func (b *rdfBuilder) node(iri string) *rdfNode {
	n := b.m.nodes[iri]
	if n == nil {
		n = newRDFNode(iri)
		b.m.nodes[iri] = n
	}
	return n
}

// prefixes merges the ontology's prefixes, the well-known ones and the hub
// namespace's prefix.
func (b *rdfBuilder) prefixes() {
	all := map[string]string{}
	for name, iri := range rdfWellKnownPrefixes {
		all[name] = iri
	}
	for name, iri := range b.o.Prefixes {
		all[name] = iri
	}
	hubName := ""
	for name, iri := range b.o.Prefixes {
		if iri == b.ns && (hubName == "" || name < hubName) {
			hubName = name
		}
	}
	if hubName == "" {
		if iri, ok := b.o.Prefixes[rdfHubPrefix]; ok {
			b.errorf("prefix %q is declared as %s, not as the namespace %s", rdfHubPrefix, iri, b.ns)
		}
		all[rdfHubPrefix] = b.ns
	}
	for name, iri := range all {
		if !rdfIRIOK(iri) {
			b.errorf("prefix %q: %q is not an IRI", name, iri)
			continue
		}
		b.m.prefixes = append(b.m.prefixes, rdfPrefix{name, iri})
	}
	sort.Slice(b.m.prefixes, func(i, j int) bool { return b.m.prefixes[i].name < b.m.prefixes[j].name })
}

func (b *rdfBuilder) annotate(n *rdfNode, label, comment string) {
	n.add(nsRDFS+"label", rdfString(label))
	if comment != "" {
		n.add(nsRDFS+"comment", rdfString(comment))
	}
	n.add(nsRDFS+"isDefinedBy", rdfIRIs(b.m.ontologyIRI)...)
}

func (b *rdfBuilder) class(c *ontology.Class) {
	iri := b.hub(c.Name)
	b.term(c.Name, iri, "", "class "+c.Name)
	n := b.node(iri)
	n.add(rdfType, rdfIRIs(nsOWL+"Class")...)
	b.annotate(n, c.Name, c.Description)
	if c.Parent != nil {
		n.add(nsRDFS+"subClassOf", rdfIRIs(b.hub(c.Parent.Name))...)
	}
	for _, ext := range c.IRIs {
		if x := b.expand(ext, "class "+c.Name); x != "" {
			n.add(nsSKOS+"closeMatch", rdfIRIs(x)...)
		}
	}
}

func (b *rdfBuilder) enum(e *ontology.Enum) {
	iri := b.hub(e.Name)
	b.term(e.Name, iri, "", "enum "+e.Name)
	n := b.node(iri)
	n.add(rdfType, rdfIRIs(nsRDFS+"Datatype", nsSKOS+"ConceptScheme")...)
	b.annotate(n, e.Name, e.Description)
	oneOf := newRDFNode("")
	oneOf.add(rdfType, rdfIRIs(nsRDFS+"Datatype")...)
	values := make([]rdfTerm, len(e.Values))
	for i, v := range e.Values {
		values[i] = rdfString(v)
		concept := b.node(iri + "." + v)
		concept.add(rdfType, rdfIRIs(nsSKOS+"Concept")...)
		concept.add(nsSKOS+"inScheme", rdfIRIs(iri)...)
		concept.add(nsSKOS+"notation", rdfString(v))
		concept.add(nsSKOS+"prefLabel", rdfString(v))
	}
	oneOf.add(nsOWL+"oneOf", rdfTerm{kind: rdfList, items: values})
	n.add(nsOWL+"equivalentClass", rdfTerm{kind: rdfBlank, node: oneOf})
}

func (b *rdfBuilder) relation(r *ontology.Relation) {
	where := "relation " + r.Name
	fwd := b.hub(r.Field)
	if r.IRI != "" {
		fwd = b.expand(r.IRI, where)
	}
	if fwd == "" {
		return
	}
	b.term(r.Field, fwd, "@id", where+": field "+r.Field)
	p := b.prop(fwd, true, where)
	b.end(p, r.Field, r.Name)
	for _, c := range r.From {
		p.domains[b.hub(c.Name)] = true
	}
	p.ranges[b.hub(r.To.Name)] = true
	p.multi = p.multi || !strings.HasSuffix(r.Cardinality, ":1")
	if r.Description != "" {
		p.comments[r.Description] = append(p.comments[r.Description], r.Name)
	}
	if r.Inverse != "" {
		inv := b.hub(r.Inverse)
		b.term(r.Inverse, inv, "@id", where+": inverse "+r.Inverse)
		ip := b.prop(inv, true, where)
		b.end(ip, r.Inverse, r.Name+" (inverse)")
		ip.domains[b.hub(r.To.Name)] = true
		for _, c := range r.From {
			ip.ranges[b.hub(c.Name)] = true
		}
		ip.inverseOf[fwd] = true
		ip.multi = ip.multi || !strings.HasPrefix(r.Cardinality, "1:")
		comment := "Inverse of " + r.Field + " (" + r.Name + ")."
		ip.comments[comment] = append(ip.comments[comment], r.Name)
	}
	for _, prop := range r.Props {
		b.property(prop, nsRDF+"Statement", r.Name, where+": property "+prop.Name)
	}
}

// end records that a relation end uses p. Two relations may share an
// external IRI, but a hub IRI comes from the field name, and two relations
// with one field name would merge into one property.
func (b *rdfBuilder) end(p *rdfProp, field, end string) {
	p.ends[end] = true
	if p.hub && len(p.ends) > 1 {
		var ends []string
		for e := range p.ends {
			ends = append(ends, e)
		}
		sort.Strings(ends)
		b.errorf("field %q names several relation ends (%s); give them distinct names", field, strings.Join(ends, ", "))
	}
}

// describeProps adds a node for every property IRI.
func (b *rdfBuilder) describeProps() {
	unitIRI := ""
	for _, iri := range b.order {
		p := b.props[iri]
		n := b.node(iri)
		kind := nsOWL + "DatatypeProperty"
		if p.object {
			kind = nsOWL + "ObjectProperty"
		}
		n.add(rdfType, rdfIRIs(kind)...)
		if !p.hub {
			for d := range p.domains {
				n.add(nsSchema+"domainIncludes", rdfIRIs(d)...)
			}
			for r := range p.ranges {
				n.add(nsSchema+"rangeIncludes", rdfIRIs(r)...)
			}
			continue
		}
		if !p.multi {
			n.add(rdfType, rdfIRIs(nsOWL+"FunctionalProperty")...)
		}
		b.annotate(n, strings.TrimPrefix(iri, b.ns), rdfComment(p.comments))
		rangeKind := nsRDFS + "Datatype"
		if p.object {
			rangeKind = nsOWL + "Class"
		}
		n.add(nsRDFS+"domain", rdfUnion(nsOWL+"Class", p.domains))
		n.add(nsRDFS+"range", rdfUnion(rangeKind, p.ranges))
		for inv := range p.inverseOf {
			n.add(nsOWL+"inverseOf", rdfIRIs(inv)...)
		}
		for u := range p.units {
			if unitIRI == "" {
				unitIRI = b.hub(rdfUnitTerm)
			}
			n.add(unitIRI, rdfString(u))
		}
	}
	if unitIRI != "" {
		if b.props[unitIRI] != nil {
			b.errorf("%s is needed for the unit annotation but is declared as a property", rdfUnitTerm)
		}
		b.term(rdfUnitTerm, unitIRI, "", "annotation "+rdfUnitTerm)
		n := b.node(unitIRI)
		n.add(rdfType, rdfIRIs(nsOWL+"AnnotationProperty")...)
		b.annotate(n, rdfUnitTerm, "UCUM code of the unit a property's values are stored in.")
	}
}

// rdfUnion returns the single member, or an anonymous class (or datatype)
// that is the owl:unionOf the members, sorted.
func rdfUnion(kind string, members map[string]bool) rdfTerm {
	list := make([]string, 0, len(members))
	for m := range members {
		list = append(list, m)
	}
	sort.Strings(list)
	if len(list) == 1 {
		return rdfTerm{kind: rdfIRI, value: list[0]}
	}
	n := newRDFNode("")
	n.add(rdfType, rdfIRIs(kind)...)
	n.add(nsOWL+"unionOf", rdfTerm{kind: rdfList, items: rdfIRIs(list...)})
	return rdfTerm{kind: rdfBlank, node: n}
}

// rdfComment joins the distinct descriptions of a property; when users
// describe it differently, each description names its users.
func rdfComment(comments map[string][]string) string {
	texts := make([]string, 0, len(comments))
	for t := range comments {
		texts = append(texts, t)
	}
	sort.Strings(texts)
	if len(texts) == 1 {
		return texts[0]
	}
	parts := make([]string, len(texts))
	for i, t := range texts {
		users := append([]string(nil), comments[t]...)
		sort.Strings(users)
		parts[i] = strings.Join(users, ", ") + ": " + t
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}
