package graph

// Key returns a field and values such that every node the filter matches
// holds one of the values in that field: an eq or in on id or on a
// string property (a list property holding one of them), alone or in a
// top-level and. A subscriber index can then find the filters a node may
// pass by its value (KeyValues) instead of testing them all. ok is false
// when the filter has no such condition.
func (m *Matcher) Key() (field string, values []string, ok bool) {
	var find func(p pred) *strPred
	find = func(p pred) *strPred {
		switch p := p.(type) {
		case *strPred:
			if (p.op == mEq || p.op == mIn) && (p.f.src == srcID || p.f.src == srcProp) {
				return p
			}
		case andPred:
			for _, x := range p {
				if k := find(x); k != nil {
					return k
				}
			}
		}
		return nil
	}
	k := find(m.root)
	if k == nil {
		return "", nil, false
	}
	switch {
	case k.op == mEq:
		values = []string{k.v}
	case k.set.m != nil:
		for v := range k.set.m {
			values = append(values, v)
		}
	default:
		values = append(values, k.set.list...)
	}
	return k.f.name, values, true
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
