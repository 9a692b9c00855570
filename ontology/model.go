package ontology

import (
	"fmt"
	"sort"
	"strings"
)

// Scalar property types understood by every layer.
const (
	TypeString   = "String"
	TypeInt      = "Int"
	TypeFloat    = "Float"
	TypeBoolean  = "Boolean"
	TypeDateTime = "DateTime"
	TypeJSON     = "JSON"
)

// scalarTypes is the read-only set of built-in property types.
var scalarTypes = map[string]bool{
	TypeString: true, TypeInt: true, TypeFloat: true,
	TypeBoolean: true, TypeDateTime: true, TypeJSON: true,
}

// Geometry kinds a class may carry.
const (
	GeometryNone    = ""
	GeometryPoint   = "point"
	GeometryPolygon = "polygon"
	GeometryLine    = "line"
)

// Access levels of a property, from least to most privileged.
const (
	AccessPublic   = "public"
	AccessApp      = "app"
	AccessOperator = "operator"
	AccessAdmin    = "admin"
)

var accessRank = map[string]int{AccessPublic: 0, AccessApp: 1, AccessOperator: 2, AccessAdmin: 3}

// Direction of a relation as seen from a node.
type Direction int

// Directions.
const (
	Out Direction = iota // from the relation's source to its target
	In                   // from the relation's target back to its source
)

func (d Direction) String() string {
	if d == In {
		return "IN"
	}
	return "OUT"
}

// Pos is a position in the ontology file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Ontology is a validated, immutable city ontology.
type Ontology struct {
	Version   string
	Namespace string            // IRI namespace of hub terms (cdf:)
	Prefixes  map[string]string // CURIE prefixes used in IRIs
	Classes   []*Class          // in file order
	Enums     []*Enum           // in file order
	Relations []*Relation       // in file order

	classes   map[string]*Class
	enums     map[string]*Enum
	relations map[string]*Relation
}

// Class is one class of the ontology.
type Class struct {
	Name        string
	ParentName  string
	Abstract    bool
	Description string
	IRIs        []string // external IRIs or CURIEs (schema:Place, sosa:Sensor, ...)
	// Geometry is the kind of geometry instances carry ("" for none); it is
	// inherited from the parent when not set.
	Geometry string
	// Plural overrides the English plural used for list fields.
	Plural string
	// Own lists the properties declared on this class, in file order.
	Own []*Property
	Pos Pos

	Parent   *Class
	Children []*Class
	// Props lists every property, inherited ones first.
	Props   []*Property
	props   map[string]*Property
	depth   int
	outRels []*RelationEnd
}

// Property is a typed property of a class or relation.
type Property struct {
	Name        string
	Type        string // scalar name or enum name
	List        bool
	Required    bool
	Unit        string // UCUM code for physical quantities
	Access      string // public, app, operator, admin
	Indexed     bool
	Searchable  bool // part of the full-text name search
	IRI         string
	Description string
	Owner       string // class or relation that declares it
	Pos         Pos

	Enum *Enum // set when Type names an enum
}

// Enum is a closed list of values.
type Enum struct {
	Name        string
	Description string
	Values      []string
	Pos         Pos
}

// Relation is a typed, directed relation between classes.
type Relation struct {
	Name        string   // SCREAMING_SNAKE relationship type, e.g. LOCATED_IN
	FromNames   []string // source classes
	ToName      string   // target class
	Field       string   // field name on the source, e.g. locatedIn
	Inverse     string   // field name on the target, e.g. contains
	Cardinality string   // N:1, 1:N, N:M, 1:1
	IRI         string
	Description string
	Props       []*Property
	Pos         Pos

	From []*Class
	To   *Class
	// InverseTarget is the most specific common ancestor of From, the type
	// of the inverse field.
	InverseTarget *Class
}

// RelationEnd is a relation seen from one of its ends: the field a class
// exposes for it.
type RelationEnd struct {
	Relation  *Relation
	Direction Direction
	Field     string
	Target    *Class // class of the nodes at the other end
}

// Many reports whether this end can hold several nodes.
func (e *RelationEnd) Many() bool {
	c := e.Relation.Cardinality
	if e.Direction == Out {
		return !strings.HasSuffix(c, ":1")
	}
	return !strings.HasPrefix(c, "1:")
}

// Class returns the class with the given name, or nil.
func (o *Ontology) Class(name string) *Class { return o.classes[name] }

// Enum returns the enum with the given name, or nil.
func (o *Ontology) Enum(name string) *Enum { return o.enums[name] }

// Relation returns the relation with the given name, or nil.
func (o *Ontology) Relation(name string) *Relation { return o.relations[name] }

// Concrete lists the non-abstract classes in file order.
func (o *Ontology) Concrete() []*Class {
	var out []*Class
	for _, c := range o.Classes {
		if !c.Abstract {
			out = append(out, c)
		}
	}
	return out
}

// Root returns the root class (the only class without a parent).
func (o *Ontology) Root() *Class {
	for _, c := range o.Classes {
		if c.Parent == nil {
			return c
		}
	}
	return nil
}

// Property returns the property (own or inherited) with that name, or nil.
func (c *Class) Property(name string) *Property { return c.props[name] }

// Ancestors returns the chain of superclasses, root first, excluding c.
func (c *Class) Ancestors() []*Class {
	var out []*Class
	for p := c.Parent; p != nil; p = p.Parent {
		out = append([]*Class{p}, out...)
	}
	return out
}

// Labels returns the class and every ancestor, root first: the labels a node
// of this class carries in a property graph.
func (c *Class) Labels() []string {
	var out []string
	for _, a := range c.Ancestors() {
		out = append(out, a.Name)
	}
	return append(out, c.Name)
}

// IsA reports whether c is other or one of its subclasses.
func (c *Class) IsA(other *Class) bool {
	for x := c; x != nil; x = x.Parent {
		if x == other {
			return true
		}
	}
	return false
}

// Descendants returns c and all its subclasses in file order of discovery.
func (c *Class) Descendants() []*Class {
	out := []*Class{c}
	for _, ch := range c.Children {
		out = append(out, ch.Descendants()...)
	}
	return out
}

// ConcreteDescendants returns the names of the non-abstract classes that are
// c or below it, sorted. A query for c matches nodes of exactly these classes.
func (c *Class) ConcreteDescendants() []string {
	var out []string
	for _, d := range c.Descendants() {
		if !d.Abstract {
			out = append(out, d.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Relations returns every relation end the class exposes (own and inherited),
// outgoing ends first, in relation file order.
func (c *Class) Relations() []*RelationEnd { return c.outRels }

// RelationField returns the relation end exposed by the field name, or nil.
func (c *Class) RelationField(field string) *RelationEnd {
	for _, e := range c.outRels {
		if e.Field == field {
			return e
		}
	}
	return nil
}

// PluralName returns the lowerCamel plural used for the class's list field.
func (c *Class) PluralName() string {
	if c.Plural != "" {
		return c.Plural
	}
	return Plural(LowerFirst(c.Name))
}

// Located reports whether instances carry a geometry.
func (c *Class) Located() bool { return c.Geometry != GeometryNone }

// KebabName returns the class name in kebab case, as used in URNs.
func (c *Class) KebabName() string { return Kebab(c.Name) }

// AllowedFor reports whether a caller with the given access level may read
// the property.
func (p *Property) AllowedFor(access string) bool {
	return accessRank[access] >= accessRank[p.Access]
}

// LowerFirst lower-cases the first letter of s.
func LowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// Plural returns a simple English plural of a lowerCamel or PascalCase name.
func Plural(s string) string {
	switch {
	case strings.HasSuffix(s, "y") && len(s) > 1 && !strings.ContainsRune("aeiou", rune(s[len(s)-2])):
		return s[:len(s)-1] + "ies"
	case strings.HasSuffix(s, "s"), strings.HasSuffix(s, "x"), strings.HasSuffix(s, "ch"), strings.HasSuffix(s, "sh"):
		return s + "es"
	}
	return s + "s"
}

// Kebab converts PascalCase to kebab-case.
func Kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ScreamingSnake converts camelCase to SCREAMING_SNAKE_CASE.
func ScreamingSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' && i > 0 {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}
