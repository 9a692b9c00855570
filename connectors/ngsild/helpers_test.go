package ngsild

import (
	"encoding/json"
	"sort"
)

// formDiff lists the attributes whose values differ between the
// key-values and the normalized flattening of one entity. Fields only the
// normalized form can carry (<attr>_observedAt, <attr>_unitCode, sub-
// attributes: a name extending an attribute of the normalized entity) are
// not compared; location compares the geometries.
func formDiff(kv map[string]any, kvGeom json.RawMessage, norm map[string]any, normGeom json.RawMessage) []string {
	var diff []string
	for k, v := range kv {
		w, ok := norm[k]
		if !ok || !sameValue(v, w) {
			diff = append(diff, k)
		}
	}
	for k := range norm {
		if _, ok := kv[k]; ok || derivedName(k, norm) {
			continue
		}
		diff = append(diff, k)
	}
	if !sameGeometry(kvGeom, normGeom) {
		diff = append(diff, "location")
	}
	sort.Strings(diff)
	return diff
}

func derivedName(k string, fields map[string]any) bool {
	for i := 1; i < len(k); i++ {
		if k[i] != '_' {
			continue
		}
		if _, ok := fields[k[:i]]; ok || k[:i] == "location" {
			return true
		}
	}
	return false
}

func sameGeometry(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return sameValue(x, y)
}

// sameValue compares record values; numbers compare by value (6 and 6.0
// are the same number written two ways).
func sameValue(a, b any) bool {
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && fa == fb
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
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
	}
	return a == b
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
