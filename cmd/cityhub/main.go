// Command cityhub is the city data fabric's single binary: `serve` runs the
// GraphQL API over the knowledge graph and loads connectors; `ontology`
// exports and checks the city ontology; `connectors` validates connector
// files.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd(os.Stdout, os.Stderr, os.Getenv).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cityhub:", err)
		os.Exit(1)
	}
}

// env is how commands read the environment (injected for tests).
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

func newRootCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	root := &cobra.Command{
		Use:           "cityhub",
		Short:         "cityhub: a city data fabric with one GraphQL API over a city knowledge graph",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd(e), newMigrateCmd(e), newOntologyCmd(e), newConnectorsCmd(e))
	return root
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
