package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MustQueryAs posts a query with a bearer token ("" for none).
func (s *Server) MustQueryAs(t testing.TB, token, query string, vars map[string]any) Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /graphql: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Response{Status: resp.StatusCode, Raw: string(raw)}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("response is not JSON (status %d): %v\n%s", resp.StatusCode, err, raw)
	}
	return r
}

const operatorToken = "e2e-operator-secret"

// TestConnectorJournalAndAdmin serves the demo city and checks what the
// journal recorded for the start-up runs, the connector status, and the
// runConnector mutation with and without the operator token.
func TestConnectorJournalAndAdmin(t *testing.T) {
	t.Setenv("CITYHUB_OPERATOR_TOKEN", operatorToken)
	s := MustStart(t, t.TempDir())

	r := s.MustQuery(t, `{
	  connectorStatus { name lastStatus stale lastSuccessAt freshnessSeconds }
	  ingestRuns(first: 1, where: {connectorCode: {eq: "cambridge-crashes"}}) {
	    totalCount
	    nodes { status trigger recordsRead recordsWritten recordsRejected runOf { code lastStatus } }
	  }
	  deadLetters { totalCount }
	  incidents(first: 1) { nodes { _provenance { connector stale } } }
	}`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	status := at(r.Data, "connectorStatus").([]any)
	if len(status) != 16 {
		t.Fatalf("%d connectors in connectorStatus, want 16", len(status))
	}
	for _, c := range status {
		if at(c, "lastStatus") != "SUCCEEDED" || at(c, "stale") != false || at(c, "lastSuccessAt") == nil {
			t.Errorf("connector after start-up: %v", c)
		}
	}
	run := at(r.Data, "ingestRuns", "nodes", 0)
	if at(r.Data, "ingestRuns", "totalCount") != 1.0 || at(run, "status") != "SUCCEEDED" || at(run, "trigger") != "STARTUP" ||
		at(run, "recordsRead") != 10335.0 || at(run, "recordsWritten") != 10335.0 || at(run, "runOf", "code") != "cambridge-crashes" {
		t.Errorf("crash run record: %s", r.Raw)
	}
	if at(r.Data, "deadLetters", "totalCount") != 0.0 {
		t.Errorf("dead letters after the demo load: %v", at(r.Data, "deadLetters"))
	}
	if at(r.Data, "incidents", "nodes", 0, "_provenance", "connector") != "cambridge-crashes" || at(r.Data, "incidents", "nodes", 0, "_provenance", "stale") != false {
		t.Errorf("incident provenance: %v", at(r.Data, "incidents"))
	}

	const run1 = `mutation { runConnector(name: "cambridge-hospitals") { run status read written rejected attempts error } }`
	// without a token: forbidden, nothing runs
	if r := s.MustQuery(t, run1, nil); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "FORBIDDEN" {
		t.Errorf("runConnector without a token: %s", r.Raw)
	}
	// a wrong token: 401
	if r := s.MustQueryAs(t, "wrong", run1, nil); r.Status != http.StatusUnauthorized || r.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
		t.Errorf("runConnector with a wrong token: %d %s", r.Status, r.Raw)
	}
	r = s.MustQueryAs(t, operatorToken, run1, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("runConnector: %s", r.Raw)
	}
	got := at(r.Data, "runConnector")
	if at(got, "status") != "SUCCEEDED" || at(got, "read") != 3.0 || at(got, "written") != 3.0 || at(got, "attempts") != 1.0 {
		t.Errorf("runConnector = %v", got)
	}
	r = s.MustQueryAs(t, operatorToken, `query($id: ID!) { ingestRun(id: $id) { trigger status watermark runOf { code } } }`,
		map[string]any{"id": at(got, "run")})
	if len(r.Errors) > 0 || at(r.Data, "ingestRun", "trigger") != "MANUAL" || at(r.Data, "ingestRun", "runOf", "code") != "cambridge-hospitals" {
		t.Errorf("manual run record: %s", r.Raw)
	}
	for _, q := range []string{
		`mutation { runConnector(name: "no-such") { status } }`,
	} {
		r := s.MustQueryAs(t, operatorToken, q, nil)
		if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "NOT_FOUND" || !strings.Contains(r.Errors[0].Message, `unknown connector "no-such"`) {
			t.Errorf("%s: %s", q, r.Raw)
		}
	}
}

// TestConnectorRunKilled kills `cityhub connectors run` with SIGKILL in
// the middle of the crash reports (10,335 rows, batches of 500), runs it
// again, and checks that every record is present exactly once and that
// both runs are on record.
func TestConnectorRunKilled(t *testing.T) {
	data := t.TempDir()
	args := []string{"connectors", "run", "cambridge-crashes", "--data-dir", data, "--log-level", "info"}
	cmd := exec.Command(binary, args...)
	cmd.Dir = ".."
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	batches := 0
	for sc.Scan() {
		if strings.Contains(sc.Text(), "batch applied") {
			batches++
			if batches == 6 {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
	}
	go io.Copy(io.Discard, stderr)
	_ = cmd.Wait()
	if batches < 6 {
		t.Fatalf("the run ended before 6 batches (%d): %s", batches, out.String())
	}
	if strings.Contains(out.String(), "SUCCEEDED") {
		t.Fatalf("the run finished before it was killed: %s", out.String())
	}

	again := exec.Command(binary, args...)
	again.Dir = ".."
	res, err := again.CombinedOutput()
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, res)
	}
	if !strings.Contains(string(res), "cambridge-crashes: SUCCEEDED read=10335 written=10335 rejected=0") {
		t.Errorf("second run: %s", res)
	}
	s := MustStart(t, data, "--load-on-start", "never")
	r := s.MustQuery(t, `{
	  incidents(first: 1) { totalCount }
	  distinct: incidentsAggregate(groupBy: INCIDENT_NUMBER) { count }
	  ingestRuns(orderBy: [{field: STARTED_AT}]) { nodes { status recordsWritten endedAt } }
	}`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %s", r.Raw)
	}
	if n := at(r.Data, "incidents", "totalCount"); n != 10335.0 {
		t.Errorf("%v incidents after the killed and the repeated run, want 10335", n)
	}
	groups := at(r.Data, "distinct").([]any)
	for _, g := range groups {
		if at(g, "count") != 1.0 {
			t.Errorf("incident number present more than once: %v", g)
			break
		}
	}
	runs := at(r.Data, "ingestRuns", "nodes").([]any)
	if len(runs) != 2 || at(runs[0], "status") != "RUNNING" || at(runs[0], "endedAt") != nil || at(runs[1], "status") != "SUCCEEDED" {
		t.Errorf("runs on record: %v", runs)
	}
	t.Logf("killed after %d batches; the killed run had recorded %v records", batches, at(runs[0], "recordsWritten"))
	_ = fmt.Sprint()
}

// TestPushAndMetrics posts records to a push connector over HTTP and
// through GraphQL: good records land, bad ones come back with reasons and
// are dead letters of the run; /metrics counts them.
func TestPushAndMetrics(t *testing.T) {
	t.Setenv("CITYHUB_OPERATOR_TOKEN", operatorToken)
	s := MustStart(t, t.TempDir(), "--connectors", "e2e/testdata/push.yaml")
	post := func(token, body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/push/lighting-faults", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("push answer is not JSON (%d): %s", resp.StatusCode, raw)
		}
		return resp.StatusCode, out
	}
	// real poles of the Cambridge street-light register
	body := `[
	  {"pole": "471-M39.5", "state": "fault", "watts": 100, "lat": 42.3626, "lon": -71.0843},
	  {"pole": "1-M1", "state": "ok", "lat": 42.3736, "lon": -71.1097},
	  {"pole": "2-M1", "state": "exploded"},
	  "not an object",
	  {"pole": "3-M1", "state": "ok", "lat": 200, "lon": 0}
	]`
	if code, out := post("", body); code != http.StatusUnauthorized {
		t.Errorf("push without a token: %d %v", code, out)
	}
	code, out := post(operatorToken, body)
	if code != http.StatusOK || out["status"] != "PARTIAL" || out["read"] != 5.0 || out["written"] != 2.0 || out["rejected"] != 3.0 {
		t.Fatalf("push: %d %v", code, out)
	}
	rej := out["rejections"].([]any)
	var reasons []string
	for _, r := range rej {
		reasons = append(reasons, fmt.Sprintf("%v: %v", at(r, "index"), at(r, "reason")))
	}
	for i, want := range []string{`2: `, `3: `, `4: `} {
		if i >= len(reasons) || !strings.HasPrefix(reasons[i], want) {
			t.Errorf("rejections = %q", reasons)
			break
		}
	}
	if !strings.Contains(reasons[0], "exploded") || !strings.Contains(reasons[1], "JSON object") || !strings.Contains(reasons[2], "200") {
		t.Errorf("rejection reasons do not say why: %q", reasons)
	}
	if code, out := post(operatorToken, `{"pole": `); code != http.StatusBadRequest {
		t.Errorf("malformed body: %d %v", code, out)
	}
	r := s.MustQueryAs(t, operatorToken, `mutation($recs: [JSON!]!) { pushRecords(connector: "lighting-faults", records: $recs) { status written rejected rejections { index reason } } }`,
		map[string]any{"recs": []any{map[string]any{"pole": "471-M39.5", "state": "ok", "watts": 90, "lat": 42.3626, "lon": -71.0843}}})
	if len(r.Errors) > 0 || at(r.Data, "pushRecords", "status") != "SUCCEEDED" || at(r.Data, "pushRecords", "written") != 1.0 {
		t.Fatalf("pushRecords: %s", r.Raw)
	}
	r = s.MustQuery(t, `{
	  streetLights(where: {poleNumber: {eq: "471-M39.5"}, _provenance: {source: {eq: "lighting-scada"}}}) { nodes { status powerRatingW _provenance { connector } } }
	  ingestRuns(where: {connectorCode: {eq: "lighting-faults"}}, orderBy: [{field: STARTED_AT}]) { nodes { trigger status recordsRejected deadLetters { totalCount } } }
	}`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("%s", r.Raw)
	}
	if at(r.Data, "streetLights", "nodes", 0, "status") != "OK" || at(r.Data, "streetLights", "nodes", 0, "powerRatingW") != 90.0 {
		t.Errorf("pushed light: %v", at(r.Data, "streetLights"))
	}
	runs := at(r.Data, "ingestRuns", "nodes").([]any)
	if len(runs) != 2 || at(runs[0], "trigger") != "PUSH" || at(runs[0], "status") != "PARTIAL" || at(runs[0], "deadLetters", "totalCount") != 3.0 {
		t.Errorf("push runs on record: %v", runs)
	}
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`cityhub_connector_records_total{connector="lighting-faults",outcome="written"} 3`,
		`cityhub_connector_records_total{connector="lighting-faults",outcome="rejected"} 3`,
		`cityhub_connector_runs_total{connector="lighting-faults",status="PARTIAL",trigger="PUSH"} 1`,
		`cityhub_connector_runs_total{connector="lighting-faults",status="SUCCEEDED",trigger="PUSH"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestConnectorsCheckReach: `connectors check --reach` opens every source
// of the demo, and names the connector and the reason for one it cannot.
func TestConnectorsCheckReach(t *testing.T) {
	cmd := exec.Command(binary, "connectors", "check", "--reach", "demo/cambridge/connectors.yaml")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check --reach on the demo: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), ": ok, reached: "); n != 16 {
		t.Errorf("%d connectors reached, want 16:\n%s", n, out)
	}
	gone := filepath.Join(t.TempDir(), "gone.yaml")
	if err := os.WriteFile(gone, []byte(`connectors:
  - name: gone
    source: test-src
    kind: csv
    config: {url: "http://127.0.0.1:1/lights.csv"}
    mapping:
      nodes:
        - {class: StreetLight, key: "{id}", properties: {status: OK}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(binary, "connectors", "check", "--reach", gone)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "gone.yaml:2: gone: source not reachable") || !strings.Contains(string(out), "connection refused") {
		t.Errorf("check --reach on an unreachable source: %v\n%s", err, out)
	}
}
