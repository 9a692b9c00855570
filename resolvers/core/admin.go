package core

import (
	"context"
	"io"
	"time"
)

// Admin is the operations surface behind the admin fields of the schema:
// the configured connectors' state, manual runs, and source staleness for
// _provenance. cmd/cityhub implements it over the connector scheduler and
// the store's journal; without one (a store served read-only) the fields
// answer that connectors are not configured.
type Admin interface {
	// Connectors returns the state of every configured connector.
	Connectors(ctx context.Context) ([]*ConnectorStatus, error)
	// RunConnector runs a connector now and returns its record.
	RunConnector(ctx context.Context, name string) (*ConnectorRun, error)
	// PushValues runs records (JSON objects) through a connector's
	// mapping as one PUSH run.
	PushValues(ctx context.Context, connector string, records []any) (*ConnectorRun, error)
	// PushBody is PushValues for a request body: a JSON array of objects,
	// one object, or JSON Lines.
	PushBody(ctx context.Context, connector string, body io.Reader) (*ConnectorRun, error)
	// Stale reports whether the data a connector wrote is stale (its
	// source has not been read successfully within its freshness); nil
	// when the connector is unknown or declares no freshness.
	Stale(ctx context.Context, connector string) (*bool, error)
}

// ConnectorStatus is the state of one configured connector.
type ConnectorStatus struct {
	Name             string
	Kind             string
	Source           string
	Schedule         *string
	Streaming        bool
	FreshnessSeconds *int
	Running          bool
	LastStatus       *string
	LastRunAt        *time.Time
	LastSuccessAt    *time.Time
	LastError        *string
	Stale            bool
	Checkpoint       *string
}

// ConnectorRun is the outcome of a manual run.
type ConnectorRun struct {
	Run        string
	Connector  string
	Status     string
	Read       int
	Written    int
	Rejected   int
	Skipped    int
	Attempts   int
	DurationMs float64
	Error      *string
	Rejections []*Rejection
}

// Rejection is a dead-lettered record of a run.
type Rejection struct {
	Index    int
	Position string
	Reason   string
}
