package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFiles checks that broken configuration, ontology and connector
// files stop the binary with an error naming the file, the line and the
// field or element at fault.
func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badLimit := write("limit.yaml", "listen: 127.0.0.1:0\ngraphql:\n  max_first: -3\n")
	badKey := write("key.yaml", "listen: 127.0.0.1:0\nlisen: 127.0.0.1:9\n")
	badStore := write("store.yaml", "store: postgres\n")
	badOntology := write("ontology.yaml", "namespace: x\nclasses:\n  Entity: {abstract: true}\n  Light:\n    parent: Asett\n")
	badMapping := write("connectors.yaml", `connectors:
  - name: lights
    source: test
    kind: csv
    config: {path: lights.csv}
    mapping:
      nodes:
        - class: StreetLight
          key: "{id}"
          properties:
            wattage: "{watts}"
`)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"config value out of range", []string{"serve", "--config", badLimit}, []string{badLimit + ":3: graphql.max_first: must be between 1 and 10000 (got -3)"}},
		{"unknown config key", []string{"serve", "--config", badKey}, []string{badKey, "line 2", "lisen"}},
		{"unknown store", []string{"serve", "--config", badStore}, []string{badStore + ":1: store: unknown store \"postgres\""}},
		{"bad flag value", []string{"serve", "--log-level", "loud", "--data-dir", dir}, []string{`log_level: must be debug, info, warn or error (got "loud")`}},
		{"broken ontology", []string{"ontology", "check", badOntology}, []string{badOntology + ":4: class Light: unknown parent class \"Asett\""}},
		{"serve with broken ontology", []string{"serve", "--ontology", badOntology, "--data-dir", dir}, []string{badOntology + ":4: class Light: unknown parent class"}},
		{"broken mapping", []string{"connectors", "check", badMapping}, []string{badMapping + ":11:", "wattage", "StreetLight"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, tt.args...)
			cmd.Dir = ".."
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("cityhub %s succeeded, want an error\n%s", strings.Join(tt.args, " "), out)
			}
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("exit code = %d, want 1 (a clean error, not a crash)\n%s", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not contain %q:\n%s", w, out)
				}
			}
		})
	}

	t.Run("good files pass their checks", func(t *testing.T) {
		for _, args := range [][]string{
			{"ontology", "check", "ontology/city.yaml"},
			{"connectors", "check", "demo/cambridge/connectors.yaml"},
		} {
			cmd := exec.Command(binary, args...)
			cmd.Dir = ".."
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "ok") {
				t.Errorf("cityhub %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})

	t.Run("serve --help documents every flag", func(t *testing.T) {
		out, err := exec.Command(binary, "serve", "--help").CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		for _, flag := range []string{"--config", "--listen", "--data-dir", "--store", "--ontology", "--connectors", "--load-on-start", "--log-level", "--log-format", "--max-first", "--request-timeout", "CITYHUB_LISTEN"} {
			if !strings.Contains(string(out), flag) {
				t.Errorf("serve --help does not mention %s", flag)
			}
		}
	})
}
