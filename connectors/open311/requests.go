package open311

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cityhub/cityhub/connectors"
)

// requestsSource reads GET requests.{format}: one record per service
// request, incrementally by updated_datetime.
type requestsSource struct{ c *client }

var (
	_ connectors.Source  = (*requestsSource)(nil)
	_ connectors.Checker = (*requestsSource)(nil)
	_ connectors.Resumer = (*requestsSource)(nil)
)

// Read reads every request the endpoint returns: ReadFrom(ctx, "", emit).
func (s *requestsSource) Read(ctx context.Context, emit func(connectors.Record) error) error {
	return s.ReadFrom(ctx, "", emit)
}

// ReadFrom reads the requests updated after checkpoint ("" for all).
//
// It fetches every page first (page 1, 2, … with page_size, until an empty
// or short page, a page of requests already seen, or max_pages), sending
// the checkpoint time less one second as updated_after_param, then emits:
// first the elements that are not usable requests (not an object, no
// service_request_id, no parseable updated_datetime or requested_datetime)
// as error records, then the requests after the checkpoint sorted by
// (update time, service_request_id), each with the checkpoint that
// resumes after it. A request listed on several pages is emitted once, in
// its latest version.
//
// When the read breaks (a page fails, the document is malformed,
// max_pages is reached on a full page) the requests read before the break
// are still emitted, but with the incoming checkpoint, so that the
// requests not seen are not skipped on the next run; then the error is
// returned (connectors.Transient for network failures and HTTP 408, 429,
// 5xx; a *FormatError for a malformed document).
func (s *requestsSource) ReadFrom(ctx context.Context, checkpoint string, emit func(connectors.Record) error) error {
	set := &requestSet{loc: s.c.loc, byID: map[string]int{}}
	if checkpoint != "" {
		c, err := parseCheckpoint(checkpoint)
		if err != nil {
			return fmt.Errorf("open311: checkpoint %q: %w", checkpoint, err)
		}
		set.since = &c
	}
	key, err := s.c.apiKey()
	if err != nil {
		return err
	}
	readErr := s.readPages(ctx, key, set)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := set.emit(checkpoint, readErr == nil, emit); err != nil {
		return err
	}
	return readErr
}

// Check fetches the first page of requests and reports whether it parses.
func (s *requestsSource) Check(ctx context.Context) error {
	key, err := s.c.apiKey()
	if err != nil {
		return err
	}
	t, err := s.c.target(key, s.c.pageValues(1))
	if err != nil {
		return err
	}
	return check(ctx, s.c, t, key)
}

// readPages fetches and decodes the pages into set.
func (s *requestsSource) readPages(ctx context.Context, key string, set *requestSet) error {
	cfg := s.c.cfg
	for page := 1; ; page++ {
		q := s.c.pageValues(page)
		if set.since != nil && cfg.UpdatedAfterParam != "" {
			// a second early, so that a server reading the parameter as
			// strictly after still returns the requests tied with the
			// checkpoint; the rest of the overlap is filtered out here
			q.Set(cfg.UpdatedAfterParam, set.since.t.Add(-time.Second).Format(time.RFC3339))
		}
		t, err := s.c.target(key, q)
		if err != nil {
			return err
		}
		data, getErr := s.c.get(ctx, t, key)
		if getErr != nil && data == nil {
			return getErr
		}
		n, fresh := 0, 0
		decErr := decode(data, Requests, cfg.Format, t.display, func(it item) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			n++
			if set.add(it, t.display) {
				fresh++
			}
			return nil
		})
		switch {
		case getErr != nil: // the body broke off: that is the cause
			return getErr
		case decErr != nil:
			return decErr
		case s.c.isFile() || cfg.PageSize == 0 || n < cfg.PageSize:
			return nil // one response, or a short (or empty) page: the last
		case fresh == 0:
			return nil // the server ignores page and sent the same requests again
		case page >= cfg.MaxPages:
			return fmt.Errorf("open311: %s: max_pages (%d) reached and the last page was full: more requests remain (raise max_pages, or narrow the query with params such as start_date)", t.display, cfg.MaxPages)
		}
	}
}

// requestSet collects the requests of one read.
type requestSet struct {
	loc   *time.Location
	since *cursor
	good  []request
	bad   []connectors.Record
	byID  map[string]int // service_request_id → index in good, or -1 when bad
	index int            // elements seen
}

type request struct {
	cur cursor
	rec connectors.Record
}

// add files one element; it reports whether the element is a request not
// seen before in this read.
func (set *requestSet) add(it item, location string) bool {
	rec := connectors.Record{Fields: it.fields, Raw: it.raw, Err: it.err,
		Pos: connectors.Position{File: location, Offset: it.off, Index: set.index, Path: it.path}}
	set.index++
	if rec.Err != nil {
		set.bad = append(set.bad, rec)
		return false
	}
	id, ok := idText(rec.Fields["service_request_id"])
	if !ok {
		rec.Err = errors.New("request has no service_request_id")
		if tok, ok := idText(rec.Fields["token"]); ok {
			rec.Err = fmt.Errorf("request has no service_request_id yet (token %s): the server has not accepted it", tok)
		}
		rec.Fields = nil
		set.bad = append(set.bad, rec)
		return false
	}
	prev, seen := set.byID[id]
	t, err := requestTime(rec.Fields, set.loc)
	if err != nil {
		if !seen {
			rec.Fields, rec.Err = nil, fmt.Errorf("service request %s: %w", id, err)
			set.bad = append(set.bad, rec)
			set.byID[id] = -1
		}
		return !seen
	}
	r := request{cur: cursor{t: t, id: id}, rec: rec}
	switch {
	case !seen:
		set.byID[id] = len(set.good)
		set.good = append(set.good, r)
	case prev >= 0 && !set.good[prev].cur.t.After(t):
		set.good[prev] = r // the later version of a request on two pages
	}
	return !seen
}

// emit sends the error records, then the requests after since in
// checkpoint order. Records carry their own checkpoint when advance is
// set, otherwise prev.
func (set *requestSet) emit(prev string, advance bool, emit func(connectors.Record) error) error {
	for _, rec := range set.bad {
		rec.Checkpoint = prev
		if err := emit(rec); err != nil {
			return err
		}
	}
	slices.SortFunc(set.good, func(a, b request) int {
		if n := a.cur.t.Compare(b.cur.t); n != 0 {
			return n
		}
		return strings.Compare(a.cur.id, b.cur.id)
	})
	for _, r := range set.good {
		if set.since != nil && !r.cur.after(*set.since) {
			continue
		}
		r.rec.Checkpoint = prev
		if advance {
			r.rec.Checkpoint = r.cur.String()
		}
		if err := emit(r.rec); err != nil {
			return err
		}
	}
	return nil
}

// requestTime returns the time a request sorts by: updated_datetime, or
// requested_datetime for requests never updated.
func requestTime(fields map[string]any, loc *time.Location) (time.Time, error) {
	for _, name := range []string{"updated_datetime", "requested_datetime"} {
		v := fields[name]
		s, isText := v.(string)
		if v == nil || (isText && strings.TrimSpace(s) == "") {
			continue
		}
		if !isText {
			return time.Time{}, fmt.Errorf("%s: %v is not a date-time", name, v)
		}
		t, err := parseTime(s, loc)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", name, err)
		}
		return t, nil
	}
	return time.Time{}, errors.New("neither updated_datetime nor requested_datetime is set")
}

// idText returns an identifier field as text.
func idText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		x = strings.TrimSpace(x)
		return x, x != ""
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}
