package e2e

import (
	"strings"
	"testing"
)

// testResidentReport is the operations centre's story on the demo city: a
// resident reports a street light out from a phone; the report is linked
// to the nearest light and its neighbourhood; an operator's dashboard,
// subscribed to service requests in that neighbourhood, sees it live; the
// resident follows the status by tracking ID while an operator moves it
// through its lifecycle; bad reports are refused and write nothing.
func testResidentReport(t *testing.T, s *Server) {
	wsClient(t)
	ws := "ws" + strings.TrimPrefix(s.URL, "http") + "/graphql"
	// Mid-Cambridge, on Massachusetts Avenue near Hancock Street
	const lat, lon = 42.36988, -71.10836
	hood := s.MustQuery(t, `query($lat: Float!, $lon: Float!) { neighbourhoods(where: {near: {lat: $lat, lon: $lon, meters: 1}}, first: 1) { nodes { id name } } }`,
		map[string]any{"lat": lat, "lon": lon})
	hoodID, _ := at(hood.Data, "neighbourhoods", "nodes", 0, "id").(string)
	if hoodID == "" {
		// near on polygons may not apply: find the neighbourhood by name
		hood = s.MustQuery(t, `{ neighbourhoods(where: {name: {eq: "Mid-Cambridge"}}) { nodes { id name } } }`, nil)
		hoodID, _ = at(hood.Data, "neighbourhoods", "nodes", 0, "id").(string)
	}
	if hoodID == "" {
		t.Fatalf("no Mid-Cambridge neighbourhood: %s", hood.Raw)
	}
	dashboard := startSubscriber(t, "graphql-ws", ws,
		`subscription { serviceRequestChanged(where: {withinArea: "`+hoodID+`"}) { op node { requestNumber status affects { nodes { id } } } } }`, 1)
	dashboard.ready()

	report := `mutation($r: IssueReport!) { reportIssue(report: $r) { trackingId token status area { id class } asset { id class distanceMeters } request { id status } } }`
	r := s.MustQuery(t, report, map[string]any{"r": map[string]any{
		"serviceCode": "streetlight-out", "lat": lat, "lon": lon, "description": "The street light outside is out since last night.",
	}})
	if len(r.Errors) > 0 {
		t.Fatalf("reportIssue: %s", r.Raw)
	}
	receipt := at(r.Data, "reportIssue")
	tracking, _ := at(receipt, "trackingId").(string)
	token, _ := at(receipt, "token").(string)
	if tracking == "" || token == "" || at(receipt, "status") != "SUBMITTED" || at(receipt, "area", "id") != hoodID ||
		at(receipt, "asset", "class") != "StreetLight" {
		t.Fatalf("receipt: %s", r.Raw)
	}
	if d, _ := at(receipt, "asset", "distanceMeters").(float64); d <= 0 || d > 50 {
		t.Errorf("nearest street light at %v m", d)
	}
	got := dashboard.result()
	if at(got, "data", "serviceRequestChanged", "op") != "CREATE" ||
		at(got, "data", "serviceRequestChanged", "node", "requestNumber") != tracking ||
		at(got, "data", "serviceRequestChanged", "node", "affects", "nodes", 0, "id") != at(receipt, "asset", "id") {
		t.Errorf("dashboard got %v", got)
	}

	resident := startSubscriber(t, "graphql-ws", ws,
		`subscription { issueStatusChanged(trackingId: "`+tracking+`", token: "`+token+`") { status history { to note } } }`, 3)
	resident.ready()
	if st := resident.result(); at(st, "data", "issueStatusChanged", "status") != "SUBMITTED" {
		t.Fatalf("resident first sees %v", st)
	}
	id, _ := at(receipt, "request", "id").(string)
	move := `mutation($id: ID!, $s: ServiceRequestStatus!, $why: String) { updateServiceRequestStatus(id: $id, status: $s, reason: $why) { status } }`
	if r := s.MustQuery(t, move, map[string]any{"id": id, "s": "ACKNOWLEDGED"}); len(r.Errors) == 0 || !strings.Contains(r.Raw, "FORBIDDEN") {
		t.Errorf("a resident moved the request: %s", r.Raw)
	}
	for _, step := range []string{"ACKNOWLEDGED", "ASSIGNED"} {
		if r := s.MustQueryAs(t, operatorToken, move, map[string]any{"id": id, "s": step}); len(r.Errors) > 0 {
			t.Fatalf("%s: %s", step, r.Raw)
		}
		if st := resident.result(); at(st, "data", "issueStatusChanged", "status") != step {
			t.Fatalf("resident sees %v, want %s", st, step)
		}
	}
	r = s.MustQueryAs(t, operatorToken, move, map[string]any{"id": id, "s": "CLOSED"})
	if len(r.Errors) == 0 || !strings.Contains(r.Raw, "CONFLICT") || !strings.Contains(r.Raw, "ASSIGNED") {
		t.Errorf("ASSIGNED → CLOSED: %s", r.Raw)
	}

	count := func() float64 {
		r := s.MustQuery(t, `{ serviceRequests(first: 0) { totalCount } }`, nil)
		n, _ := at(r.Data, "serviceRequests", "totalCount").(float64)
		return n
	}
	before := count()
	for _, bad := range []struct {
		report map[string]any
		want   string
	}{
		{map[string]any{"serviceCode": "streetlight-out", "lat": 42.3550, "lon": -71.0656, "description": "Boston Common"}, "outside the city"},
		{map[string]any{"serviceCode": "unicorn-sighting", "lat": lat, "lon": lon, "description": "?"}, "unknown service code"},
	} {
		r := s.MustQuery(t, report, map[string]any{"r": bad.report})
		if len(r.Errors) == 0 || !strings.Contains(r.Raw, bad.want) || !strings.Contains(r.Raw, "BAD_USER_INPUT") {
			t.Errorf("bad report %v: %s", bad.report, r.Raw)
		}
	}
	if after := count(); after != before {
		t.Errorf("refused reports wrote requests: %v before, %v after", before, after)
	}
	if r := s.MustQuery(t, `{ issueStatus(trackingId: "`+tracking+`", token: "wrong") { status } }`, nil); !strings.Contains(r.Raw, "NOT_FOUND") {
		t.Errorf("wrong token: %s", r.Raw)
	}
}
