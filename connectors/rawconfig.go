package connectors

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// RawConfig is a connector's kind-specific `config` block, not yet decoded.
// A kind's New decodes it with Decode, which is strict (unknown keys fail)
// and names file, line and field in every error.
type RawConfig struct {
	node *yaml.Node // nil when the block is absent
	file string
	dir  string // directory relative paths are resolved against
	path string // field path of the block, e.g. connectors[2].config
	line int    // line of the block (or of its connector)
}

// ParseRawConfig parses a standalone YAML config block, for tests and
// tools. Relative paths resolve against the directory of file.
func ParseRawConfig(file string, data []byte) (RawConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return RawConfig{}, &ConfigError{File: file, Msg: err.Error()}
	}
	rc := RawConfig{file: file, dir: filepath.Dir(file), path: "config", line: 1}
	if len(doc.Content) > 0 {
		rc.node = doc.Content[0]
		rc.line = rc.node.Line
	}
	return rc, nil
}

// File returns the connector file the block comes from.
func (c RawConfig) File() string { return c.file }

// ResolvePath returns p relative to the connector file's directory (p
// unchanged when absolute or empty).
func (c RawConfig) ResolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Errorf returns a *ConfigError positioned at field (a dotted path below
// the block, e.g. "join.key"; "" for the block itself).
func (c RawConfig) Errorf(field, format string, args ...any) error {
	line := c.line
	path := c.path
	if field != "" {
		path += "." + field
		// the line of the field, or of its deepest present ancestor
		segs := strings.Split(field, ".")
		for i := len(segs); i > 0; i-- {
			if n := c.find(strings.Join(segs[:i], ".")); n != nil {
				line = n.Line
				break
			}
		}
	}
	return &ConfigError{File: c.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// find returns the value node at a dotted path, or nil.
func (c RawConfig) find(field string) *yaml.Node {
	n := c.node
	for _, seg := range strings.Split(field, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == seg {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// Decode decodes the block into v (a pointer to the kind's config struct,
// pre-filled with defaults). Keys that match no `yaml` field of the struct
// are errors, as are values of the wrong type. All problems are returned
// together, joined, each a *ConfigError.
func (c RawConfig) Decode(v any) error {
	if c.node == nil {
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("connectors: Decode needs a non-nil pointer, got %T", v)
	}
	var errs []error
	lines := map[int]string{}
	c.check(c.node, rv.Type().Elem(), c.path, &errs, lines)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := c.node.Decode(v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				errs = append(errs, c.typeError(msg, lines))
			}
			return errors.Join(errs...)
		}
		return &ConfigError{File: c.file, Line: c.line, Path: c.path, Msg: err.Error()}
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeError turns a yaml.v3 message ("line 7: cannot unmarshal ...") into
// a ConfigError naming the field found on that line.
func (c RawConfig) typeError(msg string, lines map[int]string) error {
	e := &ConfigError{File: c.file, Line: c.line, Path: c.path, Msg: msg}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
		if p, ok := lines[e.Line]; ok {
			e.Path = p
		}
	}
	return e
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// check walks the node against the type, reporting unknown keys, and
// records the field path of every value line.
func (c RawConfig) check(n *yaml.Node, t reflect.Type, path string, errs *[]error, lines map[int]string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	lines[n.Line] = path // deeper nodes overwrite their parents
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			return
		}
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, &ConfigError{File: c.file, Line: n.Line, Path: path, Msg: "expected a mapping"})
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				sort.Strings(names)
				*errs = append(*errs, &ConfigError{File: c.file, Line: k.Line, Path: path + "." + k.Value,
					Msg: fmt.Sprintf("unknown field %q (allowed: %s)", k.Value, strings.Join(names, ", "))})
				continue
			}
			c.check(v, ft, path+"."+k.Value, errs, lines)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for i, e := range n.Content {
				c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs, lines)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				c.check(n.Content[i+1], t.Elem(), path+"."+n.Content[i].Value, errs, lines)
			}
		}
	}
}

// yamlFields maps the yaml keys of a struct type to field types,
// following inline fields.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}
