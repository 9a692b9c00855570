package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/demo"
	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/events/jetstream"
	"github.com/cityhub/cityhub/residents"
	"github.com/cityhub/cityhub/resolvers/core"
	"github.com/cityhub/cityhub/server"
	"github.com/cityhub/cityhub/web"
)

// serveFlags are the flags of `cityhub serve`; each overrides the config
// file and the environment.
type serveFlags struct {
	config string
}

func newServeCmd(e *env) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the GraphQL API (and GraphiQL on /) over the city knowledge graph",
		Long: `Serve the GraphQL API over the city knowledge graph.

Settings come from the config file (cityhub.yaml by default), then the
CITYHUB_* environment variables, then these flags, each overriding the one
before. At start-up the connectors listed in the config are run (the demo
config loads the Cambridge, Massachusetts demo city); /readyz answers 503
until they have finished.

Endpoints: POST/GET /graphql, GET / (GraphiQL, offline), GET /healthz,
GET /readyz, GET /metrics (Prometheus), POST /push/{connector} (records
an agency posts; operator token).

Set CITYHUB_OPERATOR_TOKEN to a secret to let requests with the header
"Authorization: Bearer <secret>" read restricted fields and run connectors
(mutation runConnector).

Environment variables:
` + envHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServeConfig(cmd, e, f.config)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, e)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "cityhub.yaml", "config file (YAML); missing is fine unless given explicitly")
	fl.String("listen", "", "HTTP listen address, e.g. 127.0.0.1:8080 (config: listen)")
	addStoreFlags(cmd)
	fl.String("connectors", "", "comma-separated connector files to run at start-up (config: connectors)")
	fl.String("load-on-start", "", "run connectors at start-up: always, if-empty or never (config: load_on_start)")
	fl.String("log-level", "", "log level: debug, info, warn or error (config: log_level)")
	fl.String("log-format", "", "log format: text or json (config: log_format)")
	fl.String("max-first", "", "largest page size a query may ask for (config: graphql.max_first)")
	fl.String("request-timeout", "", "GraphQL request timeout, e.g. 30s (config: graphql.request_timeout)")
	return cmd
}

// loadServeConfig reads the config file, then the environment, then the
// flags the user set, and validates the result.
func loadServeConfig(cmd *cobra.Command, e *env, file string) (Config, error) {
	cfg, err := LoadConfig(file, cmd.Flags().Changed("config"))
	if err != nil {
		return cfg, err
	}
	if err := cfg.ApplyEnv(e.getenv); err != nil {
		return cfg, err
	}
	var flagErr error
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if field, ok := flagFields[fl.Name]; ok && flagErr == nil {
			if err := cfg.set(field, fl.Value.String()); err != nil {
				flagErr = fmt.Errorf("--%s: %w", fl.Name, err)
			}
		}
	})
	if flagErr != nil {
		return cfg, flagErr
	}
	return cfg, cfg.Validate()
}

// flagFields maps flags to config fields.
var flagFields = map[string]string{
	"neo4j-user": "neo4j.user", "neo4j-database": "neo4j.database",
	"listen": "listen", "data-dir": "data_dir", "store": "store", "ontology": "ontology",
	"connectors": "connectors", "load-on-start": "load_on_start", "log-level": "log_level",
	"log-format": "log_format", "max-first": "graphql.max_first", "request-timeout": "graphql.request_timeout",
}

func envHelp() string {
	s := ""
	for _, e := range envOverrides {
		s += fmt.Sprintf("  %-24s %s (config: %s)\n", e.Name, e.Help, e.Field)
	}
	return s
}

func serve(ctx context.Context, cfg Config, e *env) error {
	log := newLogger(e.stderr, cfg.LogLevel, cfg.LogFormat)
	ont, err := loadOntology(cfg.Ontology)
	if err != nil {
		return err
	}
	store, storeDesc, err := openStore(ctx, cfg, ont, e.getenv, log, false)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}

	ec := core.DefaultConfig()
	ec.DefaultFirst, ec.MaxFirst, ec.BatchWait = cfg.GraphQL.DefaultFirst, cfg.GraphQL.MaxFirst, time.Duration(cfg.GraphQL.BatchWait)
	engine := core.NewEngine(store, ont, ec, log.With("component", "graphql"))
	// every write goes through the publishing store: its change events
	// reach the hub, which subscriptions read
	hub := events.NewHub(store, store, events.Config{
		Retention: time.Duration(cfg.Events.Retention), Buffer: cfg.Events.Buffer, Ring: cfg.Events.Memory,
		Logger: log.With("component", "events"),
	})
	engine.SetLive(hub)
	pub := &busSwitch{hub: hub}
	writes := events.Publishing(store, pub, log.With("component", "events"))

	scfg := server.DefaultConfig()
	scfg.RequestTimeout = time.Duration(cfg.GraphQL.RequestTimeout)
	scfg.MaxBodyBytes = cfg.GraphQL.MaxBodyBytes
	scfg.Introspection = cfg.GraphQL.Introspection
	scfg.GraphiQL = cfg.GraphQL.GraphiQL
	scfg.SubscriptionBuffer = cfg.Events.Buffer
	conns, err := loadConnectors(cfg, ont)
	if err != nil {
		return err
	}
	metrics := newRunMetrics()
	runner, dl, err := newRunner(cfg, log, metrics.progress, metrics.finished)
	if err != nil {
		return err
	}
	defer dl.Close()
	sched := connectors.NewScheduler(runner, writes, conns, log.With("component", "scheduler"))
	scfg.Admin = newAdmin(sched, store)
	scfg.OperatorToken = e.getenv("CITYHUB_OPERATOR_TOKEN")
	scfg.Metrics = metrics.handler()
	if cfg.Services != "" {
		svc, err := residents.LoadServices(cfg.Services, ont)
		if err != nil {
			return err
		}
		desk, err := residents.New(writes, ont, *svc, residents.WithLogger(log.With("component", "residents")))
		if err != nil {
			return err
		}
		if err := desk.Seed(ctx); err != nil {
			return fmt.Errorf("services %s: %w", cfg.Services, err)
		}
		scfg.Desk = desk
	}
	wc := web.DefaultConfig()
	wc.DefaultQuery = demo.CrossDomainQuery
	srv := server.New(scfg, engine, store, web.Handler(wc), log)
	metrics.websockets(srv.WebsocketStats)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + ln.Addr().String() + "/"
	log.Info("cityhub serving", "url", url, "graphql", url+"graphql", "store", storeDesc)
	fmt.Fprintf(e.stdout, "cityhub is serving %s (GraphiQL) and %sgraphql\n", url, url)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return hub.Run(gctx) })
	if cfg.Events.NATSURL != "" {
		g.Go(func() error {
			bus := openBus(gctx, cfg, hub, log.With("component", "events-bus"))
			if bus == nil {
				return nil // stopped before NATS was reachable
			}
			defer bus.Close()
			pub.bus.Store(bus)
			return bus.Run(gctx)
		})
	}
	g.Go(func() error {
		// source health: a source going stale (or fresh again) is a
		// SOURCE_STATE event for dashboards
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			if _, err := connectors.CheckFreshness(gctx, writes, conns, time.Now()); err != nil && gctx.Err() == nil {
				log.Warn("source health not checked", "err", err)
			}
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	g.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		srv.SetNotReady("shutting down") // load balancers stop sending new requests
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		defer srv.Close() // websockets: clients reconnect to another replica
		return hs.Shutdown(sctx)
	})
	g.Go(func() error {
		startup := len(conns) > 0 && cfg.LoadOnStart != "never"
		if startup && cfg.LoadOnStart == "if-empty" {
			fresh, err := neverLoaded(gctx, store, conns)
			if err != nil {
				return err
			}
			if !fresh {
				log.Info("start-up connectors skipped: every connector has loaded this store before (load_on_start: if-empty)")
			}
			startup = fresh
		}
		if startup {
			srv.SetNotReady("running start-up connectors")
		}
		start := time.Now()
		return sched.Serve(gctx, startup, func() {
			if startup {
				log.Info("start-up connectors done", "connectors", len(conns), "duration", time.Since(start).Round(time.Millisecond))
			}
			srv.SetNotReady("")
		})
	})
	err = g.Wait()
	log.Info("cityhub stopped")
	return err
}

// busSwitch publishes through the JetStream bus once it is open, and to
// the local hub until then: a replica serves while NATS is unreachable,
// and sees other replicas' writes through the shared change log.
type busSwitch struct {
	hub *events.Hub
	bus atomic.Pointer[jetstream.Bus]
}

func (s *busSwitch) Publish(ctx context.Context, b events.Batch) error {
	if bus := s.bus.Load(); bus != nil {
		return bus.Publish(ctx, b)
	}
	return s.hub.Publish(ctx, b)
}

// openBus opens the JetStream bus, retrying every 5 s until it succeeds
// or ctx ends (nil then).
func openBus(ctx context.Context, cfg Config, hub *events.Hub, log *slog.Logger) *jetstream.Bus {
	for {
		bus, err := jetstream.Open(ctx, jetstream.Config{URL: cfg.Events.NATSURL, Hub: hub,
			MaxAge: time.Duration(cfg.Events.Retention), Logger: log})
		if err == nil {
			log.Info("change events travel through NATS JetStream", "url", cfg.Events.NATSURL)
			return bus
		}
		log.Warn("NATS JetStream not reachable; replicas see each other's writes through the change log meanwhile; retrying in 5s", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}

// neverLoaded reports whether a configured connector has never succeeded
// against this store: load_on_start if-empty then runs the start-up
// connectors.
func neverLoaded(ctx context.Context, store connectors.NodeReader, conns []*connectors.Connector) (bool, error) {
	for _, c := range conns {
		st, err := connectors.ReadState(ctx, store, c.Name)
		if err != nil {
			return false, fmt.Errorf("load_on_start: %w", err)
		}
		if st.LastSuccessAt.IsZero() {
			return true, nil
		}
	}
	return false, nil
}
