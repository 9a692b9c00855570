package connectors

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// walker collects positioned errors while a connector file is decoded
// node by node (so that every error has a line and a field path).
type walker struct {
	file string
	errs []error
}

func (w *walker) errorf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	w.errs = append(w.errs, &ConfigError{File: w.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

type entry struct{ k, v *yaml.Node }

// entries returns a mapping's key/value pairs with YAML merge keys (<<)
// expanded; explicit keys override merged ones. Duplicate keys are errors.
func (w *walker) entries(n *yaml.Node, path string) []entry {
	n = deref(n)
	var merged, own []entry
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
			v = deref(v)
			switch v.Kind {
			case yaml.MappingNode:
				merged = append(merged, w.entries(v, path)...)
			case yaml.SequenceNode:
				for _, m := range v.Content {
					if m = deref(m); m.Kind == yaml.MappingNode {
						merged = append(merged, w.entries(m, path)...)
					}
				}
			default:
				w.errorf(k, path, "<< needs a mapping or a list of mappings")
			}
			continue
		}
		if seen[k.Value] {
			w.errorf(k, joinPath(path, k.Value), "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		own = append(own, entry{k, v})
	}
	out := own
	for _, e := range merged {
		if !seen[e.k.Value] {
			seen[e.k.Value] = true
			out = append(out, e)
		}
	}
	return out
}

// mapping calls f for each key of a mapping node, reporting keys not in
// allowed. It reports a non-mapping and returns false.
func (w *walker) mapping(n *yaml.Node, path string, allowed []string, f func(key string, k, v *yaml.Node)) bool {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		if isNull(n) {
			return true
		}
		w.errorf(n, path, "expected a mapping")
		return false
	}
	for _, e := range w.entries(n, path) {
		if allowed != nil && !containsStr(allowed, e.k.Value) {
			w.errorf(e.k, joinPath(path, e.k.Value), "unknown field %q (allowed: %s)", e.k.Value, strings.Join(allowed, ", "))
			continue
		}
		f(e.k.Value, e.k, deref(e.v))
	}
	return true
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (w *walker) str(n *yaml.Node, path string) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		w.errorf(n, path, "expected a string")
		return ""
	}
	return n.Value
}

func (w *walker) boolean(n *yaml.Node, path string) bool {
	var b bool
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		w.errorf(n, path, "expected true or false")
	}
	return b
}

func (w *walker) integer(n *yaml.Node, path string) int {
	n = deref(n)
	if n != nil && n.Kind == yaml.ScalarNode {
		if v, err := strconv.Atoi(n.Value); err == nil {
			return v
		}
	}
	w.errorf(n, path, "expected an integer")
	return 0
}

func (w *walker) float(n *yaml.Node, path string) float64 {
	n = deref(n)
	if n != nil && n.Kind == yaml.ScalarNode {
		if v, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return v
		}
	}
	w.errorf(n, path, "expected a number")
	return 0
}

// strList accepts a string or a list of strings.
func (w *walker) strList(n *yaml.Node, path string) []string {
	n = deref(n)
	if n != nil && n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	if n == nil || n.Kind != yaml.SequenceNode {
		w.errorf(n, path, "expected a string or a list of strings")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		out = append(out, w.str(c, fmt.Sprintf("%s[%d]", path, i)))
	}
	return out
}

// scalar decodes a YAML scalar into a Go value: string, int64, float64,
// bool or nil, following YAML's core schema tags.
func scalar(n *yaml.Node) (any, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return nil, false
	}
	switch n.Tag {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b, true
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return i, true
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			return f, true
		}
	}
	return n.Value, true
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
