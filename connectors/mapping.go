package connectors

import (
	"fmt"
	"regexp"

	"github.com/cityhub/cityhub/ontology"
	"gopkg.in/yaml.v3"
)

// Mapping turns one source record into nodes and edges. It is compiled
// from a connector's `mapping` block and validated against the ontology:
//
//	mapping:
//	  fields: [PoleID, Latitude]        optional: the record's field names; every
//	                                    field reference is checked against it at load
//	  skip_if: CONDITION                records matching it are counted as skipped
//	  nodes:                            one or more node templates per record
//	    - ref: light                    name for edges (default: the class name)
//	      class: StreetLight            a concrete ontology class
//	      key: "{PoleID}"               template; substituted values are escaped (§4);
//	                                    composite keys join parts with ~
//	      name: "{SITE_NAME}"           value spec for the name property
//	      properties: {prop: VALUE}     value specs (see valueSpec), typed by the ontology
//	      location: geometry            the record geometry (polygons keep their shape
//	                                    when the class has polygon geometry), or
//	                                    {lat: FIELD, lon: FIELD, ignore_zero: true}
//	      locate_in: Neighbourhood      LOCATED_IN the polygon node of that class
//	                                    containing the node's point (a class, a list,
//	                                    or {class: C, rel: R})
//	      repeat: '^(\d{4})$'           one node per non-empty field whose name matches;
//	                                    $1.., $field, $value usable in templates
//	      skip_if: CONDITION            this node is not produced for matching records
//	      src_updated_at: VALUE         provenance times (DateTime value specs)
//	      valid_from: VALUE
//	      valid_to: VALUE
//	      external_ids:                 scheme: value spec; adds "scheme:value" to
//	        poleNumber: "{PoleID}"      externalIds (see resolve.go)
//	      resolve_by: [poleNumber]      schemes that merge the node into an existing
//	                                    node of its class sharing an identifier
//	      edges:
//	        - rel: OBSERVED_BY          an ontology relation from this node's class
//	          to: sensor                a node template of the same record (by ref), or
//	          to_id: "urn:city:..."     a node ID template, or
//	          to_class: City            a class and key template (and optional
//	          to_key: cambridge         to_source, default this connector's source)
//	          properties: {p: VALUE}    edge properties declared by the relation
//
// CONDITION is a mapping; the condition holds when any part holds:
//
//	empty: [Latitude, Longitude]      a listed field is missing or blank
//	equals: {Status: [Removed, X]}    a field's text equals one of the values
//	matches: {Name: '^TEST'}          a field's text matches the regex
type Mapping struct {
	fields   map[string]bool
	skip     *condition
	nodes    []*nodeTmpl
	locateIn []string // classes whose polygons the runner loads
	// resolve holds, by class name, the resolution of the classes whose
	// node templates declare resolve_by (see resolve.go).
	resolve map[string]*resolveSpec
}

// LocateClasses returns the classes whose polygons the mapping locates
// nodes in, in first-use order.
func (m *Mapping) LocateClasses() []string { return append([]string(nil), m.locateIn...) }

// Classes returns the classes of the nodes the mapping emits.
func (m *Mapping) Classes() []string {
	var out []string
	for _, n := range m.nodes {
		if !containsStr(out, n.class.Name) {
			out = append(out, n.class.Name)
		}
	}
	return out
}

type nodeTmpl struct {
	ref        string
	class      *ontology.Class
	kebab      string
	key        *template
	props      []propTmpl
	skip       *condition
	repeat     *regexp.Regexp
	loc        *locationSpec
	locate     []*locateSpec
	srcUpdated *valueSpec
	validFrom  *valueSpec
	validTo    *valueSpec
	edges      []*edgeTmpl
	extIDs     []extIDTmpl // external_ids, in file order
	resolveBy  []string    // resolve_by schemes, nil when the node does not resolve
}

type propTmpl struct {
	name string
	spec *valueSpec
}

type locateSpec struct {
	class *ontology.Class
	rel   string
	props map[string]any
}

type edgeTmpl struct {
	rel      *ontology.Relation
	toRef    int // index of a node template, -1 if none
	toID     *template
	toClass  *ontology.Class
	toKey    *template
	toSource string
	props    []propTmpl
}

type locationSpec struct {
	geometry   bool
	lat, lon   string
	latPath    []string
	lonPath    []string
	ignoreZero bool
	keepShape  bool
}

// provenanceProps are set by the runner from Node.Prov, never mapped.
var provenanceProps = map[string]string{
	"src": "", "srcKey": "", "ingestRunId": "", "fetchedAt": "", "ingestedAt": "",
	"srcUpdatedAt": "src_updated_at", "validFrom": "valid_from", "validTo": "valid_to", "sources": "",
}

var mappingKeys = []string{"fields", "skip_if", "nodes"}
var nodeKeys = []string{"ref", "class", "key", "name", "properties", "location", "locate_in", "repeat", "skip_if", "src_updated_at", "valid_from", "valid_to", "edges", "external_ids", "resolve_by"}

func (l *loader) compileMapping(n *yaml.Node, path string) *Mapping {
	m := &Mapping{}
	var nodesNode *yaml.Node
	l.mapping(n, path, mappingKeys, func(key string, k, v *yaml.Node) {
		p := path + "." + key
		switch key {
		case "fields":
			m.fields = map[string]bool{}
			for _, f := range l.strList(v, p) {
				m.fields[f] = true
			}
		case "skip_if":
			m.skip = l.condition(v, p, m.fields)
		case "nodes":
			nodesNode = v
		}
	})
	if nodesNode == nil || nodesNode.Kind != yaml.SequenceNode || len(nodesNode.Content) == 0 {
		l.errorf(n, path+".nodes", "nodes: expected a non-empty list of node templates")
		return m
	}
	// first pass: refs and classes, so edges can point forward
	type pending struct {
		n    *yaml.Node
		path string
	}
	var todo []pending
	refs := map[string]int{}
	for i, nn := range nodesNode.Content {
		nn = deref(nn)
		p := fmt.Sprintf("%s.nodes[%d]", path, i)
		nt := &nodeTmpl{}
		if nn.Kind != yaml.MappingNode {
			l.errorf(nn, p, "expected a mapping")
			continue
		}
		for _, e := range l.entries(nn, p) {
			switch e.k.Value {
			case "class":
				name := l.str(e.v, p+".class")
				c := l.ont.Class(name)
				switch {
				case name == "":
				case c == nil:
					l.errorf(e.v, p+".class", "unknown class %q", name)
				case c.Abstract:
					l.errorf(e.v, p+".class", "class %s is abstract; use one of %v", name, c.ConcreteDescendants())
				default:
					nt.class = c
				}
			case "ref":
				nt.ref = l.str(e.v, p+".ref")
			case "repeat":
				re, err := regexp.Compile(l.str(e.v, p+".repeat"))
				if err != nil {
					l.errorf(e.v, p+".repeat", "bad regex: %v", err)
				}
				nt.repeat = re
			}
		}
		if nt.class == nil {
			if !hasKey(nn, "class") {
				l.errorf(nn, p+".class", "class is required")
			}
			nt.class = nil
		}
		if nt.class != nil {
			nt.kebab = nt.class.KebabName()
		}
		if nt.ref == "" && nt.class != nil {
			nt.ref = nt.class.Name
		}
		if nt.ref != "" {
			if prev, dup := refs[nt.ref]; dup {
				l.errorf(nn, p+".ref", "duplicate node ref %q (nodes[%d]); set ref", nt.ref, prev)
			}
			refs[nt.ref] = len(m.nodes)
		}
		m.nodes = append(m.nodes, nt)
		todo = append(todo, pending{nn, p})
	}
	if len(todo) != len(m.nodes) {
		return m
	}
	for i, t := range todo {
		if m.nodes[i].class == nil {
			continue
		}
		l.compileNode(m, m.nodes[i], t.n, t.path, refs)
	}
	return m
}

func (l *loader) compileNode(m *Mapping, nt *nodeTmpl, n *yaml.Node, path string, refs map[string]int) {
	c := nt.class
	sc := scope{iter: nt.repeat, fields: m.fields}
	mapped := map[string]bool{}
	var keyNode, nameNode, edgesNode, extNode, resolveNode *yaml.Node
	l.mapping(n, path, nodeKeys, func(key string, k, v *yaml.Node) {
		p := path + "." + key
		switch key {
		case "key":
			keyNode = v
		case "name":
			nameNode = v
		case "properties":
			l.mapping(v, p, nil, func(prop string, pk, pv *yaml.Node) {
				pp := p + "." + prop
				if ps := l.property(c, prop, pk, pp); ps != nil {
					if spec := l.compileValue(pv, pp, c.Name+"."+prop, propType(ps), sc); spec != nil {
						nt.props = append(nt.props, propTmpl{prop, spec})
					}
					mapped[prop] = true
				}
			})
		case "location":
			nt.loc = l.location(c, v, p, m.fields)
		case "locate_in":
			nt.locate = l.locateIn(c, v, p)
			for _, ls := range nt.locate {
				if !containsStr(m.locateIn, ls.class.Name) {
					m.locateIn = append(m.locateIn, ls.class.Name)
				}
			}
		case "skip_if":
			nt.skip = l.condition(v, p, m.fields)
		case "src_updated_at":
			nt.srcUpdated = l.compileValue(v, p, c.Name+"."+key, dateTimeType, sc)
		case "valid_from":
			nt.validFrom = l.compileValue(v, p, c.Name+"."+key, dateTimeType, sc)
		case "valid_to":
			nt.validTo = l.compileValue(v, p, c.Name+"."+key, dateTimeType, sc)
		case "edges":
			edgesNode = v
		case "external_ids":
			extNode = v
		case "resolve_by":
			resolveNode = v
		}
	})
	if extNode != nil {
		l.compileExternalIDs(nt, extNode, path+".external_ids", sc)
	}
	if resolveNode != nil {
		l.compileResolveBy(nt, resolveNode, path+".resolve_by")
		l.checkResolveClass(m, nt, resolveNode, path+".resolve_by")
	} else {
		l.checkResolveClass(m, nt, n, path)
	}
	if nameNode != nil {
		p := path + ".name"
		if mapped["name"] {
			l.errorf(nameNode, p, "name is also set in properties")
		} else if ps := l.property(c, "name", nameNode, p); ps != nil {
			if spec := l.compileValue(nameNode, p, c.Name+".name", propType(ps), sc); spec != nil {
				nt.props = append([]propTmpl{{"name", spec}}, nt.props...)
			}
			mapped["name"] = true
		}
	}
	// automatic ...Raw properties for value maps
	for _, pt := range nt.props {
		raw := pt.name + "Raw"
		if pt.spec.vmap != nil && !mapped[raw] {
			if rp := c.Property(raw); rp != nil && rp.Type == ontology.TypeString && !rp.List {
				pt.spec.rawProp = raw
			}
		}
	}
	for _, p := range c.Props {
		if p.Required && !mapped[p.Name] {
			if _, prov := provenanceProps[p.Name]; !prov {
				l.errorf(n, path+".properties", "required property %q of class %s is not mapped", p.Name, c.Name)
			}
		}
	}
	ksc := sc
	ksc.props = mapped
	if keyNode == nil {
		l.errorf(n, path+".key", "key is required")
	} else {
		p := path + ".key"
		s := l.str(keyNode, p)
		t, err := parseTemplate(s)
		switch {
		case err != nil:
			l.errorf(keyNode, p, "%v", err)
		case s == "":
			l.errorf(keyNode, p, "key is empty")
		case t.constant() && nt.repeat != nil:
			l.errorf(keyNode, p, "a repeated node needs a key that varies (use $1, $field or @props)")
		default:
			if err := ksc.checkRefs(t); err != nil {
				l.errorf(keyNode, p, "%v", err)
			}
			for _, part := range t.parts {
				if part.ref == nil && !keyLiteralOK(part.lit) {
					l.errorf(keyNode, p, "literal text %q in a key may use letters, digits, - . _ ~ and !$&'()*+,;=@ only", part.lit)
				}
			}
			nt.key = t
		}
	}
	if edgesNode != nil {
		if edgesNode.Kind != yaml.SequenceNode {
			l.errorf(edgesNode, path+".edges", "expected a list of edges")
		} else {
			for i, en := range edgesNode.Content {
				p := fmt.Sprintf("%s.edges[%d]", path, i)
				if e := l.edge(m, nt, deref(en), p, refs, ksc); e != nil {
					nt.edges = append(nt.edges, e)
				}
			}
		}
	}
}

// property resolves a mappable property of class c.
func (l *loader) property(c *ontology.Class, name string, at *yaml.Node, path string) *ontology.Property {
	if alt, prov := provenanceProps[name]; prov {
		if alt != "" {
			l.errorf(at, path, "%s is provenance: set it with the node's %s", name, alt)
		} else {
			l.errorf(at, path, "%s is provenance, set by the runner", name)
		}
		return nil
	}
	p := c.Property(name)
	if p == nil {
		if c.RelationField(name) != nil {
			l.errorf(at, path, "%q is a relation of class %s: map it under edges", name, c.Name)
		} else {
			l.errorf(at, path, "unknown property %q on class %s", name, c.Name)
		}
		return nil
	}
	return p
}

func (l *loader) location(c *ontology.Class, n *yaml.Node, path string, fields map[string]bool) *locationSpec {
	if !c.Located() {
		l.errorf(n, path, "class %s carries no geometry", c.Name)
		return nil
	}
	ls := &locationSpec{keepShape: c.Geometry != ontology.GeometryPoint}
	if n.Kind == yaml.ScalarNode {
		if n.Value != "geometry" {
			l.errorf(n, path, "expected geometry or a mapping with lat and lon")
			return nil
		}
		ls.geometry = true
		return ls
	}
	l.mapping(n, path, []string{"geometry", "lat", "lon", "ignore_zero"}, func(key string, k, v *yaml.Node) {
		p := path + "." + key
		switch key {
		case "geometry":
			ls.geometry = l.boolean(v, p)
		case "lat", "lon":
			f := l.str(v, p)
			if fields != nil && !fields[f] {
				l.errorf(v, p, "unknown field %q (not in mapping.fields)", f)
			}
			var fp []string
			if len(f) > 0 && containsDot(f) {
				fp = splitDot(f)
			}
			if key == "lat" {
				ls.lat, ls.latPath = f, fp
			} else {
				ls.lon, ls.lonPath = f, fp
			}
		case "ignore_zero":
			ls.ignoreZero = l.boolean(v, p)
		}
	})
	switch {
	case ls.geometry && (ls.lat != "" || ls.lon != ""):
		l.errorf(n, path, "give either geometry or lat and lon")
	case !ls.geometry && (ls.lat == "" || ls.lon == ""):
		l.errorf(n, path, "lat and lon are both required")
	}
	return ls
}

func (l *loader) locateIn(c *ontology.Class, n *yaml.Node, path string) []*locateSpec {
	if !c.Located() {
		l.errorf(n, path, "class %s carries no geometry", c.Name)
		return nil
	}
	var out []*locateSpec
	one := func(v *yaml.Node, p string) {
		ls := &locateSpec{rel: "LOCATED_IN"}
		var className string
		var at = v
		if v.Kind == yaml.MappingNode {
			l.mapping(v, p, []string{"class", "rel"}, func(key string, k, fv *yaml.Node) {
				switch key {
				case "class":
					className, at = l.str(fv, p+".class"), fv
				case "rel":
					ls.rel = l.str(fv, p+".rel")
				}
			})
		} else {
			className = l.str(v, p)
		}
		tc := l.ont.Class(className)
		if tc == nil {
			l.errorf(at, p, "unknown class %q", className)
			return
		}
		if tc.Geometry != ontology.GeometryPolygon {
			l.errorf(at, p, "class %s has no polygon geometry", className)
			return
		}
		rel := l.ont.Relation(ls.rel)
		if rel == nil {
			l.errorf(at, p, "unknown relation %q", ls.rel)
			return
		}
		if err := relationAllows(rel, c, tc); err != nil {
			l.errorf(at, p, "%v", err)
			return
		}
		ls.class = tc
		ls.props = derivedEdgeProps(rel)
		out = append(out, ls)
	}
	if n.Kind == yaml.SequenceNode {
		for i, e := range n.Content {
			one(deref(e), fmt.Sprintf("%s[%d]", path, i))
		}
	} else {
		one(n, path)
	}
	return out
}

// derivedEdgeProps returns the properties of a hub-computed point-in-polygon
// edge that the relation declares (ONTOLOGY.md §5: derived, method,
// confidence).
func derivedEdgeProps(rel *ontology.Relation) map[string]any {
	props := map[string]any{}
	for _, p := range rel.Props {
		switch {
		case p.Name == "method" && p.Enum != nil && enumValue(p.Enum, "POINT_IN_POLYGON") != "":
			props["method"] = "POINT_IN_POLYGON"
		case p.Name == "method" && p.Type == ontology.TypeString:
			props["method"] = "POINT_IN_POLYGON"
		case p.Name == "derived" && p.Type == ontology.TypeBoolean:
			props["derived"] = true
		case p.Name == "confidence" && p.Type == ontology.TypeFloat:
			props["confidence"] = 1.0
		}
	}
	if len(props) == 0 {
		return nil
	}
	return props
}

// relationAllows checks that rel may link a node of class from to a node
// of class to (to may be nil when unknown).
func relationAllows(rel *ontology.Relation, from, to *ontology.Class) error {
	ok := false
	for _, fc := range rel.From {
		if from.IsA(fc) {
			ok = true
			break
		}
	}
	if !ok {
		return fmt.Errorf("relation %s does not start at class %s (from: %v)", rel.Name, from.Name, rel.FromNames)
	}
	if to != nil && !to.IsA(rel.To) {
		return fmt.Errorf("relation %s does not lead to class %s (to: %s)", rel.Name, to.Name, rel.ToName)
	}
	return nil
}

var edgeKeys = []string{"rel", "to", "to_id", "to_class", "to_key", "to_source", "properties"}

func (l *loader) edge(m *Mapping, nt *nodeTmpl, n *yaml.Node, path string, refs map[string]int, sc scope) *edgeTmpl {
	e := &edgeTmpl{toRef: -1}
	errs := len(l.errs)
	var propsNode, relNode *yaml.Node
	targets := 0
	l.mapping(n, path, edgeKeys, func(key string, k, v *yaml.Node) {
		p := path + "." + key
		switch key {
		case "rel":
			relNode = v
			name := l.str(v, p)
			if e.rel = l.ont.Relation(name); e.rel == nil && name != "" {
				l.errorf(v, p, "unknown relation %q", name)
			}
		case "to":
			targets++
			ref := l.str(v, p)
			i, ok := refs[ref]
			switch {
			case !ok:
				l.errorf(v, p, "no node template with ref %q", ref)
			case m.nodes[i] == nt:
				l.errorf(v, p, "an edge cannot point to its own node template")
			case m.nodes[i].repeat != nil:
				l.errorf(v, p, "node %q is repeated: edges can only point to single nodes", ref)
			default:
				e.toRef = i
			}
		case "to_id":
			targets++
			e.toID = l.template(v, p, sc)
		case "to_class":
			targets++
			name := l.str(v, p)
			if e.toClass = l.ont.Class(name); e.toClass == nil && name != "" {
				l.errorf(v, p, "unknown class %q", name)
			} else if e.toClass != nil && e.toClass.Abstract {
				l.errorf(v, p, "class %s is abstract", name)
			}
		case "to_key":
			e.toKey = l.template(v, p, sc)
			if e.toKey != nil {
				for _, part := range e.toKey.parts {
					if part.ref == nil && !keyLiteralOK(part.lit) {
						l.errorf(v, p, "literal text %q in a key may use letters, digits, - . _ ~ and !$&'()*+,;=@ only", part.lit)
					}
				}
			}
		case "to_source":
			e.toSource = l.str(v, p)
			if !sourceCodeRE.MatchString(e.toSource) {
				l.errorf(v, p, "source code %q must match [a-z0-9-]{2,32}", e.toSource)
			}
		case "properties":
			propsNode = v
		}
	})
	if relNode == nil {
		l.errorf(n, path+".rel", "rel is required")
	}
	if targets != 1 {
		l.errorf(n, path, "give exactly one of to, to_id and to_class")
	}
	if (e.toClass != nil) != (e.toKey != nil) && len(l.errs) == errs {
		l.errorf(n, path, "to_class and to_key go together")
	}
	if e.toSource != "" && e.toClass == nil {
		l.errorf(n, path+".to_source", "to_source needs to_class")
	}
	if e.rel != nil {
		var target *ontology.Class
		switch {
		case e.toRef >= 0:
			target = m.nodes[e.toRef].class
		case e.toClass != nil:
			target = e.toClass
		}
		if err := relationAllows(e.rel, nt.class, target); err != nil {
			l.errorf(relNode, path+".rel", "%v", err)
		}
		if propsNode != nil {
			l.mapping(propsNode, path+".properties", nil, func(prop string, pk, pv *yaml.Node) {
				pp := path + ".properties." + prop
				var rp *ontology.Property
				for _, x := range e.rel.Props {
					if x.Name == prop {
						rp = x
					}
				}
				if rp == nil {
					l.errorf(pk, pp, "relation %s has no property %q", e.rel.Name, prop)
					return
				}
				if spec := l.compileValue(pv, pp, e.rel.Name+"."+prop, propType(rp), sc); spec != nil {
					e.props = append(e.props, propTmpl{prop, spec})
				}
			})
		}
	}
	if len(l.errs) > errs {
		return nil
	}
	return e
}

func (l *loader) template(n *yaml.Node, path string, sc scope) *template {
	s := l.str(n, path)
	t, err := parseTemplate(s)
	if err != nil {
		l.errorf(n, path, "%v", err)
		return nil
	}
	if err := sc.checkRefs(t); err != nil {
		l.errorf(n, path, "%v", err)
		return nil
	}
	return t
}

// condition is a skip_if test.
type condition struct {
	empty   []fieldRef
	equals  []condEq
	matches []condRe
}

type fieldRef struct {
	name string
	path []string
}

type condEq struct {
	field  fieldRef
	values []string
}

type condRe struct {
	field fieldRef
	re    *regexp.Regexp
}

func newFieldRef(name string) fieldRef {
	f := fieldRef{name: name}
	if containsDot(name) {
		f.path = splitDot(name)
	}
	return f
}

func (l *loader) condition(n *yaml.Node, path string, fields map[string]bool) *condition {
	c := &condition{}
	checkField := func(at *yaml.Node, p, f string) {
		if fields != nil && !fields[f] {
			l.errorf(at, p, "unknown field %q (not in mapping.fields)", f)
		}
	}
	l.mapping(n, path, []string{"empty", "equals", "matches"}, func(key string, k, v *yaml.Node) {
		p := path + "." + key
		switch key {
		case "empty":
			for _, f := range l.strList(v, p) {
				checkField(v, p, f)
				c.empty = append(c.empty, newFieldRef(f))
			}
		case "equals":
			l.mapping(v, p, nil, func(f string, fk, fv *yaml.Node) {
				checkField(fk, p+"."+f, f)
				c.equals = append(c.equals, condEq{newFieldRef(f), l.strList(fv, p+"."+f)})
			})
		case "matches":
			l.mapping(v, p, nil, func(f string, fk, fv *yaml.Node) {
				checkField(fk, p+"."+f, f)
				re, err := regexp.Compile(l.str(fv, p+"."+f))
				if err != nil {
					l.errorf(fv, p+"."+f, "bad regex: %v", err)
					return
				}
				c.matches = append(c.matches, condRe{newFieldRef(f), re})
			})
		}
	})
	if len(c.empty)+len(c.equals)+len(c.matches) == 0 {
		l.errorf(n, path, "an empty condition; give empty, equals or matches")
	}
	return c
}

// holds reports whether the condition holds for the record.
func (c *condition) holds(fields map[string]any) bool {
	text := func(f fieldRef) (string, bool) {
		v := lookupField(fields, f.name, f.path)
		if missing(v) {
			return "", false
		}
		s, err := toString(v)
		return s, err == nil
	}
	for _, f := range c.empty {
		if _, ok := text(f); !ok {
			return true
		}
	}
	for _, e := range c.equals {
		if s, ok := text(e.field); ok && containsStr(e.values, s) {
			return true
		}
	}
	for _, m := range c.matches {
		if s, ok := text(m.field); ok && m.re.MatchString(s) {
			return true
		}
	}
	return false
}

func containsDot(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return true
		}
	}
	return false
}

func splitDot(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
