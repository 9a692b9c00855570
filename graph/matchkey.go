package graph

import "math"

// MatchKey is a condition every node a filter matches satisfies: it
// holds one of Values in Field, or with Prefix a value starting with one
// of them.
type MatchKey struct {
	Field  string
	Values []string
	Prefix bool
}

// Key returns a condition every node the filter matches satisfies: an
// eq, in or startsWith on id or on a string property (a list property
// holding such a value), alone or in a top-level and; eq and in are
// preferred. A subscriber index can then find the filters a node may pass
// by its value (KeyValues) instead of testing them all. ok is false when
// the filter has no such condition.
func (m *Matcher) Key() (k MatchKey, ok bool) {
	var eq, prefix *strPred
	var walk func(p pred)
	walk = func(p pred) {
		switch p := p.(type) {
		case *strPred:
			if p.f.src != srcID && p.f.src != srcProp {
				return
			}
			switch {
			case (p.op == mEq || p.op == mIn) && eq == nil:
				eq = p
			case p.op == mStartsWith && prefix == nil:
				prefix = p
			}
		case andPred:
			for _, x := range p {
				walk(x)
			}
		}
	}
	walk(m.root)
	switch {
	case eq != nil:
		k.Field = eq.f.name
		switch {
		case eq.op == mEq:
			k.Values = []string{eq.v}
		case eq.set.m != nil:
			for v := range eq.set.m {
				k.Values = append(k.Values, v)
			}
		default:
			k.Values = append(k.Values, eq.set.list...)
		}
	case prefix != nil:
		k = MatchKey{Field: prefix.f.name, Values: []string{prefix.v}, Prefix: true}
	default:
		return k, false
	}
	return k, true
}

// KeyValues calls f with each value n holds in field, as Key's fields
// are read: the id, or a string property or the strings of a list
// property.
func KeyValues(n *Node, field string, f func(string)) {
	if n == nil {
		return
	}
	if field == FieldID {
		f(n.ID)
		return
	}
	switch v := n.Props[field].(type) {
	case string:
		f(v)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				f(s)
			}
		}
	}
}

// Region returns a box every node the filter matches lies in: a near,
// within or withinArea (its area's box, read from areas) alone or in a
// top-level and, the smallest when there are several. A subscriber index
// can then find geographic filters by the cell of a changed node's point.
// ok is false when there is none, or the box would cross a pole or the
// antimeridian.
func (m *Matcher) Region(areas AreaSource) (box BBox, ok bool) {
	consider := func(b BBox) {
		if b.MinLat < -90 || b.MaxLat > 90 || b.MinLon < -180 || b.MaxLon > 180 || b.MinLat > b.MaxLat || b.MinLon > b.MaxLon {
			return
		}
		if !ok || (b.MaxLat-b.MinLat)*(b.MaxLon-b.MinLon) < (box.MaxLat-box.MinLat)*(box.MaxLon-box.MinLon) {
			box, ok = b, true
		}
	}
	var walk func(p pred)
	walk = func(p pred) {
		switch p := p.(type) {
		case nearPred:
			cos := math.Cos((math.Abs(p.lat) + p.maxDLat) * math.Pi / 180)
			if cos <= 0.01 {
				return // near a pole
			}
			dLon := p.maxDLat / cos * 1.01 // a little more than the widest point
			consider(BBox{MinLat: p.lat - p.maxDLat, MaxLat: p.lat + p.maxDLat, MinLon: p.lon - dLon, MaxLon: p.lon + dLon})
		case withinPred:
			consider(p.box)
		case areaPred:
			if areas == nil {
				return
			}
			if s := areas.Area(p.id); s != nil {
				consider(BBox{MinLat: s.MinLat, MinLon: s.MinLon, MaxLat: s.MaxLat, MaxLon: s.MaxLon})
			}
		case andPred:
			for _, x := range p {
				walk(x)
			}
		}
	}
	walk(m.root)
	return box, ok
}
