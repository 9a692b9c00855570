package residents_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/geo"
	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/residents"
)

var (
	trackingRE = regexp.MustCompile(`^20250314-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)
	tokenRE    = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)
)

// candidate is an asset of a demo file, by its point.
type candidate struct {
	lat, lon float64
	props    map[string]any
}

func pointFeatures(t *testing.T, file string) []candidate {
	t.Helper()
	var out []candidate
	for _, f := range mustFeatures(t, file) {
		s := mustShape(t, f)
		out = append(out, candidate{s.Lat, s.Lon, f.Properties})
	}
	return out
}

func bikeStations(t *testing.T) []candidate {
	t.Helper()
	data, err := os.ReadFile(demoDir + "/data/bikeshare/boston_hubway_station_information.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Data struct {
			Stations []struct {
				ID   string  `json:"station_id"`
				Name string  `json:"name"`
				Lat  float64 `json:"lat"`
				Lon  float64 `json:"lon"`
			} `json:"stations"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var out []candidate
	for _, s := range doc.Data.Stations {
		out = append(out, candidate{s.Lat, s.Lon, map[string]any{"name": s.Name}})
	}
	return out
}

// nearest finds, by brute force over the source file, the distance to the
// nearest candidate and how many candidates share it.
func nearest(cands []candidate, lat, lon float64) (best float64, at candidate, ties int) {
	best = math.Inf(1)
	for _, c := range cands {
		d := geo.Distance(lat, lon, c.lat, c.lon)
		switch {
		case d < best-1e-6:
			best, at, ties = d, c, 1
		case math.Abs(d-best) <= 1e-6:
			ties++
		}
	}
	return best, at, ties
}

// cityShape is the demo's boundary polygon, parsed from its file.
func cityShape(t *testing.T) *geo.Shape {
	t.Helper()
	fs := mustFeatures(t, demoDir+"/data/geo/cambridge_BOUNDARY_CityBoundary.geojson")
	if len(fs) != 1 {
		t.Fatalf("boundary file has %d features", len(fs))
	}
	return mustShape(t, fs[0])
}

// neighbourhoodOf returns the N_HOOD of the neighbourhood whose polygon in
// the boundary file contains the point ("" for none).
func neighbourhoodOf(t *testing.T, lat, lon float64) string {
	t.Helper()
	found := ""
	for _, f := range mustFeatures(t, demoDir+"/data/geo/cambridge_BOUNDARY_CDDNeighborhoods.geojson") {
		if mustShape(t, f).Contains(lat, lon) {
			if found != "" {
				t.Fatalf("point %v,%v in two neighbourhoods", lat, lon)
			}
			found = f.Properties["N_HOOD"].(string)
		}
	}
	return found
}

// TestReportStreetLight reports a light out at Massachusetts Ave & Hancock
// St (the point of crash 30927, in Mid-Cambridge) and checks everything
// the report writes against the demo's source files.
func TestReportStreetLight(t *testing.T) {
	t.Parallel()
	d, st, _ := MustDesk(t)
	const lat, lon = 42.36838, -71.108783
	lights := pointFeatures(t, demoDir+"/data/assets/cambridge_INFRA_StreetLights.geojson")
	want, pole, ties := nearest(lights, lat, lon)
	if want > 50 || ties != 1 {
		t.Fatalf("test point: nearest pole %v m away, %d at that distance; pick another point", want, ties)
	}
	if got := neighbourhoodOf(t, lat, lon); got != "6" {
		t.Fatalf("the boundary file puts the test point in neighbourhood %q, not Mid-Cambridge (6)", got)
	}

	rc, err := d.Report(t.Context(), residents.Report{
		ServiceCode: "streetlight-out", Lat: lat, Lon: lon,
		Description: "  The light on the corner pole has been out for three nights.  ",
		MediaURLs:   []string{"https://photos.example.org/p/123.jpg", "http://photos.example.org/p/124.jpg"},
		Contact:     "resident@example.org",
	})
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if !trackingRE.MatchString(rc.TrackingID) || !tokenRE.MatchString(rc.PublicToken) {
		t.Errorf("tracking ID %q, token %q: not of the documented form", rc.TrackingID, rc.PublicToken)
	}
	if rc.RequestID != "urn:city:service-request:residents:"+rc.TrackingID {
		t.Errorf("request ID %q", rc.RequestID)
	}
	if rc.Area == nil || rc.Area.ID != "urn:city:neighbourhood:cambridge-gis:6" || rc.Area.Name != "Mid-Cambridge" {
		t.Errorf("area = %+v, want Mid-Cambridge (6)", rc.Area)
	}
	if rc.Asset == nil {
		t.Fatalf("no asset linked; pole %v is %.1f m away", pole.props["PoleID"], want)
	}
	light := mustNode(t, st, rc.Asset.ID)
	if light.Class != "StreetLight" || light.Props["poleNumber"] != pole.props["PoleID"] {
		t.Errorf("linked %s %v, want pole %v", light.Class, light.Props["poleNumber"], pole.props["PoleID"])
	}
	dist := geo.Distance(lat, lon, light.Geometry.Point.Lat, light.Geometry.Point.Lon)
	if math.Abs(rc.Asset.DistanceM-dist) > 0.01 || math.Abs(dist-want) > 0.01 {
		t.Errorf("distance %.3f m; geo.Distance to the linked light %.3f m; to the file's nearest pole %.3f m", rc.Asset.DistanceM, dist, want)
	}

	req := mustNode(t, st, rc.RequestID)
	wantProps := map[string]any{
		"status": "SUBMITTED", "requestNumber": rc.TrackingID, "channel": "APP", "category": "ENERGY",
		"categoryRaw": "streetlight-out", "name": "Street light out",
		"description": "The light on the corner pole has been out for three nights.",
	}
	for k, v := range wantProps {
		if req.Props[k] != v {
			t.Errorf("request %s = %#v, want %#v", k, req.Props[k], v)
		}
	}
	if tok, _ := req.Props["publicToken"].(string); !strings.HasPrefix(tok, "sha256:") || strings.Contains(tok, rc.PublicToken) {
		t.Errorf("publicToken stored as %q: want a digest, never the token", tok)
	}
	for k, v := range req.Props {
		if s, ok := v.(string); ok && strings.Contains(s, "resident@example.org") {
			t.Errorf("the contact is stored in %s", k)
		}
	}
	if media, _ := req.Props["mediaUrls"].([]any); len(media) != 2 || media[0] != "https://photos.example.org/p/123.jpg" {
		t.Errorf("mediaUrls = %#v", req.Props["mediaUrls"])
	}
	if at, _ := req.Props["reportedAt"].(time.Time); !at.Equal(rc.ReportedAt) || at.IsZero() {
		t.Errorf("reportedAt = %v, receipt %v", req.Props["reportedAt"], rc.ReportedAt)
	}
	if due, _ := req.Props["slaDueAt"].(time.Time); !due.Equal(rc.ReportedAt.Add(120 * time.Hour)) {
		t.Errorf("slaDueAt = %v, want reportedAt + 120h", req.Props["slaDueAt"])
	}
	if req.Geometry == nil || req.Geometry.Point != (graph.Point{Lat: lat, Lon: lon}) {
		t.Errorf("geometry = %+v", req.Geometry)
	}
	if req.Prov.Source != "residents" || req.Prov.Connector != "residents-desk" || req.Prov.SourceKey != rc.TrackingID || req.Prov.Run == "" {
		t.Errorf("provenance = %+v", req.Prov)
	}

	for rel, want := range map[string]string{
		"FOR_SERVICE": "urn:city:service:residents:streetlight-out",
		"LOCATED_IN":  "urn:city:neighbourhood:cambridge-gis:6",
		"AFFECTS":     light.ID,
	} {
		ids, props := neighbors(t, st, rc.RequestID, rel)
		if len(ids) != 1 || ids[0] != want {
			t.Errorf("%s → %v, want %s", rel, ids, want)
			continue
		}
		switch rel {
		case "LOCATED_IN":
			if props[0]["method"] != "POINT_IN_POLYGON" {
				t.Errorf("LOCATED_IN props %v", props[0])
			}
		case "AFFECTS":
			if props[0]["impact"] != "OUTAGE" {
				t.Errorf("AFFECTS props %v", props[0])
			}
		}
	}
	if ids, _ := neighbors(t, st, rc.RequestID, "REPORTED_BY"); len(ids) != 0 {
		t.Errorf("REPORTED_BY %v without a pseudonym key", ids)
	}
	hist, err := d.History(t.Context(), rc.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].From != "" || hist[0].To != residents.Submitted || !hist[0].At.Equal(rc.ReportedAt) {
		t.Errorf("history = %+v", hist)
	}
}

// TestReportAssets reports next to a real asset of every linked class
// (and once for a service without one) and checks the link against a
// brute-force search of the source file.
func TestReportAssets(t *testing.T) {
	t.Parallel()
	d, st, _ := MustDesk(t)
	city := cityShape(t)
	inCity := func(cs []candidate) candidate {
		for _, c := range cs {
			if city.Contains(c.lat, c.lon) {
				return c
			}
		}
		t.Fatal("no candidate inside the city")
		return candidate{}
	}
	signals := pointFeatures(t, demoDir+"/data/assets/cambridge_TRAFFIC_Signals.geojson")
	spaces := pointFeatures(t, demoDir+"/data/parking/cambridge_TRAFFIC_MeteredParkingSpaces.geojson")
	stations := bikeStations(t)
	lights := pointFeatures(t, demoDir+"/data/assets/cambridge_INFRA_StreetLights.geojson")
	tests := []struct {
		service string
		class   string
		cands   []candidate
		within  float64
		impact  string
	}{
		{"traffic-signal", "TrafficSignal", signals, 75, "DEGRADED"},
		{"parking-meter", "ParkingSpot", spaces, 25, "OUTAGE"},
		{"bike-share-station", "BikeShareStation", stations, 100, "DEGRADED"},
		{"streetlight-out", "StreetLight", lights, 50, "OUTAGE"},
		{"pothole", "", lights, 0, ""},
	}
	for _, tc := range tests {
		// about 8 m north of a real asset inside the city
		c := inCity(tc.cands)
		lat, lon := c.lat+0.00007, c.lon
		rc, err := d.Report(t.Context(), residents.Report{ServiceCode: tc.service, Lat: lat, Lon: lon, Description: "Broken since Monday", Channel: "WEB"})
		if err != nil {
			t.Errorf("%s: Report: %v", tc.service, err)
			continue
		}
		ids, props := neighbors(t, st, rc.RequestID, "AFFECTS")
		if tc.class == "" {
			if rc.Asset != nil || len(ids) != 0 {
				t.Errorf("%s links %+v / %v; the service has no asset", tc.service, rc.Asset, ids)
			}
			continue
		}
		want, _, _ := nearest(tc.cands, lat, lon)
		if want > tc.within {
			t.Fatalf("%s: test point %v m from the nearest asset", tc.service, want)
		}
		if rc.Asset == nil || len(ids) != 1 || ids[0] != rc.Asset.ID {
			t.Errorf("%s: asset %+v, AFFECTS %v", tc.service, rc.Asset, ids)
			continue
		}
		n := mustNode(t, st, rc.Asset.ID)
		if n.Class != tc.class || props[0]["impact"] != tc.impact {
			t.Errorf("%s: linked a %s with %v", tc.service, n.Class, props[0])
		}
		if got := geo.Distance(lat, lon, n.Geometry.Point.Lat, n.Geometry.Point.Lon); math.Abs(got-want) > 0.01 || math.Abs(rc.Asset.DistanceM-want) > 0.01 {
			t.Errorf("%s: linked asset at %.3f m (receipt %.3f m); nearest in the file %.3f m", tc.service, got, rc.Asset.DistanceM, want)
		}
		if req := mustNode(t, st, rc.RequestID); req.Props["channel"] != "WEB" {
			t.Errorf("%s: channel %v", tc.service, req.Props["channel"])
		}
	}
}

// TestReportRejected checks that every invalid report is refused with the
// right error and writes nothing.
func TestReportRejected(t *testing.T) {
	t.Parallel()
	d, st, _ := MustDesk(t)
	const bostonLat, bostonLon = 42.3550, -71.0656 // Boston Common
	if cityShape(t).Contains(bostonLat, bostonLon) {
		t.Fatal("the boundary file puts Boston Common inside Cambridge")
	}
	ok := residents.Report{ServiceCode: "pothole", Lat: 42.373611, Lon: -71.110558, Description: "Deep pothole"}
	with := func(f func(*residents.Report)) residents.Report { r := ok; f(&r); return r }
	tests := []struct {
		name    string
		report  residents.Report
		want    error
		field   string
		message string
	}{
		{"unknown service", with(func(r *residents.Report) { r.ServiceCode = "alien-landing" }), residents.ErrUnknownService, "serviceCode", `unknown service code "alien-landing"`},
		{"empty service", with(func(r *residents.Report) { r.ServiceCode = "" }), residents.ErrUnknownService, "serviceCode", ""},
		{"Boston Common", with(func(r *residents.Report) { r.Lat, r.Lon = bostonLat, bostonLon }), residents.ErrOutsideCity, "location", "location 42.355,-71.0656 is outside the city"},
		{"New York", with(func(r *residents.Report) { r.Lat, r.Lon = 40.71, -74.00 }), residents.ErrOutsideCity, "location", "location 40.71,-74 is outside the city"},
		{"null island", with(func(r *residents.Report) { r.Lat, r.Lon = 0, 0 }), residents.ErrOutsideCity, "location", ""},
		{"latitude 91", with(func(r *residents.Report) { r.Lat = 91 }), residents.ErrBadLocation, "location", ""},
		{"NaN", with(func(r *residents.Report) { r.Lon = math.NaN() }), residents.ErrBadLocation, "location", ""},
		{"infinite", with(func(r *residents.Report) { r.Lat = math.Inf(1) }), residents.ErrBadLocation, "location", ""},
		{"empty description", with(func(r *residents.Report) { r.Description = "" }), residents.ErrBadDescription, "description", "a description is required"},
		{"blank description", with(func(r *residents.Report) { r.Description = " \n\t " }), residents.ErrBadDescription, "description", ""},
		{"long description", with(func(r *residents.Report) { r.Description = strings.Repeat("é", 4001) }), residents.ErrBadDescription, "description", "longer than 4000"},
		{"control characters", with(func(r *residents.Report) { r.Description = "hole\x00here" }), residents.ErrBadDescription, "description", ""},
		{"invalid UTF-8", with(func(r *residents.Report) { r.Description = "hole \xff" }), residents.ErrBadDescription, "description", ""},
		{"relative media URL", with(func(r *residents.Report) { r.MediaURLs = []string{"/photos/1.jpg"} }), residents.ErrBadMediaURL, "mediaUrls", ""},
		{"ftp media URL", with(func(r *residents.Report) { r.MediaURLs = []string{"ftp://example.org/1.jpg"} }), residents.ErrBadMediaURL, "mediaUrls", ""},
		{"javascript media URL", with(func(r *residents.Report) { r.MediaURLs = []string{"javascript:alert(1)"} }), residents.ErrBadMediaURL, "mediaUrls", ""},
		{"media URL without host", with(func(r *residents.Report) { r.MediaURLs = []string{"https:///1.jpg"} }), residents.ErrBadMediaURL, "mediaUrls", ""},
		{"media URL with credentials", with(func(r *residents.Report) { r.MediaURLs = []string{"https://me:pw@example.org/1.jpg"} }), residents.ErrBadMediaURL, "mediaUrls", ""},
		{"second media URL bad", with(func(r *residents.Report) { r.MediaURLs = []string{"https://example.org/1.jpg", "example.org/2.jpg"} }), residents.ErrBadMediaURL, "mediaUrls", "media URL 2"},
		{"too many media URLs", with(func(r *residents.Report) {
			r.MediaURLs = []string{"https://a.org/1", "https://a.org/2", "https://a.org/3", "https://a.org/4", "https://a.org/5", "https://a.org/6"}
		}), residents.ErrBadMediaURL, "mediaUrls", "at most 5"},
		{"unknown channel", with(func(r *residents.Report) { r.Channel = "FAX" }), residents.ErrBadChannel, "channel", `unknown channel "FAX"`},
		{"contact too long", with(func(r *residents.Report) { r.Contact = strings.Repeat("a", 255) }), residents.ErrBadContact, "contact", ""},
	}
	before := mustWrites(t, st)
	for _, tc := range tests {
		rc, err := d.Report(t.Context(), tc.report)
		if err == nil {
			t.Errorf("%s: Report accepted: %+v", tc.name, rc)
			continue
		}
		var ie *residents.InputError
		if !errors.Is(err, tc.want) || !errors.Is(err, graph.ErrInvalid) || !residents.IsInvalid(err) || residents.IsNotFound(err) || residents.IsConflict(err) {
			t.Errorf("%s: error %v does not match %v and graph.ErrInvalid alone", tc.name, err, tc.want)
		}
		if !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("%s: error %v names field %v, want %s", tc.name, err, ie, tc.field)
		}
		if !strings.Contains(err.Error(), tc.message) {
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.message)
		}
	}
	if after := mustWrites(t, st); after != before {
		t.Errorf("rejected reports wrote: %+v before, %+v after", before, after)
	}
	// the valid report the cases derive from passes
	if _, err := d.Report(t.Context(), ok); err != nil {
		t.Errorf("valid report: %v", err)
	}
	if after := mustWrites(t, st); after.nodes != before.nodes+2 {
		t.Errorf("a report wrote %d nodes, want 2 (request and status change)", after.nodes-before.nodes)
	}
}

// TestReportPseudonym links reports of one contact to one pseudonymous
// Person when the desk has a key, and keeps the contact itself out.
func TestReportPseudonym(t *testing.T) {
	t.Parallel()
	st := MustDemoStore(t)
	d, err := residents.New(st, ontology.Default(), *MustServices(t), residents.WithPseudonymKey([]byte("test key")), residents.WithRand(seeded(7)))
	if err != nil {
		t.Fatal(err)
	}
	var persons []string
	for _, contact := range []string{"Resident@Example.org ", "resident@example.org", "+1 (617) 555-0100"} {
		rc, err := d.Report(t.Context(), residents.Report{ServiceCode: "graffiti", Lat: 42.3656, Lon: -71.1040, Description: "Tag on the mailbox", Contact: contact, Channel: "SMS_CHAT"})
		if err != nil {
			t.Fatal(err)
		}
		ids, props := neighbors(t, st, rc.RequestID, "REPORTED_BY")
		if len(ids) != 1 || props[0]["channel"] != "SMS_CHAT" {
			t.Fatalf("REPORTED_BY %v %v", ids, props)
		}
		p := mustNode(t, st, ids[0])
		pseudo, _ := p.Props["pseudonym"].(string)
		if p.Class != "Person" || p.Props["role"] != "RESIDENT" || len(pseudo) != 64 || strings.Contains(p.ID, pseudo[:16]) {
			t.Errorf("person %s %v", p.ID, p.Props)
		}
		if strings.Contains(strings.ToLower(p.ID), "example") || strings.Contains(p.ID, "555") {
			t.Errorf("person ID %s reveals the contact", p.ID)
		}
		persons = append(persons, p.ID)
	}
	if persons[0] != persons[1] || persons[0] == persons[2] {
		t.Errorf("persons %v: the same e-mail must give one person, a phone another", persons)
	}
}
