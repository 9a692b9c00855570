package open311

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
)

// client fetches the responses of one configured endpoint or file.
type client struct {
	cfg       Config
	loc       *time.Location // zone of date-times without an offset
	lookupEnv func(string) (string, bool)
	http      *http.Client
}

// target is one response to fetch: the location requested and the one
// shown in messages and record positions (the API key masked).
type target struct {
	loc, display string
}

// isFile reports whether the source reads a saved response on disk.
func (c *client) isFile() bool { return !fetch.IsURL(c.cfg.URL) }

// apiKey returns the key named by api_key_env ("" when none is set or
// the source is a file).
func (c *client) apiKey() (string, error) {
	if c.cfg.APIKeyEnv == "" || c.isFile() {
		return "", nil
	}
	v, ok := c.lookupEnv(c.cfg.APIKeyEnv)
	if !ok || v == "" {
		return "", fmt.Errorf("open311: api_key_env: environment variable %s is not set", c.cfg.APIKeyEnv)
	}
	return v, nil
}

// target returns the location of one response. extra holds the paging and
// checkpoint parameters; key is the API key ("" for none).
func (c *client) target(key string, extra url.Values) (target, error) {
	if c.isFile() {
		return target{loc: c.cfg.URL, display: c.cfg.URL}, nil
	}
	u, err := url.Parse(c.cfg.URL)
	if err != nil {
		return target{}, fmt.Errorf("open311: url %q: %w", c.cfg.URL, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + string(c.cfg.Resource) + "." + string(c.cfg.Format)
	u.RawPath = ""
	q := u.Query()
	for k, v := range c.cfg.Params {
		q.Set(k, v)
	}
	if c.cfg.JurisdictionID != "" {
		q.Set("jurisdiction_id", c.cfg.JurisdictionID)
	}
	for k, vs := range extra {
		q[k] = vs
	}
	show := *u
	if key != "" {
		q.Set("api_key", key)
		sq := url.Values{}
		for k, vs := range q {
			sq[k] = vs
		}
		sq.Set("api_key", "REDACTED")
		show.RawQuery = sq.Encode()
	} else {
		show.RawQuery = q.Encode()
	}
	u.RawQuery = q.Encode()
	return target{loc: u.String(), display: show.String()}, nil
}

// get fetches one response body, bounded by max_response_bytes. When the
// body breaks off it returns the bytes read so far with the error, so the
// records before the break can still be decoded. Errors name the
// location with the API key masked; network failures and HTTP 408, 429 and
// 5xx are connectors.Transient.
func (c *client) get(ctx context.Context, t target, key string) ([]byte, error) {
	accept := "application/json"
	if c.cfg.Format == XML {
		accept = "application/xml, text/xml"
	}
	body, err := fetch.Open(ctx, fetch.Request{Location: t.loc, Header: http.Header{"Accept": {accept}}, Client: c.http})
	if err != nil {
		return nil, mask(fmt.Errorf("open311: %w", err), key)
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		err = fmt.Errorf("open311: read %s after %d bytes: %w", t.display, len(data), err)
		if ctx.Err() == nil && !c.isFile() {
			err = connectors.Transient(err) // the connection broke off
		}
		return data, mask(err, key)
	}
	if int64(len(data)) > c.cfg.MaxResponseBytes {
		return nil, fmt.Errorf("open311: %s: response larger than max_response_bytes (%d)", t.display, c.cfg.MaxResponseBytes)
	}
	return data, nil
}

// pageValues returns the paging parameters of page n (1-based).
func (c *client) pageValues(n int) url.Values {
	if c.isFile() || c.cfg.PageSize == 0 || c.cfg.Resource != Requests {
		return url.Values{}
	}
	return url.Values{"page": {strconv.Itoa(n)}, "page_size": {strconv.Itoa(c.cfg.PageSize)}}
}

// maskedError hides an API key inside the message of the error it wraps.
type maskedError struct {
	err  error
	find string
}

func (e *maskedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.find, "api_key=REDACTED")
}

func (e *maskedError) Unwrap() error { return e.err }

// mask wraps err so that its message shows no API key; errors.Is and
// errors.As (connectors.IsTransient) still see the wrapped chain.
func mask(err error, key string) error {
	if err == nil || key == "" {
		return err
	}
	return &maskedError{err: err, find: "api_key=" + url.QueryEscape(key)}
}
