package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is cityhub.yaml. Keys are snake_case; unknown keys are errors.
type Config struct {
	// Listen is the HTTP address.
	Listen string `yaml:"listen"`
	// DataDir holds the embedded store and dead letters.
	DataDir string `yaml:"data_dir"`
	// Store selects the backend: "sqlite" (embedded, the default) or a
	// Neo4j URI (bolt://host:7687, neo4j://host:7687, +s/+ssc for TLS).
	Store string `yaml:"store"`
	// Neo4j says how to reach Neo4j when Store is a Neo4j URI.
	Neo4j Neo4jConfig `yaml:"neo4j"`
	// Ontology is an ontology file; empty for the built-in city ontology.
	Ontology string `yaml:"ontology"`
	// Services is the service list residents report issues against
	// (residents/README.md); empty disables issue reports.
	Services string `yaml:"services"`
	// Connectors lists connector files loaded at start-up.
	Connectors []string `yaml:"connectors"`
	// LoadOnStart runs the connectors at start-up: always, if-empty or never.
	LoadOnStart string `yaml:"load_on_start"`
	// LogLevel is debug, info, warn or error; LogFormat text or json.
	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`
	// GraphQL limits.
	GraphQL GraphQLConfig `yaml:"graphql"`
	// Events tunes the change feed subscriptions read.
	Events EventsConfig `yaml:"events"`

	file  string     // where the config came from
	nodes *yaml.Node // for line numbers
}

// GraphQLConfig bounds the API.
type GraphQLConfig struct {
	DefaultFirst   int      `yaml:"default_first"`
	MaxFirst       int      `yaml:"max_first"`
	RequestTimeout Duration `yaml:"request_timeout"`
	MaxBodyBytes   int64    `yaml:"max_body_bytes"`
	Introspection  bool     `yaml:"introspection"`
	GraphiQL       bool     `yaml:"graphiql"`
	BatchWait      Duration `yaml:"batch_wait"`
}

// EventsConfig tunes the change feed.
type EventsConfig struct {
	// Retention is how long change events are kept: how far back a
	// subscriber can resume with since.
	Retention Duration `yaml:"retention"`
	// Buffer is how many events a subscriber may be behind before its
	// subscription ends with the cursor to resume from.
	Buffer int `yaml:"buffer"`
	// Memory is how many recent events are kept in memory for resuming
	// subscribers (older ones are read from the store).
	Memory int `yaml:"memory"`
	// NATSURL, when set, carries change events between replicas through
	// NATS JetStream (stream CITYHUB_CHANGES); without it replicas on one
	// store still see each other's writes by polling its change log
	// every second.
	NATSURL string `yaml:"nats_url"`
}

// Duration is a time.Duration written as "30s", "1m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 30s or 1m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Listen:      "127.0.0.1:8080",
		DataDir:     "data",
		Store:       "sqlite",
		Neo4j:       Neo4jConfig{PasswordEnv: "CITYHUB_NEO4J_PASSWORD"},
		LoadOnStart: "always",
		LogLevel:    "info",
		LogFormat:   "text",
		GraphQL: GraphQLConfig{
			DefaultFirst: 20, MaxFirst: 1000, RequestTimeout: Duration(30 * time.Second),
			MaxBodyBytes: 1 << 20, Introspection: true, GraphiQL: true, BatchWait: Duration(250 * time.Microsecond),
		},
		Events: EventsConfig{Retention: Duration(24 * time.Hour), Buffer: 256, Memory: 10_000},
	}
}

// ConfigError names the file, line and field of a bad setting.
type ConfigError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
}

// LoadConfig reads a config file over the defaults. A missing file is an
// error only when required.
func LoadConfig(path string, required bool) (Config, error) {
	cfg := DefaultConfig()
	cfg.file = path
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		cfg.file = "(defaults)"
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	cfg.nodes = &root
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// line returns the line of a dotted field path in the file, or 0.
func (c *Config) line(path string) int {
	if c.nodes == nil || len(c.nodes.Content) == 0 {
		return 0
	}
	n := c.nodes.Content[0]
	line := 0
	for _, part := range strings.Split(path, ".") {
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

func (c *Config) errorf(field, format string, args ...any) error {
	return &ConfigError{File: c.file, Line: c.line(field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

// envOverrides lists the environment variables that override settings.
var envOverrides = []struct {
	Name, Field, Help string
}{
	{"CITYHUB_LISTEN", "listen", "HTTP address"},
	{"CITYHUB_DATA_DIR", "data_dir", "data directory"},
	{"CITYHUB_STORE", "store", "store: sqlite or a Neo4j URI"},
	{"CITYHUB_NEO4J_USER", "neo4j.user", "Neo4j user"},
	{"CITYHUB_NEO4J_DATABASE", "neo4j.database", "Neo4j database"},
	{"CITYHUB_ONTOLOGY", "ontology", "ontology file"},
	{"CITYHUB_CONNECTORS", "connectors", "comma-separated connector files"},
	{"CITYHUB_LOAD_ON_START", "load_on_start", "always, if-empty or never"},
	{"CITYHUB_LOG_LEVEL", "log_level", "log level"},
	{"CITYHUB_LOG_FORMAT", "log_format", "text or json"},
	{"CITYHUB_MAX_FIRST", "graphql.max_first", "largest page size"},
	{"CITYHUB_REQUEST_TIMEOUT", "graphql.request_timeout", "GraphQL request timeout"},
	{"CITYHUB_NATS_URL", "events.nats_url", "NATS JetStream URL carrying change events between replicas"},
	{"CITYHUB_SERVICES", "services", "service list for residents' issue reports"},
}

// ApplyEnv applies CITYHUB_* environment variables.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	for _, e := range envOverrides {
		v := getenv(e.Name)
		if v == "" {
			continue
		}
		if err := c.set(e.Field, v); err != nil {
			return fmt.Errorf("environment %s: %w", e.Name, err)
		}
	}
	return nil
}

// set assigns one setting from text (environment or flag).
func (c *Config) set(field, v string) error {
	switch field {
	case "listen":
		c.Listen = v
	case "data_dir":
		c.DataDir = v
	case "store":
		c.Store = v
	case "neo4j.user":
		c.Neo4j.User = v
	case "neo4j.database":
		c.Neo4j.Database = v
	case "ontology":
		c.Ontology = v
	case "events.nats_url":
		c.Events.NATSURL = v
	case "services":
		c.Services = v
	case "connectors":
		c.Connectors = nil
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				c.Connectors = append(c.Connectors, f)
			}
		}
	case "load_on_start":
		c.LoadOnStart = v
	case "log_level":
		c.LogLevel = v
	case "log_format":
		c.LogFormat = v
	case "graphql.max_first":
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		c.GraphQL.MaxFirst = n
	case "graphql.request_timeout":
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration", v)
		}
		c.GraphQL.RequestTimeout = Duration(d)
	default:
		return fmt.Errorf("unknown setting %q", field)
	}
	return nil
}

// Validate checks every setting, naming the file, line and field at fault.
func (c *Config) Validate() error {
	if c.Listen == "" {
		return c.errorf("listen", "must not be empty")
	}
	if c.DataDir == "" {
		return c.errorf("data_dir", "must not be empty")
	}
	if c.Store != "sqlite" && !neo4jStore(c.Store) {
		return c.errorf("store", "unknown store %q (sqlite, or a Neo4j URI such as bolt://127.0.0.1:7687)", c.Store)
	}
	switch c.LoadOnStart {
	case "always", "if-empty", "never":
	default:
		return c.errorf("load_on_start", "must be always, if-empty or never (got %q)", c.LoadOnStart)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return c.errorf("log_level", "must be debug, info, warn or error (got %q)", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return c.errorf("log_format", "must be text or json (got %q)", c.LogFormat)
	}
	g := c.GraphQL
	if ev := c.Events; ev.Retention < Duration(time.Minute) {
		return c.errorf("events.retention", "must be at least 1m (got %s)", time.Duration(ev.Retention))
	} else if ev.Buffer < 1 || ev.Buffer > 1_000_000 {
		return c.errorf("events.buffer", "must be between 1 and 1000000 (got %d)", ev.Buffer)
	} else if ev.Memory < 1 || ev.Memory > 10_000_000 {
		return c.errorf("events.memory", "must be between 1 and 10000000 (got %d)", ev.Memory)
	}
	if g.MaxFirst < 1 || g.MaxFirst > 10000 {
		return c.errorf("graphql.max_first", "must be between 1 and 10000 (got %d)", g.MaxFirst)
	}
	if g.DefaultFirst < 1 || g.DefaultFirst > g.MaxFirst {
		return c.errorf("graphql.default_first", "must be between 1 and max_first %d (got %d)", g.MaxFirst, g.DefaultFirst)
	}
	if g.RequestTimeout <= 0 {
		return c.errorf("graphql.request_timeout", "must be positive")
	}
	if g.MaxBodyBytes < 1024 {
		return c.errorf("graphql.max_body_bytes", "must be at least 1024 (got %d)", g.MaxBodyBytes)
	}
	if g.BatchWait < 0 || time.Duration(g.BatchWait) > time.Second {
		return c.errorf("graphql.batch_wait", "must be between 0 and 1s")
	}
	return nil
}
