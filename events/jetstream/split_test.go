package jetstream

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cityhub/cityhub/events"
	"github.com/cityhub/cityhub/graph"
)

func TestSplit(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var b events.Batch
	b.Deleted = map[string]*graph.Node{}
	for i := range 40 {
		id := fmt.Sprintf("sl-%02d", i)
		op := graph.OpCreate
		if i%4 == 0 {
			op = graph.OpDelete
			b.Deleted[id] = &graph.Node{ID: id, Class: "StreetLight", Props: map[string]any{"poleNumber": strings.Repeat("x", 50)}}
		}
		b.Changes = append(b.Changes, graph.Change{Seq: uint64(100 + i), Op: op, ID: id, Class: "StreetLight", At: at})
	}
	b.Deleted["stray"] = &graph.Node{ID: "stray", Class: "StreetLight"} // no change names it
	whole, err := EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}

	for _, limit := range []int{len(whole), len(whole) - 1, 2000, 600} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			parts, err := split(b, limit)
			if err != nil {
				t.Fatal(err)
			}
			if limit >= len(whole) && len(parts) != 1 {
				t.Errorf("%d parts under a limit the whole batch fits", len(parts))
			}
			if limit < len(whole) && len(parts) < 2 {
				t.Errorf("%d part over a limit the batch does not fit", len(parts))
			}
			var changes []graph.Change
			deleted := map[string]*graph.Node{}
			for i, p := range parts {
				if len(p.data) > limit {
					t.Errorf("part %d has %d bytes, over %d", i, len(p.data), limit)
				}
				got, err := DecodeBatch(p.data)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.EqualFunc(got.Changes, p.changes, func(a, b graph.Change) bool { return a.Seq == b.Seq }) {
					t.Errorf("part %d carries other changes than it says", i)
				}
				for _, c := range got.Changes {
					if c.Op == graph.OpDelete && got.Deleted[c.ID] == nil {
						t.Errorf("part %d: deletion of %s without its state before", i, c.ID)
					}
				}
				changes = append(changes, got.Changes...)
				for id, n := range got.Deleted {
					if deleted[id] != nil {
						t.Errorf("state of %s in two parts", id)
					}
					deleted[id] = n
				}
			}
			if d := cmp.Diff(b, events.Batch{Changes: changes, Deleted: deleted}, exact); d != "" {
				t.Errorf("parts put together (-want +got):\n%s", d)
			}
		})
	}
	if _, err := split(b, 100); err == nil || !strings.Contains(err.Error(), "more than a message can carry") {
		t.Errorf("a change larger than the limit: %v", err)
	}
}

func TestUnseen(t *testing.T) {
	n := &graph.Node{ID: "b", Class: "StreetLight"}
	m := &graph.Node{ID: "c", Class: "StreetLight"}
	b := events.Batch{
		Changes: []graph.Change{{Seq: 5, Op: graph.OpDelete, ID: "a"}, {Seq: 6, Op: graph.OpDelete, ID: "b"}, {Seq: 7, Op: graph.OpDelete, ID: "c"}},
		Deleted: map[string]*graph.Node{"a": {ID: "a"}, "b": n, "c": m},
	}
	tests := []struct {
		last uint64
		want events.Batch
	}{
		{4, b},
		{5, events.Batch{Changes: b.Changes[1:], Deleted: map[string]*graph.Node{"b": n, "c": m}}},
		{6, events.Batch{Changes: b.Changes[2:], Deleted: map[string]*graph.Node{"c": m}}},
		{7, events.Batch{Changes: []graph.Change{}}},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.want, unseen(b, tt.last)); d != "" {
			t.Errorf("unseen(after %d) (-want +got):\n%s", tt.last, d)
		}
	}
}
