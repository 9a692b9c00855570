package graph

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph/geo"
	"github.com/cityhub/cityhub/ontology"
)

// This file evaluates the filter model in memory, for one node at a time:
// a subscription decides whether a changed node matches its where filter
// without asking the store. The semantics are the stores' (graphtest's
// package comment states them); the conformance suite checks that a
// Matcher agrees with Store.Find on every backend.

// AreaSource gives the polygons of the area nodes that WithinArea names,
// so that a caller can load and cache them (LoadAreas, AreaShape). Area
// returns nil for an unknown area or one without polygon geometry; such an
// area contains nothing. Implementations must be safe for concurrent use
// when matchers run concurrently.
type AreaSource interface {
	Area(id string) *geo.Shape
}

// AreaMap is an AreaSource held in a map from area node ID to its shape.
type AreaMap map[string]*geo.Shape

// Area implements AreaSource.
func (m AreaMap) Area(id string) *geo.Shape { return m[id] }

// AreaShape returns the polygons of an area node as the stores read them
// for WithinArea: its geometry's GeoJSON parsed with geo.ParseGeoJSON. It
// returns nil for a nil node, a node without GeoJSON geometry, or geometry
// that does not parse or has no polygon.
func AreaShape(n *Node) *geo.Shape {
	if n == nil || n.Geometry == nil || n.Geometry.GeoJSON == "" {
		return nil
	}
	s, err := geo.ParseGeoJSON([]byte(n.Geometry.GeoJSON))
	if err != nil || len(s.Polygons) == 0 {
		return nil
	}
	return s
}

// LoadAreas reads the area nodes ids (Matcher.Areas) with one Store.Nodes
// call and returns the shapes of those that have polygons. It returns the
// store's error, wrapped.
func LoadAreas(ctx context.Context, s Store, ids []string) (AreaMap, error) {
	out := AreaMap{}
	if len(ids) == 0 {
		return out, nil
	}
	ns, err := s.Nodes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("graph: load areas: %w", err)
	}
	for _, n := range ns {
		if sh := AreaShape(n); sh != nil {
			out[n.ID] = sh
		}
	}
	return out, nil
}

// Matcher is a filter compiled for one class: it decides in memory whether
// a node matches, exactly as Store.Find with the same class and filter
// would. Field types are resolved, constants converted and sets built once
// by CompileMatch; Match does not allocate. A Matcher is immutable and safe
// for concurrent use.
type Matcher struct {
	class string
	// the concrete classes of the scope; byName is set when there are many
	classes []*matchClass
	byName  map[string]*matchClass
	root    pred // nil matches every node of the scope
	areas   []string
}

// matchClass is a concrete class of a matcher's scope.
type matchClass struct {
	name   string
	search []string // names of its searchable properties
}

// CompileMatch compiles f for the nodes of class and its subclasses. It
// returns an error wrapping ErrInvalid where the stores reject the query:
// an unknown class, an unknown field or one whose type differs between
// the subclasses, an unknown operator, a value of the wrong type, a bad
// near centre or radius, a NaN box. A nil filter matches every node of the
// class.
func CompileMatch(o *ontology.Ontology, class string, f Filter) (*Matcher, error) {
	if o == nil {
		return nil, fmt.Errorf("graph: compile match: %w: no ontology", ErrInvalid)
	}
	c := o.Class(class)
	if c == nil {
		return nil, fmt.Errorf("graph: compile match: %w: unknown class %q", ErrInvalid, class)
	}
	m := &Matcher{class: class}
	mc := &matchCompiler{class: class, props: map[string]*ontology.Property{}, ambiguous: map[string]bool{}, areas: map[string]bool{}}
	for _, name := range c.ConcreteDescendants() {
		cc := o.Class(name)
		info := &matchClass{name: name}
		for _, p := range cc.Props {
			if prev := mc.props[p.Name]; prev != nil && (matchKindOf(prev) != matchKindOf(p) || prev.List != p.List) {
				mc.ambiguous[p.Name] = true
			}
			mc.props[p.Name] = p
			if p.Searchable {
				info.search = append(info.search, p.Name)
			}
		}
		m.classes = append(m.classes, info)
	}
	if len(m.classes) > smallSet {
		m.byName = make(map[string]*matchClass, len(m.classes))
		for _, ci := range m.classes {
			m.byName[ci.name] = ci
		}
	}
	// the stores compile the simplified filter: a branch that Simplify
	// drops is never checked
	root, err := mc.compile(Simplify(f))
	if err != nil {
		return nil, fmt.Errorf("graph: compile match on %s: %w", class, err)
	}
	if k, ok := root.(constPred); ok && bool(k) {
		root = nil
	}
	m.root = root
	for id := range mc.areas {
		m.areas = append(m.areas, id)
	}
	slices.Sort(m.areas)
	return m, nil
}

// Class returns the class the matcher was compiled for.
func (m *Matcher) Class() string { return m.class }

// Areas returns the IDs of the areas the filter's WithinArea predicates
// name, sorted, so that a caller can load them before matching.
func (m *Matcher) Areas() []string { return slices.Clone(m.areas) }

// Match reports whether n is a node of the matcher's class (or of a
// subclass) that satisfies the filter. n is a node as Store.Nodes returns
// it. areas gives the polygons of the areas in Areas(); with a nil areas
// every WithinArea is false.
func (m *Matcher) Match(n *Node, areas AreaSource) bool {
	if n == nil {
		return false
	}
	c := m.lookup(n.Class)
	if c == nil {
		return false
	}
	return m.root == nil || m.root.eval(n, c, areas)
}

func (m *Matcher) lookup(class string) *matchClass {
	if m.byName != nil {
		return m.byName[class]
	}
	for _, c := range m.classes {
		if c.name == class {
			return c
		}
	}
	return nil
}

// smallSet is the size up to which sets are scanned rather than hashed.
const smallSet = 8

// matchKind is how a field's values compare (as in the stores).
type matchKind int

const (
	mkString matchKind = iota // strings and enums: code point order
	mkNumber                  // Int and Float: numeric order
	mkBool                    // only equality
	mkTime                    // instants at microsecond precision
	mkJSON                    // only isNull
)

func matchKindOf(p *ontology.Property) matchKind {
	switch {
	case p.Enum != nil, p.Type == ontology.TypeString:
		return mkString
	case p.Type == ontology.TypeInt, p.Type == ontology.TypeFloat:
		return mkNumber
	case p.Type == ontology.TypeBoolean:
		return mkBool
	case p.Type == ontology.TypeDateTime:
		return mkTime
	}
	return mkJSON
}

// source is where a field's value lives in a Node.
type source int

const (
	srcProp source = iota
	srcID
	srcClass
	srcSource
	srcFetchedAt
	srcIngestedAt
	srcValidFrom
	srcValidTo
)

// mfield is a resolved filter field.
type mfield struct {
	name string
	src  source
	kind matchKind
	list bool
}

var matchBuiltins = map[string]mfield{
	FieldID:         {name: FieldID, src: srcID, kind: mkString},
	FieldClass:      {name: FieldClass, src: srcClass, kind: mkString},
	FieldSource:     {name: FieldSource, src: srcSource, kind: mkString},
	FieldFetchedAt:  {name: FieldFetchedAt, src: srcFetchedAt, kind: mkTime},
	FieldIngestedAt: {name: FieldIngestedAt, src: srcIngestedAt, kind: mkTime},
	FieldValidFrom:  {name: FieldValidFrom, src: srcValidFrom, kind: mkTime},
	FieldValidTo:    {name: FieldValidTo, src: srcValidTo, kind: mkTime},
}

// mop is a comparison operator other than isNull.
type mop int

const (
	mEq mop = iota
	mNe
	mLt
	mLte
	mGt
	mGte
	mIn
	mContains
	mStartsWith
)

var matchOps = map[CmpOp]mop{
	OpEq: mEq, OpNe: mNe, OpLt: mLt, OpLte: mLte, OpGt: mGt, OpGte: mGte,
	OpIn: mIn, OpContains: mContains, OpStartsWith: mStartsWith,
}

// order reports whether c (the comparison of a stored value with the
// constant: -1, 0, 1) satisfies an equality or order operator.
func (op mop) order(c int) bool {
	switch op {
	case mEq:
		return c == 0
	case mNe:
		return c != 0
	case mLt:
		return c < 0
	case mLte:
		return c <= 0
	case mGt:
		return c > 0
	case mGte:
		return c >= 0
	}
	return false
}

type matchCompiler struct {
	class     string
	props     map[string]*ontology.Property
	ambiguous map[string]bool
	areas     map[string]bool
}

func (mc *matchCompiler) resolve(name string) (mfield, error) {
	if f, ok := matchBuiltins[name]; ok {
		return f, nil
	}
	p := mc.props[name]
	if p == nil {
		return mfield{}, fmt.Errorf("%w: unknown field %q on class %s", ErrInvalid, name, mc.class)
	}
	if mc.ambiguous[name] {
		return mfield{}, fmt.Errorf("%w: field %q has different types in the subclasses of %s", ErrInvalid, name, mc.class)
	}
	return mfield{name: name, src: srcProp, kind: matchKindOf(p), list: p.List}, nil
}

func (mc *matchCompiler) compile(f Filter) (pred, error) {
	switch x := f.(type) {
	case nil:
		return constPred(true), nil
	case And:
		if len(x) == 0 {
			return constPred(true), nil
		}
		out := make(andPred, len(x))
		for i, c := range x {
			p, err := mc.compile(c)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case Or:
		if len(x) == 0 {
			return constPred(false), nil
		}
		out := make(orPred, len(x))
		for i, c := range x {
			p, err := mc.compile(c)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case Not:
		p, err := mc.compile(x.F)
		if err != nil {
			return nil, err
		}
		return notPred{p}, nil
	case Cmp:
		return mc.cmp(x)
	case Near:
		if !geo.ValidPoint(x.Center.Lat, x.Center.Lon) || math.IsNaN(x.Meters) || math.IsInf(x.Meters, 0) || x.Meters < 0 {
			return nil, fmt.Errorf("%w: near: bad centre (%v, %v) or distance %v", ErrInvalid, x.Center.Lat, x.Center.Lon, x.Meters)
		}
		return newNearPred(x), nil
	case Within:
		b := x.Box
		for _, v := range []float64{b.MinLat, b.MinLon, b.MaxLat, b.MaxLon} {
			if math.IsNaN(v) {
				return nil, fmt.Errorf("%w: within: bad box", ErrInvalid)
			}
		}
		return withinPred{b}, nil
	case WithinArea:
		mc.areas[x.AreaID] = true
		return areaPred{x.AreaID}, nil
	case Search:
		words := strings.Fields(strings.ToLower(x.Text))
		if len(words) == 0 {
			return constPred(true), nil
		}
		return searchPred{words}, nil
	}
	return nil, fmt.Errorf("%w: unsupported filter %T", ErrInvalid, f)
}

// cmp compiles a comparison, checking it in the stores' order.
func (mc *matchCompiler) cmp(c Cmp) (pred, error) {
	f, err := mc.resolve(c.Field)
	if err != nil {
		return nil, err
	}
	if c.Op == OpIsNull {
		want, ok := c.Value.(bool)
		if !ok {
			return nil, fmt.Errorf("%w: field %q: isNull takes a bool", ErrInvalid, c.Field)
		}
		return nullPred{f: f, want: want}, nil
	}
	if f.kind == mkJSON {
		return nil, fmt.Errorf("%w: field %q: JSON properties only support isNull", ErrInvalid, c.Field)
	}
	op, ok := matchOps[c.Op]
	if !ok {
		return nil, fmt.Errorf("%w: field %q: unknown operator %q", ErrInvalid, c.Field, c.Op)
	}
	switch op {
	case mEq, mLt, mLte, mGt, mGte:
		if f.kind == mkBool && op != mEq {
			return nil, fmt.Errorf("%w: field %q: booleans only support eq, ne, in and isNull", ErrInvalid, c.Field)
		}
		return mc.scalar(f, op, c.Value)
	case mNe:
		return mc.scalar(f, op, c.Value)
	case mIn:
		list, ok := c.Value.([]any)
		if !ok {
			return nil, fmt.Errorf("%w: field %q: in takes a list ([]any), got %T", ErrInvalid, c.Field, c.Value)
		}
		if len(list) == 0 {
			return constPred(false), nil
		}
		return mc.in(f, list)
	default: // contains, startsWith
		if f.kind != mkString {
			return nil, fmt.Errorf("%w: field %q: %s only applies to strings", ErrInvalid, c.Field, c.Op)
		}
		v, ok := c.Value.(string)
		if !ok {
			return nil, fmt.Errorf("%w: field %q: %s takes a string, got %T", ErrInvalid, c.Field, c.Op, c.Value)
		}
		if !utf8.ValidString(v) {
			return nil, fmt.Errorf("%w: field %q: value is not valid UTF-8", ErrInvalid, c.Field)
		}
		if op == mContains {
			v = strings.ToLower(v)
		}
		return &strPred{f: f, op: op, v: v}, nil
	}
}

func badValue(f mfield, v any) error {
	return fmt.Errorf("%w: field %q: value %v (%T) does not fit the field", ErrInvalid, f.name, v, v)
}

// scalar compiles eq, ne and the order comparisons.
func (mc *matchCompiler) scalar(f mfield, op mop, v any) (pred, error) {
	switch f.kind {
	case mkString:
		s, ok := v.(string)
		if !ok {
			return nil, badValue(f, v)
		}
		return &strPred{f: f, op: op, v: s}, nil
	case mkNumber:
		n, ok := numOf(v)
		if !ok {
			return nil, badValue(f, v)
		}
		return &numPred{f: f, op: op, v: n}, nil
	case mkBool:
		b, ok := v.(bool)
		if !ok {
			return nil, badValue(f, v)
		}
		return &boolPred{f: f, op: op, v: b}, nil
	case mkTime:
		t, ok := v.(time.Time)
		if !ok {
			return nil, badValue(f, v)
		}
		return &timePred{f: f, op: op, v: instantOf(t)}, nil
	}
	return nil, badValue(f, v)
}

// in compiles in with a non-empty list.
func (mc *matchCompiler) in(f mfield, list []any) (pred, error) {
	switch f.kind {
	case mkString:
		keys := make([]string, len(list))
		for i, e := range list {
			s, ok := e.(string)
			if !ok {
				return nil, badValue(f, e)
			}
			keys[i] = replaceInvalidUTF8(s)
		}
		return &strPred{f: f, op: mIn, set: newSet(keys)}, nil
	case mkNumber:
		keys := make([]num, len(list))
		for i, e := range list {
			n, ok := numOf(e)
			if !ok {
				return nil, badValue(f, e)
			}
			keys[i] = n.canonical()
		}
		return &numPred{f: f, op: mIn, set: newSet(keys)}, nil
	case mkBool:
		p := &boolPred{f: f, op: mIn}
		for _, e := range list {
			b, ok := e.(bool)
			if !ok {
				return nil, badValue(f, e)
			}
			if b {
				p.inTrue = true
			} else {
				p.inFalse = true
			}
		}
		return p, nil
	case mkTime:
		keys := make([]instant, len(list))
		for i, e := range list {
			t, ok := e.(time.Time)
			if !ok {
				return nil, badValue(f, e)
			}
			keys[i] = instantOf(t)
		}
		return &timePred{f: f, op: mIn, set: newSet(keys)}, nil
	}
	return nil, badValue(f, list[0])
}

// replaceInvalidUTF8 replaces every byte of s that is not part of a UTF-8
// sequence with U+FFFD, as encoding/json does: the embedded store passes in
// lists to SQLite as JSON, so an in value that is not UTF-8 compares in
// that form (eq, ne and the order comparisons compare its bytes). Neo4j
// replaces such bytes too, but per ill-formed sequence rather than per
// byte; the contract leaves strings that are not UTF-8 undefined.
func replaceInvalidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+w])
		}
		i += w
	}
	return b.String()
}

// set is a set of constants: scanned when small, hashed otherwise.
type set[K comparable] struct {
	list []K
	m    map[K]struct{}
}

func newSet[K comparable](keys []K) set[K] {
	var s set[K]
	for _, k := range keys {
		if !slices.Contains(s.list, k) {
			s.list = append(s.list, k)
		}
	}
	if len(s.list) > smallSet {
		s.m = make(map[K]struct{}, len(s.list))
		for _, k := range s.list {
			s.m[k] = struct{}{}
		}
		s.list = nil
	}
	return s
}

func (s *set[K]) has(k K) bool {
	if s.m != nil {
		_, ok := s.m[k]
		return ok
	}
	return slices.Contains(s.list, k)
}

// pred is a compiled filter node; eval reports whether n (of the scope's
// class c) matches.
type pred interface {
	eval(n *Node, c *matchClass, areas AreaSource) bool
}

type constPred bool

func (p constPred) eval(*Node, *matchClass, AreaSource) bool { return bool(p) }

type andPred []pred

func (p andPred) eval(n *Node, c *matchClass, areas AreaSource) bool {
	for _, x := range p {
		if !x.eval(n, c, areas) {
			return false
		}
	}
	return true
}

type orPred []pred

func (p orPred) eval(n *Node, c *matchClass, areas AreaSource) bool {
	for _, x := range p {
		if x.eval(n, c, areas) {
			return true
		}
	}
	return false
}

// notPred is the exact complement: a comparison with a null is false, so
// its negation is true.
type notPred struct{ p pred }

func (p notPred) eval(n *Node, c *matchClass, areas AreaSource) bool { return !p.p.eval(n, c, areas) }

// nullPred is isNull. Empty provenance text and zero provenance times are
// null (the stores keep them as null); an absent property, a nil value and
// an empty list are null.
type nullPred struct {
	f    mfield
	want bool
}

func (p nullPred) eval(n *Node, _ *matchClass, _ AreaSource) bool {
	var null bool
	switch p.f.src {
	case srcID:
		null = n.ID == ""
	case srcClass:
		null = n.Class == ""
	case srcSource:
		null = n.Prov.Source == ""
	case srcFetchedAt:
		null = n.Prov.FetchedAt.IsZero()
	case srcIngestedAt:
		null = n.Prov.IngestedAt.IsZero()
	case srcValidFrom:
		null = n.Prov.ValidFrom.IsZero()
	case srcValidTo:
		null = n.Prov.ValidTo.IsZero()
	default:
		switch v := n.Props[p.f.name].(type) {
		case nil:
			null = true
		case []any:
			null = len(v) == 0
		}
	}
	return null == p.want
}

// strPred compares strings: by byte (code point) order, contains on the
// lower-cased text (v is lower-cased), startsWith on the raw text.
type strPred struct {
	f   mfield
	op  mop
	v   string
	set set[string]
}

func (p *strPred) eval(n *Node, _ *matchClass, _ AreaSource) bool {
	switch p.f.src {
	case srcID:
		return n.ID != "" && p.test(n.ID)
	case srcClass:
		return n.Class != "" && p.test(n.Class)
	case srcSource:
		return n.Prov.Source != "" && p.test(n.Prov.Source)
	}
	switch v := n.Props[p.f.name].(type) {
	case string:
		return p.test(v)
	case []any:
		if len(v) == 0 {
			return false
		}
		if p.op == mNe {
			// a list is "not equal" when no element equals
			for _, e := range v {
				if s, ok := e.(string); ok && s == p.v {
					return false
				}
			}
			return true
		}
		for _, e := range v {
			if s, ok := e.(string); ok && p.test(s) {
				return true
			}
		}
	}
	return false
}

func (p *strPred) test(s string) bool {
	switch p.op {
	case mIn:
		return p.set.has(s)
	case mContains:
		return containsLower(s, p.v)
	case mStartsWith:
		return strings.HasPrefix(s, p.v)
	}
	return p.op.order(strings.Compare(s, p.v))
}

// containsLower reports whether strings.ToLower(s) contains lower (a
// lower-cased, valid UTF-8 string) without building the lower-cased s.
// A match in the lower-cased text starts at a character and spans whole
// characters (UTF-8 is self-synchronising), so every start is tried.
func containsLower(s, lower string) bool {
	if lower == "" {
		return true
	}
	for i := 0; i < len(s); {
		if hasLowerPrefix(s[i:], lower) {
			return true
		}
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	return false
}

// hasLowerPrefix reports whether strings.ToLower(s) starts with lower.
// Like strings.ToLower it maps each character with unicode.ToLower, and
// a byte that is not UTF-8 to U+FFFD.
func hasLowerPrefix(s, lower string) bool {
	i := 0
	for j := 0; j < len(lower); {
		if i >= len(s) {
			return false
		}
		if c := s[i]; c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if lower[j] != c {
				return false
			}
			i++
			j++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		i += w
		var buf [utf8.UTFMax]byte
		k := utf8.EncodeRune(buf[:], unicode.ToLower(r))
		if len(lower)-j < k || lower[j:j+k] != string(buf[:k]) {
			return false
		}
		j += k
	}
	return true
}

// num is an Int or Float value.
type num struct {
	i     int64
	f     float64
	isInt bool
}

// numOf converts a filter or property value; NaN is not a number here.
func numOf(v any) (num, bool) {
	switch x := v.(type) {
	case int64:
		return num{i: x, isInt: true}, true
	case float64:
		if math.IsNaN(x) {
			return num{}, false
		}
		return num{f: x}, true
	}
	return num{}, false
}

// twoTo63 is 2^63, the first float above every int64.
const twoTo63 = 9223372036854775808.0

// canonical is the one form of equal numbers: an integral float in the
// int64 range becomes an Int (so -0 is 0), so that equal values are equal
// keys.
func (a num) canonical() num {
	if !a.isInt && a.f == math.Trunc(a.f) && a.f >= -twoTo63 && a.f < twoTo63 {
		return num{i: int64(a.f), isInt: true}
	}
	return a
}

// compare orders numbers exactly, Int against Float included (as SQLite
// and Cypher do: no rounding of large integers).
func (a num) compare(b num) int {
	switch {
	case a.isInt && b.isInt:
		return cmpInt(a.i, b.i)
	case !a.isInt && !b.isInt:
		return cmpFloat(a.f, b.f)
	case a.isInt:
		return cmpIntFloat(a.i, b.f)
	}
	return -cmpIntFloat(b.i, a.f)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpIntFloat compares an int64 with a float64 (not NaN) exactly.
func cmpIntFloat(i int64, f float64) int {
	if f >= twoTo63 {
		return -1
	}
	if f < -twoTo63 {
		return 1
	}
	t := math.Trunc(f) // in the int64 range, so exact
	if c := cmpInt(i, int64(t)); c != 0 {
		return c
	}
	return cmpFloat(0, f-t) // the fraction decides
}

type numPred struct {
	f   mfield
	op  mop
	v   num
	set set[num]
}

func (p *numPred) eval(n *Node, _ *matchClass, _ AreaSource) bool {
	v := n.Props[p.f.name]
	if l, ok := v.([]any); ok {
		if len(l) == 0 {
			return false
		}
		if p.op == mNe {
			for _, e := range l {
				if x, ok := numOf(e); ok && x.compare(p.v) == 0 {
					return false
				}
			}
			return true
		}
		for _, e := range l {
			if x, ok := numOf(e); ok && p.test(x) {
				return true
			}
		}
		return false
	}
	x, ok := numOf(v)
	return ok && p.test(x)
}

func (p *numPred) test(x num) bool {
	if p.op == mIn {
		return p.set.has(x.canonical())
	}
	return p.op.order(x.compare(p.v))
}

type boolPred struct {
	f               mfield
	op              mop
	v               bool
	inTrue, inFalse bool
}

func (p *boolPred) eval(n *Node, _ *matchClass, _ AreaSource) bool {
	switch v := n.Props[p.f.name].(type) {
	case bool:
		return p.test(v)
	case []any:
		if len(v) == 0 {
			return false
		}
		if p.op == mNe {
			for _, e := range v {
				if b, ok := e.(bool); ok && b == p.v {
					return false
				}
			}
			return true
		}
		for _, e := range v {
			if b, ok := e.(bool); ok && p.test(b) {
				return true
			}
		}
	}
	return false
}

func (p *boolPred) test(b bool) bool {
	switch p.op {
	case mEq:
		return b == p.v
	case mNe:
		return b != p.v
	case mIn:
		return b && p.inTrue || !b && p.inFalse
	}
	return false
}

// instant is a time at the stores' precision: Unix seconds and
// microseconds (truncated, as graph.FormatTime and the stores do).
type instant struct {
	sec int64
	us  int64
}

func instantOf(t time.Time) instant {
	return instant{sec: t.Unix(), us: int64(t.Nanosecond() / 1000)}
}

func (a instant) compare(b instant) int {
	if c := cmpInt(a.sec, b.sec); c != 0 {
		return c
	}
	return cmpInt(a.us, b.us)
}

type timePred struct {
	f   mfield
	op  mop
	v   instant
	set set[instant]
}

func (p *timePred) eval(n *Node, _ *matchClass, _ AreaSource) bool {
	var t time.Time
	switch p.f.src {
	case srcFetchedAt:
		t = n.Prov.FetchedAt
	case srcIngestedAt:
		t = n.Prov.IngestedAt
	case srcValidFrom:
		t = n.Prov.ValidFrom
	case srcValidTo:
		t = n.Prov.ValidTo
	default:
		switch v := n.Props[p.f.name].(type) {
		case time.Time:
			return p.test(instantOf(v))
		case []any:
			if len(v) == 0 {
				return false
			}
			if p.op == mNe {
				for _, e := range v {
					if x, ok := e.(time.Time); ok && instantOf(x) == p.v {
						return false
					}
				}
				return true
			}
			for _, e := range v {
				if x, ok := e.(time.Time); ok && p.test(instantOf(x)) {
					return true
				}
			}
		}
		return false
	}
	// a zero provenance time is null
	return !t.IsZero() && p.test(instantOf(t))
}

func (p *timePred) test(x instant) bool {
	if p.op == mIn {
		return p.set.has(x)
	}
	return p.op.order(x.compare(p.v))
}

// nearPred is Near: geo.Distance from the centre to the node's point, at
// most Meters. Points whose latitude alone puts them farther are rejected
// first: the great-circle distance is at least R·|Δφ|, and the margin
// covers rounding, so the prefilter never drops a point the distance
// would keep.
type nearPred struct {
	lat, lon, meters float64
	maxDLat          float64 // degrees
}

func newNearPred(x Near) nearPred {
	return nearPred{
		lat: x.Center.Lat, lon: x.Center.Lon, meters: x.Meters,
		maxDLat: (x.Meters*(1+1e-9) + 1e-6) / geo.EarthRadiusM * 180 / math.Pi,
	}
}

func (p nearPred) eval(n *Node, _ *matchClass, _ AreaSource) bool {
	g := n.Geometry
	if g == nil {
		return false
	}
	if math.Abs(g.Point.Lat-p.lat) > p.maxDLat {
		return false
	}
	return geo.Distance(p.lat, p.lon, g.Point.Lat, g.Point.Lon) <= p.meters
}

type withinPred struct{ box BBox }

func (p withinPred) eval(n *Node, _ *matchClass, _ AreaSource) bool {
	return n.Geometry != nil && p.box.Contains(n.Geometry.Point)
}

type areaPred struct{ id string }

func (p areaPred) eval(n *Node, _ *matchClass, areas AreaSource) bool {
	if n.Geometry == nil || areas == nil {
		return false
	}
	s := areas.Area(p.id)
	return s != nil && s.Contains(n.Geometry.Point.Lat, n.Geometry.Point.Lon)
}

// searchPred is Search: every word (lower-cased) is in the lower-cased
// text of one of the searchable properties of the node's class.
type searchPred struct{ words []string }

func (p searchPred) eval(n *Node, c *matchClass, _ AreaSource) bool {
	for _, w := range p.words {
		if !searchHas(n, c.search, w) {
			return false
		}
	}
	return true
}

func searchHas(n *Node, props []string, w string) bool {
	for _, name := range props {
		switch v := n.Props[name].(type) {
		case string:
			if containsLower(v, w) {
				return true
			}
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok && containsLower(s, w) {
					return true
				}
			}
		}
	}
	return false
}
