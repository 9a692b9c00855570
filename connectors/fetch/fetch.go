// Package fetch opens what a connector reads, a local file or an HTTP(S)
// resource, with one set of rules for every source kind: context
// cancellation, a bounded error body, and errors classified so that the
// runner retries what may pass (connection refused, timeouts, HTTP 408,
// 429 and 5xx are connectors.Transient) and fails at once on what will not
// (a missing file, HTTP 404).
package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/cityhub/cityhub/connectors"
)

// UserAgent is sent with every request.
const UserAgent = "cityhub-connector/1"

// IsURL reports whether loc is an http or https URL rather than a path.
func IsURL(loc string) bool {
	return strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://")
}

// Request says what to open.
type Request struct {
	// Location is a file path or an http(s) URL.
	Location string
	// Header is sent with HTTP requests (Accept, API keys).
	Header http.Header
	// Client does HTTP requests; nil is http.DefaultClient. Timeouts come
	// from ctx or from the client.
	Client *http.Client
}

// Open returns the body of the file or HTTP resource. The caller closes
// it. HTTP responses other than 2xx are errors naming the URL, the status
// and the first bytes of the body.
func Open(ctx context.Context, r Request) (io.ReadCloser, error) {
	if !IsURL(r.Location) {
		f, err := os.Open(r.Location)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", r.Location, err)
		}
		return f, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Location, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", r.Location, err)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", UserAgent)
	}
	client := r.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it would repeat the method and the URL
		}
		err = fmt.Errorf("GET %s: %w", r.Location, err)
		if ctx.Err() == nil && transientNetErr(err) {
			return nil, connectors.Transient(err)
		}
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	err = &StatusError{URL: r.Location, Status: resp.StatusCode, Body: strings.TrimSpace(string(snippet))}
	if Retryable(resp.StatusCode) {
		return nil, connectors.Transient(err)
	}
	return nil, err
}

// StatusError is an HTTP response other than 2xx.
type StatusError struct {
	URL    string
	Status int
	Body   string // first bytes of the body
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("GET %s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Retryable reports whether an HTTP status may pass on a later try.
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

func transientNetErr(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true // timeouts, refused and reset connections, DNS failures
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// JSON opens r and decodes the whole body as JSON into v. Use it for
// bounded documents (an API page); stream large ones with Open.
func JSON(ctx context.Context, r Request, v any) error {
	body, err := Open(ctx, r)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := json.NewDecoder(body).Decode(v); err != nil {
		err = fmt.Errorf("decode %s: %w", r.Location, err)
		if ctx.Err() == nil && transientNetErr(err) {
			return connectors.Transient(err) // the body broke off
		}
		return err
	}
	return nil
}
