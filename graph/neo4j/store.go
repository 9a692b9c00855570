package neo4j

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/config"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/notifications"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Store is the Neo4j graph store. It is safe for concurrent use: every
// call runs in its own session on the driver's connection pool.
type Store struct {
	*model
	cfg Config
	log *slog.Logger
	now func() time.Time
	drv neo4jdrv.DriverWithContext
	// noEdgeHints drops the edge lookup's index hints (set only by tests
	// that compare the lookup with and without them)
	noEdgeHints bool
}

var (
	_ graph.Store     = (*Store)(nil)
	_ graph.ChangeLog = (*Store)(nil)
	_ graph.Pinger    = (*Store)(nil)
)

// Open connects to the database for the ontology and checks that it
// answers (graph.ErrUnavailable when it does not). It does not change the
// schema: Migrate does, and SchemaStatus says whether it is needed.
func Open(ctx context.Context, cfg Config, ont *ontology.Ontology, opts ...Option) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newModel(ont)
	if err != nil {
		return nil, err
	}
	o := options{log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	auth := neo4jdrv.NoAuth()
	if cfg.User != "" {
		auth = neo4jdrv.BasicAuth(cfg.User, cfg.Password, "")
	}
	drv, err := neo4jdrv.NewDriverWithContext(cfg.URI, auth, func(c *config.Config) {
		c.MaxConnectionPoolSize = cfg.MaxConnections
		c.SocketConnectTimeout = cfg.ConnectTimeout
		c.ConnectionAcquisitionTimeout = cfg.ConnectTimeout + cfg.MaxRetryTime
		c.MaxTransactionRetryTime = cfg.MaxRetryTime
		c.NotificationsMinSeverity = notifications.DisabledLevel
		c.UserAgent = "cityhub"
	})
	if err != nil {
		return nil, fmt.Errorf("neo4j: open %s: %w", cfg.redactedURI(), err)
	}
	s := &Store{model: m, cfg: cfg, log: o.log, now: o.now, drv: drv}
	if err := s.Ping(ctx); err != nil {
		drv.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("neo4j: open %s: %w", cfg.redactedURI(), err)
	}
	s.log.InfoContext(ctx, "graph store opened", "uri", cfg.redactedURI(), "database", cfg.Database)
	return s, nil
}

// Close closes the driver and its connections.
func (s *Store) Close() error {
	return s.drv.Close(context.Background())
}

// Ping runs a trivial query on the database. It returns an error wrapping
// graph.ErrUnavailable when the database does not answer.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.read(ctx, func(tx neo4jdrv.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "RETURN 1", nil)
		if err != nil {
			return nil, err
		}
		_, err = res.Consume(ctx)
		return nil, err
	})
	if err != nil {
		if !errors.Is(err, graph.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", graph.ErrUnavailable, err)
		}
		return fmt.Errorf("neo4j: ping: %w", err)
	}
	return nil
}

func (s *Store) session(ctx context.Context, mode neo4jdrv.AccessMode) neo4jdrv.SessionWithContext {
	return s.drv.NewSession(ctx, neo4jdrv.SessionConfig{
		AccessMode:      mode,
		DatabaseName:    s.cfg.Database,
		BookmarkManager: s.drv.ExecuteQueryBookmarkManager(), // reads follow this process's writes
	})
}

// read runs work in a managed read transaction (retried on transient
// errors) and maps driver errors.
func (s *Store) read(ctx context.Context, work neo4jdrv.ManagedTransactionWork) (any, error) {
	sess := s.session(ctx, neo4jdrv.AccessModeRead)
	defer sess.Close(ctx)
	res, err := sess.ExecuteRead(ctx, work)
	return res, mapErr(ctx, err)
}

// write runs work in a managed write transaction (retried on transient
// errors) and maps driver errors.
func (s *Store) write(ctx context.Context, work neo4jdrv.ManagedTransactionWork) (any, error) {
	sess := s.session(ctx, neo4jdrv.AccessModeWrite)
	defer sess.Close(ctx)
	res, err := sess.ExecuteWrite(ctx, work)
	return res, mapErr(ctx, err)
}

// isCoded reports errors that already carry their graph code (raised by
// the store itself inside a transaction function): mapErr keeps them.
func isCoded(err error) bool {
	return errors.Is(err, graph.ErrInvalid) || errors.Is(err, graph.ErrConflict) || errors.Is(err, graph.ErrNotFound) ||
		errors.Is(err, graph.ErrUnavailable) || errors.Is(err, errNoop)
}

// mapErr turns driver errors into the store's: connectivity failures,
// exhausted retries of transient failures and an unavailable database wrap
// graph.ErrUnavailable (and the context's error when its deadline ended
// the retries); a cancelled or expired context otherwise wraps that error;
// a violated uniqueness constraint is a conflict.
func mapErr(ctx context.Context, err error) error {
	if err == nil || isCoded(err) {
		return err
	}
	cerr := ctx.Err()
	if unavailable(err) {
		if cerr != nil { // retrying an unreachable server until the deadline
			return fmt.Errorf("%w: %w: %w", graph.ErrUnavailable, cerr, err)
		}
		return fmt.Errorf("%w: %w", graph.ErrUnavailable, err)
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	var nerr *neo4jdrv.Neo4jError
	if errors.As(err, &nerr) && nerr.Code == "Neo.ClientError.Schema.ConstraintValidationFailed" {
		return fmt.Errorf("%w: %w", graph.ErrConflict, err)
	}
	return err
}

func unavailable(err error) bool {
	var cerr *neo4jdrv.ConnectivityError
	if errors.As(err, &cerr) {
		return true
	}
	var lim *neo4jdrv.TransactionExecutionLimit
	if errors.As(err, &lim) {
		for _, e := range lim.Errors {
			if unavailable(e) {
				return true
			}
		}
		return len(lim.Errors) == 0
	}
	var nerr *neo4jdrv.Neo4jError
	if errors.As(err, &nerr) {
		switch nerr.Code {
		case "Neo.TransientError.General.DatabaseUnavailable", "Neo.ClientError.Database.DatabaseNotFound",
			"Neo.TransientError.Database.DatabaseUnavailable", "Neo.ClientError.Cluster.NotALeader":
			return true
		}
		return nerr.IsRetriable()
	}
	return false
}
