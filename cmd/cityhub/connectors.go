package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/all"
	"github.com/cityhub/cityhub/ontology"
)

func registry() *connectors.Registry {
	r := connectors.NewRegistry()
	all.Register(r)
	return r
}

func newConnectorsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connectors",
		Short: "Validate connector files",
	}
	var ontFile string
	var reach bool
	check := &cobra.Command{
		Use:   "check FILE...",
		Short: "Validate connector files against the ontology without running them",
		Long: `Validate connector files: the source configs, the mappings against the
ontology (classes, properties, types, enum values, relations). Every problem
is reported with its file, line and field. Nothing is read from the sources
unless --reach is given: then each source that can tell (files, HTTP
endpoints, databases, brokers) is opened and its first page, header or row
read, and a failure names the connector and the reason.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := loadOntology(ontFile)
			if err != nil {
				return err
			}
			reg := registry()
			var errs []error
			for _, f := range args {
				conns, err := connectors.LoadFile(f, o, reg)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, c := range conns {
					status := "ok"
					if reach {
						if ch, ok := c.Reader.(connectors.Checker); ok {
							ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
							err := ch.Check(ctx)
							cancel()
							if err != nil {
								errs = append(errs, fmt.Errorf("%s:%d: %s: source not reachable: %w", f, c.Line, c.Name, err))
								continue
							}
							status = "ok, reached"
						} else {
							status = "ok (the kind cannot check its source)"
						}
					}
					fmt.Fprintf(e.stdout, "%s:%d: %s: %s (%s, source %s)\n", f, c.Line, status, c.Name, c.Kind, c.Source)
				}
			}
			return errors.Join(errs...)
		},
	}
	check.Flags().StringVar(&ontFile, "ontology", "", "ontology file (default: the built-in city ontology)")
	check.Flags().BoolVar(&reach, "reach", false, "also open each source and read its start (files, URLs, databases, brokers)")
	kinds := &cobra.Command{
		Use:   "kinds [KIND]",
		Short: "List the source kinds this binary knows, or print one kind's documented sample connector file",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg := registry()
			if len(args) == 1 {
				k, ok := reg.Lookup(args[0])
				if !ok {
					return fmt.Errorf("unknown kind %q (known: %s)", args[0], strings.Join(reg.Names(), ", "))
				}
				_, err := e.stdout.Write(k.Sample)
				return err
			}
			for _, k := range reg.Kinds() {
				fmt.Fprintf(e.stdout, "%-10s %s\n", k.Name, k.Summary)
			}
			return nil
		},
	}
	cmd.AddCommand(check, kinds, newConnectorsListCmd(e), newConnectorsRunCmd(e))
	return cmd
}

// newConnectorsListCmd: cityhub connectors list.
func newConnectorsListCmd(e *env) *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the configured connectors with their last run and freshness",
		Long: `List the connectors of the config's connector files with what the
store's journal knows: the last run's status and time, the last success,
whether the source is stale (older than its freshness) and the checkpoint.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServeConfig(cmd, e, configFile)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			log := newLogger(e.stderr, cfg.LogLevel, cfg.LogFormat)
			ont, err := loadOntology(cfg.Ontology)
			if err != nil {
				return err
			}
			conns, err := loadConnectors(cfg, ont)
			if err != nil {
				return err
			}
			store, _, err := openStore(ctx, cfg, ont, e.getenv, log, false)
			if err != nil {
				return err
			}
			defer store.Close()
			now := time.Now()
			fmt.Fprintf(e.stdout, "%-28s %-9s %-10s %-10s %-20s %-20s %-5s %s\n", "NAME", "KIND", "SCHEDULE", "LAST", "LAST RUN", "LAST SUCCESS", "STALE", "CHECKPOINT")
			for _, c := range conns {
				st, err := connectors.ReadState(ctx, store, c.Name)
				if err != nil {
					return err
				}
				sched := "on demand"
				if _, ok := c.Reader.(connectors.Streamer); ok {
					sched = "stream"
				} else if connectors.PushOnly(c) {
					sched = "push"
				} else if c.Schedule > 0 {
					sched = c.Schedule.String()
				}
				fmt.Fprintf(e.stdout, "%-28s %-9s %-10s %-10s %-20s %-20s %-5v %s\n", c.Name, c.Kind, sched, orDash(st.LastStatus),
					fmtTime(st.LastRunAt), fmtTime(st.LastSuccessAt), connectors.Stale(c.Freshness, st, now), orDash(st.Checkpoint))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "cityhub.yaml", "config file (YAML)")
	addStoreFlags(cmd)
	cmd.Flags().String("connectors", "", "comma-separated connector files (config: connectors)")
	return cmd
}

// newConnectorsRunCmd: cityhub connectors run NAME...
func newConnectorsRunCmd(e *env) *cobra.Command {
	var configFile string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "run NAME...",
		Short: "Run connectors now, one after the other, and record the runs",
		Long: `Run the named connectors of the config's connector files now (in the
order given), through the same runner as the server: journal, checkpoints,
retries, dead letters. Progress goes to stderr. The command fails, naming
the reason, when a run fails.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadServeConfig(cmd, e, configFile)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			log := newLogger(e.stderr, cfg.LogLevel, cfg.LogFormat)
			ont, err := loadOntology(cfg.Ontology)
			if err != nil {
				return err
			}
			conns, err := loadConnectors(cfg, ont)
			if err != nil {
				return err
			}
			byName := map[string]*connectors.Connector{}
			for _, c := range conns {
				byName[c.Name] = c
			}
			var run []*connectors.Connector
			for _, a := range args {
				c, ok := byName[a]
				if !ok {
					return fmt.Errorf("connectors run: unknown connector %q (configured: %s)", a, strings.Join(names(conns), ", "))
				}
				run = append(run, c)
			}
			store, _, err := openStore(ctx, cfg, ont, e.getenv, log, false)
			if err != nil {
				return err
			}
			defer store.Close()
			bar := newProgress(e.stderr, quiet)
			runner, dl, err := newRunner(cfg, log, bar.update, nil)
			if err != nil {
				return err
			}
			defer dl.Close()
			for _, c := range run {
				bar.start(c.Name)
				st, err := runner.RunWith(ctx, c, store, connectors.TriggerManual)
				bar.done()
				fmt.Fprintf(e.stdout, "%s: %s read=%d written=%d rejected=%d skipped=%d attempts=%d duration=%s run=%s\n", c.Name, st.Status(err),
					st.Read, st.Written, st.Rejected, st.Skipped, st.Attempts, st.Duration.Round(time.Millisecond), st.Run)
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "cityhub.yaml", "config file (YAML)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress line on stderr")
	addStoreFlags(cmd)
	cmd.Flags().String("connectors", "", "comma-separated connector files (config: connectors)")
	cmd.Flags().String("log-level", "", "log level: debug, info, warn or error (config: log_level)")
	cmd.Flags().String("log-format", "", "log format: text or json (config: log_format)")
	return cmd
}

func names(conns []*connectors.Connector) []string {
	out := make([]string, len(conns))
	for i, c := range conns {
		out[i] = c.Name
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// progress draws a run's counts on one line of a terminal, at most every
// 200 ms; on other outputs it prints nothing (the log has the batches).
type progress struct {
	w    io.Writer
	on   bool
	name string
	last time.Time
	t0   time.Time
}

func newProgress(w io.Writer, quiet bool) *progress {
	on := false
	if f, ok := w.(*os.File); ok && !quiet {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			on = true
		}
	}
	return &progress{w: w, on: on}
}

func (p *progress) start(name string) { p.name, p.t0, p.last = name, time.Now(), time.Time{} }

func (p *progress) update(st connectors.RunStats) {
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	el := time.Since(p.t0).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(st.Read) / el
	}
	fmt.Fprintf(p.w, "\r%s: %d read, %d written, %d rejected (%.0f records/s) ", p.name, st.Read, st.Written, st.Rejected, rate)
}

func (p *progress) done() {
	if p.on && !p.last.IsZero() {
		fmt.Fprint(p.w, "\n")
	}
}

// loadConnectors loads the configured connector files, in order.
func loadConnectors(cfg Config, ont *ontology.Ontology) ([]*connectors.Connector, error) {
	reg := registry()
	var conns []*connectors.Connector
	for _, f := range cfg.Connectors {
		cs, err := connectors.LoadFile(f, ont, reg)
		if err != nil {
			return nil, err
		}
		conns = append(conns, cs...)
	}
	return conns, nil
}

// newRunner returns the runner of a serving or CLI process: journal on,
// dead letters also appended to data/dead-letters.jsonl. The caller
// closes the returned file.
func newRunner(cfg Config, log *slog.Logger, progress func(connectors.RunStats), finished func(connectors.RunStats, error)) (*connectors.Runner, io.Closer, error) {
	dl, err := connectors.NewFileDeadLetters(filepath.Join(cfg.DataDir, "dead-letters.jsonl"))
	if err != nil {
		return nil, nil, err
	}
	r := connectors.NewRunner(connectors.RunnerConfig{Logger: log.With("component", "connectors"), Now: time.Now,
		DeadLetters: dl, Journal: true, Progress: progress, Finished: finished})
	return r, dl, nil
}
