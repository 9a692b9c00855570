package ngsild

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cityhub/cityhub/connectors"
)

// Format says how the attributes of an entity are written.
type Format string

// The entity formats.
const (
	// FormatAuto decides per entity (see looksNormalized).
	FormatAuto Format = "auto"
	// FormatNormalized: every attribute is an object holding value or
	// object (NGSI-LD Property/Relationship/GeoProperty, NGSI v2
	// {type, value, metadata}).
	FormatNormalized Format = "normalized"
	// FormatKeyValues: every attribute is its bare value (NGSI-LD
	// key-values / simplified, NGSI v2 keyValues).
	FormatKeyValues Format = "key_values"
)

// Entity-level members that are not attributes: kept as they are (id,
// type, system attributes, scope) or dropped (@context).
var entityMembers = map[string]bool{
	"id": true, "type": true, "@context": true,
	"createdAt": true, "modifiedAt": true, "deletedAt": true, "scope": true,
}

// Members of an attribute object that hold its value, in the order they
// are looked for.
var valueMembers = []string{"value", "object", "languageMap", "vocab", "json", "valueList", "objectList"}

// NGSI-LD attribute types.
var ldAttrTypes = map[string]bool{
	"Property": true, "Relationship": true, "GeoProperty": true, "LanguageProperty": true,
	"VocabProperty": true, "JsonProperty": true, "ListProperty": true, "ListRelationship": true,
}

// Members of an attribute object that are bookkeeping, dropped.
var droppedMembers = map[string]bool{
	"type": true, "createdAt": true, "modifiedAt": true, "deletedAt": true,
	"instanceId": true, "@context": true, "objectType": true,
}

// v2 metadata names that carry the observation time (IoT Agents write
// TimeInstant, the Smart Data Models examples timestamp); they become
// <attr>_observedAt like NGSI-LD observedAt.
var observedAtMetadata = map[string]bool{"TimeInstant": true, "timestamp": true}

// Flatten decodes one NGSI-LD or NGSI v2 entity (normalized or
// key-values) and flattens it as the source does (README.md, "Flattening
// rules"): fields keyed by attribute name plus <attr>_observedAt,
// <attr>_unitCode, <attr>_datasetId and sub-attributes, and the location
// attribute as a GeoJSON geometry. The error names the attribute at fault.
func Flatten(entity []byte, f Format) (fields map[string]any, geometry json.RawMessage, err error) {
	m, err := decodeObject(entity)
	if err != nil {
		return nil, nil, err
	}
	return flatten(m, f)
}

var errNotObject = errors.New("entity is not a JSON object")

// decodeObject decodes a JSON object with record value types.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode entity: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode entity: data after the entity")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errNotObject
	}
	connectors.NormalizeJSON(m)
	return m, nil
}

// entityID returns the entity's id, or "" when it has none.
func entityID(m map[string]any) string {
	s, _ := m["id"].(string)
	return s
}

// flatten flattens a decoded entity (see Flatten).
func flatten(m map[string]any, f Format) (map[string]any, json.RawMessage, error) {
	id := entityID(m)
	if id == "" {
		if _, ok := m["id"]; ok {
			return nil, nil, errors.New("entity id is not a non-empty string")
		}
		return nil, nil, errors.New("entity has no id")
	}
	fail := func(err error) (map[string]any, json.RawMessage, error) {
		return nil, nil, fmt.Errorf("entity %q: %w", id, err)
	}
	typ, err := entityType(m["type"])
	if err != nil {
		return fail(err)
	}
	normalized := f == FormatNormalized || (f == FormatAuto && looksNormalized(m))

	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names) // derived names that clash resolve the same way every time

	out := make(map[string]any, len(m)+4)
	out["id"] = id
	out["type"] = typ
	var derived map[string]any
	var geom json.RawMessage
	for _, name := range names {
		v := m[name]
		if entityMembers[name] {
			if name != "id" && name != "type" && name != "@context" {
				out[name] = v
			}
			continue
		}
		var val any
		var meta map[string]any
		var geoType string
		if normalized {
			val, meta, geoType, err = attribute(name, v)
			if err != nil {
				return fail(err)
			}
		} else {
			val = unwrapValue(v)
		}
		if name == "location" {
			g, err := geometry(val, geoType)
			if err != nil {
				return fail(fmt.Errorf("attribute %q: %w", name, err))
			}
			geom = g
		} else {
			out[name] = val
		}
		for k, x := range meta {
			if derived == nil {
				derived = map[string]any{}
			}
			if _, dup := derived[name+k]; !dup {
				derived[name+k] = x
			}
		}
	}
	for k, v := range derived {
		if _, clash := out[k]; !clash { // a real attribute wins over a derived name
			out[k] = v
		}
	}
	return out, geom, nil
}

// entityType checks the entity type: a name, or a list of names (NGSI-LD
// multi-typed entities).
func entityType(v any) (any, error) {
	switch t := v.(type) {
	case string:
		if t != "" {
			return t, nil
		}
	case []any:
		if len(t) == 0 {
			break
		}
		for _, e := range t {
			if s, ok := e.(string); !ok || s == "" {
				return nil, errors.New("entity type list holds a non-name")
			}
		}
		return t, nil
	case nil:
		return nil, errors.New("entity has no type")
	}
	return nil, errors.New("entity type is not a name or a list of names")
}

// looksNormalized reports whether most attributes of the entity are
// attribute objects (FormatAuto).
func looksNormalized(m map[string]any) bool {
	shaped, plain := 0, 0
	for k, v := range m {
		if entityMembers[k] {
			continue
		}
		if attrShaped(v) {
			shaped++
		} else {
			plain++
		}
	}
	return shaped > plain
}

// attrShaped reports whether v looks like an attribute object (or a list
// of them, an NGSI-LD multi-attribute): an NGSI-LD attribute type, or a
// value, object or metadata member.
func attrShaped(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		if t, ok := x["type"].(string); ok && ldAttrTypes[t] {
			return true
		}
		for _, k := range valueMembers {
			if _, ok := x[k]; ok {
				return true
			}
		}
		_, ok := x["metadata"]
		return ok
	case []any:
		if len(x) == 0 {
			return false
		}
		for _, e := range x {
			if _, ok := e.(map[string]any); !ok || !attrShaped(e) {
				return false
			}
		}
		return true
	}
	return false
}

// attribute flattens one normalized attribute: its value, the derived
// fields keyed by suffix ("_observedAt", "_unitCode", "_sub", ...), and for
// NGSI v2 the attribute type (geo:point, ... for location).
func attribute(name string, v any) (val any, meta map[string]any, geoType string, err error) {
	switch x := v.(type) {
	case map[string]any:
		inst, err := instance(x)
		if err != nil {
			return nil, nil, "", fmt.Errorf("attribute %q: %w", name, err)
		}
		t, _ := x["type"].(string)
		val, meta := split(inst)
		return val, meta, t, nil
	case []any:
		if len(x) == 0 {
			return nil, nil, "", fmt.Errorf("attribute %q: an empty list of instances", name)
		}
		insts := make([]map[string]any, len(x))
		for i, e := range x {
			em, ok := e.(map[string]any)
			if !ok {
				return nil, nil, "", fmt.Errorf("attribute %q: instance %d is not an attribute object", name, i)
			}
			if insts[i], err = instance(em); err != nil {
				return nil, nil, "", fmt.Errorf("attribute %q: instance %d: %w", name, i, err)
			}
		}
		if len(insts) == 1 {
			t, _ := x[0].(map[string]any)["type"].(string)
			val, meta := split(insts[0])
			return val, meta, t, nil
		}
		// several instances (datasetId): every derived field becomes a
		// list aligned with the values, nil where an instance lacks it
		all := map[string]any{}
		for _, in := range insts {
			for k := range in {
				if _, ok := all[k]; !ok {
					list := make([]any, len(insts))
					all[k] = list
				}
			}
		}
		for i, in := range insts {
			for k, x := range in {
				all[k].([]any)[i] = x
			}
		}
		if name == "location" {
			return nil, nil, "", fmt.Errorf("attribute %q: %d instances; one location is expected", name, len(insts))
		}
		val, meta := split(all)
		return val, meta, "", nil
	case nil:
		return nil, nil, "", fmt.Errorf("attribute %q is null", name)
	}
	return nil, nil, "", fmt.Errorf("attribute %q is not an attribute object (set format: key_values for key-values entities)", name)
}

// split returns m[""] and m without it (nil when empty).
func split(m map[string]any) (any, map[string]any) {
	v := m[""]
	delete(m, "")
	if len(m) == 0 {
		return v, nil
	}
	return v, m
}

// instance flattens one attribute object into fields keyed by suffix: ""
// for the value, "_observedAt", "_unitCode", "_datasetId", "_<sub>" for
// sub-attributes (recursively: "_<sub>_unitCode") and other members, then
// "_<metadata>" for NGSI v2 metadata where the name is still free.
// Members are visited in name order so that clashes resolve the same way
// every time.
func instance(a map[string]any) (map[string]any, error) {
	out := make(map[string]any, 2)
	val, used, ok := instanceValue(a)
	if !ok {
		return nil, errors.New("neither value nor object")
	}
	out[""] = val
	var buf [8]string
	keys := buf[:0]
	for k := range a {
		if k != used && !droppedMembers[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var md map[string]any
	for _, k := range keys {
		v := a[k]
		switch k {
		case "observedAt", "unitCode", "datasetId":
			out["_"+k] = v
			continue
		case "metadata":
			if md, ok = v.(map[string]any); !ok {
				return nil, errors.New("metadata is not an object")
			}
			continue
		}
		if _, isValueMember := indexOf(valueMembers, k); isValueMember {
			continue // a second value member: the first one found wins
		}
		sub, isMap := v.(map[string]any)
		if !isMap || !attrShaped(v) {
			setFree(out, "_"+k, v)
			continue
		}
		si, err := instance(sub)
		if err != nil {
			return nil, fmt.Errorf("sub-attribute %q: %w", k, err)
		}
		for sk, sv := range si {
			setFree(out, "_"+k+sk, sv)
		}
	}
	if md != nil {
		alias := ""
		if _, ok := md["observedAt"]; !ok {
			if _, ok := md["TimeInstant"]; ok {
				alias = "TimeInstant"
			} else if _, ok := md["timestamp"]; ok {
				alias = "timestamp"
			}
		}
		for mk, mv := range md {
			if mk == alias {
				mk = "observedAt"
			}
			if mo, ok := mv.(map[string]any); ok {
				if x, has := mo["value"]; has {
					mv = unwrapValue(x)
				}
			}
			setFree(out, "_"+mk, mv)
		}
	}
	return out, nil
}

// setFree sets m[k] unless it is set.
func setFree(m map[string]any, k string, v any) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

func indexOf(list []string, s string) (int, bool) {
	for i, x := range list {
		if x == s {
			return i, true
		}
	}
	return -1, false
}

// instanceValue returns an attribute object's value and the member it came
// from. A Relationship's object (a target id or a list of them) and a
// ListRelationship's objectList (as a list of target ids) come first for
// those types; otherwise the first present of valueMembers.
func instanceValue(a map[string]any) (any, string, bool) {
	t, _ := a["type"].(string)
	switch t {
	case "Relationship":
		if o, ok := a["object"]; ok {
			return o, "object", true
		}
	case "ListRelationship":
		if o, ok := a["objectList"]; ok {
			return objectList(o), "objectList", true
		}
	}
	for _, k := range valueMembers {
		v, ok := a[k]
		if !ok {
			continue
		}
		if k == "objectList" {
			v = objectList(v)
		}
		return unwrapValue(v), k, true
	}
	return nil, "", false
}

// objectList turns [{"object": id}, ...] into [id, ...].
func objectList(v any) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	out := make([]any, len(list))
	for i, e := range list {
		if m, ok := e.(map[string]any); ok {
			if o, has := m["object"]; has {
				out[i] = o
				continue
			}
		}
		out[i] = e
	}
	return out
}

// unwrapValue replaces a JSON-LD value object {"@type": T, "@value": v}
// by v.
func unwrapValue(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	x, has := m["@value"]
	if !has {
		return v
	}
	for k := range m {
		if !strings.HasPrefix(k, "@") {
			return v
		}
	}
	return x
}

var geoJSONTypes = map[string]string{
	"Point": "coordinates", "MultiPoint": "coordinates", "LineString": "coordinates",
	"MultiLineString": "coordinates", "Polygon": "coordinates", "MultiPolygon": "coordinates",
	"GeometryCollection": "geometries",
}

// geometry encodes the location value as GeoJSON: a GeoJSON geometry
// object, or an NGSI v2 geo:point / geo:line / geo:polygon / geo:box value
// ("lat, lon" texts). null is no geometry.
func geometry(v any, attrType string) (json.RawMessage, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		t, _ := x["type"].(string)
		member, ok := geoJSONTypes[t]
		if !ok {
			return nil, errors.New("not a GeoJSON geometry (no geometry type)")
		}
		if _, ok := x[member].([]any); !ok {
			return nil, fmt.Errorf("GeoJSON %s without %s", t, member)
		}
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		return b, nil
	case string:
		if attrType != "" && attrType != "geo:point" {
			break
		}
		lat, lon, err := latLon(x)
		if err != nil {
			return nil, err
		}
		return pointJSON(lat, lon), nil
	case []any:
		if attrType != "geo:line" && attrType != "geo:polygon" && attrType != "geo:box" {
			break
		}
		pts := make([][2]float64, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s point %d is not a \"lat, lon\" text", attrType, i)
			}
			lat, lon, err := latLon(s)
			if err != nil {
				return nil, fmt.Errorf("%s point %d: %w", attrType, i, err)
			}
			pts[i] = [2]float64{lon, lat}
		}
		switch attrType {
		case "geo:line":
			if len(pts) >= 2 {
				return coordsJSON("LineString", pts, false), nil
			}
		case "geo:polygon":
			if len(pts) >= 4 && pts[0] == pts[len(pts)-1] {
				return coordsJSON("Polygon", pts, true), nil
			}
		case "geo:box":
			if len(pts) == 2 {
				a, b := pts[0], pts[1]
				ring := [][2]float64{{a[0], a[1]}, {b[0], a[1]}, {b[0], b[1]}, {a[0], b[1]}, {a[0], a[1]}}
				return coordsJSON("Polygon", ring, true), nil
			}
		}
		return nil, fmt.Errorf("a list of %d points is not a valid %q location", len(pts), attrType)
	}
	return nil, errors.New("not a GeoJSON geometry")
}

// latLon parses the NGSI v2 geo:point text "lat, lon".
func latLon(s string) (lat, lon float64, err error) {
	a, b, ok := strings.Cut(s, ",")
	if ok {
		lat, err = strconv.ParseFloat(strings.TrimSpace(a), 64)
		if err == nil {
			lon, err = strconv.ParseFloat(strings.TrimSpace(b), 64)
		}
	}
	if !ok || err != nil || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return 0, 0, fmt.Errorf("%q is not a \"lat, lon\" point", s)
	}
	return lat, lon, nil
}

func pointJSON(lat, lon float64) json.RawMessage {
	return json.RawMessage(`{"type":"Point","coordinates":[` + fmtFloat(lon) + `,` + fmtFloat(lat) + `]}`)
}

func coordsJSON(kind string, pts [][2]float64, ring bool) json.RawMessage {
	var b strings.Builder
	b.WriteString(`{"type":"` + kind + `","coordinates":[`)
	if ring {
		b.WriteByte('[')
	}
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("[" + fmtFloat(p[0]) + "," + fmtFloat(p[1]) + "]")
	}
	if ring {
		b.WriteByte(']')
	}
	b.WriteString("]}")
	return json.RawMessage(b.String())
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
