package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/neo4j"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

// Neo4jConfig names how to reach Neo4j when `store` is a Neo4j URI. The
// password is never written in the file: PasswordEnv names the environment
// variable holding it.
type Neo4jConfig struct {
	User        string `yaml:"user"`
	PasswordEnv string `yaml:"password_env"`
	Database    string `yaml:"database"`
}

// neo4jStore reports whether the store setting is a Neo4j URI.
func neo4jStore(store string) bool {
	u, err := url.Parse(store)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc":
		return true
	}
	return false
}

// openedStore is a store with what serve needs beside graph.Store.
type openedStore interface {
	graph.Store
	graph.Pinger
	graph.ChangeLog
}

// openStore opens the configured backend. A Neo4j database whose schema is
// behind the ontology is refused with the command that fixes it.
func openStore(ctx context.Context, cfg Config, ont *ontology.Ontology, getenv func(string) string, log *slog.Logger, migrate bool) (openedStore, string, error) {
	if !neo4jStore(cfg.Store) {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, "", fmt.Errorf("data_dir: %w", err)
		}
		sc := sqlite.DefaultConfig()
		sc.Path = filepath.Join(cfg.DataDir, "cityhub.db")
		s, err := sqlite.Open(ctx, sc, ont, sqlite.WithLogger(log.With("component", "store")))
		return s, "sqlite " + sc.Path, err
	}
	nc := neo4j.DefaultConfig()
	nc.URI = cfg.Store
	nc.User = cfg.Neo4j.User
	nc.Database = cfg.Neo4j.Database
	if cfg.Neo4j.PasswordEnv != "" {
		nc.Password = getenv(cfg.Neo4j.PasswordEnv)
	}
	if nc.Password != "" && nc.User == "" {
		nc.User = "neo4j"
	}
	if err := nc.Validate(); err != nil {
		return nil, "", err
	}
	s, err := neo4j.Open(ctx, nc, ont, neo4j.WithLogger(log.With("component", "store")))
	if err != nil {
		return nil, "", err
	}
	if migrate {
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, "", err
		}
	}
	st, err := s.SchemaStatus(ctx)
	if err != nil {
		s.Close()
		return nil, "", err
	}
	if st.Behind() {
		s.Close()
		return nil, "", st.Err()
	}
	return s, "neo4j " + redact(cfg.Store), nil
}

func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	u.User = nil
	return u.String()
}

func newMigrateCmd(e *env) *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create the store's schema for the ontology (Neo4j constraints and indexes), idempotently",
		Long: `Create, idempotently, what the store needs for the ontology: on Neo4j the
uniqueness constraint on node IDs, point indexes on locations, range indexes
on the properties the ontology marks indexed and the full-text index for
name search. The embedded store migrates itself when it opens. serve refuses
to start against a Neo4j database whose schema is behind.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServeConfig(cmd, e, configFile)
			if err != nil {
				return err
			}
			log := newLogger(e.stderr, cfg.LogLevel, cfg.LogFormat)
			ont, err := loadOntology(cfg.Ontology)
			if err != nil {
				return err
			}
			s, desc, err := openStore(cmd.Context(), cfg, ont, e.getenv, log, true)
			if err != nil {
				return err
			}
			defer s.Close()
			fmt.Fprintf(e.stdout, "%s: schema is up to date with ontology %s\n", desc, ont.Version)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "cityhub.yaml", "config file (YAML)")
	addStoreFlags(cmd)
	return cmd
}

// addStoreFlags adds the flags that select and reach the store.
func addStoreFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.String("store", "", "store: sqlite (embedded, in --data-dir) or a Neo4j URI such as bolt://127.0.0.1:7687 (config: store)")
	fl.String("data-dir", "", "directory for the embedded store and dead letters (config: data_dir)")
	fl.String("neo4j-user", "", "Neo4j user; the password comes from $CITYHUB_NEO4J_PASSWORD (config: neo4j.user)")
	fl.String("neo4j-database", "", "Neo4j database; empty for the server's default (config: neo4j.database)")
	fl.String("ontology", "", "ontology file; empty for the built-in city ontology (config: ontology)")
}
