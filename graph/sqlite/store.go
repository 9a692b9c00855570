package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// Store is the SQLite graph store. It is safe for concurrent use: reads
// run on a pool of connections, writes are serialised on one connection.
type Store struct {
	ont *ontology.Ontology
	log *slog.Logger
	now func() time.Time

	w *sql.DB // the one writer connection
	r *sql.DB // readers

	wmu sync.Mutex // serialises Apply

	classProps map[string]*propSet // class name → properties
	relProps   map[string]*propSet // relation name → properties
	scopes     map[string]*scope   // class name → query scope
	ends       map[endKey]*scope   // relation end → scope of its far nodes
	classOrd   map[string]int      // class name → ordinal in the R*Tree (rtree.go)
	ordClasses []*ontology.Class   // classes by ordinal

	stmts  stmtCache            // reader statements
	wstmts map[string]*sql.Stmt // writer statements, prepared by Open
}

var (
	_ graph.Store     = (*Store)(nil)
	_ graph.ChangeLog = (*Store)(nil)
	_ graph.Pinger    = (*Store)(nil)
)

// Open opens (creating when needed) the database at cfg.Path for the
// ontology. Properties the ontology marks indexed get expression indexes;
// indexes for properties no longer marked are dropped.
func Open(ctx context.Context, cfg Config, ont *ontology.Ontology, opts ...Option) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if ont == nil {
		return nil, errors.New("sqlite: open: no ontology")
	}
	o := options{log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	s := &Store{ont: ont, log: o.log, now: o.now}
	s.buildScopes()

	cache := strconv.Itoa(-cfg.CacheMiB * 1024)
	s.w = sql.OpenDB(connector{dsn(path, url.Values{
		"_busy_timeout": {"10000"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_txlock":       {"immediate"},
		"_pragma":       {"cache_size(" + cache + ")", "temp_store(memory)"},
	})})
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	s.wstmts = map[string]*sql.Stmt{}
	for _, q := range writerStatements {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			s.w.Close()
			return nil, fmt.Errorf("sqlite: open %s: prepare: %w", cfg.Path, err)
		}
		s.wstmts[q] = st
	}
	s.r = sql.OpenDB(connector{dsn(path, url.Values{
		"_busy_timeout": {"10000"},
		"_query_only":   {"1"},
		"_pragma":       {"cache_size(" + cache + ")", "temp_store(memory)", "mmap_size(268435456)"},
	})})
	s.r.SetMaxOpenConns(cfg.ReadConns)
	s.r.SetMaxIdleConns(cfg.ReadConns)
	s.r.SetConnMaxLifetime(0)
	s.r.SetConnMaxIdleTime(0)
	if err := s.r.PingContext(ctx); err != nil {
		s.r.Close()
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	s.stmts.db = s.r
	s.log.InfoContext(ctx, "graph store opened", "path", path, "read_conns", cfg.ReadConns)
	return s, nil
}

// dsn builds a SQLite URI for path with the driver parameters.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: params.Encode()}
	return u.String()
}

// Close closes the connections; it waits for running calls to end.
func (s *Store) Close() error {
	s.stmts.close()
	for _, st := range s.wstmts {
		st.Close()
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

// Ping checks that the database answers on both pools. It returns an error
// wrapping graph.ErrUnavailable when it does not.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w: %v", graph.ErrUnavailable, err)
	}
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w: %v", graph.ErrUnavailable, err)
	}
	return nil
}

// scope is the set of concrete classes a query reads and the properties
// their nodes may carry.
type scope struct {
	name    string
	classes []string // concrete class names, sorted
	all     bool     // every concrete class of the ontology
	props   map[string]*ontology.Property
	// ambiguous lists property names that classes in the scope declare
	// with types that compare differently (text and numbers, say); they
	// cannot be queried. Two enums, or Int and Float, are fine.
	ambiguous map[string]bool
	// ranges are the class ordinals an R*Tree lookup for the scope reads.
	ranges []clsRange
}

func (s *Store) buildScopes() {
	s.classProps = map[string]*propSet{}
	s.relProps = map[string]*propSet{}
	s.scopes = map[string]*scope{}
	s.classOrd = map[string]int{}
	s.ordClasses = classOrder(s.ont)
	for i, c := range s.ordClasses {
		s.classOrd[c.Name] = i
	}
	for _, c := range s.ont.Classes {
		s.classProps[c.Name] = newPropSet("class "+c.Name, c.Props)
	}
	for _, r := range s.ont.Relations {
		s.relProps[r.Name] = newPropSet("relation "+r.Name, r.Props)
	}
	total := len(s.ont.Concrete())
	for _, c := range s.ont.Classes {
		sc := s.newScope(c.Name, c.ConcreteDescendants())
		sc.all = len(sc.classes) == total
		s.scopes[c.Name] = sc
	}
	s.ends = map[endKey]*scope{}
	for _, r := range s.ont.Relations {
		for _, d := range []ontology.Direction{ontology.Out, ontology.In} {
			s.ends[endKey{r.Name, d}] = s.newEndScope(r, d)
		}
	}
}

func (s *Store) newScope(name string, classes []string) *scope {
	sc := &scope{name: name, classes: classes, props: map[string]*ontology.Property{}, ambiguous: map[string]bool{}, ranges: s.classRanges(classes)}
	for _, cn := range classes {
		for _, p := range s.ont.Class(cn).Props {
			if prev := sc.props[p.Name]; prev != nil && (kindOf(prev) != kindOf(p) || prev.List != p.List) {
				sc.ambiguous[p.Name] = true
			}
			sc.props[p.Name] = p
		}
	}
	return sc
}

// endKey names one end of a relation.
type endKey struct {
	rel string
	dir ontology.Direction
}

// scopeFor returns the scope of a class name; ErrInvalid when unknown.
func (s *Store) scopeFor(class string) (*scope, error) {
	sc := s.scopes[class]
	if sc == nil {
		return nil, fmt.Errorf("sqlite: %w: unknown class %q", graph.ErrInvalid, class)
	}
	return sc, nil
}

// stmtCache keeps prepared reader statements by SQL text. Queries are
// built from a small number of shapes (values are always parameters), so
// the cache stays small; it is bounded anyway.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

const stmtCacheMax = 512

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st := c.m[query]
	c.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.m[query]; prev != nil {
		st.Close()
		return prev, nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	if len(c.m) >= stmtCacheMax {
		for k, v := range c.m { // evict an arbitrary entry
			v.Close()
			delete(c.m, k)
			break
		}
	}
	c.m[query] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

// query runs a read statement (from the statement cache) on tx, or on the
// reader pool when tx is nil.
func (s *Store) query(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	st, err := s.stmts.get(ctx, q)
	if err != nil {
		return nil, err
	}
	if tx != nil {
		st = tx.StmtContext(ctx, st)
	}
	return st.QueryContext(ctx, args...)
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullTime(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: graph.FormatTime(t), Valid: true}
}

func parseNullTime(s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	t, err := graph.ParseTime(s.String)
	if err != nil {
		return time.Time{}
	}
	return t
}
