package connectors

import (
	"context"
	"errors"
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

// The optional capabilities below extend Source. The runner asks for them
// with a type assertion; a source implements only what its origin allows.

// Checker is a source that can tell, without reading everything, whether
// it can reach and read its origin (`cityhub connectors check --reach`,
// the Airbyte "check" step). Check opens a connection or the file, reads
// enough to know the format is right (a header, one page, one row) and
// closes it. Its error says what failed, e.g. "GET http://…: 503".
type Checker interface {
	Check(ctx context.Context) error
}

// Resumer is a source that can resume after a checkpoint: an Open311
// endpoint by updated time, a SQL table by a watermark column, an NGSI-LD
// broker by modifiedAt. Each record it emits carries Record.Checkpoint, the
// opaque position that resumes after that record; the runner stores the
// checkpoint of the last record of a batch in the same commit as the
// batch, so a checkpoint never runs ahead of the data. ReadFrom with ""
// reads from the start. Records emitted in one call must come in
// checkpoint order (ties broken by a key, so that resuming after a record
// neither skips nor repeats its equals).
type Resumer interface {
	ReadFrom(ctx context.Context, checkpoint string, emit func(Record) error) error
}

// Streamer is a long-running source (an MQTT subscription, a websocket):
// Subscribe delivers records as they arrive until ctx ends, reconnecting
// on its own after transient failures (logging each), and returns nil when
// ctx ends or an error it cannot recover from. The runner batches streamed
// records by size and by time and commits them; a record with Ack set is
// acknowledged (Ack called once) only after its batch committed or the
// record was dead-lettered, so a message the broker considers delivered is
// always in the graph or in the dead letters. checkpoint is the last one
// committed, for streams that can replay ("" for the start or for brokers
// that keep the position themselves).
type Streamer interface {
	Subscribe(ctx context.Context, checkpoint string, emit func(Record) error) error
}

// TransientError marks a failure worth retrying (connection refused, a
// timeout, HTTP 429 or 5xx, a serialisation failure): the runner retries
// the run with exponential backoff and jitter before it fails.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Transient wraps err as a TransientError (nil stays nil).
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err}
}

// IsTransient reports whether err (or an error it wraps) is transient.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}
