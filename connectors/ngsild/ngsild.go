// Package ngsild is the NGSI source: FIWARE Smart Data Models entities in
// NGSI-LD (normalized Property/Relationship/GeoProperty objects, or
// key-values) and NGSI v2 (normalized {type, value, metadata}, or
// keyValues), read from a file or URL holding one entity or an array of
// them, or from a context broker's query API (NGSI-LD
// /ngsi-ld/v1/entities, NGSI v2 /v2/entities) page by page. Each entity
// becomes one record: its attributes flattened to fields (README.md,
// "Flattening rules") and its location as the record geometry.
//
// The source can resume after a checkpoint (the modification time and id
// of the last entity read, see connectors.Resumer) and check that its
// origin answers (connectors.Checker). It parses entities; files and HTTP
// go through the framework's fetcher (connectors/paging over
// connectors/fetch). It knows nothing of the graph or the ontology.
package ngsild

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
	"github.com/cityhub/cityhub/connectors/paging"
)

//go:embed sample.yaml
var sample []byte

// API names the NGSI flavour of the origin.
type API string

// The NGSI APIs.
const (
	APILD API = "ngsi_ld"
	APIV2 API = "ngsi_v2"
)

// ResumeFilter says where ReadFrom drops the entities at or before the
// checkpoint.
type ResumeFilter string

// The resume filters.
const (
	// ResumeClient reads every entity and filters them in the source.
	ResumeClient ResumeFilter = "client"
	// ResumeQuery also asks the broker for entities modified at or after
	// the checkpoint time (NGSI-LD q=modifiedAt>="…", NGSI v2
	// q=dateModified>=…), then filters as ResumeClient.
	ResumeQuery ResumeFilter = "query"
)

// Media types of the Accept header.
const (
	mediaLD   = "application/ld+json"
	mediaJSON = "application/json"
)

// Config configures an NGSI source. Exactly one of Path, HTTP.URL and
// Broker is set.
type Config struct {
	// Path is a file, relative to the connector file, holding one entity
	// or a JSON array of entities.
	Path string `yaml:"path"`
	// HTTP holds url (an http(s) document holding one entity or an array
	// of entities, the alternative to path), and the request settings used
	// with url or broker: headers, api_key_env, api_key_header, timeout.
	HTTP paging.HTTP `yaml:",inline"`
	// Broker is the base URL of a context broker (http://orion:1026);
	// the source adds /ngsi-ld/v1/entities or /v2/entities.
	Broker string `yaml:"broker"`
	// API is ngsi_ld (default) or ngsi_v2.
	API API `yaml:"api"`
	// Format is auto (default: decided per entity), normalized or
	// key_values. Against a broker, key_values asks for key-values
	// (options=keyValues); the others ask for the normalized form.
	Format Format `yaml:"format"`
	// Type is the entity type to read, several separated by commas. A
	// broker filters by it (type=); for a file the source drops the
	// entities of other types. Empty: every type (an NGSI-LD broker then
	// needs q).
	Type string `yaml:"type"`
	// Q is an NGSI query filter sent to the broker as is (q=), joined with
	// the resume filter by ";" (and).
	Q string `yaml:"q"`
	// Context is the NGSI-LD @context URL sent in a Link header, so that
	// the broker expands short type and attribute names with it.
	Context string `yaml:"context"`
	// Accept is the media type asked of a URL or broker:
	// application/ld+json (default for ngsi_ld) or application/json
	// (default, and the only one, for ngsi_v2).
	Accept string `yaml:"accept"`
	// Tenant is sent as NGSILD-Tenant (ngsi_ld) or Fiware-Service
	// (ngsi_v2).
	Tenant string `yaml:"tenant"`
	// ServicePath is sent as Fiware-ServicePath (ngsi_v2 only).
	ServicePath string `yaml:"service_path"`
	// PageSize is the limit of each broker query. Default 100, at most
	// 1000.
	PageSize int `yaml:"page_size"`
	// ResumeFilter is client or query; empty means query for ngsi_v2 and
	// client for ngsi_ld (modifiedAt in q is not standard NGSI-LD).
	ResumeFilter ResumeFilter `yaml:"resume_filter"`
	// MaxEntities bounds the entities of one run (ReadFrom holds them in
	// memory to sort them). Default 100000.
	MaxEntities int `yaml:"max_entities"`
	// MaxEntityBytes bounds one entity. Default 16 MiB.
	MaxEntityBytes int `yaml:"max_entity_bytes"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{API: APILD, Format: FormatAuto, PageSize: 100, MaxEntities: 100_000, MaxEntityBytes: 16 << 20}
}

// Kind returns the ngsi_ld kind.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:    "ngsi_ld",
		Summary: "Reads NGSI-LD and NGSI v2 entities (normalized or key-values) from a file, a URL or a context broker, flattened to one record per entity.",
		Config:  DefaultConfig(),
		New:     New,
		Sample:  sample,
	}
}

// Register adds the ngsi_ld kind to r.
func Register(r *connectors.Registry) { r.Register(Kind()) }

// New decodes and validates a config block. It opens nothing.
func New(raw connectors.RawConfig) (connectors.Source, error) {
	cfg := DefaultConfig()
	if err := raw.Decode(&cfg); err != nil {
		return nil, err
	}
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, raw.Errorf(field, format, args...)) }
	switch {
	case cfg.Path == "" && cfg.HTTP.URL == "" && cfg.Broker == "":
		bad("path", "one of path, url and broker is required")
	case cfg.Broker == "":
		paging.ValidateLocation(bad, "", cfg.Path, cfg.HTTP.URL)
	case cfg.Path != "" || cfg.HTTP.URL != "":
		bad("broker", "give one of path, url and broker")
	}
	cfg.HTTP.Validate(bad, cfg.HTTP.URL != "" || cfg.Broker != "")
	switch cfg.API {
	case APILD, APIV2:
	default:
		bad("api", "api must be ngsi_ld or ngsi_v2, not %q", cfg.API)
	}
	switch cfg.Format {
	case FormatAuto, FormatNormalized, FormatKeyValues:
	default:
		bad("format", "format must be auto, normalized or key_values, not %q", cfg.Format)
	}
	switch cfg.Accept {
	case "":
		cfg.Accept = mediaJSON
		if cfg.API == APILD {
			cfg.Accept = mediaLD
		}
	case mediaLD:
		if cfg.API == APIV2 {
			bad("accept", "NGSI v2 serves application/json only")
		}
	case mediaJSON:
	default:
		bad("accept", "accept must be %s or %s, not %q", mediaLD, mediaJSON, cfg.Accept)
	}
	for _, t := range cfg.types() {
		if t == "" || strings.ContainsAny(t, " \t&?#") {
			bad("type", "type %q: expected entity type names separated by commas", cfg.Type)
			break
		}
	}
	if cfg.Context != "" {
		if cfg.API != APILD {
			bad("context", "context applies to ngsi_ld only")
		} else if !fetch.IsURL(cfg.Context) {
			bad("context", "context must be an http(s) URL")
		}
	}
	if cfg.ServicePath != "" {
		if cfg.API != APIV2 {
			bad("service_path", "service_path applies to ngsi_v2 only")
		} else if !strings.HasPrefix(cfg.ServicePath, "/") {
			bad("service_path", "service_path must start with /")
		}
	}
	if cfg.PageSize < 1 || cfg.PageSize > 1000 {
		bad("page_size", "page_size must be between 1 and 1000")
	}
	switch cfg.ResumeFilter {
	case "", ResumeClient, ResumeQuery:
	default:
		bad("resume_filter", "resume_filter must be client or query, not %q", cfg.ResumeFilter)
	}
	if cfg.MaxEntities < 1 {
		bad("max_entities", "max_entities must be positive")
	}
	if cfg.MaxEntityBytes < 1024 {
		bad("max_entity_bytes", "max_entity_bytes must be at least 1024")
	}
	if cfg.Broker != "" {
		if u, err := url.Parse(cfg.Broker); err != nil || !fetch.IsURL(cfg.Broker) || u.Host == "" || u.RawQuery != "" {
			bad("broker", "broker must be an http(s) base URL without query, e.g. http://orion:1026")
		}
		if cfg.API == APILD && cfg.Type == "" && cfg.Q == "" {
			bad("type", "an NGSI-LD broker query needs type or q")
		}
	} else {
		for _, f := range []struct {
			name string
			set  bool
		}{{"q", cfg.Q != ""}, {"context", cfg.Context != ""}, {"tenant", cfg.Tenant != ""},
			{"service_path", cfg.ServicePath != ""}, {"resume_filter", cfg.ResumeFilter != ""}} {
			if f.set {
				bad(f.name, "%s applies to broker queries only", f.name)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.ResumeFilter == "" {
		cfg.ResumeFilter = ResumeClient
		if cfg.API == APIV2 {
			cfg.ResumeFilter = ResumeQuery
		}
	}
	if cfg.Path != "" {
		cfg.Path = raw.ResolvePath(cfg.Path)
	}
	cfg.Broker = strings.TrimRight(cfg.Broker, "/")
	return newSource(cfg), nil
}

func (c Config) types() []string {
	if c.Type == "" {
		return nil
	}
	ts := strings.Split(c.Type, ",")
	for i := range ts {
		ts[i] = strings.TrimSpace(ts[i])
	}
	return ts
}

// Source reads NGSI entities from a file, a URL or a broker. It is not
// safe for concurrent use; calls may follow each other.
type Source struct {
	cfg   Config
	loc   string // the file or URL; "" for a broker
	types []string
	fetch *paging.Fetcher
}

var (
	_ connectors.Source  = (*Source)(nil)
	_ connectors.Resumer = (*Source)(nil)
	_ connectors.Checker = (*Source)(nil)
)

func newSource(cfg Config) *Source {
	// the NGSI headers go with the configured ones (which win)
	h := cfg.HTTP
	h.Headers = map[string]string{"Accept": cfg.Accept}
	if cfg.Broker != "" {
		switch cfg.API {
		case APILD:
			if cfg.Context != "" {
				h.Headers["Link"] = "<" + cfg.Context + `>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`
			}
			if cfg.Tenant != "" {
				h.Headers["NGSILD-Tenant"] = cfg.Tenant
			}
		case APIV2:
			if cfg.Tenant != "" {
				h.Headers["Fiware-Service"] = cfg.Tenant
			}
			if cfg.ServicePath != "" {
				h.Headers["Fiware-ServicePath"] = cfg.ServicePath
			}
		}
	}
	for k, v := range cfg.HTTP.Headers {
		for old := range h.Headers {
			if strings.EqualFold(old, k) {
				delete(h.Headers, old)
			}
		}
		h.Headers[k] = v
	}
	loc := cfg.Path
	if cfg.HTTP.URL != "" {
		loc = cfg.HTTP.URL
	}
	return &Source{cfg: cfg, loc: loc, types: cfg.types(), fetch: paging.NewFetcher(h, cfg.HTTP.URL, cfg.Broker)}
}

// Read implements connectors.Source: the entities in origin order (page
// after page for a broker), without checkpoints.
func (s *Source) Read(ctx context.Context, emit func(connectors.Record) error) error {
	return s.each(ctx, position{}, func(e entity) error { return emit(e.rec) })
}

// ReadFrom implements connectors.Resumer. It reads every entity (at most
// max_entities) and emits first, in origin order, those it cannot place in
// time (no modification time, or no id: they are read on every run and
// carry the incoming checkpoint), then the entities after the checkpoint
// sorted by (modification time, id), each carrying its own checkpoint.
func (s *Source) ReadFrom(ctx context.Context, checkpoint string, emit func(connectors.Record) error) error {
	after, err := parseCheckpoint(checkpoint)
	if err != nil {
		return fmt.Errorf("ngsild: %w", err)
	}
	var placed []entity
	err = s.each(ctx, after, func(e entity) error {
		switch {
		case !e.placed:
			e.rec.Checkpoint = checkpoint
			return emit(e.rec)
		case checkpoint != "" && e.key.compare(after) <= 0:
			return nil
		}
		placed = append(placed, e)
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(placed, func(a, b entity) int { return a.key.compare(b.key) })
	for _, e := range placed {
		if err := ctx.Err(); err != nil {
			return err
		}
		e.rec.Checkpoint = e.key.String()
		if err := emit(e.rec); err != nil {
			return err
		}
	}
	return nil
}

// Check implements connectors.Checker: it opens the file or URL, or asks
// the broker for one entity, and flattens the first entity found.
func (s *Source) Check(ctx context.Context) error {
	errStop := errors.New("stop")
	var first error
	each := func(raw []byte, pos connectors.Position) error {
		if e := s.entity(raw, pos, false); e.rec.Err != nil {
			first = fmt.Errorf("ngsild: check %s: %s: %w", pos.File, pos, e.rec.Err)
		}
		return errStop
	}
	var err error
	if s.cfg.Broker != "" {
		_, _, err = s.page(ctx, s.pageURL(0, 1, position{}), 0, each)
	} else {
		err = s.file(ctx, each)
	}
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	return first
}

// entity is one entity read, as a record, with its place in the resume
// order when it has an id and a modification time.
type entity struct {
	rec    connectors.Record
	key    position
	placed bool
}

// each reads the origin and calls fn per entity that passes the type
// filter; more than max_entities entities end the read with an error.
// since is the checkpoint, for the broker's resume query.
func (s *Source) each(ctx context.Context, since position, fn func(entity) error) error {
	read := 0
	each := func(raw []byte, pos connectors.Position) error {
		if read++; read > s.cfg.MaxEntities {
			origin := s.loc
			if origin == "" {
				origin = s.cfg.Broker
			}
			return fmt.Errorf("ngsild: %s: more than max_entities (%d) entities", origin, s.cfg.MaxEntities)
		}
		e := s.entity(raw, pos, s.cfg.Broker == "")
		if e.rec.Fields == nil && e.rec.Err == nil {
			return nil // another type
		}
		return fn(e)
	}
	if s.cfg.Broker == "" {
		return s.file(ctx, each)
	}
	offset := 0
	for {
		n, total, err := s.page(ctx, s.pageURL(offset, s.cfg.PageSize, since), offset, each)
		if err != nil {
			return err
		}
		offset += n
		// a short page ends the read, as does reaching the count the
		// broker announced
		if n < s.cfg.PageSize || (total >= 0 && offset >= total) {
			return nil
		}
	}
}

// entity turns an entity's bytes into a record. With filter, an entity of
// another type comes back with neither Fields nor Err.
func (s *Source) entity(raw []byte, pos connectors.Position, filter bool) entity {
	e := entity{rec: connectors.Record{Raw: raw, Pos: pos}}
	m, err := decodeObject(raw)
	if err != nil {
		e.rec.Err = err
		return e
	}
	if filter && s.types != nil {
		if _, err := entityType(m["type"]); err == nil && !typeMatches(m["type"], s.types) {
			return e // another type; an entity without a valid type stays, as an error
		}
	}
	if id, mod := entityID(m), modTime(m); id != "" && !mod.IsZero() {
		e.key, e.placed = position{mod: mod, id: id}, true
	}
	e.rec.Fields, e.rec.Geometry, e.rec.Err = flatten(m, s.cfg.Format)
	return e
}

// typeMatches reports whether an entity type (a name, an IRI or a list of
// them) is one of names; an IRI matches by its last segment.
func typeMatches(t any, names []string) bool {
	match := func(s string) bool {
		for _, n := range names {
			if s == n || strings.HasSuffix(s, "/"+n) || strings.HasSuffix(s, "#"+n) {
				return true
			}
		}
		return false
	}
	switch x := t.(type) {
	case string:
		return match(x)
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && match(s) {
				return true
			}
		}
	}
	return false
}

// file reads the file or URL.
func (s *Source) file(ctx context.Context, each func([]byte, connectors.Position) error) error {
	body, err := s.fetch.Open(ctx, s.loc)
	if err != nil {
		return fmt.Errorf("ngsild: %w", err)
	}
	defer body.Close()
	_, err = readDocument(ctx, body, s.loc, s.cfg.MaxEntityBytes, false, 0, each)
	return s.wrap(ctx, err)
}

// page reads one page of a broker query; first is the index of its first
// entity in the whole result. total is the count the broker announced
// (NGSILD-Results-Count, Fiware-Total-Count), -1 when it did not.
func (s *Source) page(ctx context.Context, u string, first int, each func([]byte, connectors.Position) error) (n, total int, err error) {
	body, err := s.fetch.Open(ctx, u)
	if err != nil {
		return 0, -1, fmt.Errorf("ngsild: %w", err)
	}
	defer body.Close()
	total = -1
	for _, h := range []string{"NGSILD-Results-Count", "Fiware-Total-Count"} {
		if c, err := strconv.Atoi(body.Header.Get(h)); err == nil && c >= 0 {
			total = c
		}
	}
	n, err = readDocument(ctx, body, u, s.cfg.MaxEntityBytes, true, first, each)
	return n, total, s.wrap(ctx, err)
}

// wrap prefixes document errors; a body cut short by the network is
// transient. Errors of emit and of ctx pass unchanged.
func (s *Source) wrap(ctx context.Context, err error) error {
	var de *docError
	if err == nil || !errors.As(err, &de) {
		return err
	}
	err = fmt.Errorf("ngsild: %w", err)
	var ne net.Error
	if ctx.Err() == nil && fetch.IsURL(de.loc) && (errors.Is(de.err, io.ErrUnexpectedEOF) || errors.As(de.err, &ne)) {
		return connectors.Transient(err)
	}
	return err
}

// pageURL builds the query for entities [offset, offset+limit).
func (s *Source) pageURL(offset, limit int, since position) string {
	q := url.Values{}
	if s.cfg.Type != "" {
		q.Set("type", strings.Join(s.types, ","))
	}
	q.Set("limit", strconv.Itoa(limit))
	q.Set("offset", strconv.Itoa(offset))
	var opts []string
	var filter []string
	if s.cfg.Q != "" {
		filter = append(filter, s.cfg.Q)
	}
	resume := s.cfg.ResumeFilter == ResumeQuery && !since.mod.IsZero()
	t := since.mod.UTC().Format(time.RFC3339Nano)
	var path string
	switch s.cfg.API {
	case APIV2:
		path = "/v2/entities"
		opts = append(opts, "count")
		q.Set("attrs", "dateCreated,dateModified,*")
		if resume {
			filter = append(filter, "dateModified>="+t)
		}
	default:
		path = "/ngsi-ld/v1/entities"
		q.Set("count", "true")
		opts = append(opts, "sysAttrs")
		if resume {
			filter = append(filter, `modifiedAt>="`+t+`"`)
		}
	}
	if s.cfg.Format == FormatKeyValues {
		opts = append(opts, "keyValues")
	}
	q.Set("options", strings.Join(opts, ","))
	if len(filter) > 0 {
		q.Set("q", strings.Join(filter, ";"))
	}
	return s.cfg.Broker + path + "?" + q.Encode()
}
