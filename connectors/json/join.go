package json

import (
	"context"
	"fmt"
	"strconv"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
)

// loadJoin reads the join document into an index (nil without a join).
func (s *Source) loadJoin(ctx context.Context) (map[string]map[string]any, error) {
	j := s.cfg.Join
	if j == nil {
		return nil, nil
	}
	loc := j.location()
	body, err := s.fetch.Open(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("json: join: %w", err)
	}
	defer body.Close()
	index := map[string]map[string]any{}
	o := docOpts{name: loc, what: "json: join", isURL: fetch.IsURL(loc), records: j.Records, maxBytes: s.cfg.MaxRecordBytes}
	_, err = readDoc(ctx, body, o, func(rec connectors.Record) error {
		if rec.Err != nil {
			return fmt.Errorf("json: join %s: %s: %v", loc, rec.Pos.Path, rec.Err)
		}
		k, ok := keyText(rec.Fields[j.Key])
		if !ok {
			return fmt.Errorf("json: join %s: %s: key %q is missing", loc, rec.Pos.Path, j.Key)
		}
		if _, dup := index[k]; dup {
			return fmt.Errorf("json: join %s: %s: duplicate key %q", loc, rec.Pos.Path, k)
		}
		if len(index) >= j.MaxRecords {
			return fmt.Errorf("json: join %s has more than max_records (%d) records", loc, j.MaxRecords)
		}
		index[k] = rec.Fields
		return nil
	})
	if err != nil {
		return nil, err
	}
	return index, nil
}

func keyText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, x != ""
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// join merges the fields of the matching join record into rec.
func join(rec *connectors.Record, j *Join, index map[string]map[string]any) {
	k, ok := keyText(rec.Fields[j.Key])
	other := index[k]
	if !ok || other == nil {
		if j.Required {
			rec.Fields, rec.Err = nil, fmt.Errorf("no record with %s %s in the join file", j.Key, describeKey(rec.Fields[j.Key]))
		}
		return
	}
	for name, v := range other {
		name = j.Prefix + name
		if _, clash := rec.Fields[name]; !clash {
			rec.Fields[name] = v
		}
	}
}

func describeKey(v any) string {
	if s, ok := keyText(v); ok {
		return strconv.Quote(s)
	}
	return "(missing)"
}
