package residents

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
)

// Report is what a resident sends.
type Report struct {
	ServiceCode string // a code of the service list
	Lat, Lon    float64
	Description string   // what is wrong; required
	MediaURLs   []string // absolute http(s) URLs of photos, optional
	// Channel is a value of the ontology's Channel enum; "" means APP.
	Channel string
	// Contact is the reporter's e-mail or phone, optional and sensitive:
	// it is never stored as given (see WithPseudonymKey).
	Contact string
}

// Receipt is what the resident gets back.
type Receipt struct {
	RequestID  string // node ID of the ServiceRequest
	TrackingID string // requestNumber, to quote and to look the request up
	// PublicToken is the secret that, with TrackingID, lets the resident
	// follow the request. It is shown once: the graph keeps only its
	// digest.
	PublicToken string
	Status      RequestStatus
	ReportedAt  time.Time
	ServiceCode string
	// Area is the area (Config.AreaClass) the request is LOCATED_IN, nil
	// when no area polygon contains the point.
	Area *Link
	// Asset is the asset the request AFFECTS, nil when the service links
	// none or none lies within its distance.
	Asset *Link
}

// Link is a node a request was linked to.
type Link struct {
	ID    string
	Class string
	Name  string
	// DistanceM is the distance from the reported point in metres (0 for
	// the area, which contains it).
	DistanceM float64
}

const (
	maxURLLen     = 2048
	maxContactLen = 254
	// reportAttempts bounds the draws of a free tracking ID.
	reportAttempts = 3
)

// Report validates a resident's report and records it: in one Apply, the
// ServiceRequest (status SUBMITTED), its first StatusChange, and the
// edges FOR_SERVICE (its Service), LOCATED_IN (the smallest area
// containing the point), AFFECTS (the nearest asset of the service's
// class within its distance) and HAS_STATUS_CHANGE. When any check fails
// nothing is written.
//
// Errors: an *InputError (graph.ErrInvalid) for an unknown service code,
// an invalid location or one outside the city polygon, an empty or too
// long description, a media URL that is not absolute http(s), an unknown
// channel or a bad contact; store errors otherwise (and an error when the
// graph holds no city boundary).
func (d *Desk) Report(ctx context.Context, r Report) (*Receipt, error) {
	svc, channel, desc, media, err := d.checkReport(&r)
	if err != nil {
		return nil, err
	}
	p := graph.Point{Lat: r.Lat, Lon: r.Lon}
	city, areas, err := d.areas.get(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("residents: report: %w", err)
	}
	if len(city) == 0 {
		what := "no " + d.cfg.CityClass + " polygon"
		if d.cfg.CityID != "" {
			what = d.cfg.CityClass + " " + d.cfg.CityID + " has no polygon"
		}
		return nil, fmt.Errorf("residents: report: %s in the graph: load the city boundary first", what)
	}
	if !city.contains(p) {
		return nil, inputErr("location", ErrOutsideCity, "location %s is outside the city", formatPoint(p))
	}
	rc := &Receipt{Status: Submitted, ServiceCode: svc.Code}
	if a := areas.locate(p); a != nil {
		rc.Area = &Link{ID: a.id, Class: d.cfg.AreaClass, Name: a.name}
	}
	if svc.Asset != nil {
		pages, err := d.store.Near(ctx, graph.NearQuery{Points: []graph.Point{p}, Class: svc.Asset.Class, Meters: svc.Asset.Within, First: 1})
		if err != nil {
			return nil, fmt.Errorf("residents: report: nearest %s: %w", svc.Asset.Class, err)
		}
		if len(pages) == 1 && len(pages[0].Nodes) > 0 && pages[0].Nodes[0] != nil {
			n := pages[0].Nodes[0]
			name, _ := n.Props["name"].(string)
			rc.Asset = &Link{ID: n.ID, Class: n.Class, Name: name}
			if len(pages[0].Distances) > 0 {
				rc.Asset.DistanceM = pages[0].Distances[0]
			} else if n.Geometry != nil {
				rc.Asset.DistanceM = geo.Distance(p.Lat, p.Lon, n.Geometry.Point.Lat, n.Geometry.Point.Lon)
			}
		}
	}

	at := d.clock()
	if err := d.drawIDs(ctx, rc, at); err != nil {
		return nil, err
	}
	digest, _ := tokenDigest(rc.PublicToken)
	rc.ReportedAt = at

	props := map[string]any{
		"name":          svc.Name,
		"description":   desc,
		"status":        string(Submitted),
		"requestNumber": rc.TrackingID,
		"publicToken":   digest,
		"channel":       channel,
		"categoryRaw":   svc.Code,
		"reportedAt":    at,
	}
	if svc.Domain != "" {
		props["category"] = svc.Domain
	}
	if len(media) > 0 {
		l := make([]any, len(media))
		for i, m := range media {
			l[i] = m
		}
		props["mediaUrls"] = l
	}
	if svc.SLAHours > 0 {
		props["slaDueAt"] = at.Add(time.Duration(svc.SLAHours * float64(time.Hour))).Truncate(time.Microsecond)
	}
	prov := d.prov(rc.TrackingID, at)
	scID := d.statusChangeID(rc.TrackingID, 1)
	b := graph.Batch{
		Nodes: []graph.Node{
			d.serviceNode(svc),
			{ID: rc.RequestID, Class: "ServiceRequest", Props: props, Geometry: graph.PointGeometry(p.Lat, p.Lon), Prov: prov},
			{ID: scID, Class: "StatusChange", Prov: d.prov(rc.TrackingID+"~0001", at),
				Props: map[string]any{"toStatus": string(Submitted), "changedAt": at}},
		},
		Edges: []graph.Edge{
			{From: rc.RequestID, Rel: "FOR_SERVICE", To: d.serviceID(svc.Code), Prov: prov},
			{From: rc.RequestID, Rel: "HAS_STATUS_CHANGE", To: scID, Prov: prov},
		},
	}
	if rc.Area != nil {
		b.Edges = append(b.Edges, graph.Edge{From: rc.RequestID, Rel: "LOCATED_IN", To: rc.Area.ID, Prov: prov,
			Props: map[string]any{"method": "POINT_IN_POLYGON"}})
	}
	if rc.Asset != nil {
		e := graph.Edge{From: rc.RequestID, Rel: "AFFECTS", To: rc.Asset.ID, Prov: prov}
		if svc.Asset.Impact != "" {
			e.Props = map[string]any{"impact": svc.Asset.Impact}
		}
		b.Edges = append(b.Edges, e)
	}
	if c := normalizeContact(r.Contact); c != "" && len(d.pseudonymKey) > 0 {
		idKey, pseudonym := d.pseudonyms(c)
		pid := d.personID(idKey)
		b.Nodes = append(b.Nodes, graph.Node{ID: pid, Class: "Person",
			Props: map[string]any{"pseudonym": pseudonym, "role": "RESIDENT"},
			Prov:  graph.Provenance{Source: d.cfg.Source, SourceKey: idKey, Connector: d.cfg.Connector, Run: d.run}})
		b.Edges = append(b.Edges, graph.Edge{From: rc.RequestID, Rel: "REPORTED_BY", To: pid, Prov: prov,
			Props: map[string]any{"channel": channel}})
	}
	if _, err := d.store.Apply(ctx, b); err != nil {
		return nil, fmt.Errorf("residents: report %s: %w", rc.TrackingID, err)
	}
	attrs := []any{"request", rc.RequestID, "service", svc.Code, "channel", channel}
	if rc.Area != nil {
		attrs = append(attrs, "area", rc.Area.ID)
	}
	if rc.Asset != nil {
		attrs = append(attrs, "asset", rc.Asset.ID, "distance_m", rc.Asset.DistanceM)
	}
	d.log.InfoContext(ctx, "service request reported", attrs...)
	return rc, nil
}

// drawIDs picks a tracking ID no request has yet, and a token.
func (d *Desk) drawIDs(ctx context.Context, rc *Receipt, at time.Time) error {
	for range reportAttempts {
		rnd, err := d.random(trackingRandBytes + tokenBytes)
		if err != nil {
			return err
		}
		tracking := trackingID(at, rnd[:trackingRandBytes])
		id := d.requestID(tracking)
		ns, err := d.store.Nodes(ctx, []string{id})
		if err != nil {
			return fmt.Errorf("residents: report: check tracking ID: %w", err)
		}
		if len(ns) == 1 && ns[0] != nil {
			continue // taken: draw again
		}
		rc.RequestID, rc.TrackingID, rc.PublicToken = id, tracking, publicToken(rnd[trackingRandBytes:])
		return nil
	}
	return fmt.Errorf("residents: report: no free tracking ID after %d draws: is the random source broken?", reportAttempts)
}

// checkReport validates everything that needs no store read and returns
// the service, the channel, the trimmed description and media URLs.
func (d *Desk) checkReport(r *Report) (*Service, string, string, []string, error) {
	svc := d.cfg.Service(strings.TrimSpace(r.ServiceCode))
	if svc == nil {
		return nil, "", "", nil, inputErr("serviceCode", ErrUnknownService, "unknown service code %q", clip(r.ServiceCode, 64))
	}
	if !geo.ValidPoint(r.Lat, r.Lon) {
		return nil, "", "", nil, inputErr("location", ErrBadLocation, "location %s is not a WGS84 latitude,longitude", formatPoint(graph.Point{Lat: r.Lat, Lon: r.Lon}))
	}
	desc := strings.TrimSpace(r.Description)
	switch {
	case desc == "":
		return nil, "", "", nil, inputErr("description", ErrBadDescription, "a description is required")
	case !utf8.ValidString(desc):
		return nil, "", "", nil, inputErr("description", ErrBadDescription, "description is not valid UTF-8")
	case utf8.RuneCountInString(desc) > d.cfg.MaxDescription:
		return nil, "", "", nil, inputErr("description", ErrBadDescription, "description is longer than %d characters", d.cfg.MaxDescription)
	case hasControl(desc, true):
		return nil, "", "", nil, inputErr("description", ErrBadDescription, "description contains control characters")
	}
	if len(r.MediaURLs) > d.cfg.MaxMediaURLs {
		return nil, "", "", nil, inputErr("mediaUrls", ErrBadMediaURL, "at most %d media URLs", d.cfg.MaxMediaURLs)
	}
	var media []string
	for i, m := range r.MediaURLs {
		m = strings.TrimSpace(m)
		if err := checkMediaURL(m); err != "" {
			return nil, "", "", nil, inputErr("mediaUrls", ErrBadMediaURL, "media URL %d (%q): %s", i+1, clip(m, 80), err)
		}
		if !slices.Contains(media, m) {
			media = append(media, m)
		}
	}
	channel := strings.TrimSpace(r.Channel)
	if channel == "" {
		channel = "APP"
	}
	if !slices.Contains(d.ont.Enum("Channel").Values, channel) {
		return nil, "", "", nil, inputErr("channel", ErrBadChannel, "unknown channel %q (one of %s)", clip(channel, 32), strings.Join(d.ont.Enum("Channel").Values, ", "))
	}
	if c := r.Contact; c != "" {
		if !utf8.ValidString(c) || utf8.RuneCountInString(c) > maxContactLen || hasControl(c, false) {
			return nil, "", "", nil, inputErr("contact", ErrBadContact, "contact must be at most %d printable characters", maxContactLen)
		}
	}
	return svc, channel, desc, media, nil
}

// checkMediaURL returns why u is not an absolute http(s) URL, or "".
func checkMediaURL(u string) string {
	if u == "" {
		return "empty"
	}
	if len(u) > maxURLLen {
		return fmt.Sprintf("longer than %d bytes", maxURLLen)
	}
	if !utf8.ValidString(u) || strings.ContainsFunc(u, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "contains spaces or control characters"
	}
	p, err := url.Parse(u)
	if err != nil {
		return "not a URL"
	}
	if s := strings.ToLower(p.Scheme); s != "http" && s != "https" {
		return "not an absolute http or https URL"
	}
	if p.Host == "" || p.Hostname() == "" {
		return "no host"
	}
	if p.User != nil {
		return "must not carry credentials"
	}
	return ""
}

func hasControl(s string, allowNewlines bool) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		if allowNewlines && (r == '\n' || r == '\r' || r == '\t') {
			return false
		}
		return unicode.IsControl(r)
	})
}

func formatPoint(p graph.Point) string {
	return strconv.FormatFloat(p.Lat, 'f', -1, 64) + "," + strconv.FormatFloat(p.Lon, 'f', -1, 64)
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// normalizeContact is the form a contact is hashed in: trimmed, lower
// case (e-mail domains and most mailboxes are case-insensitive), phone
// punctuation removed.
func normalizeContact(c string) string {
	c = strings.ToLower(strings.TrimSpace(c))
	if !strings.Contains(c, "@") {
		c = strings.Map(func(r rune) rune {
			if r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' {
				return -1
			}
			return r
		}, c)
	}
	return c
}

// pseudonyms derives, with the pseudonym key, the Person's URN key and its
// pseudonym: two different keyed hashes, so that the URN (public) does not
// reveal the pseudonym (operator access).
func (d *Desk) pseudonyms(contact string) (idKey, pseudonym string) {
	mac := func(label string) []byte {
		h := hmac.New(sha256.New, d.pseudonymKey)
		h.Write([]byte(label))
		h.Write([]byte{0})
		h.Write([]byte(contact))
		return h.Sum(nil)
	}
	return "resident-" + hex.EncodeToString(mac("id")[:12]), hex.EncodeToString(mac("pseudonym"))
}
