package connectors

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
	"gopkg.in/yaml.v3"
)

// Identity resolution: rungs 1 and 2 of the cross-source resolution ladder
// of ONTOLOGY.md §4. A node template may declare
//
//	external_ids:              scheme: value spec (String); each present value
//	  poleNumber: "{PoleID}"   adds "scheme:value" to the node's externalIds
//	  assetTag: {field: Tag}
//	resolve_by: [poleNumber]   schemes whose identifiers make this node the
//	                           same entity as an existing node of its class
//
// A scheme in resolve_by must be produced by external_ids or by a
// properties.externalIds template that starts with "scheme:" (a constant
// would make every record one entity). Persons, events and observations
// never resolve (§4, rule 4): their classes refuse resolve_by at load. All
// the node templates of one class in a mapping declare the same resolve_by.
//
// A resolving node always carries its own URN in externalIds (the "urn"
// scheme, reserved): after it has been merged into a node of another ID,
// a later run of the same source finds that node again by its own URN
// (rung 1: same source and source key, same node), even when the record
// no longer has the shared identifier.
//
// Before a batch is applied, the runner looks up, in ONE store query
// (paged), the nodes of the batch's resolving classes whose externalIds
// hold one of the batch's identifiers or own URNs, or whose ID is one of
// those URNs. Each resolving node, in batch order, then takes a target:
// the node its own URN names (rung 1), else the node named by its first
// identifier in resolve_by order that names one (rung 2), else itself.
// Nodes of the batch register their identifiers as they go, so that later
// records of the same batch sharing one resolve to the same node (first
// wins). Existing nodes are indexed in ID order, so an identifier held by
// two existing nodes names the smaller ID: resolution never merges two
// nodes that already exist (that would need deleting one and SAME_AS,
// rung 3), it only stops adding duplicates.
//
// Merge rule, when the target exists (in the store or earlier in the
// batch) and holds more than this very record:
//   - properties: the existing ones are kept, and every property this
//     record sets (non-null) replaces the existing value: the last source
//     written wins, property by property. A property the record leaves
//     null keeps the existing value, so on a merged node a source cannot
//     clear a value. ONTOLOGY.md's per-class source-of-record order is not
//     applied: two sources that disagree on a property overwrite each
//     other at every run.
//   - externalIds: the union, sorted.
//   - geometry: this record's when it has one, else the existing one.
//   - provenance: this record's (source, source key, connector, run,
//     fetched-at, valid time), with Sources the union of the contributing
//     source codes, sorted, and srcUpdatedAt the later of the two. Source
//     clocks do not compare across sources, and the store drops an upsert
//     older than what it holds; so on a merged node an out-of-order older
//     record of one source is not detected (the store keeps one
//     srcUpdatedAt per node, not one per source).
//
// When the target is the record's own node and no other record or source
// contributed to it, the record replaces it as any upsert does (nulls
// clear, the store's srcUpdatedAt rule applies); only Sources is set.
//
// Records of one batch that resolve to one node are folded in batch order
// and each of them carries the folded node, so the node is written once
// (when the store rejects the batch and the runner retries record by
// record, each record still carries the others' data). When the folded
// node leaves an existing node's data as stored (properties, geometry,
// sources), it keeps the stored provenance with the later srcUpdatedAt:
// re-running any contributing source changes nothing.
//
// Edges of the batch that start or end at a node whose ID changed follow
// it. Edges written by other batches or connectors to a merged-away URN
// are not rewritten; the URN stays findable in the merged node's
// externalIds. Edges are not merged: two sources writing the same edge
// (same ends and relation) overwrite each other's edge provenance.

// urnScheme is the reserved scheme of a resolving node's own URN.
const urnScheme = "urn"

// nodeURNPrefix starts every node ID the connectors make.
const nodeURNPrefix = "urn:city:"

// resolvePage is the page size of the resolution query.
const resolvePage = 500

var schemeRE = regexp.MustCompile(`^[a-z][A-Za-z0-9]{0,31}$`)

// unmergeable lists the class trees that never resolve across sources
// (ONTOLOGY.md §4, rule 4), with their plural for messages.
var unmergeable = []struct{ class, plural string }{
	{"Person", "persons"},
	{"Event", "events"},
	{"Observation", "observations"},
}

// extIDTmpl is one entry of a node template's external_ids.
type extIDTmpl struct {
	scheme string
	spec   *valueSpec
}

// resolveSpec is the resolution a mapping declares for one class.
type resolveSpec struct {
	class   *ontology.Class
	schemes []string
}

// ResolveBy returns the schemes by which the mapping resolves nodes of the
// class (nil when it does not resolve them).
func (m *Mapping) ResolveBy(class string) []string {
	if rs := m.resolve[class]; rs != nil {
		return append([]string(nil), rs.schemes...)
	}
	return nil
}

// externalIDsProp checks that class c has the externalIds property, a list
// of strings.
func (l *loader) externalIDsProp(c *ontology.Class, at *yaml.Node, path string) bool {
	p := c.Property("externalIds")
	if p == nil || !p.List || p.Type != ontology.TypeString {
		l.errorf(at, path, "class %s has no externalIds property ([String])", c.Name)
		return false
	}
	return true
}

// compileExternalIDs decodes a node template's external_ids.
func (l *loader) compileExternalIDs(nt *nodeTmpl, n *yaml.Node, path string, sc scope) {
	c := nt.class
	if !l.externalIDsProp(c, n, path) {
		return
	}
	l.mapping(n, path, nil, func(scheme string, k, v *yaml.Node) {
		p := path + "." + scheme
		switch {
		case scheme == urnScheme:
			l.errorf(k, p, "scheme %q is reserved: a resolving node keeps its own URN in externalIds", scheme)
			return
		case !schemeRE.MatchString(scheme):
			l.errorf(k, p, "scheme %q must be a lower camel case word (letters and digits, at most 32), e.g. poleNumber", scheme)
			return
		}
		if spec := l.compileValue(v, p, c.Name+".externalIds."+scheme, valueType{name: ontology.TypeString}, sc); spec != nil {
			nt.extIDs = append(nt.extIDs, extIDTmpl{scheme: scheme, spec: spec})
		}
	})
}

// compileResolveBy decodes a node template's resolve_by, after its
// properties and external_ids.
func (l *loader) compileResolveBy(nt *nodeTmpl, n *yaml.Node, path string) {
	c := nt.class
	for _, u := range unmergeable {
		root := l.ont.Class(u.class)
		if root == nil || !c.IsA(root) {
			continue
		}
		what := "class " + c.Name
		if c != root {
			article := "a"
			if strings.ContainsRune("AEIOU", rune(root.Name[0])) {
				article = "an"
			}
			what += " (" + article + " " + root.Name + ")"
		}
		l.errorf(n, path, "%s cannot resolve_by: %s are never merged across sources (ONTOLOGY.md §4); link them instead (PART_OF, DERIVED_FROM)", what, u.plural)
		return
	}
	if !l.externalIDsProp(c, n, path) {
		return
	}
	schemes := l.strList(n, path)
	if len(schemes) == 0 && n.Kind == yaml.SequenceNode {
		l.errorf(n, path, "resolve_by: list at least one scheme")
		return
	}
	var out []string
	for i, s := range schemes {
		at, p := n, path
		if n.Kind == yaml.SequenceNode {
			at, p = n.Content[i], fmt.Sprintf("%s[%d]", path, i)
		}
		switch {
		case s == urnScheme:
			l.errorf(at, p, "scheme %q needs no resolve_by: a resolving node is always found by its own URN", s)
		case !schemeRE.MatchString(s):
			l.errorf(at, p, "scheme %q must be a lower camel case word (letters and digits, at most 32), e.g. poleNumber", s)
		case containsStr(out, s):
			l.errorf(at, p, "scheme %q is listed twice", s)
		default:
			switch schemeSource(nt, s) {
			case "constant":
				l.errorf(at, p, "scheme %q comes from a constant: every record would resolve to one node", s)
			case "":
				l.errorf(at, p, "scheme %q is produced neither by external_ids nor by a properties.externalIds template starting with %q", s, s+":")
			default:
				out = append(out, s)
			}
		}
	}
	nt.resolveBy = out
}

// schemeSource says where a node template's identifiers of a scheme come
// from: "external_ids", "properties", "constant" or "" (nowhere).
func schemeSource(nt *nodeTmpl, scheme string) string {
	for _, e := range nt.extIDs {
		if e.scheme == scheme {
			if e.spec.isConst {
				return "constant"
			}
			return "external_ids"
		}
	}
	prefix := scheme + ":"
	for _, pt := range nt.props {
		if pt.name != "externalIds" {
			continue
		}
		s := pt.spec
		if s.isConst {
			list, _ := s.konst.([]any)
			for _, v := range list {
				if str, ok := v.(string); ok && strings.HasPrefix(str, prefix) {
					return "constant"
				}
			}
			continue
		}
		if s.tmpl != nil && len(s.tmpl.parts) > 1 && s.tmpl.parts[0].ref == nil && strings.HasPrefix(s.tmpl.parts[0].lit, prefix) {
			return "properties"
		}
	}
	return ""
}

// checkResolveClass checks that the node templates of one class agree on
// resolve_by, and records the class's resolution in the mapping.
func (l *loader) checkResolveClass(m *Mapping, nt *nodeTmpl, at *yaml.Node, path string) {
	for i, o := range m.nodes {
		if o == nt {
			break
		}
		if o.class == nt.class && !slices.Equal(o.resolveBy, nt.resolveBy) {
			l.errorf(at, path, "node templates of class %s must declare the same resolve_by (nodes[%d] declares %v, this one %v)", nt.class.Name, i, o.resolveBy, nt.resolveBy)
			return
		}
	}
	if len(nt.resolveBy) == 0 {
		return
	}
	if m.resolve == nil {
		m.resolve = map[string]*resolveSpec{}
	}
	if m.resolve[nt.class.Name] == nil {
		m.resolve[nt.class.Name] = &resolveSpec{class: nt.class, schemes: nt.resolveBy}
	}
}

// evalExternalIDs adds the node template's external_ids of one record to
// the node's externalIds property.
func evalExternalIDs(nt *nodeTmpl, ec *evalCtx, props map[string]any) error {
	ids, _ := props["externalIds"].([]any)
	for _, e := range nt.extIDs {
		v, ok, _, err := e.spec.eval(ec)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		s, err := toString(v)
		if err != nil {
			return mapErrf(e.spec.where, "%v", err)
		}
		ids = appendUnique(ids, e.scheme+":"+s)
	}
	if len(ids) > 0 {
		props["externalIds"] = ids
	}
	return nil
}

// appendUnique appends s to list unless it is there, never writing into
// list's backing array (it may be a mapping constant shared by records).
func appendUnique(list []any, s string) []any {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list[:len(list):len(list)], s)
}

// resolveBatch resolves the identities of the batch's nodes whose classes
// the mapping resolves (see the top of this file): it rewrites their IDs,
// merges them with the nodes they resolve to, and points the batch's edges
// at the new IDs. It makes one store query (paged) when the batch holds
// resolving nodes, none otherwise; it returns the query's error.
func resolveBatch(ctx context.Context, f Finder, m *Mapping, b *graph.Batch, log *slog.Logger) error {
	if len(m.resolve) == 0 {
		return nil
	}
	return resolveWith(ctx, f, m, b, log, resolvePage)
}

// resolveItem is a resolving node of the batch.
type resolveItem struct {
	i    int      // index in the batch's nodes
	keys []string // own URN first, then identifiers in resolve_by order
}

// classKey names an identifier within a class: identifiers only resolve
// nodes of the same class.
type classKey struct{ class, id string }

func resolveWith(ctx context.Context, f Finder, m *Mapping, b *graph.Batch, log *slog.Logger, page int) error {
	var items []resolveItem
	var classes []*ontology.Class
	var keys, own []any
	keySet := map[string]bool{}
	for i := range b.Nodes {
		n := &b.Nodes[i]
		rs := m.resolve[n.Class]
		if rs == nil {
			continue
		}
		if n.Props == nil {
			n.Props = map[string]any{}
		}
		ext := unionIDs(n.Props["externalIds"], n.ID)
		n.Props["externalIds"] = ext
		it := resolveItem{i: i, keys: identifiers(ext, n.ID, rs.schemes)}
		items = append(items, it)
		if !slices.Contains(classes, rs.class) {
			classes = append(classes, rs.class)
		}
		own = append(own, n.ID)
		for _, k := range it.keys {
			if !keySet[k] {
				keySet[k] = true
				keys = append(keys, k)
			}
		}
	}
	if len(items) == 0 {
		return nil
	}
	existing, err := findResolving(ctx, f, commonClass(classes), keys, own, m, page)
	if err != nil {
		return err
	}
	// index: identifier → the node it names. Existing nodes first by their
	// own ID (rung 1), then by their identifiers, in ID order.
	ids := make([]string, 0, len(existing))
	for id := range existing {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	idx := make(map[classKey]string, len(keys))
	for _, id := range ids {
		idx[classKey{existing[id].Class, id}] = id
	}
	ambiguous, example := 0, ""
	for _, id := range ids {
		e := existing[id]
		for _, x := range stringsOf(e.Props["externalIds"]) {
			if !keySet[x] {
				continue
			}
			k := classKey{e.Class, x}
			if t, ok := idx[k]; !ok {
				idx[k] = id
			} else if t != id && !strings.HasPrefix(x, nodeURNPrefix) {
				if ambiguous == 0 {
					example = fmt.Sprintf("%s names %s and %s", x, t, id)
				}
				ambiguous++
			}
		}
	}
	if ambiguous > 0 {
		log.WarnContext(ctx, "identifiers name several existing nodes; each resolves to the smallest ID", "count", ambiguous, "example", example)
	}
	acc := map[string]*graph.Node{}
	occ := map[string][]int{} // target → indexes of the batch's nodes
	var targets []string
	rewrite := map[string]string{}
	for _, it := range items {
		n := b.Nodes[it.i]
		target := ""
		for _, k := range it.keys {
			if t, ok := idx[classKey{n.Class, k}]; ok {
				target = t
				break
			}
		}
		if target == "" {
			target = n.ID
		}
		for _, k := range it.keys {
			ck := classKey{n.Class, k}
			if _, ok := idx[ck]; !ok {
				idx[ck] = target
			}
		}
		base := acc[target]
		if base == nil {
			base = existing[target]
		}
		out := mergeNode(base, n, target)
		acc[target] = &out
		if occ[target] == nil {
			targets = append(targets, target)
		}
		occ[target] = append(occ[target], it.i)
		if target != n.ID {
			rewrite[n.ID] = target
		}
	}
	// every record of a target carries the folded node, so that the store
	// writes it once whatever the batch order; a node whose data the batch
	// leaves as stored keeps its stored provenance
	for _, target := range targets {
		out := *acc[target]
		if e := existing[target]; e != nil {
			keepProvenance(e, &out)
		}
		for _, i := range occ[target] {
			b.Nodes[i] = out
		}
	}
	if len(rewrite) > 0 {
		rewriteEdges(b.Edges, rewrite)
	}
	log.DebugContext(ctx, "identities resolved", "nodes", len(items), "found", len(existing), "merged", len(rewrite), "ambiguous", ambiguous)
	return nil
}

// rewriteEdges points edges at the nodes their ends resolved to. Edges
// that become one (same ends and relation) all carry the properties and
// provenance of the last, as folded nodes do, so that the store writes the
// edge once and a re-run finds it unchanged.
func rewriteEdges(edges []graph.Edge, rewrite map[string]string) {
	last := map[graph.EdgeKey]int{}
	dup := false
	for j := range edges {
		e := &edges[j]
		if t, ok := rewrite[e.From]; ok {
			e.From = t
		}
		if t, ok := rewrite[e.To]; ok {
			e.To = t
		}
		if _, seen := last[e.Key()]; seen {
			dup = true
		}
		last[e.Key()] = j
	}
	if !dup {
		return
	}
	for j := range edges {
		if l := last[edges[j].Key()]; l != j {
			edges[j].Props, edges[j].Prov = edges[l].Props, edges[l].Prov
		}
	}
}

// findResolving runs the batch's resolution query: nodes of class (and its
// subclasses) whose externalIds hold one of keys or whose ID is one of
// own, page after page. It keeps the nodes of resolving classes.
func findResolving(ctx context.Context, f Finder, class *ontology.Class, keys, own []any, m *Mapping, page int) (map[string]*graph.Node, error) {
	q := graph.FindQuery{Class: class.Name, First: page, Filter: graph.Or{
		graph.Cmp{Field: "externalIds", Op: graph.OpIn, Value: keys},
		graph.Cmp{Field: graph.FieldID, Op: graph.OpIn, Value: own},
	}}
	out := map[string]*graph.Node{}
	for {
		p, err := f.Find(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("find %s nodes by identifier: %w", class.Name, err)
		}
		for _, n := range p.Nodes {
			if n != nil && m.resolve[n.Class] != nil {
				out[n.ID] = n
			}
		}
		if !p.HasNext || len(p.Cursors) == 0 {
			return out, nil
		}
		q.After = p.Cursors[len(p.Cursors)-1]
	}
}

// commonClass returns the most specific class that all classes descend
// from.
func commonClass(classes []*ontology.Class) *ontology.Class {
	c := classes[0]
	for _, o := range classes[1:] {
		for c != nil && !o.IsA(c) {
			c = c.Parent
		}
	}
	return c
}

// identifiers returns a node's lookup keys: its own URN, then its
// externalIds in the resolve_by schemes, in scheme order.
func identifiers(ext []any, id string, schemes []string) []string {
	out := []string{id}
	for _, s := range schemes {
		prefix := s + ":"
		for _, x := range ext {
			if str, ok := x.(string); ok && len(str) > len(prefix) && strings.HasPrefix(str, prefix) && !slices.Contains(out, str) {
				out = append(out, str)
			}
		}
	}
	return out
}

// mergeNode folds node n, mapped from one record, into base, the node it
// resolves to (nil when there is none), under ID target (see the merge
// rule at the top of this file).
func mergeNode(base *graph.Node, n graph.Node, target string) graph.Node {
	src := n.Prov.Source
	if base == nil || ownNode(base, n) {
		out := n
		out.ID = target
		out.Props = copyProps(n.Props)
		out.Props["externalIds"] = unionIDs(n.Props["externalIds"])
		out.Prov.Sources = []string{src}
		return out
	}
	props := copyProps(base.Props)
	for k, v := range n.Props {
		if v != nil {
			props[k] = v
		}
	}
	props["externalIds"] = unionIDs(base.Props["externalIds"], n.Props["externalIds"])
	geom := base.Geometry
	if n.Geometry != nil {
		geom = n.Geometry
	}
	out := graph.Node{ID: target, Class: n.Class, Props: props, Geometry: geom, Prov: n.Prov}
	out.Prov.IngestedAt = time.Time{}
	out.Prov.Sources = unionSources(sourcesOf(base.Prov), src)
	out.Prov.SrcUpdatedAt = later(base.Prov.SrcUpdatedAt, n.Prov.SrcUpdatedAt)
	return out
}

// keepProvenance gives out, the node a batch writes over the stored node
// e, e's provenance when it changes none of e's data (properties,
// geometry, sources), with the later srcUpdatedAt: re-running a source
// that contributed to a merged node then changes nothing.
func keepProvenance(e *graph.Node, out *graph.Node) {
	had := slices.Clone(sourcesOf(e.Prov))
	sort.Strings(had)
	if !slices.Equal(had, out.Prov.Sources) || !sameGeometry(e.Geometry, out.Geometry) || !sameProps(e.Props, out.Props) {
		return
	}
	t := later(e.Prov.SrcUpdatedAt, out.Prov.SrcUpdatedAt)
	out.Prov = e.Prov
	out.Prov.Sources = had
	out.Prov.SrcUpdatedAt = t
}

// ownNode reports whether base holds record n alone: same ID, written by
// n's source only, and no other node URN merged into it.
func ownNode(base *graph.Node, n graph.Node) bool {
	if base.ID != n.ID {
		return false
	}
	for _, s := range sourcesOf(base.Prov) {
		if s != n.Prov.Source {
			return false
		}
	}
	for _, x := range stringsOf(base.Props["externalIds"]) {
		if strings.HasPrefix(x, nodeURNPrefix) && x != n.ID {
			return false
		}
	}
	return true
}

// sourcesOf returns the sources that contributed to a stored node.
func sourcesOf(p graph.Provenance) []string {
	if len(p.Sources) > 0 {
		return p.Sources
	}
	if p.Source != "" {
		return []string{p.Source}
	}
	return nil
}

func unionSources(had []string, src string) []string {
	out := append([]string(nil), had...)
	if src != "" && !slices.Contains(out, src) {
		out = append(out, src)
	}
	sort.Strings(out)
	return out
}

// unionIDs returns the strings of the given externalIds values (lists or
// single strings), sorted, without duplicates.
func unionIDs(vs ...any) []any {
	var all []string
	for _, v := range vs {
		all = append(all, stringsOf(v)...)
	}
	sort.Strings(all)
	all = slices.Compact(all)
	out := make([]any, len(all))
	for i, s := range all {
		out[i] = s
	}
	return out
}

// stringsOf returns the non-empty strings of a list or string value.
func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		if x != "" {
			return []string{x}
		}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return x
	}
	return nil
}

func copyProps(p map[string]any) map[string]any {
	out := make(map[string]any, len(p)+1)
	for k, v := range p {
		out[k] = v
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func sameGeometry(a, b *graph.Geometry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func sameProps(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !sameValue(v, w) {
			return false
		}
	}
	return true
}

// sameValue compares property values as the store keeps them: numbers by
// value, times to the microsecond.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Truncate(time.Microsecond).Equal(y.Truncate(time.Microsecond))
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y
		case float64:
			return float64(x) == y
		}
		return false
	case float64:
		switch y := b.(type) {
		case float64:
			return x == y
		case int64:
			return x == float64(y)
		}
		return false
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && sameProps(x, y)
	}
	return reflect.DeepEqual(a, b)
}
