// Package open311 is the Open311 GeoReport v2 source: the service list
// (GET services.json or services.xml) and the service requests (GET
// requests.json or requests.xml) of a city's 311 endpoint, or a saved
// response on disk.
//
// Service requests are read incrementally: every request record carries a
// checkpoint made of its updated_datetime and service_request_id, records
// come sorted by that pair, and ReadFrom asks the server for what changed
// after the checkpoint (parameter updated_after) and drops, on the client
// side, everything at or before it, so a server that ignores the parameter
// still yields only newer records. Requests are paged with page and
// page_size until an empty or short page, at most max_pages pages.
//
// The package reads responses and turns them into records; the runner maps
// them to ontology nodes (Service, ServiceRequest) with the connector's
// mapping. It opens nothing in New: the HTTP client is built there, the
// requests are made in Read, ReadFrom and Check.
package open311

import (
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
)

//go:embed sample.yaml
var sample []byte

// Resource is the GeoReport v2 resource a connector reads.
type Resource string

// The resources.
const (
	// Services is GET services.{format}: one record per service type.
	Services Resource = "services"
	// Requests is GET requests.{format}: one record per service request.
	Requests Resource = "requests"
)

// Format is the response format asked for.
type Format string

// The formats.
const (
	JSON Format = "json"
	XML  Format = "xml"
)

// Config configures an Open311 source.
type Config struct {
	// URL is the endpoint base, e.g. https://311.example.org/open311/v2
	// (the source appends /services.json or /requests.xml), or the path of
	// a saved response, relative to the connector file (read as is: no
	// query parameters, no paging).
	URL string `yaml:"url"`
	// Resource is services or requests (required).
	Resource Resource `yaml:"resource"`
	// Format is json (default) or xml.
	Format Format `yaml:"format"`
	// JurisdictionID is sent as jurisdiction_id when set.
	JurisdictionID string `yaml:"jurisdiction_id"`
	// APIKey is refused: keys are never written in connector files. Name
	// an environment variable in APIKeyEnv instead.
	APIKey string `yaml:"api_key"`
	// APIKeyEnv names the environment variable holding the API key, sent
	// as api_key and masked in every message.
	APIKeyEnv string `yaml:"api_key_env"`
	// PageSize is the page_size sent with each request page (requests
	// only). 0 turns paging off: one request, no page parameters.
	PageSize int `yaml:"page_size"`
	// MaxPages bounds the pages read in one run (requests only).
	MaxPages int `yaml:"max_pages"`
	// Params are extra query parameters (status, service_code,
	// start_date, ...).
	Params map[string]string `yaml:"params"`
	// Timeout bounds each HTTP request, body included.
	Timeout time.Duration `yaml:"timeout"`
	// UpdatedAfterParam is the query parameter that carries the
	// checkpoint time in incremental reads; "" sends none (cityhub still
	// filters on its side).
	UpdatedAfterParam string `yaml:"updated_after_param"`
	// Timezone is the IANA zone of date-times sent without an offset
	// (some servers send 2010-11-17 01:08:42.793).
	Timezone string `yaml:"timezone"`
	// MaxResponseBytes bounds one response body.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Format:            JSON,
		PageSize:          100,
		MaxPages:          100,
		Timeout:           30 * time.Second,
		UpdatedAfterParam: "updated_after",
		Timezone:          "UTC",
		MaxResponseBytes:  32 << 20,
	}
}

// Kind returns the open311 kind.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:    "open311",
		Summary: "Reads the services or the service requests of an Open311 GeoReport v2 endpoint (JSON or XML), requests incrementally by updated_datetime.",
		Config:  DefaultConfig(),
		New:     New,
		Sample:  sample,
	}
}

// Register adds the open311 kind to r.
func Register(r *connectors.Registry) { r.Register(Kind()) }

// New decodes and validates a config block and returns the source (a
// connectors.Checker; for requests also a connectors.Resumer). It opens
// nothing. The API key is looked up in the process environment when the
// source reads.
func New(raw connectors.RawConfig) (connectors.Source, error) {
	cfg := DefaultConfig()
	if err := raw.Decode(&cfg); err != nil {
		return nil, err
	}
	if errs := validate(&cfg, raw.Errorf); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if !fetch.IsURL(cfg.URL) {
		cfg.URL = raw.ResolvePath(cfg.URL)
	}
	return build(cfg, options{lookupEnv: os.LookupEnv})
}

// Option changes how NewSource builds a source.
type Option func(*options)

type options struct {
	lookupEnv func(string) (string, bool)
}

// WithLookupEnv sets how the variable named by api_key_env is read
// (default os.LookupEnv).
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(o *options) {
		if f != nil {
			o.lookupEnv = f
		}
	}
}

// NewSource validates cfg (filled from DefaultConfig) and returns the
// source, as New does for a connector file; a relative file path in
// cfg.URL is used as is.
func NewSource(cfg Config, opts ...Option) (connectors.Source, error) {
	errf := func(field, format string, args ...any) error {
		return fmt.Errorf("open311: %s: %s", field, fmt.Sprintf(format, args...))
	}
	if errs := validate(&cfg, errf); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	o := options{lookupEnv: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	return build(cfg, o)
}

func build(cfg Config, o options) (connectors.Source, error) {
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil { // validate loaded it already
		return nil, fmt.Errorf("open311: timezone: %w", err)
	}
	c := &client{cfg: cfg, loc: loc, lookupEnv: o.lookupEnv, http: &http.Client{Timeout: cfg.Timeout}}
	if cfg.Resource == Services {
		return &servicesSource{c: c}, nil
	}
	return &requestsSource{c: c}, nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reserved are query parameters the source sets itself, with the config
// field that controls each.
var reserved = map[string]string{
	"api_key":         "api_key_env",
	"jurisdiction_id": "jurisdiction_id",
	"page":            "page_size",
	"page_size":       "page_size",
}

// validate checks cfg, fills derived defaults and returns every problem,
// each made by errf (field, message).
func validate(cfg *Config, errf func(field, format string, args ...any) error) []error {
	var errs []error
	switch {
	case cfg.URL == "":
		errs = append(errs, errf("url", "url is required"))
	case strings.Contains(cfg.URL, "://") && !fetch.IsURL(cfg.URL):
		errs = append(errs, errf("url", "url %q: only http and https URLs or file paths are supported", cfg.URL))
	}
	switch cfg.Resource {
	case Services, Requests:
	case "":
		errs = append(errs, errf("resource", "resource is required (services or requests)"))
	default:
		errs = append(errs, errf("resource", "resource %q: want services or requests", cfg.Resource))
	}
	switch cfg.Format {
	case JSON, XML:
	case "":
		cfg.Format = JSON
	default:
		errs = append(errs, errf("format", "format %q: want json or xml", cfg.Format))
	}
	if cfg.APIKey != "" {
		errs = append(errs, errf("api_key", "API keys are not written in connector files: put the key in an environment variable and name it in api_key_env"))
	}
	if cfg.APIKeyEnv != "" && !envNameRE.MatchString(cfg.APIKeyEnv) {
		errs = append(errs, errf("api_key_env", "%q is not an environment variable name", cfg.APIKeyEnv))
	}
	if cfg.PageSize < 0 {
		errs = append(errs, errf("page_size", "page_size must not be negative (0 turns paging off)"))
	}
	if cfg.MaxPages < 1 {
		errs = append(errs, errf("max_pages", "max_pages must be at least 1"))
	}
	if cfg.Timeout < time.Millisecond {
		errs = append(errs, errf("timeout", "timeout must be a positive duration such as 30s"))
	}
	if cfg.MaxResponseBytes < 1024 {
		errs = append(errs, errf("max_response_bytes", "max_response_bytes must be at least 1024"))
	}
	if cfg.Timezone == "" {
		cfg.Timezone = "UTC"
	}
	if _, err := time.LoadLocation(cfg.Timezone); err != nil {
		errs = append(errs, errf("timezone", "unknown time zone %q", cfg.Timezone))
	}
	for k := range cfg.Params {
		switch {
		case k == "":
			errs = append(errs, errf("params", "empty parameter name"))
		case reserved[k] != "":
			errs = append(errs, errf("params."+k, "%s is set by the source: use %s", k, reserved[k]))
		case cfg.Resource == Requests && k == cfg.UpdatedAfterParam:
			errs = append(errs, errf("params."+k, "%s carries the checkpoint in incremental reads: set updated_after_param to \"\" to send your own", k))
		}
	}
	if cfg.UpdatedAfterParam != "" && reserved[cfg.UpdatedAfterParam] != "" {
		errs = append(errs, errf("updated_after_param", "%s is set by the source", cfg.UpdatedAfterParam))
	}
	return errs
}
