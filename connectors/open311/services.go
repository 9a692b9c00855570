package open311

import (
	"context"
	"errors"
	"net/url"

	"github.com/cityhub/cityhub/connectors"
)

// servicesSource reads GET services.{format}: one record per service.
type servicesSource struct{ c *client }

var (
	_ connectors.Source  = (*servicesSource)(nil)
	_ connectors.Checker = (*servicesSource)(nil)
)

// Read emits one record per <service> or array element, in document
// order. Its fields are the members as given (service_code, service_name,
// description, metadata, type, keywords, group); an element without a
// service_code, or that is not an object, is an error record. A malformed
// document emits the services before the fault and returns a
// *FormatError.
func (s *servicesSource) Read(ctx context.Context, emit func(connectors.Record) error) error {
	key, err := s.c.apiKey()
	if err != nil {
		return err
	}
	t, err := s.c.target(key, url.Values{})
	if err != nil {
		return err
	}
	data, getErr := s.c.get(ctx, t, key)
	if getErr != nil && data == nil {
		return getErr
	}
	index := 0
	err = decode(data, Services, s.c.cfg.Format, t.display, func(it item) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := connectors.Record{Fields: it.fields, Raw: it.raw, Err: it.err,
			Pos: connectors.Position{File: t.display, Offset: it.off, Index: index, Path: it.path}}
		index++
		if rec.Err == nil {
			if _, ok := idText(rec.Fields["service_code"]); !ok {
				rec.Fields, rec.Err = nil, errors.New("service has no service_code")
			}
		}
		return emit(rec)
	})
	if getErr != nil { // the body broke off: that is the cause
		return getErr
	}
	return err
}

// Check fetches the service list and reports whether it parses.
func (s *servicesSource) Check(ctx context.Context) error {
	key, err := s.c.apiKey()
	if err != nil {
		return err
	}
	t, err := s.c.target(key, url.Values{})
	if err != nil {
		return err
	}
	return check(ctx, s.c, t, key)
}

// check fetches one response and decodes it, ignoring record errors.
func check(ctx context.Context, c *client, t target, key string) error {
	data, err := c.get(ctx, t, key)
	if err != nil {
		return err
	}
	return decode(data, c.cfg.Resource, c.cfg.Format, t.display, func(item) error { return nil })
}
