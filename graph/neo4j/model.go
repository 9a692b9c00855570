package neo4j

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Labels of the store's own bookkeeping nodes. They never carry the root
// label, so no query over the graph sees them.
const (
	labelMeta    = "CityhubMeta"      // one node per key: the change sequence
	labelChanges = "CityhubChangeSet" // the change events of one Apply
)

// nameRE is what a label, relationship type or property key must look like
// before it is written into Cypher text. The ontology's own rules are
// stricter; this is the last line of defence.
var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// model is everything the store derives from the ontology: property sets,
// query scopes and the names it may spell into Cypher. It needs no server,
// so the Cypher compilers can be tested without one.
type model struct {
	ont        *ontology.Ontology
	root       string              // label every node carries (the root class)
	classProps map[string]*propSet // class name → properties
	relProps   map[string]*propSet // relation name → properties
	scopes     map[string]*scope   // class name → scope
	ends       map[endKey]*scope   // relation end → scope of its far nodes
}

// endKey names one end of a relation.
type endKey struct {
	rel string
	dir ontology.Direction
}

func newModel(ont *ontology.Ontology) (*model, error) {
	if ont == nil {
		return nil, fmt.Errorf("neo4j: no ontology")
	}
	root := ont.Root()
	if root == nil {
		return nil, fmt.Errorf("neo4j: the ontology has no root class")
	}
	for _, c := range ont.Classes {
		if !nameRE.MatchString(c.Name) || c.Name == labelMeta || c.Name == labelChanges {
			return nil, fmt.Errorf("neo4j: class name %q cannot be a label", c.Name)
		}
		for _, p := range c.Own {
			if !nameRE.MatchString(p.Name) || strings.HasPrefix(p.Name, "_") {
				return nil, fmt.Errorf("neo4j: property name %s.%s cannot be a property key", c.Name, p.Name)
			}
		}
	}
	for _, r := range ont.Relations {
		if !nameRE.MatchString(r.Name) {
			return nil, fmt.Errorf("neo4j: relation name %q cannot be a relationship type", r.Name)
		}
		for _, p := range r.Props {
			if !nameRE.MatchString(p.Name) || strings.HasPrefix(p.Name, "_") {
				return nil, fmt.Errorf("neo4j: property name %s.%s cannot be a property key", r.Name, p.Name)
			}
		}
	}
	m := &model{
		ont:        ont,
		root:       root.Name,
		classProps: map[string]*propSet{},
		relProps:   map[string]*propSet{},
		scopes:     map[string]*scope{},
		ends:       map[endKey]*scope{},
	}
	for _, c := range ont.Classes {
		m.classProps[c.Name] = newPropSet("class "+c.Name, c.Props)
		m.scopes[c.Name] = m.newScope(c.Name, c, c.ConcreteDescendants())
	}
	for _, r := range ont.Relations {
		m.relProps[r.Name] = newPropSet("relation "+r.Name, r.Props)
		for _, d := range []ontology.Direction{ontology.Out, ontology.In} {
			m.ends[endKey{r.Name, d}] = m.newEndScope(r, d)
		}
	}
	return m, nil
}

// scope is the set of concrete classes a query reads and the properties
// their nodes may carry.
type scope struct {
	name    string
	class   *ontology.Class // the class whose label selects the scope; nil for a union
	classes []string        // concrete class names, sorted
	props   map[string]*ontology.Property
	// ambiguous lists property names that classes in the scope declare
	// with types that compare differently; they cannot be queried.
	ambiguous map[string]bool
}

func (m *model) newScope(name string, class *ontology.Class, classes []string) *scope {
	sc := &scope{name: name, class: class, classes: classes, props: map[string]*ontology.Property{}, ambiguous: map[string]bool{}}
	for _, cn := range classes {
		for _, p := range m.ont.Class(cn).Props {
			if prev := sc.props[p.Name]; prev != nil && (kindOf(prev) != kindOf(p) || prev.List != p.List) {
				sc.ambiguous[p.Name] = true
			}
			sc.props[p.Name] = p
		}
	}
	return sc
}

// newEndScope is the scope of the nodes at the far end of a relation.
func (m *model) newEndScope(rel *ontology.Relation, dir ontology.Direction) *scope {
	if dir == ontology.Out {
		return m.scopes[rel.To.Name]
	}
	if len(rel.From) == 1 {
		return m.scopes[rel.From[0].Name]
	}
	var names []string
	for _, c := range rel.From {
		for _, d := range c.ConcreteDescendants() {
			if !slices.Contains(names, d) {
				names = append(names, d)
			}
		}
	}
	slices.Sort(names)
	return m.newScope(rel.Name+" sources", nil, names)
}

// scopeFor returns the scope of a class name; ErrInvalid when unknown.
func (m *model) scopeFor(class string) (*scope, error) {
	sc := m.scopes[class]
	if sc == nil {
		return nil, fmt.Errorf("%w: unknown class %q", graph.ErrInvalid, class)
	}
	return sc, nil
}

// topLocated returns the highest located ancestor of c (c itself
// included): the label whose point index covers c's nodes. Nil when c has
// no geometry.
func topLocated(c *ontology.Class) *ontology.Class {
	var top *ontology.Class
	for x := c; x != nil; x = x.Parent {
		if x.Located() {
			top = x
		}
	}
	return top
}

// subset reports whether every element of a (sorted) is in b (sorted).
func subset(a, b []string) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return false
		}
	}
	return true
}
