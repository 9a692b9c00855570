package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
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
	check := &cobra.Command{
		Use:   "check FILE...",
		Short: "Validate connector files against the ontology without running them",
		Long: `Validate connector files: the source configs, the mappings against the
ontology (classes, properties, types, enum values, relations). Every problem
is reported with its file, line and field. Nothing is read from the sources.`,
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
					fmt.Fprintf(e.stdout, "%s:%d: ok: %s (%s, source %s)\n", f, c.Line, c.Name, c.Kind, c.Source)
				}
			}
			return errors.Join(errs...)
		},
	}
	check.Flags().StringVar(&ontFile, "ontology", "", "ontology file (default: the built-in city ontology)")
	kinds := &cobra.Command{
		Use:   "kinds",
		Short: "List the source kinds this binary knows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, k := range registry().Kinds() {
				fmt.Fprintf(e.stdout, "%-10s %s\n", k.Name, k.Summary)
			}
			return nil
		},
	}
	cmd.AddCommand(check, kinds)
	return cmd
}

// runStartupConnectors loads the configured connector files and runs every
// connector once, in file order, dead-lettering rejected records under the
// data directory.
func runStartupConnectors(ctx context.Context, cfg Config, ont *ontology.Ontology, target connectors.Target, log *slog.Logger) error {
	reg := registry()
	var conns []*connectors.Connector
	for _, f := range cfg.Connectors {
		cs, err := connectors.LoadFile(f, ont, reg)
		if err != nil {
			return err
		}
		conns = append(conns, cs...)
	}
	dl, err := connectors.NewFileDeadLetters(filepath.Join(cfg.DataDir, "dead-letters.jsonl"))
	if err != nil {
		return err
	}
	defer dl.Close()
	runner := connectors.NewRunner(connectors.RunnerConfig{Logger: log.With("component", "connectors"), Now: time.Now, DeadLetters: dl})
	start := time.Now()
	stats, err := runner.RunAll(ctx, conns, target)
	var read, written, rejected, changes int
	for _, s := range stats {
		read, written, rejected, changes = read+s.Read, written+s.Written, rejected+s.Rejected, changes+s.Changes
	}
	log.Info("start-up connectors done", "connectors", len(stats), "read", read, "written", written,
		"rejected", rejected, "changes", changes, "duration", time.Since(start).Round(time.Millisecond))
	return err
}
