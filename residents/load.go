package residents

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cityhub/cityhub/ontology"
	"gopkg.in/yaml.v3"
)

// maxFileSize bounds a service list file.
const maxFileSize = 1 << 20

// LoadServices reads and validates a service list file (see README.md)
// against the ontology. Every problem found is returned, joined; each is a
// *ConfigError naming the file, the line and the field
// (errors.Is(err, ErrConfig)).
func LoadServices(path string, ont *ontology.Ontology) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("residents: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("residents: read %s: %w", path, err)
	}
	return ParseServices(path, data, ont)
}

// ParseServices decodes and validates service list content; name is the
// file name used in errors. Unknown keys, duplicate keys and values of the
// wrong type are errors.
func ParseServices(name string, data []byte, ont *ontology.Ontology) (*Config, error) {
	if len(data) > maxFileSize {
		return nil, &ConfigError{File: name, Msg: fmt.Sprintf("file larger than %d bytes", maxFileSize)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ConfigError{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, &ConfigError{File: name, Line: 1, Msg: "empty service list"}
	}
	w := &walker{file: name, lines: map[string]int{}}
	cfg := DefaultConfig()
	cfg.File = name
	root := deref(doc.Content[0])
	w.lines[""] = root.Line
	w.mapping(root, "", func(key string, v *yaml.Node) {
		switch key {
		case "source":
			cfg.Source = w.str(v, key)
		case "connector":
			cfg.Connector = w.str(v, key)
		case "area_class":
			cfg.AreaClass = w.str(v, key)
		case "city_class":
			cfg.CityClass = w.str(v, key)
		case "city_id":
			cfg.CityID = w.str(v, key)
		case "max_description":
			cfg.MaxDescription = w.integer(v, key)
		case "max_media_urls":
			cfg.MaxMediaURLs = w.integer(v, key)
		case "area_refresh":
			cfg.AreaRefresh = w.duration(v, key)
		case "services":
			cfg.Services = w.services(v, key)
		default:
			w.unknown(key, "source, connector, area_class, city_class, city_id, max_description, max_media_urls, area_refresh, services")
		}
	})
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}
	if errs := cfg.validate(ont); len(errs) > 0 {
		out := make([]error, len(errs))
		for i, e := range errs {
			e.File, e.Line = name, w.line(e.Path)
			out[i] = e
		}
		return nil, errors.Join(out...)
	}
	return &cfg, nil
}

// walker decodes yaml nodes, collecting positioned errors and the line of
// every field path it decodes (so that later validation can name lines).
type walker struct {
	file  string
	errs  []error
	lines map[string]int
	// key is the key node of the entry being decoded, for unknown keys.
	key *yaml.Node
	at  string
}

func (w *walker) errorf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	w.errs = append(w.errs, &ConfigError{File: w.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// line returns the line of path, or of its closest decoded parent.
func (w *walker) line(path string) int {
	for {
		if l, ok := w.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return w.lines[""]
		}
		path = path[:i]
	}
}

func deref(n *yaml.Node) *yaml.Node {
	// an alias of an alias is followed a bounded number of times
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping calls f for each key of a mapping node, in order, with the
// field path of the value. Duplicate keys are errors; a null node is an
// empty mapping.
func (w *walker) mapping(n *yaml.Node, path string, f func(key string, v *yaml.Node)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		w.errorf(n, path, "expected a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		p := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			w.errorf(k, path, "keys must be strings")
			continue
		}
		if seen[k.Value] {
			w.errorf(k, p, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		w.lines[p] = k.Line
		w.key, w.at = k, p
		f(k.Value, v)
	}
}

func (w *walker) unknown(key, allowed string) {
	w.errorf(w.key, w.at, "unknown field %q (allowed: %s)", key, allowed)
}

func (w *walker) str(n *yaml.Node, path string) string {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		w.errorf(n, path, "expected a string")
		return ""
	}
	return n.Value
}

func (w *walker) strList(n *yaml.Node, path string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		w.errorf(n, path, "expected a list of strings")
		return nil
	}
	if len(n.Content) > maxKeywords {
		w.errorf(n, path, "at most %d entries", maxKeywords)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		e = deref(e)
		if e != nil {
			w.lines[p] = e.Line
		}
		out = append(out, w.str(e, p))
	}
	return out
}

func (w *walker) integer(n *yaml.Node, path string) int {
	if n != nil && n.Kind == yaml.ScalarNode {
		if v, err := strconv.Atoi(n.Value); err == nil {
			return v
		}
	}
	w.errorf(n, path, "expected an integer")
	return 0
}

func (w *walker) number(n *yaml.Node, path string) float64 {
	if n != nil && n.Kind == yaml.ScalarNode {
		if v, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v
		}
	}
	w.errorf(n, path, "expected a number")
	return 0
}

func (w *walker) duration(n *yaml.Node, path string) time.Duration {
	s := w.str(n, path)
	d, err := time.ParseDuration(s)
	if err != nil {
		w.errorf(n, path, "expected a duration such as 10m or 1h, got %q", s)
	}
	return d
}

// distance decodes a distance in metres: a number, or a number with the
// unit m or km ("50m", "0.2km").
func (w *walker) distance(n *yaml.Node, path string) float64 {
	s := strings.TrimSpace(w.str(n, path))
	if s == "" {
		return 0
	}
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "km"):
		s, mult = strings.TrimSpace(strings.TrimSuffix(s, "km")), 1000
	case strings.HasSuffix(s, "m"):
		s = strings.TrimSpace(strings.TrimSuffix(s, "m"))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		w.errorf(n, path, "expected a distance such as 50m or 0.2km, got %q", n.Value)
		return 0
	}
	return v * mult
}

func (w *walker) services(n *yaml.Node, path string) []Service {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		w.errorf(n, path, "expected a list of services")
		return nil
	}
	if len(n.Content) > maxServices {
		w.errorf(n, path, "at most %d services", maxServices)
		return nil
	}
	out := make([]Service, 0, len(n.Content))
	for i, sn := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		sn = deref(sn)
		if sn == nil {
			continue
		}
		w.lines[p] = sn.Line
		s := Service{Line: sn.Line}
		if sn.Kind != yaml.MappingNode {
			w.errorf(sn, p, "expected a mapping")
			continue
		}
		w.mapping(sn, p, func(key string, v *yaml.Node) {
			fp := join(p, key)
			switch key {
			case "code":
				s.Code = w.str(v, fp)
			case "name":
				s.Name = w.str(v, fp)
			case "group":
				s.Group = w.str(v, fp)
			case "description":
				s.Description = w.str(v, fp)
			case "keywords":
				s.Keywords = w.strList(v, fp)
			case "domain":
				s.Domain = w.str(v, fp)
			case "sla_hours":
				s.SLAHours = w.number(v, fp)
			case "asset":
				s.Asset = w.asset(v, fp)
			default:
				w.unknown(key, "code, name, group, description, keywords, domain, sla_hours, asset")
			}
		})
		for _, req := range []string{"code", "name"} {
			if _, ok := w.lines[join(p, req)]; !ok {
				w.errorf(sn, join(p, req), "%s is required", req)
			}
		}
		out = append(out, s)
	}
	return out
}

func (w *walker) asset(n *yaml.Node, path string) *AssetRule {
	if n == nil || n.Kind != yaml.MappingNode {
		w.errorf(n, path, "expected a mapping such as {class: StreetLight, within: 50m}")
		return nil
	}
	a := &AssetRule{Within: DefaultAssetDistance}
	w.mapping(n, path, func(key string, v *yaml.Node) {
		fp := join(path, key)
		switch key {
		case "class":
			a.Class = w.str(v, fp)
		case "within":
			a.Within = w.distance(v, fp)
		case "impact":
			a.Impact = w.str(v, fp)
		default:
			w.unknown(key, "class, within, impact")
		}
	})
	return a
}
