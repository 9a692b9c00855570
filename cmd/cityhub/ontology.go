package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/ontology/gen"
)

func loadOntology(path string) (*ontology.Ontology, error) {
	if path == "" {
		return ontology.Default(), nil
	}
	return ontology.LoadFile(path)
}

func newOntologyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ontology",
		Short: "Export or check the city ontology",
	}
	var file, format, out string
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the ontology as JSON-LD, Turtle or GraphQL SDL",
		Long: `Write the ontology for other tools: --format jsonld (a JSON-LD document
with an @context mapping every term to its IRI), turtle (the same triples in
Turtle) or graphql (the generated GraphQL SDL).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := loadOntology(file)
			if err != nil {
				return err
			}
			var data []byte
			switch format {
			case "jsonld":
				data, err = gen.JSONLD(o)
			case "turtle":
				data, err = gen.Turtle(o)
			case "graphql":
				data = gen.SDL(o)
			default:
				return fmt.Errorf("--format: unknown format %q (jsonld, turtle or graphql)", format)
			}
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = e.stdout.Write(data)
				return err
			}
			return os.WriteFile(out, data, 0o644)
		},
	}
	export.Flags().StringVar(&file, "ontology", "", "ontology file (default: the built-in city ontology)")
	export.Flags().StringVar(&format, "format", "jsonld", "output format: jsonld, turtle or graphql")
	export.Flags().StringVarP(&out, "output", "o", "-", "output file (- for standard output)")

	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate an ontology file; errors name the file, line and element",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := ontology.LoadFile(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s: ok: %d classes (%d concrete), %d enums, %d relations\n",
				args[0], len(o.Classes), len(o.Concrete()), len(o.Enums), len(o.Relations))
			return nil
		},
	}
	cmd.AddCommand(export, check)
	return cmd
}
