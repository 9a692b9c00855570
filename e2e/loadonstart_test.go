package e2e

import (
	"strings"
	"testing"
)

// load_on_start: if-empty runs the start-up connectors into a fresh data
// directory and skips them once every connector has loaded it.
func TestLoadOnStartIfEmpty(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--connectors", "e2e/federation/connectors.yaml", "--load-on-start", "if-empty"}
	first := MustStart(t, dir, args...)
	r := first.MustQuery(t, `{ neighbourhoods(first: 0) { totalCount } }`, nil)
	if n, _ := at(r.Data, "neighbourhoods", "totalCount").(float64); n != 13 {
		t.Fatalf("first start loaded %v neighbourhoods, want 13: %s", n, r.Raw)
	}
	first.Stop(t)
	second := MustStart(t, dir, args...)
	r = second.MustQuery(t, `{ ingestRuns(first: 0) { totalCount } }`, nil)
	runs, _ := at(r.Data, "ingestRuns", "totalCount").(float64)
	if !strings.Contains(second.Log(), "start-up connectors skipped") {
		t.Errorf("second start did not skip its connectors (%v runs):\n%s", runs, second.Log())
	}
	if runs != 2 { // the first start's two connectors, nothing more
		t.Errorf("%v ingest runs after two starts, want 2", runs)
	}
}
