package connectors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/cityhub/cityhub/ontology"
	"gopkg.in/yaml.v3"
)

// Connector is one loaded, validated connector: a source to read and the
// mapping that turns its records into nodes and edges.
type Connector struct {
	Name        string // unique name, e.g. cambridge-streetlights
	Source      string // registered source code used in URNs, e.g. cambridge-gis
	Kind        string // source kind, e.g. geojson
	Description string
	// Schedule is the interval between runs; 0 means run on demand (and at
	// start-up). The scheduler arrives with issue 4.
	Schedule time.Duration
	// Freshness is how often the source is expected to change; a source
	// not updated for longer is stale. 0 means unknown.
	Freshness time.Duration
	// BatchSize is the number of nodes per Apply; 0 uses the runner's.
	BatchSize int
	// Retry overrides the runner's retry policy for transient failures.
	Retry   *RetryPolicy
	File    string // connector file
	Line    int    // line of the connector in File
	Reader  Source
	Mapping *Mapping
}

var (
	sourceCodeRE = regexp.MustCompile(`^[a-z0-9-]{2,32}$`)
	connNameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// LoadFile reads and validates a connector file against the ontology and
// the registered kinds. Relative paths in source configs resolve against
// the file's directory. Every problem found is returned, joined; each is a
// *ConfigError naming file, line and field (errors.Is(err, ErrConfig)).
// Nothing is opened besides the file itself.
func LoadFile(path string, ont *ontology.Ontology, reg *Registry) ([]*Connector, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("connectors: %w", err)
	}
	return Parse(path, data, ont, reg)
}

// Parse decodes and validates connector file content; name is the file
// path, used in errors and to resolve relative paths. Top-level keys
// starting with "x-" are ignored: they hold YAML anchors that connectors
// reuse with aliases and merge keys (<<: *anchor).
func Parse(name string, data []byte, ont *ontology.Ontology, reg *Registry) ([]*Connector, error) {
	w := &walker{file: name}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ConfigError{File: name, Msg: err.Error()}
	}
	if len(doc.Content) == 0 {
		return nil, &ConfigError{File: name, Line: 1, Msg: "empty connector file"}
	}
	l := &loader{walker: w, dir: filepath.Dir(name), ont: ont, reg: reg}
	var conns []*Connector
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, &ConfigError{File: name, Line: root.Line, Msg: "expected a mapping with a connectors list"}
	}
	allowed := []string{"connectors"}
	for i := 0; i+1 < len(root.Content); i += 2 {
		// x- keys hold YAML anchors shared by connectors; they are ignored
		if k := root.Content[i].Value; strings.HasPrefix(k, "x-") {
			allowed = append(allowed, k)
		}
	}
	w.mapping(root, "", allowed, func(key string, _, v *yaml.Node) {
		if key != "connectors" {
			return
		}
		if v.Kind != yaml.SequenceNode {
			w.errorf(v, "connectors", "expected a list of connectors")
			return
		}
		names := map[string]int{}
		for i, cn := range v.Content {
			path := fmt.Sprintf("connectors[%d]", i)
			c := l.connector(deref(cn), path)
			if c == nil {
				continue
			}
			if prev, dup := names[c.Name]; dup {
				w.errorf(cn, path+".name", "duplicate connector name %q (first at line %d)", c.Name, prev)
				continue
			}
			names[c.Name] = c.Line
			conns = append(conns, c)
		}
	})
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}
	if len(conns) == 0 {
		return nil, &ConfigError{File: name, Line: doc.Content[0].Line, Path: "connectors", Msg: "no connectors declared"}
	}
	return conns, nil
}

type loader struct {
	*walker
	dir string
	ont *ontology.Ontology
	reg *Registry
}

var connectorKeys = []string{"name", "source", "kind", "description", "schedule", "freshness", "batch_size", "retry", "config", "mapping"}

func (l *loader) connector(n *yaml.Node, path string) *Connector {
	c := &Connector{File: l.file, Line: n.Line}
	errs := len(l.errs)
	var cfgNode, mapNode *yaml.Node
	var kindNode *yaml.Node
	ok := l.mapping(n, path, connectorKeys, func(key string, k, v *yaml.Node) {
		p := path + "." + key
		switch key {
		case "name":
			c.Name = l.str(v, p)
			if c.Name != "" && !connNameRE.MatchString(c.Name) {
				l.errorf(v, p, "connector names are lower case letters, digits, - and _ (at most 64)")
			}
		case "source":
			c.Source = l.str(v, p)
			if c.Source != "" && !sourceCodeRE.MatchString(c.Source) {
				l.errorf(v, p, "source code %q must match [a-z0-9-]{2,32}", c.Source)
			}
		case "kind":
			c.Kind, kindNode = l.str(v, p), v
		case "description":
			c.Description = l.str(v, p)
		case "schedule":
			c.Schedule = l.duration(v, p)
		case "freshness":
			c.Freshness = l.duration(v, p)
		case "batch_size":
			c.BatchSize = l.integer(v, p)
			if c.BatchSize < 0 {
				l.errorf(v, p, "batch_size must be positive")
			}
		case "retry":
			c.Retry = l.retry(v, p)
		case "config":
			cfgNode = v
		case "mapping":
			mapNode = v
		}
	})
	if !ok {
		return nil
	}
	for _, req := range []struct{ val, key string }{{c.Name, "name"}, {c.Source, "source"}, {c.Kind, "kind"}} {
		if req.val == "" && !hasKey(n, req.key) {
			l.errorf(n, path+"."+req.key, "%s is required", req.key)
		}
	}
	if c.Kind != "" {
		kind, found := l.reg.Lookup(c.Kind)
		if !found {
			l.errorf(kindNode, path+".kind", "unknown kind %q (registered: %v)", c.Kind, l.reg.Names())
		} else {
			raw := RawConfig{node: cfgNode, file: l.file, dir: l.dir, path: path + ".config", line: n.Line}
			if cfgNode != nil {
				raw.line = cfgNode.Line
			}
			src, err := kind.New(raw)
			if err != nil {
				l.addConfigErr(err, raw)
			}
			c.Reader = src
		}
	}
	if mapNode == nil {
		l.errorf(n, path+".mapping", "mapping is required")
	} else {
		c.Mapping = l.compileMapping(mapNode, path+".mapping")
	}
	if len(l.errs) > errs {
		return nil
	}
	return c
}

// addConfigErr keeps positioned errors from a kind's New and positions the
// others at the config block.
func (l *loader) addConfigErr(err error, raw RawConfig) {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var ce *ConfigError
		if errors.As(e, &ce) {
			l.errs = append(l.errs, ce)
			continue
		}
		l.errs = append(l.errs, &ConfigError{File: l.file, Line: raw.line, Path: raw.path, Msg: e.Error()})
	}
}

func (l *loader) duration(n *yaml.Node, path string) time.Duration {
	s := l.str(n, path)
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		l.errorf(n, path, "expected a duration such as 15m or 24h, got %q", s)
	}
	return d
}

// retry decodes a retry block: {attempts: 5, initial: 1s, max: 1m}.
func (l *loader) retry(n *yaml.Node, path string) *RetryPolicy {
	rp := DefaultRetry()
	l.mapping(n, path, []string{"attempts", "initial", "max"}, func(key string, _, v *yaml.Node) {
		p := path + "." + key
		switch key {
		case "attempts":
			rp.Attempts = l.integer(v, p)
			if rp.Attempts < 1 || rp.Attempts > 100 {
				l.errorf(v, p, "attempts must be between 1 and 100")
			}
		case "initial":
			rp.Initial = l.duration(v, p)
		case "max":
			rp.Max = l.duration(v, p)
		}
	})
	if rp.Max < rp.Initial {
		l.errorf(n, path+".max", "max (%v) must not be below initial (%v)", rp.Max, rp.Initial)
	}
	return &rp
}

func hasKey(n *yaml.Node, key string) bool {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}
