package residents

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/ontology"
)

// Config is the desk's configuration: the service list residents choose
// from (Open311 GeoReport v2 "services") and how reports are placed in
// the city. Load it from YAML with LoadServices or ParseServices; see
// README.md for the file format.
type Config struct {
	// File is where the list was loaded from ("" when built in code); it
	// prefixes validation messages.
	File string
	// Source is the source code in node URNs and provenance. Default
	// "residents".
	Source string
	// Connector names the desk in provenance (Provenance.Connector).
	// Default "residents-desk".
	Connector string
	// AreaClass is the class of the polygons a request is LOCATED_IN (the
	// smallest one containing its point). Default "Neighbourhood".
	AreaClass string
	// CityClass is the class whose polygons bound the city: a report
	// outside all of them is refused. Default "City".
	CityClass string
	// CityID, when set, restricts the boundary to that one node of
	// CityClass (a graph that holds several cities).
	CityID string
	// MaxDescription bounds a report's description and a transition's
	// reason, in characters. Default 4000 (Open311 GeoReport v2).
	MaxDescription int
	// MaxMediaURLs bounds the media URLs of one report. Default 5.
	MaxMediaURLs int
	// AreaRefresh is how long the desk keeps the area and city polygons it
	// read before reading them again; 0 reads them for every report.
	// Default 10m.
	AreaRefresh time.Duration
	// Services is the service list, in file order.
	Services []Service
}

// Service is one request type of the service list.
type Service struct {
	Code        string   // Open311 service_code, unique
	Name        string   // Open311 service_name
	Group       string   // Open311 group, optional
	Description string   // Open311 description, optional
	Keywords    []string // Open311 keywords, optional
	// Domain is the ServiceDomain the requests are filed under (their
	// category); "" leaves category unset.
	Domain string
	// SLAHours is the target resolution time; 0 for none. Requests get
	// slaDueAt = reportedAt + SLAHours.
	SLAHours float64
	// Asset, when set, links each request to the nearest asset of a class
	// (AFFECTS).
	Asset *AssetRule
	// Line is the line of the service in its file (0 when built in code).
	Line int
}

// AssetRule says which asset a request of a service affects: the nearest
// node of Class whose point lies within Within metres of the report.
type AssetRule struct {
	Class  string
	Within float64 // metres, > 0 and at most MaxAssetDistance
	// Impact is the Impact value of the AFFECTS edge ("" for none).
	Impact string
}

// Limits of the service list.
const (
	// MaxAssetDistance bounds AssetRule.Within, in metres.
	MaxAssetDistance = 5000.0
	// DefaultAssetDistance is AssetRule.Within when the file gives none.
	DefaultAssetDistance = 50.0
	maxServices          = 1000
	maxKeywords          = 50
	maxNameLen           = 200
	maxServiceDescLen    = 2000
	maxKeywordLen        = 100
	maxDescriptionLimit  = 100000
	maxMediaLimit        = 50
)

var (
	serviceCodeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	sourceCodeRE  = regexp.MustCompile(`^[a-z0-9-]{2,32}$`)
	connectorRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// DefaultConfig returns the defaults, with no services.
func DefaultConfig() Config {
	return Config{
		Source:         "residents",
		Connector:      "residents-desk",
		AreaClass:      "Neighbourhood",
		CityClass:      "City",
		MaxDescription: 4000,
		MaxMediaURLs:   5,
		AreaRefresh:    10 * time.Minute,
	}
}

// Service returns the service with the code, or nil.
func (c *Config) Service(code string) *Service {
	for i := range c.Services {
		if c.Services[i].Code == code {
			return &c.Services[i]
		}
	}
	return nil
}

// Validate checks the configuration against the ontology. Every problem
// is returned, joined; each is a *ConfigError (errors.Is(err, ErrConfig))
// naming the field path.
func (c *Config) Validate(ont *ontology.Ontology) error {
	errs := c.validate(ont)
	out := make([]error, len(errs))
	for i, e := range errs {
		e.File = c.File
		out[i] = e
	}
	return errors.Join(out...)
}

// validate returns the problems with their field paths (no lines).
func (c *Config) validate(ont *ontology.Ontology) []*ConfigError {
	var errs []*ConfigError
	bad := func(path, format string, args ...any) {
		errs = append(errs, &ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if ont == nil {
		bad("", "no ontology to validate against")
		return errs
	}
	if !sourceCodeRE.MatchString(c.Source) {
		bad("source", "source code %q must match [a-z0-9-]{2,32}", c.Source)
	}
	if !connectorRE.MatchString(c.Connector) {
		bad("connector", "connector name %q must be lower case letters, digits, - and _ (at most 64)", c.Connector)
	}
	checkArea := func(path, class string) {
		cl := ont.Class(class)
		switch {
		case class == "":
			bad(path, "a class is required")
		case cl == nil:
			bad(path, "unknown class %q", class)
		case cl.Geometry != ontology.GeometryPolygon:
			bad(path, "class %s has no polygon geometry", class)
		default:
			if rel := ont.Relation("LOCATED_IN"); rel != nil && rel.To != nil && !cl.IsA(rel.To) {
				bad(path, "class %s cannot be the target of LOCATED_IN (%s)", class, rel.To.Name)
			}
		}
	}
	checkArea("area_class", c.AreaClass)
	checkArea("city_class", c.CityClass)
	if c.MaxDescription < 1 || c.MaxDescription > maxDescriptionLimit {
		bad("max_description", "must be between 1 and %d", maxDescriptionLimit)
	}
	if c.MaxMediaURLs < 0 || c.MaxMediaURLs > maxMediaLimit {
		bad("max_media_urls", "must be between 0 and %d", maxMediaLimit)
	}
	if c.AreaRefresh < 0 {
		bad("area_refresh", "must not be negative")
	}
	if len(c.Services) == 0 {
		bad("services", "no services declared")
	}
	if len(c.Services) > maxServices {
		bad("services", "at most %d services", maxServices)
	}
	codes := map[string]int{}
	for i := range c.Services {
		s := &c.Services[i]
		p := fmt.Sprintf("services[%d]", i)
		if !serviceCodeRE.MatchString(s.Code) {
			bad(p+".code", "service code %q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", s.Code)
		} else if prev, dup := codes[s.Code]; dup {
			bad(p+".code", "duplicate service code %q (first at services[%d])", s.Code, prev)
		} else {
			codes[s.Code] = i
		}
		checkText(bad, p+".name", s.Name, maxNameLen, true)
		checkText(bad, p+".group", s.Group, maxNameLen, false)
		checkText(bad, p+".description", s.Description, maxServiceDescLen, false)
		if len(s.Keywords) > maxKeywords {
			bad(p+".keywords", "at most %d keywords", maxKeywords)
		}
		for j, k := range s.Keywords {
			checkText(bad, fmt.Sprintf("%s.keywords[%d]", p, j), k, maxKeywordLen, true)
		}
		if s.Domain != "" {
			checkEnum(bad, ont, p+".domain", "ServiceDomain", s.Domain)
		}
		if s.SLAHours < 0 || s.SLAHours > 24*366 || s.SLAHours != s.SLAHours {
			bad(p+".sla_hours", "must be between 0 and %d hours", 24*366)
		}
		if a := s.Asset; a != nil {
			cl := ont.Class(a.Class)
			switch {
			case a.Class == "":
				bad(p+".asset.class", "a class is required")
			case cl == nil:
				bad(p+".asset.class", "unknown class %q", a.Class)
			case !cl.Located():
				bad(p+".asset.class", "class %s has no geometry to measure a distance to", a.Class)
			default:
				if rel := ont.Relation("AFFECTS"); rel != nil && rel.To != nil && !cl.IsA(rel.To) {
					bad(p+".asset.class", "class %s cannot be the target of AFFECTS (%s)", a.Class, rel.To.Name)
				}
			}
			if !(a.Within > 0 && a.Within <= MaxAssetDistance) {
				bad(p+".asset.within", "distance must be above 0 and at most %gm", MaxAssetDistance)
			}
			if a.Impact != "" {
				checkEnum(bad, ont, p+".asset.impact", "Impact", a.Impact)
			}
		}
	}
	return errs
}

func checkText(bad func(string, string, ...any), path, s string, max int, required bool) {
	switch {
	case required && strings.TrimSpace(s) == "":
		bad(path, "must not be empty")
	case !utf8.ValidString(s):
		bad(path, "is not valid UTF-8")
	case utf8.RuneCountInString(s) > max:
		bad(path, "longer than %d characters", max)
	}
}

func checkEnum(bad func(string, string, ...any), ont *ontology.Ontology, path, enum, v string) {
	e := ont.Enum(enum)
	if e == nil {
		bad(path, "the ontology has no %s enum", enum)
		return
	}
	if !slices.Contains(e.Values, v) {
		bad(path, "%q is not a %s (one of %s)", v, enum, strings.Join(e.Values, ", "))
	}
}
