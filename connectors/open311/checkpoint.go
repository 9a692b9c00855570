package open311

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// cursor is the position of a service request in checkpoint order: its
// update time, ties broken by service_request_id (compared as text).
type cursor struct {
	t  time.Time
	id string
}

// String renders the checkpoint: the RFC 3339 time (with the offset the
// server gave), one space, the service_request_id, e.g.
// "2012-05-23T15:55:30-04:00 4fbd40b2b1fe2c4b02000001".
func (c cursor) String() string { return c.t.Format(time.RFC3339Nano) + " " + c.id }

// after reports whether c comes after o.
func (c cursor) after(o cursor) bool {
	if n := c.t.Compare(o.t); n != 0 {
		return n > 0
	}
	return c.id > o.id
}

// parseCheckpoint reads a checkpoint written by cursor.String.
func parseCheckpoint(s string) (cursor, error) {
	ts, id, ok := strings.Cut(s, " ")
	if !ok || id == "" {
		return cursor{}, errors.New(`want "<RFC 3339 time> <service_request_id>"`)
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return cursor{}, fmt.Errorf("time %q is not RFC 3339", ts)
	}
	return cursor{t: t, id: id}, nil
}

// zonedLayouts are the date-time forms GeoReport servers send with an
// offset: RFC 3339 (W3C), with a space for the T, or with -0400 offsets.
// Fractional seconds are accepted by every layout.
var zonedLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02 15:04:05Z0700",
}

// zonelessLayouts are read in the configured timezone.
var zonelessLayouts = []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05"}

// parseTime reads a GeoReport date-time; forms without an offset are in
// loc.
func parseTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range zonedLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	for _, l := range zonelessLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date-time (RFC 3339, e.g. 2012-05-23T15:55:30-04:00)", s)
}
