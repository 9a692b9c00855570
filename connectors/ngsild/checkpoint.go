package ngsild

import (
	"cmp"
	"fmt"
	"strings"
	"time"
)

// position is where an entity sits in the resume order: its modification
// time and its id.
type position struct {
	mod time.Time
	id  string
}

func (p position) compare(o position) int {
	if c := p.mod.Compare(o.mod); c != 0 {
		return c
	}
	return cmp.Compare(p.id, o.id)
}

// String renders the checkpoint: "<modifiedAt RFC 3339 UTC>|<id>".
func (p position) String() string {
	return p.mod.UTC().Format(time.RFC3339Nano) + "|" + p.id
}

// parseCheckpoint reads a checkpoint written by position.String; "" is the
// start.
func parseCheckpoint(s string) (position, error) {
	if s == "" {
		return position{}, nil
	}
	ts, id, ok := strings.Cut(s, "|")
	if !ok || id == "" {
		return position{}, fmt.Errorf("checkpoint %q is not <modifiedAt>|<id>", s)
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return position{}, fmt.Errorf("checkpoint %q: bad time: %w", s, err)
	}
	if t.IsZero() {
		return position{}, fmt.Errorf("checkpoint %q: zero time", s)
	}
	return position{mod: t.UTC(), id: id}, nil
}

// Layouts of modification times: RFC 3339, and the zoneless form FIWARE
// examples use (read as UTC).
var modLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05"}

// modTime returns the entity's modification time: the NGSI-LD system
// attribute modifiedAt, else the dateModified attribute (either form).
// Zero when neither is present or parses.
func modTime(entity map[string]any) time.Time {
	dm := entity["dateModified"]
	if m, ok := dm.(map[string]any); ok {
		dm = m["value"]
	}
	for _, v := range []any{entity["modifiedAt"], unwrapValue(dm)} {
		s, ok := v.(string)
		if !ok {
			continue
		}
		for _, l := range modLayouts {
			if t, err := time.Parse(l, strings.TrimSpace(s)); err == nil && !t.IsZero() {
				return t.UTC()
			}
		}
	}
	return time.Time{}
}
