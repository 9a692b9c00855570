package connectors

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"strings"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
)

// locator finds the polygon node of a class that contains a point.
type locator func(class string, p graph.Point) (id string, ok bool)

// mapper maps the records of one run. It is not safe for concurrent use.
type mapper struct {
	m      *Mapping
	source string
	base   graph.Provenance
	locate locator
	fields fieldCache
	inst   [][]instance
}

type instance struct {
	node int // index in mapped.nodes
	ec   evalCtx
}

// mapped is the output for one record.
type mapped struct {
	nodes   []graph.Node
	edges   []graph.Edge
	skipped bool
	located int // LOCATED_IN edges from locate_in
}

func (o *mapped) reset() {
	o.nodes = o.nodes[:0]
	o.edges = o.edges[:0]
	o.skipped = false
	o.located = 0
}

func newMapper(m *Mapping, source string, base graph.Provenance, loc locator) *mapper {
	return &mapper{m: m, source: source, base: base, locate: loc, inst: make([][]instance, len(m.nodes))}
}

// mapRecord maps one record into out (reset first). An error means the
// whole record is rejected: none of its nodes is written.
func (mp *mapper) mapRecord(rec *Record, out *mapped) error {
	out.reset()
	if mp.m.skip != nil && mp.m.skip.holds(rec.Fields) {
		out.skipped = true
		return nil
	}
	for ti, nt := range mp.m.nodes {
		mp.inst[ti] = mp.inst[ti][:0]
		if nt.skip != nil && nt.skip.holds(rec.Fields) {
			continue
		}
		if nt.repeat == nil {
			ec := evalCtx{rec: rec, fc: &mp.fields}
			if err := mp.buildNode(nt, ti, ec, out); err != nil {
				return err
			}
			continue
		}
		for _, fm := range mp.fields.matching(rec.Fields, nt.repeat) {
			ec := evalCtx{rec: rec, caps: fm.caps, value: fm.value, iter: true, fc: &mp.fields}
			if err := mp.buildNode(nt, ti, ec, out); err != nil {
				return err
			}
		}
	}
	for ti, nt := range mp.m.nodes {
		for _, in := range mp.inst[ti] {
			if err := mp.buildEdges(nt, in, out); err != nil {
				return err
			}
		}
	}
	return nil
}

func (mp *mapper) buildNode(nt *nodeTmpl, ti int, ec evalCtx, out *mapped) error {
	props := make(map[string]any, len(nt.props)+1)
	ec.props = props
	for _, pt := range nt.props {
		v, ok, raw, err := pt.spec.eval(&ec)
		if err != nil {
			return err
		}
		if ok {
			props[pt.name] = v
		}
		if raw != "" && pt.spec.rawProp != "" {
			props[pt.spec.rawProp] = raw
		}
	}
	if len(nt.extIDs) > 0 {
		if err := evalExternalIDs(nt, &ec, props); err != nil {
			return err
		}
	}
	kv, ok, miss, err := nt.key.eval(&ec, true)
	if err != nil {
		return mapErrf(nt.class.Name+".key", "%v", err)
	}
	if !ok {
		return mapErrf(nt.class.Name+".key", "%s is missing", miss)
	}
	key := kv.(string)
	n := graph.Node{
		ID:    ID(nt.kebab, mp.source, key),
		Class: nt.class.Name,
		Props: props,
	}
	if nt.resolveBy != nil {
		// a resolving node keeps its own URN among its identifiers (resolve.go)
		ids, _ := props["externalIds"].([]any)
		props["externalIds"] = appendUnique(ids, n.ID)
	}
	if nt.loc != nil {
		g, err := nt.loc.eval(ec.rec)
		if err != nil {
			return err
		}
		n.Geometry = g
	}
	n.Prov = mp.base
	n.Prov.SourceKey = key
	// n is set directly (no pointer to it escapes: it stays off the heap)
	for i, spec := range [...]*valueSpec{nt.srcUpdated, nt.validFrom, nt.validTo} {
		if spec == nil {
			continue
		}
		v, ok, _, err := spec.eval(&ec)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		switch i {
		case 0:
			n.Prov.SrcUpdatedAt = asTime(v)
		case 1:
			n.Prov.ValidFrom = asTime(v)
		default:
			n.Prov.ValidTo = asTime(v)
		}
	}
	out.nodes = append(out.nodes, n)
	mp.inst[ti] = append(mp.inst[ti], instance{node: len(out.nodes) - 1, ec: ec})
	return nil
}

func (mp *mapper) buildEdges(nt *nodeTmpl, in instance, out *mapped) error {
	from := &out.nodes[in.node]
	ec := in.ec
	for _, et := range nt.edges {
		var to string
		switch {
		case et.toRef >= 0:
			ins := mp.inst[et.toRef]
			if len(ins) == 0 {
				continue // the target node was skipped for this record
			}
			to = out.nodes[ins[0].node].ID
		case et.toID != nil:
			v, ok, _, err := et.toID.eval(&ec, false)
			if err != nil {
				return mapErrf(nt.class.Name+".edges."+et.rel.Name, "%v", err)
			}
			if !ok {
				continue
			}
			s, err := toString(v)
			if err != nil {
				return mapErrf(nt.class.Name+".edges."+et.rel.Name, "%v", err)
			}
			to = s
		default:
			v, ok, _, err := et.toKey.eval(&ec, true)
			if err != nil {
				return mapErrf(nt.class.Name+".edges."+et.rel.Name, "%v", err)
			}
			if !ok {
				continue
			}
			src := et.toSource
			if src == "" {
				src = mp.source
			}
			to = ID(et.toClass.KebabName(), src, v.(string))
		}
		var props map[string]any
		for _, pt := range et.props {
			v, ok, _, err := pt.spec.eval(&ec)
			if err != nil {
				return err
			}
			if ok {
				if props == nil {
					props = map[string]any{}
				}
				props[pt.name] = v
			}
		}
		out.edges = append(out.edges, graph.Edge{From: from.ID, Rel: et.rel.Name, To: to, Props: props, Prov: from.Prov})
	}
	if len(nt.locate) > 0 && from.Geometry != nil && mp.locate != nil {
		for _, ls := range nt.locate {
			id, ok := mp.locate(ls.class.Name, from.Geometry.Point)
			if !ok || id == from.ID {
				continue
			}
			var props map[string]any
			if ls.props != nil {
				props = make(map[string]any, len(ls.props))
				for k, v := range ls.props {
					props[k] = v
				}
			}
			out.edges = append(out.edges, graph.Edge{From: from.ID, Rel: ls.rel, To: id, Props: props, Prov: from.Prov})
			out.located++
		}
	}
	return nil
}

// eval computes a node's geometry from the record. Missing coordinates
// give nil; invalid ones an error.
func (ls *locationSpec) eval(rec *Record) (*graph.Geometry, error) {
	if ls.geometry {
		g := bytes.TrimSpace(rec.Geometry)
		if len(g) == 0 || string(g) == "null" {
			return nil, nil
		}
		s, err := geo.ParseGeoJSON(g)
		if err != nil {
			return nil, mapErrf("", "geometry: %v", strings.TrimPrefix(err.Error(), "geo: "))
		}
		if ls.ignoreZero && s.Lat == 0 && s.Lon == 0 {
			return nil, nil
		}
		if s.Kind == "Point" || !ls.keepShape {
			return graph.PointGeometry(s.Lat, s.Lon), nil
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, g); err != nil {
			return nil, mapErrf("", "geometry: %v", err)
		}
		return &graph.Geometry{
			Point:   graph.Point{Lat: s.Lat, Lon: s.Lon},
			Kind:    s.Kind,
			GeoJSON: buf.String(),
			BBox:    graph.BBox{MinLat: s.MinLat, MinLon: s.MinLon, MaxLat: s.MaxLat, MaxLon: s.MaxLon},
		}, nil
	}
	lv := lookupField(rec.Fields, ls.lat, ls.latPath)
	ov := lookupField(rec.Fields, ls.lon, ls.lonPath)
	switch {
	case missing(lv) && missing(ov):
		return nil, nil
	case missing(lv):
		return nil, mapErrf("", "field %q is empty but field %q is not", ls.lat, ls.lon)
	case missing(ov):
		return nil, mapErrf("", "field %q is empty but field %q is not", ls.lon, ls.lat)
	}
	lat, err := toFloat(lv)
	if err != nil {
		return nil, mapErrf("", "field %q: %v", ls.lat, err)
	}
	lon, err := toFloat(ov)
	if err != nil {
		return nil, mapErrf("", "field %q: %v", ls.lon, err)
	}
	if lat < -90 || lat > 90 {
		return nil, mapErrf("", "field %q: %s is out of range [-90, 90]", ls.lat, describe(lv))
	}
	if lon < -180 || lon > 180 {
		return nil, mapErrf("", "field %q: %s is out of range [-180, 180]", ls.lon, describe(ov))
	}
	if ls.ignoreZero && lat == 0 && lon == 0 {
		return nil, nil
	}
	return graph.PointGeometry(lat, lon), nil
}

// fieldMatch is one field selected by a repeat or last_of regex.
type fieldMatch struct {
	caps  []string // caps[0] is the field name
	value any
}

// fieldCache remembers which field names match which regex, since every
// record of a source usually has the same names.
type fieldCache struct {
	re map[*regexp.Regexp]map[string][]string
}

const fieldCacheMax = 4096

// matching returns the fields whose names match re and whose values are
// present, in natural name order (digit runs compare as numbers).
func (fc *fieldCache) matching(fields map[string]any, re *regexp.Regexp) []fieldMatch {
	var cache map[string][]string
	if fc != nil {
		if fc.re == nil {
			fc.re = map[*regexp.Regexp]map[string][]string{}
		}
		if cache = fc.re[re]; cache == nil {
			cache = map[string][]string{}
			fc.re[re] = cache
		}
	}
	var out []fieldMatch
	for name, v := range fields {
		caps, hit := cache[name]
		if !hit {
			caps = re.FindStringSubmatch(name)
			if cache != nil && len(cache) < fieldCacheMax {
				cache[name] = caps
			}
		}
		if caps == nil || missing(v) {
			continue
		}
		out = append(out, fieldMatch{caps: caps, value: v})
	}
	sort.Slice(out, func(i, j int) bool { return naturalLess(out[i].caps[0], out[j].caps[0]) })
	return out
}

// lastOf returns the last present matching field in natural order.
func lastOf(fields map[string]any, re *regexp.Regexp, ec *evalCtx) (name string, v any, caps []string) {
	ms := ec.fc.matching(fields, re)
	if len(ms) == 0 {
		return "", nil, nil
	}
	last := ms[len(ms)-1]
	return last.caps[0], last.value, last.caps
}

// naturalLess orders strings with digit runs compared numerically, so
// "AM2" < "AM10" and "1999" < "2017".
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			i, j := digitRun(a), digitRun(b)
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			if i != j {
				return i < j
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
