package connectors

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
)

func TestCheckFreshness(t *testing.T) {
	c, store := journalFixture(t, &seqSource{n: 3}) // freshness 1h
	clock := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	ops := func(ch []graph.Change) []string {
		var out []string
		for _, x := range ch {
			changed := slices.Clone(x.Changed)
			slices.Sort(changed)
			out = append(out, string(x.Op)+" "+x.ID+" "+strings.Join(changed, ","))
		}
		return out
	}
	check := func(now time.Time, want ...string) {
		t.Helper()
		ch, err := CheckFreshness(t.Context(), store, []*Connector{c}, now)
		if err != nil {
			t.Fatal(err)
		}
		if got := ops(ch); !slices.Equal(got, want) {
			t.Errorf("at %s: changes %q, want %q", now.Format(time.TimeOnly), got, want)
		}
	}
	id := SourceID("test-seq")
	stale := func() any { return mustNode(t, store, id).Props["stale"] }

	// never succeeded: stale
	check(clock, "CREATE "+id+" code,name,stale")
	if stale() != true {
		t.Errorf("stale = %v before any run", stale())
	}
	if _, err := journalRunner(&clock).Run(t.Context(), c, store); err != nil {
		t.Fatal(err)
	}
	check(clock, "UPDATE "+id+" lastSuccessAt,stale")
	if stale() != false {
		t.Errorf("stale = %v after a run", stale())
	}
	check(clock.Add(59 * time.Minute)) // still fresh: nothing written
	check(clock.Add(61*time.Minute), "UPDATE "+id+" stale")
	if stale() != true {
		t.Errorf("stale = %v an hour after the run", stale())
	}
	// connectors without a freshness have no health to report
	c.Freshness = 0
	if ch, err := CheckFreshness(t.Context(), store, []*Connector{c}, clock); err != nil || len(ch) != 0 {
		t.Errorf("without freshness: %v, %v", ch, err)
	}
}
