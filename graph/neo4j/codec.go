package neo4j

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Property values are stored as native Neo4j properties, keyed by their
// ontology name, in this storage form (also the form the driver returns):
//
//	String, enum  String
//	Int           Integer
//	Float         Float
//	Boolean       Boolean
//	DateTime      DateTime in UTC, truncated to the microsecond (as
//	              graph.FormatTime), so Cypher compares and orders instants
//	              exactly and range indexes apply
//	JSON          String holding canonical JSON (keys sorted)
//	[T]           a homogeneous list of T; an empty list is not stored
//
// A nil value is not stored either: absent and null are the same. The
// store's own properties start with "_" (ontology names cannot), besides
// id and location.

// propSet is the properties of a class (own and inherited) or a relation.
type propSet struct {
	owner  string // "class X" or "relation Y"
	all    []*ontology.Property
	byName map[string]*ontology.Property
}

func newPropSet(owner string, props []*ontology.Property) *propSet {
	ps := &propSet{owner: owner, all: props, byName: make(map[string]*ontology.Property, len(props))}
	for _, p := range props {
		ps.byName[p.Name] = p
	}
	return ps
}

// kind is how a field's values compare.
type kind int

const (
	kString kind = iota // strings and enums
	kNumber             // Int and Float: numeric order
	kBool               // only equality
	kTime               // DateTime
	kJSON               // only isNull
)

// kindOf is how values of a property compare.
func kindOf(p *ontology.Property) kind {
	switch {
	case p.Enum != nil, p.Type == ontology.TypeString:
		return kString
	case p.Type == ontology.TypeInt, p.Type == ontology.TypeFloat:
		return kNumber
	case p.Type == ontology.TypeBoolean:
		return kBool
	case p.Type == ontology.TypeDateTime:
		return kTime
	}
	return kJSON
}

// normTime is an instant as stored: UTC at microsecond precision.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// encodeProps validates props against a class or relation and returns them
// in storage form, with the lower-cased searchable text.
func encodeProps(ps *propSet, props map[string]any) (map[string]any, string, error) {
	keys := make([]string, 0, len(props))
	for k, v := range props {
		if v == nil {
			continue
		}
		if ps.byName[k] == nil {
			return nil, "", fmt.Errorf("unknown property %q on %s", k, ps.owner)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]any, len(keys))
	var search strings.Builder
	for _, k := range keys {
		p := ps.byName[k]
		v := props[k]
		sv, err := encodeValue(p, v)
		if err != nil {
			return nil, "", fmt.Errorf("property %q: %w", k, err)
		}
		if sv == nil {
			continue // an empty list
		}
		out[k] = sv
		if p.Searchable {
			addSearch(&search, v)
		}
	}
	for _, p := range ps.all {
		if !p.Required {
			continue
		}
		if v := props[p.Name]; v == nil {
			return nil, "", fmt.Errorf("required property %q is missing", p.Name)
		} else if l, ok := v.([]any); ok && len(l) == 0 {
			return nil, "", fmt.Errorf("required property %q is empty", p.Name)
		}
	}
	return out, search.String(), nil
}

// addSearch appends the lower-cased text of a searchable value, one line
// per string, as the embedded store does.
func addSearch(b *strings.Builder, v any) {
	switch x := v.(type) {
	case string:
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(strings.ToLower(x))
	case []any:
		for _, e := range x {
			addSearch(b, e)
		}
	}
}

// encodeValue validates v (a whole property value) and returns its storage
// form; nil for an empty list.
func encodeValue(p *ontology.Property, v any) (any, error) {
	if !p.List {
		return encodeScalar(p, v)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list ([]any) of %s, got %T", p.Type, v)
	}
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]any, len(list))
	for i, e := range list {
		sv, err := encodeScalar(p, e)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = sv
	}
	return out, nil
}

func encodeScalar(p *ontology.Property, v any) (any, error) {
	wrong := func() error {
		return fmt.Errorf("want %s (%s), got %T", p.Type, goType(p), v)
	}
	if p.Enum != nil {
		s, ok := v.(string)
		if !ok {
			return nil, wrong()
		}
		if !slices.Contains(p.Enum.Values, s) {
			return nil, fmt.Errorf("%q is not a value of enum %s", s, p.Enum.Name)
		}
		return s, nil
	}
	switch p.Type {
	case ontology.TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, wrong()
		}
		if !utf8.ValidString(s) {
			return nil, errors.New("string is not valid UTF-8")
		}
		return s, nil
	case ontology.TypeInt:
		i, ok := v.(int64)
		if !ok {
			return nil, wrong()
		}
		return i, nil
	case ontology.TypeFloat:
		f, ok := v.(float64)
		if !ok {
			return nil, wrong()
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("float %v is not finite", f)
		}
		return f, nil
	case ontology.TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, wrong()
		}
		return b, nil
	case ontology.TypeDateTime:
		t, ok := v.(time.Time)
		if !ok {
			return nil, wrong()
		}
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return nil, fmt.Errorf("time %v is out of range", t)
		}
		return normTime(t), nil
	case ontology.TypeJSON:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, wrong()
		}
		s, err := canonicalJSON(m)
		if err != nil {
			return nil, fmt.Errorf("JSON value: %v", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unsupported type %s", p.Type)
}

// canonicalJSON renders a JSON value with sorted keys and numbers as
// float64 (what reads return), so equal values have equal text.
func canonicalJSON(m map[string]any) (string, error) {
	if err := checkJSON(m, 0); err != nil {
		return "", err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return "", err
	}
	raw, err = json.Marshal(generic)
	if err != nil {
		return "", err
	}
	return string(raw), nil
}

// checkJSON rejects what JSON cannot hold faithfully: non-finite numbers,
// text that is not UTF-8, values nested too deeply.
func checkJSON(v any, depth int) error {
	if depth > 200 {
		return errors.New("JSON value nested too deeply")
	}
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("float %v is not finite", x)
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("float %v is not finite", x)
		}
	case string:
		if !utf8.ValidString(x) {
			return errors.New("string is not valid UTF-8")
		}
	case []any:
		for _, e := range x {
			if err := checkJSON(e, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, e := range x {
			if !utf8.ValidString(k) {
				return errors.New("key is not valid UTF-8")
			}
			if err := checkJSON(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func goType(p *ontology.Property) string {
	if p.Enum != nil {
		return "string"
	}
	switch p.Type {
	case ontology.TypeString:
		return "string"
	case ontology.TypeInt:
		return "int64"
	case ontology.TypeFloat:
		return "float64"
	case ontology.TypeBoolean:
		return "bool"
	case ontology.TypeDateTime:
		return "time.Time"
	case ontology.TypeJSON:
		return "map[string]any"
	}
	return "?"
}

// storedValue converts a value read from Neo4j into the storage form of
// property p; nil when it does not fit (left by an older ontology).
func storedValue(p *ontology.Property, v any) any {
	if !p.List {
		return storedScalar(p, v)
	}
	list, ok := v.([]any)
	if !ok {
		if s := storedScalar(p, v); s != nil {
			return []any{s}
		}
		return nil
	}
	out := make([]any, 0, len(list))
	for _, e := range list {
		if s := storedScalar(p, e); s != nil {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func storedScalar(p *ontology.Property, v any) any {
	switch kindOf(p) {
	case kString, kJSON:
		if s, ok := v.(string); ok {
			return s
		}
	case kNumber:
		switch x := v.(type) {
		case int64:
			if p.Type == ontology.TypeFloat {
				return float64(x)
			}
			return x
		case float64:
			if p.Type == ontology.TypeInt {
				if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
					return int64(x)
				}
				return nil
			}
			return x
		}
	case kBool:
		if b, ok := v.(bool); ok {
			return b
		}
	case kTime:
		if t, ok := v.(time.Time); ok {
			return normTime(t)
		}
	}
	return nil
}

// apiValue converts a storage-form value into the value graph.Node carries.
func apiValue(p *ontology.Property, v any) any {
	if kindOf(p) != kJSON {
		return v
	}
	s, _ := v.(string)
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil
	}
	return m
}

// sameValue compares storage-form values.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
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
	case string, int64, float64, bool:
		return a == b
	}
	return false
}

// diffProps lists the keys whose values differ between two storage-form
// property maps, sorted.
func diffProps(before, after map[string]any) []string {
	var out []string
	for k, v := range after {
		if bv, ok := before[k]; !ok || !sameValue(bv, v) {
			out = append(out, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// propNames lists the keys of a property map, sorted; nil for none.
func propNames(props map[string]any) []string {
	if len(props) == 0 {
		return nil
	}
	out := make([]string, 0, len(props))
	for k := range props {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func pointBox(p graph.Point) graph.BBox {
	return graph.BBox{MinLat: p.Lat, MinLon: p.Lon, MaxLat: p.Lat, MaxLon: p.Lon}
}

// sameGeometry compares stored geometries.
func sameGeometry(a, b *graph.Geometry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// normProv is the provenance as stored: times in UTC at microsecond
// precision, no empty source list.
func normProv(p graph.Provenance) graph.Provenance {
	for _, t := range []*time.Time{&p.FetchedAt, &p.IngestedAt, &p.SrcUpdatedAt, &p.ValidFrom, &p.ValidTo} {
		*t = normTime(*t)
	}
	if len(p.Sources) == 0 {
		p.Sources = nil
	}
	return p
}

// Keys of the store's own properties on nodes and relationships.
const (
	keyID         = "id"
	keyLocation   = "location"
	keyClass      = "_class"
	keyGeoKind    = "_geoKind"
	keyGeoJSON    = "_geojson"
	keyBBox       = "_bbox"
	keySearch     = "_search"
	keySource     = "_source"
	keySourceKey  = "_sourceKey"
	keyConnector  = "_connector"
	keyRun        = "_run"
	keyFetched    = "_fetchedAt"
	keyIngested   = "_ingestedAt"
	keySrcUpdated = "_srcUpdatedAt"
	keyValidFrom  = "_validFrom"
	keyValidTo    = "_validTo"
	keySources    = "_sources"
)

// putProv adds the provenance properties to a property map.
func putProv(m map[string]any, p graph.Provenance) {
	putString := func(k, s string) {
		if s != "" {
			m[k] = s
		}
	}
	putTime := func(k string, t time.Time) {
		if !t.IsZero() {
			m[k] = t
		}
	}
	putString(keySource, p.Source)
	putString(keySourceKey, p.SourceKey)
	putString(keyConnector, p.Connector)
	putString(keyRun, p.Run)
	putTime(keyFetched, p.FetchedAt)
	putTime(keyIngested, p.IngestedAt)
	putTime(keySrcUpdated, p.SrcUpdatedAt)
	putTime(keyValidFrom, p.ValidFrom)
	putTime(keyValidTo, p.ValidTo)
	if len(p.Sources) > 0 {
		l := make([]any, len(p.Sources))
		for i, s := range p.Sources {
			l[i] = s
		}
		m[keySources] = l
	}
}

// readProv reads the provenance properties of a property map.
func readProv(m map[string]any) graph.Provenance {
	str := func(k string) string { s, _ := m[k].(string); return s }
	tm := func(k string) time.Time {
		t, _ := m[k].(time.Time)
		return normTime(t)
	}
	p := graph.Provenance{
		Source: str(keySource), SourceKey: str(keySourceKey), Connector: str(keyConnector), Run: str(keyRun),
		FetchedAt: tm(keyFetched), IngestedAt: tm(keyIngested), SrcUpdatedAt: tm(keySrcUpdated),
		ValidFrom: tm(keyValidFrom), ValidTo: tm(keyValidTo),
	}
	if l, ok := m[keySources].([]any); ok && len(l) > 0 {
		p.Sources = make([]string, 0, len(l))
		for _, e := range l {
			if s, ok := e.(string); ok {
				p.Sources = append(p.Sources, s)
			}
		}
	}
	return p
}
