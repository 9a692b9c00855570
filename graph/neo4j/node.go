package neo4j

import (
	"fmt"
	"strings"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"

	"github.com/cityhub/cityhub/graph"
)

// A node is stored as one Neo4j node with a label for its class and each
// superclass and these properties:
//
//	id              the node ID (unique: constraint on the root label)
//	_class          the leaf class name
//	<property>      each ontology property, in storage form (codec.go)
//	location        WGS-84 point: the representative point, if located
//	_geoKind        GeoJSON type of the geometry (Point, Polygon, ...)
//	_geojson        the full geometry of lines and polygons
//	_bbox           [minLat, minLon, maxLat, maxLon] unless the point's own
//	_search         lower-cased searchable text, one line per string
//	_source … _sources  provenance (times as UTC DateTime)

// keyLower prefixes the lower-cased shadow of a string property (and of id
// and _source): contains compares lower-cased text, and Cypher's toLower
// (Java's String.toLowerCase) differs from Go's strings.ToLower, the
// contract's simple mapping, on a few characters (İ, a final Σ, letters
// newer than the JVM's Unicode tables). Both agree on ASCII, so only values
// with other characters carry a shadow, computed in Go; contains reads
// coalesce(shadow, toLower(value)).
const keyLower = "_lc_"

// lowerShadow returns the Go lower-cased form of a string or string list
// that is not pure ASCII, nil otherwise.
func lowerShadow(v any) any {
	switch x := v.(type) {
	case string:
		if isASCII(x) {
			return nil
		}
		return strings.ToLower(x)
	case []any:
		ascii := true
		for _, e := range x {
			if s, ok := e.(string); ok && !isASCII(s) {
				ascii = false
				break
			}
		}
		if ascii {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			s, _ := e.(string)
			out[i] = strings.ToLower(s)
		}
		return out
	}
	return nil
}

// keyOrd prefixes the code-point-ordered shadow of a string property (and
// of id and _source). Cypher's ORDER BY sorts strings by code point, as
// the embedded store and the contract do, but its <, <=, > and >= compare
// UTF-16 code units, so a character above U+FFFF (a surrogate pair) sorts
// below U+E000–U+FFFF (ligatures, fullwidth forms, private use) in a
// comparison and above them in an ORDER BY: a keyset continuation or a
// range filter would skip or repeat rows. The shadow re-encodes every
// character from U+D7FF up as three units below U+D800 (ordShadowString),
// so that any comparison of shadows agrees with code-point order. Only
// values with such characters carry one; comparisons whose parameter has
// a character from U+E000 up read coalesce(shadow, value) (without such a
// character in the parameter, UTF-16 and code-point order agree).
const keyOrd = "_cp_"

// ordMark starts the three-unit form of a character from U+D7FF up.
const ordMark = 0xD7FF

// needsOrd reports whether s has a character whose order differs between
// UTF-16 and code points when compared with a parameter from U+E000 up,
// i.e. whether ordShadowString changes s.
func needsOrd(s string) bool {
	if isASCII(s) {
		return false
	}
	for _, r := range s {
		if r >= ordMark {
			return true
		}
	}
	return false
}

// ordParamNeeded reports whether a comparison with the string parameter s
// must read the ordered shadow.
func ordParamNeeded(s string) bool {
	if isASCII(s) {
		return false
	}
	for _, r := range s {
		if r >= 0xE000 {
			return true
		}
	}
	return false
}

// ordShadowString maps s to a string of code units below U+D800 whose
// order (UTF-16, code point or UTF-8 alike) is the code-point order of s:
// characters below U+D7FF stay, the others become U+D7FF followed by two
// units carrying their high and low ten bits.
func ordShadowString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		if r < ordMark {
			b.WriteRune(r)
			continue
		}
		b.WriteRune(ordMark)
		b.WriteRune(0x1000 + r>>10)
		b.WriteRune(0x1000 + r&0x3FF)
	}
	return b.String()
}

// ordShadow returns the ordered shadow of a string or string list that
// needs one, nil otherwise.
func ordShadow(v any) any {
	switch x := v.(type) {
	case string:
		if !needsOrd(x) {
			return nil
		}
		return ordShadowString(x)
	case []any:
		need := false
		for _, e := range x {
			if s, ok := e.(string); ok && needsOrd(s) {
				need = true
				break
			}
		}
		if !need {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			s, _ := e.(string)
			out[i] = ordShadowString(s)
		}
		return out
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// stored is a node in storage form: what Apply compares and writes.
type stored struct {
	id     string
	class  string
	props  map[string]any // ontology properties, storage form
	geo    *graph.Geometry
	prov   graph.Provenance
	search string
}

// decodeStored reads a node's property map (properties(n)).
func (m *model) decodeStored(raw map[string]any) (*stored, error) {
	st := &stored{props: map[string]any{}}
	st.id, _ = raw[keyID].(string)
	st.class, _ = raw[keyClass].(string)
	if st.id == "" || st.class == "" {
		return nil, fmt.Errorf("node without id or class: %v", raw[keyID])
	}
	ps := m.classProps[st.class]
	for k, v := range raw {
		if k == keyID || k == keyLocation || strings.HasPrefix(k, "_") { // _lc_ and _cp_ shadows too
			continue
		}
		if ps == nil {
			continue
		}
		p := ps.byName[k]
		if p == nil {
			continue // left by an older ontology
		}
		if sv := storedValue(p, v); sv != nil {
			st.props[k] = sv
		}
	}
	if loc, ok := raw[keyLocation].(dbtype.Point2D); ok {
		g := &graph.Geometry{Point: graph.Point{Lat: loc.Y, Lon: loc.X}, Kind: "Point"}
		if k, ok := raw[keyGeoKind].(string); ok && k != "" {
			g.Kind = k
		}
		g.GeoJSON, _ = raw[keyGeoJSON].(string)
		g.BBox = pointBox(g.Point)
		if b, ok := raw[keyBBox].([]any); ok && len(b) == 4 {
			var f [4]float64
			for i, e := range b {
				f[i], _ = e.(float64)
			}
			g.BBox = graph.BBox{MinLat: f[0], MinLon: f[1], MaxLat: f[2], MaxLon: f[3]}
		}
		st.geo = g
	}
	st.search, _ = raw[keySearch].(string)
	st.prov = readProv(raw)
	return st, nil
}

// node converts a stored node into a graph.Node.
func (m *model) node(st *stored) *graph.Node {
	n := &graph.Node{ID: st.id, Class: st.class, Props: make(map[string]any, len(st.props)), Geometry: st.geo, Prov: st.prov}
	ps := m.classProps[st.class]
	for k, v := range st.props {
		if v = apiValue(ps.byName[k], v); v != nil {
			n.Props[k] = v
		}
	}
	return n
}

// decodeNode reads a node's property map into a graph.Node.
func (m *model) decodeNode(v any) (*graph.Node, error) {
	raw, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("node row is %T, not a map", v)
	}
	st, err := m.decodeStored(raw)
	if err != nil {
		return nil, err
	}
	return m.node(st), nil
}

// encodeStored renders a node as the property map Neo4j stores.
func (m *model) encodeStored(st *stored) map[string]any {
	out := make(map[string]any, len(st.props)+12)
	ps := m.classProps[st.class]
	for k, v := range st.props {
		out[k] = v
		if p := ps.byName[k]; p != nil && p.Enum == nil && kindOf(p) == kString {
			if lc := lowerShadow(v); lc != nil {
				out[keyLower+k] = lc
			}
			if o := ordShadow(v); o != nil {
				out[keyOrd+k] = o
			}
		}
	}
	out[keyID] = st.id
	out[keyClass] = st.class
	if lc := lowerShadow(st.id); lc != nil {
		out[keyLower+keyID] = lc
	}
	if o := ordShadow(st.id); o != nil {
		out[keyOrd+keyID] = o
	}
	if lc := lowerShadow(st.prov.Source); lc != nil {
		out[keyLower+keySource] = lc // _lc__source: ontology names have no "_"
	}
	if o := ordShadow(st.prov.Source); o != nil {
		out[keyOrd+keySource] = o
	}
	if g := st.geo; g != nil {
		out[keyLocation] = point2D(g.Point)
		out[keyGeoKind] = g.Kind
		if g.GeoJSON != "" {
			out[keyGeoJSON] = g.GeoJSON
		}
		if g.BBox != pointBox(g.Point) {
			out[keyBBox] = []any{g.BBox.MinLat, g.BBox.MinLon, g.BBox.MaxLat, g.BBox.MaxLon}
		}
	}
	if st.search != "" {
		out[keySearch] = st.search
	}
	putProv(out, st.prov)
	return out
}

// edgeProps decodes the ontology properties of a relationship's property
// map; nil when it has none.
func (m *model) edgeProps(rel string, v any) map[string]any {
	raw, ok := v.(map[string]any)
	if !ok || len(raw) == 0 {
		return nil
	}
	ps := m.relProps[rel]
	out := map[string]any{}
	for k, x := range raw {
		p := ps.byName[k]
		if p == nil {
			continue
		}
		if sv := storedValue(p, x); sv != nil {
			if av := apiValue(p, sv); av != nil {
				out[k] = av
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
