package connectors

import (
	"context"
	"fmt"
	"regexp"
	"sort"
)

// Source reads records from one place (a file, later an HTTP endpoint, a
// database, a broker).
type Source interface {
	// Read reads the source and calls emit once per record, in source
	// order. It returns nil when the source is exhausted, ctx.Err() when ctx
	// ends, and an error emit returns, unchanged. A record it cannot parse
	// is emitted with Record.Err set; Read returns an error only when it
	// cannot go on (the file is missing, the stream is corrupt past
	// recovery). Connections are opened inside Read, never in New.
	//
	// emit may keep the record (Fields, Geometry, Raw) after it returns:
	// sources must not reuse those buffers.
	//
	// Read is not safe for concurrent use by several goroutines; separate
	// calls may follow each other (each reads from the start).
	Read(ctx context.Context, emit func(Record) error) error
}

// Kind describes one source kind: its name, its configuration and how to
// build a Source from a configuration block. The spec is code: docs and
// checks are derived from it.
type Kind struct {
	// Name is the value of a connector's `kind` field, e.g. "csv".
	Name string
	// Summary is one sentence saying what the kind reads.
	Summary string
	// Config is the zero (or default) value of the kind's configuration
	// type, for documentation and checks.
	Config any
	// New decodes and validates raw and returns a Source. It opens
	// nothing. Errors should come from raw.Decode or raw.Errorf so that they
	// name the file, line and field.
	New func(raw RawConfig) (Source, error)
	// Sample is the kind's complete commented example connector file
	// (sample.yaml, embedded).
	Sample []byte
}

var kindNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Registry holds the source kinds a program knows. It is built explicitly
// (connectors/all.Register fills it with the built-ins) and is read-only
// once built: Register during start-up, read concurrently afterwards.
type Registry struct {
	kinds map[string]Kind
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{kinds: map[string]Kind{}} }

// Register adds a kind. It panics when the name is already registered or
// the kind is incomplete: both are programmer errors at start-up.
func (r *Registry) Register(k Kind) {
	if !kindNameRE.MatchString(k.Name) {
		panic(fmt.Sprintf("connectors: invalid kind name %q", k.Name))
	}
	if k.New == nil {
		panic(fmt.Sprintf("connectors: kind %q has no New", k.Name))
	}
	if _, dup := r.kinds[k.Name]; dup {
		panic(fmt.Sprintf("connectors: kind %q registered twice", k.Name))
	}
	r.kinds[k.Name] = k
}

// Lookup returns the kind with that name.
func (r *Registry) Lookup(name string) (Kind, bool) {
	k, ok := r.kinds[name]
	return k, ok
}

// Kinds returns every registered kind, sorted by name.
func (r *Registry) Kinds() []Kind {
	out := make([]Kind, 0, len(r.kinds))
	for _, k := range r.kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the registered kind names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
