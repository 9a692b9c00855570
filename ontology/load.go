package ontology

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem found in an ontology file. It names the file, the
// line and the element (class, property, enum or relation) at fault.
type Error struct {
	Pos     Pos
	Element string
	Msg     string
}

func (e *Error) Error() string {
	if e.Element == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Element, e.Msg)
}

// ErrInvalid is matched (with errors.Is) by every validation error.
var ErrInvalid = errors.New("invalid ontology")

// Is makes every *Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// LoadFile reads and validates the ontology at path.
func LoadFile(path string) (*Ontology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ontology: %w", err)
	}
	return Parse(path, data)
}

// MustParse parses a built-in ontology and panics if it is invalid. It is
// for ontologies compiled into the binary, where an error is a programmer
// error.
func MustParse(name string, data []byte) *Ontology {
	o, err := Parse(name, data)
	if err != nil {
		panic(err)
	}
	return o
}

var (
	classNameRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	propNameRE  = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)
	enumValueRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	relNameRE   = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	cardRE      = regexp.MustCompile(`^(1|N):(1|N|M)$`)
)

// reserved names cannot be declared as properties: the API and the stores
// own them.
var reserved = map[string]bool{
	"id": true, "class": true, "location": true, "geometry": true,
	"labels": true, "cursor": true, "node": true, "nearby": true,
}

// Parse decodes and validates ontology YAML. name is used in error
// positions (usually the file path). All problems found are returned
// together, joined, each an *Error.
func Parse(name string, data []byte) (*Ontology, error) {
	p := &parser{file: name}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrInvalid, err)
	}
	if len(doc.Content) == 0 {
		return nil, &Error{Pos: Pos{name, 1}, Msg: "empty ontology"}
	}
	o := p.document(doc.Content[0])
	if len(p.errs) == 0 {
		p.resolve(o)
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Pos.Line < p.errs[j].Pos.Line })
		errs := make([]error, len(p.errs))
		for i, e := range p.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return o, nil
}

type parser struct {
	file string
	errs []*Error
}

func (p *parser) pos(n *yaml.Node) Pos { return Pos{p.file, n.Line} }

func (p *parser) errorf(n *yaml.Node, element, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: p.pos(n), Element: element, Msg: fmt.Sprintf(format, args...)})
}

// mapping walks a YAML mapping node, calling f for each key in order and
// reporting keys not in allowed (when allowed is non-nil).
func (p *parser) mapping(n *yaml.Node, element string, allowed []string, f func(key string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		p.errorf(n, element, "expected a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			p.errorf(k, element, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		if allowed != nil && !contains(allowed, k.Value) {
			p.errorf(k, element, "unknown field %q (allowed: %s)", k.Value, strings.Join(allowed, ", "))
			continue
		}
		f(k.Value, k, v)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) str(n *yaml.Node, element, field string) string {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, element, "%s: expected a string", field)
		return ""
	}
	return n.Value
}

func (p *parser) boolean(n *yaml.Node, element, field string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		p.errorf(n, element, "%s: expected true or false", field)
	}
	return b
}

func (p *parser) strList(n *yaml.Node, element, field string) []string {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, element, "%s: expected a list of strings", field)
		return nil
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, p.str(c, element, field))
	}
	return out
}

func (p *parser) document(n *yaml.Node) *Ontology {
	o := &Ontology{
		Prefixes:  map[string]string{},
		classes:   map[string]*Class{},
		enums:     map[string]*Enum{},
		relations: map[string]*Relation{},
	}
	p.mapping(n, "", []string{"version", "namespace", "prefixes", "enums", "classes", "relations"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "version":
			o.Version = p.str(v, "", key)
		case "namespace":
			o.Namespace = p.str(v, "", key)
		case "prefixes":
			p.mapping(v, "prefixes", nil, func(pk string, _, pv *yaml.Node) {
				o.Prefixes[pk] = p.str(pv, "prefix "+pk, "iri")
			})
		case "enums":
			p.mapping(v, "", nil, func(name string, ek, ev *yaml.Node) { p.enum(o, name, ek, ev) })
		case "classes":
			p.mapping(v, "", nil, func(name string, ck, cv *yaml.Node) { p.class(o, name, ck, cv) })
		case "relations":
			p.mapping(v, "", nil, func(name string, rk, rv *yaml.Node) { p.relation(o, name, rk, rv) })
		}
	})
	if o.Namespace == "" {
		p.errorf(n, "", "namespace is required")
	}
	if len(o.Classes) == 0 {
		p.errorf(n, "", "no classes declared")
	}
	return o
}

func (p *parser) enum(o *Ontology, name string, k, v *yaml.Node) {
	el := "enum " + name
	if !classNameRE.MatchString(name) {
		p.errorf(k, el, "enum names are PascalCase")
	}
	if o.enums[name] != nil || o.classes[name] != nil {
		p.errorf(k, el, "duplicate name %q", name)
		return
	}
	e := &Enum{Name: name, Pos: p.pos(k)}
	values := func(n *yaml.Node) {
		seen := map[string]bool{}
		for _, vn := range p.strListNodes(n, el, "values") {
			val := vn.Value
			if !enumValueRE.MatchString(val) {
				p.errorf(vn, el, "value %q is not SCREAMING_SNAKE_CASE", val)
			}
			if seen[val] {
				p.errorf(vn, el, "duplicate value %q", val)
			}
			seen[val] = true
			e.Values = append(e.Values, val)
		}
	}
	if v.Kind == yaml.SequenceNode {
		values(v)
	} else {
		p.mapping(v, el, []string{"description", "values"}, func(key string, _, fv *yaml.Node) {
			switch key {
			case "description":
				e.Description = p.str(fv, el, key)
			case "values":
				values(fv)
			}
		})
	}
	if len(e.Values) == 0 {
		p.errorf(k, el, "an enum needs at least one value")
	}
	o.enums[name] = e
	o.Enums = append(o.Enums, e)
}

func (p *parser) strListNodes(n *yaml.Node, element, field string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, element, "%s: expected a list", field)
		return nil
	}
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			p.errorf(c, element, "%s: expected a string", field)
			return nil
		}
	}
	return n.Content
}

func (p *parser) class(o *Ontology, name string, k, v *yaml.Node) {
	el := "class " + name
	if !classNameRE.MatchString(name) {
		p.errorf(k, el, "class names are PascalCase")
	}
	if o.classes[name] != nil || o.enums[name] != nil {
		p.errorf(k, el, "duplicate name %q", name)
		return
	}
	c := &Class{Name: name, Pos: p.pos(k), props: map[string]*Property{}}
	p.mapping(v, el, []string{"parent", "abstract", "description", "iris", "geometry", "plural", "properties"}, func(key string, fk, fv *yaml.Node) {
		switch key {
		case "parent":
			c.ParentName = p.str(fv, el, key)
		case "abstract":
			c.Abstract = p.boolean(fv, el, key)
		case "description":
			c.Description = p.str(fv, el, key)
		case "iris":
			c.IRIs = p.strList(fv, el, key)
		case "geometry":
			c.Geometry = p.str(fv, el, key)
			switch c.Geometry {
			case GeometryPoint, GeometryPolygon, GeometryLine:
			default:
				p.errorf(fv, el, "geometry %q is not one of point, polygon, line", c.Geometry)
			}
		case "plural":
			c.Plural = p.str(fv, el, key)
		case "properties":
			p.mapping(fv, el, nil, func(pname string, pk, pv *yaml.Node) {
				if prop := p.property(name, el, pname, pk, pv); prop != nil {
					c.Own = append(c.Own, prop)
				}
			})
		}
	})
	o.classes[name] = c
	o.Classes = append(o.Classes, c)
}

func (p *parser) property(owner, ownerEl, name string, k, v *yaml.Node) *Property {
	el := ownerEl + ": property " + name
	if !propNameRE.MatchString(name) {
		p.errorf(k, el, "property names are camelCase")
	}
	if reserved[name] {
		p.errorf(k, el, "%q is reserved", name)
	}
	prop := &Property{Name: name, Owner: owner, Access: AccessPublic, Pos: p.pos(k)}
	setType := func(n *yaml.Node, t string) {
		t = strings.TrimSpace(t)
		if strings.HasSuffix(t, "!") {
			prop.Required = true
			t = strings.TrimSuffix(t, "!")
		}
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			prop.List = true
			t = strings.TrimSuffix(strings.TrimPrefix(t, "["), "]")
			t = strings.TrimSuffix(t, "!")
		}
		if t == "" {
			p.errorf(n, el, "empty type")
		}
		prop.Type = t
	}
	if v.Kind == yaml.ScalarNode {
		setType(v, v.Value)
		return prop
	}
	p.mapping(v, el, []string{"type", "unit", "access", "indexed", "searchable", "iri", "description"}, func(key string, _, fv *yaml.Node) {
		switch key {
		case "type":
			setType(fv, p.str(fv, el, key))
		case "unit":
			prop.Unit = p.str(fv, el, key)
		case "access":
			prop.Access = p.str(fv, el, key)
			if _, ok := accessRank[prop.Access]; !ok {
				p.errorf(fv, el, "access %q is not one of public, app, operator, admin", prop.Access)
			}
		case "indexed":
			prop.Indexed = p.boolean(fv, el, key)
		case "searchable":
			prop.Searchable = p.boolean(fv, el, key)
		case "iri":
			prop.IRI = p.str(fv, el, key)
		case "description":
			prop.Description = p.str(fv, el, key)
		}
	})
	if prop.Type == "" {
		p.errorf(k, el, "type is required")
	}
	return prop
}

func (p *parser) relation(o *Ontology, name string, k, v *yaml.Node) {
	el := "relation " + name
	if !relNameRE.MatchString(name) {
		p.errorf(k, el, "relation names are SCREAMING_SNAKE_CASE")
	}
	if o.relations[name] != nil {
		p.errorf(k, el, "duplicate name %q", name)
		return
	}
	r := &Relation{Name: name, Cardinality: "N:M", Pos: p.pos(k)}
	p.mapping(v, el, []string{"from", "to", "field", "inverse", "cardinality", "iri", "description", "properties"}, func(key string, _, fv *yaml.Node) {
		switch key {
		case "from":
			r.FromNames = p.strList(fv, el, key)
		case "to":
			r.ToName = p.str(fv, el, key)
		case "field":
			r.Field = p.str(fv, el, key)
		case "inverse":
			r.Inverse = p.str(fv, el, key)
		case "cardinality":
			r.Cardinality = p.str(fv, el, key)
			if !cardRE.MatchString(r.Cardinality) {
				p.errorf(fv, el, "cardinality %q is not one of N:1, 1:N, N:M, 1:1", r.Cardinality)
			}
		case "iri":
			r.IRI = p.str(fv, el, key)
		case "description":
			r.Description = p.str(fv, el, key)
		case "properties":
			p.mapping(fv, el, nil, func(pname string, pk, pv *yaml.Node) {
				if prop := p.property(name, el, pname, pk, pv); prop != nil {
					r.Props = append(r.Props, prop)
				}
			})
		}
	})
	if len(r.FromNames) == 0 {
		p.errorf(k, el, "from is required")
	}
	if r.ToName == "" {
		p.errorf(k, el, "to is required")
	}
	if r.Field == "" {
		p.errorf(k, el, "field is required")
	} else if !propNameRE.MatchString(r.Field) {
		p.errorf(k, el, "field %q is not camelCase", r.Field)
	}
	if r.Inverse != "" && !propNameRE.MatchString(r.Inverse) {
		p.errorf(k, el, "inverse %q is not camelCase", r.Inverse)
	}
	o.relations[name] = r
	o.Relations = append(o.Relations, r)
}

// resolve links names to elements and checks the cross-references.
func (p *parser) resolve(o *Ontology) {
	at := func(pos Pos, el, format string, args ...any) {
		p.errs = append(p.errs, &Error{Pos: pos, Element: el, Msg: fmt.Sprintf(format, args...)})
	}
	roots := 0
	for _, c := range o.Classes {
		if c.ParentName == "" {
			roots++
			continue
		}
		parent := o.classes[c.ParentName]
		if parent == nil {
			at(c.Pos, "class "+c.Name, "unknown parent class %q", c.ParentName)
			continue
		}
		c.Parent = parent
		parent.Children = append(parent.Children, c)
	}
	if roots != 1 {
		at(Pos{p.file, 1}, "", "the ontology needs exactly one root class (found %d)", roots)
	}
	// cycles
	for _, c := range o.Classes {
		seen := map[*Class]bool{}
		for x := c; x != nil; x = x.Parent {
			if seen[x] {
				at(c.Pos, "class "+c.Name, "inheritance cycle through %q", x.Name)
				c.Parent = nil
				break
			}
			seen[x] = true
		}
	}
	if len(p.errs) > 0 {
		return
	}
	checkType := func(prop *Property, el string) {
		if scalarTypes[prop.Type] {
			return
		}
		if e := o.enums[prop.Type]; e != nil {
			prop.Enum = e
			return
		}
		at(prop.Pos, el, "unknown type %q", prop.Type)
	}
	// properties, inherited first; a subclass may not redeclare a property.
	var visit func(c *Class)
	visit = func(c *Class) {
		if c.Parent != nil {
			c.depth = c.Parent.depth + 1
			c.Props = append(c.Props, c.Parent.Props...)
			for k, v := range c.Parent.props {
				c.props[k] = v
			}
			if c.Geometry == GeometryNone {
				c.Geometry = c.Parent.Geometry
			}
		}
		for _, prop := range c.Own {
			el := "class " + c.Name + ": property " + prop.Name
			if prev := c.props[prop.Name]; prev != nil {
				at(prop.Pos, el, "duplicate property %q (already declared on %s at line %d)", prop.Name, prev.Owner, prev.Pos.Line)
				continue
			}
			checkType(prop, el)
			c.props[prop.Name] = prop
			c.Props = append(c.Props, prop)
		}
		for _, ch := range c.Children {
			visit(ch)
		}
	}
	visit(o.Root())
	for _, c := range o.Classes {
		if !c.Abstract && len(c.Children) > 0 {
			at(c.Pos, "class "+c.Name, "a concrete class cannot have subclasses; make it abstract")
		}
	}
	for _, r := range o.Relations {
		el := "relation " + r.Name
		for _, fn := range r.FromNames {
			c := o.classes[fn]
			if c == nil {
				at(r.Pos, el, "unknown class %q in from", fn)
				continue
			}
			r.From = append(r.From, c)
		}
		if r.To = o.classes[r.ToName]; r.To == nil {
			at(r.Pos, el, "unknown class %q in to", r.ToName)
		}
		for _, prop := range r.Props {
			checkType(prop, el+": property "+prop.Name)
		}
	}
	if len(p.errs) > 0 {
		return
	}
	for _, r := range o.Relations {
		r.InverseTarget = commonAncestor(r.From)
		// fields are exposed on every from class (and its subclasses) and on
		// the to class (and its subclasses).
		for _, fc := range r.From {
			for _, d := range fc.Descendants() {
				d.outRels = append(d.outRels, &RelationEnd{Relation: r, Direction: Out, Field: r.Field, Target: r.To})
			}
		}
		if r.Inverse != "" {
			for _, d := range r.To.Descendants() {
				d.outRels = append(d.outRels, &RelationEnd{Relation: r, Direction: In, Field: r.Inverse, Target: r.InverseTarget})
			}
		}
	}
	// a field name must be unique on every class, across properties and
	// relation ends.
	for _, c := range o.Classes {
		seen := map[string]*RelationEnd{}
		for _, e := range c.outRels {
			if prev := seen[e.Field]; prev != nil && prev.Relation != e.Relation {
				at(e.Relation.Pos, "relation "+e.Relation.Name, "field %q on class %s clashes with relation %s", e.Field, c.Name, prev.Relation.Name)
			}
			if prev := seen[e.Field]; prev != nil && prev.Relation == e.Relation && prev.Direction != e.Direction {
				at(e.Relation.Pos, "relation "+e.Relation.Name, "field and inverse %q clash on class %s", e.Field, c.Name)
			}
			seen[e.Field] = e
			if prop := c.props[e.Field]; prop != nil {
				at(e.Relation.Pos, "relation "+e.Relation.Name, "field %q on class %s clashes with a property", e.Field, c.Name)
			}
		}
		// an inherited relation end may appear several times when a class
		// and its ancestor are both listed in from; keep one.
		c.outRels = dedupeEnds(c.outRels)
	}
}

func dedupeEnds(ends []*RelationEnd) []*RelationEnd {
	type key struct {
		r *Relation
		d Direction
	}
	seen := map[key]bool{}
	out := ends[:0]
	for _, e := range ends {
		k := key{e.Relation, e.Direction}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}

// commonAncestor returns the most specific class that every class in cs is a.
func commonAncestor(cs []*Class) *Class {
	if len(cs) == 0 {
		return nil
	}
	cand := cs[0]
	for cand != nil {
		ok := true
		for _, c := range cs {
			if !c.IsA(cand) {
				ok = false
				break
			}
		}
		if ok {
			return cand
		}
		cand = cand.Parent
	}
	return nil
}
