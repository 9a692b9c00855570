package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// neo4jScript runs scripts/neo4j.sh with arguments.
func neo4jScript(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("../scripts/neo4j.sh", args...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("scripts/neo4j.sh %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

func readyStatus(url string) int {
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestNeo4jOutage stops the Neo4j server under a running cityhub: /readyz
// fails, queries get a GraphQL error within the request timeout instead of
// hanging, and when Neo4j is back cityhub answers again without a restart.
// It runs its own Neo4j, so it does not disturb the shared one.
func TestNeo4jOutage(t *testing.T) {
	if os.Getenv("CITYHUB_NEO4J_URI") == "" {
		if os.Getenv("CITYHUB_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("CITYHUB_NEO4J_URI is not set but CITYHUB_REQUIRE_INTEGRATION=1")
		}
		t.Skip("CITYHUB_NEO4J_URI not set: no Neo4j in this run")
	}
	data := t.TempDir()
	port := freePort(t)
	start := func() string {
		out := neo4jScript(t, "start", "--data", data, "--port", fmt.Sprint(port), "--parent-pid", fmt.Sprint(os.Getpid()))
		for _, line := range strings.Split(out, "\n") {
			if uri, ok := strings.CutPrefix(line, "CITYHUB_NEO4J_URI="); ok {
				return strings.TrimSpace(uri)
			}
		}
		t.Fatalf("no URI from scripts/neo4j.sh start: %s", out)
		return ""
	}
	uri := start()
	t.Cleanup(func() { _ = exec.Command("../scripts/neo4j.sh", "stop", "--data", data).Run() })
	MustPrepareNeo4j(t, uri)
	const timeout = 5 * time.Second
	t.Setenv("CITYHUB_OPERATOR_TOKEN", operatorToken)
	s := MustStart(t, t.TempDir(), "--store", uri, "--load-on-start", "never", "--request-timeout", timeout.String(),
		"--connectors", "e2e/testdata/outage.yaml")
	const runQ = `mutation { runConnector(name: "outage-hospitals") { status written error } }`
	const q = `{ streetLights(first: 1) { totalCount } }`
	if r := s.MustQuery(t, q, nil); len(r.Errors) > 0 {
		t.Fatalf("before the outage: %s", r.Raw)
	}

	neo4jScript(t, "stop", "--data", data)
	deadline := time.Now().Add(30 * time.Second)
	for readyStatus(s.URL) != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still answers 200 with Neo4j stopped")
		}
		time.Sleep(200 * time.Millisecond)
	}
	began := time.Now()
	r := s.MustQuery(t, q, nil)
	took := time.Since(began)
	if len(r.Errors) == 0 {
		t.Fatalf("query with Neo4j stopped answered without error: %s", r.Raw)
	}
	if code := r.Errors[0].Extensions["code"]; code != "UNAVAILABLE" && code != "TIMEOUT" {
		t.Errorf("error code = %v, want UNAVAILABLE or TIMEOUT: %s", code, r.Raw)
	}
	if took > timeout+3*time.Second {
		t.Errorf("query took %v with Neo4j stopped, want at most the %v request timeout", took, timeout)
	}
	t.Logf("with Neo4j stopped: %q after %v", r.Errors[0].Message, took.Round(time.Millisecond))

	// a connector run fails with the reason: the store's own retries
	// outlast the request, so the reason is in the run's answer or, when
	// the request times out first, in the log
	r = s.MustQueryAs(t, operatorToken, runQ, nil)
	switch {
	case len(r.Errors) == 0:
		if at(r.Data, "runConnector", "status") != "FAILED" || !strings.Contains(fmt.Sprint(at(r.Data, "runConnector", "error")), "unavailable") {
			t.Errorf("runConnector with Neo4j stopped: %s", r.Raw)
		}
	case r.Errors[0].Extensions["code"] != "TIMEOUT":
		t.Errorf("runConnector with Neo4j stopped: %s", r.Raw)
	}
	deadline = time.Now().Add(90 * time.Second)
	for {
		var failed string
		for _, line := range strings.Split(s.Log(), "\n") {
			if strings.Contains(line, `msg="run failed"`) && strings.Contains(line, "connector=outage-hospitals") {
				failed = line
			}
		}
		if failed != "" {
			if !strings.Contains(failed, "unavailable") {
				t.Errorf("the failed run's log does not give the reason: %s", failed)
			}
			t.Logf("connector run with Neo4j stopped: %s", failed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed run logged within 90 s:\n%s", s.Log())
		}
		time.Sleep(500 * time.Millisecond)
	}

	start()
	deadline = time.Now().Add(2 * time.Minute)
	for readyStatus(s.URL) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("cityhub did not become ready again after Neo4j came back")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r := s.MustQuery(t, q, nil); len(r.Errors) > 0 {
		t.Fatalf("after Neo4j came back: %s", r.Raw)
	}
	// the next run succeeds without a restart
	deadline = time.Now().Add(2 * time.Minute)
	for {
		r := s.MustQueryAs(t, operatorToken, runQ, nil)
		if len(r.Errors) == 0 && at(r.Data, "runConnector", "status") == "SUCCEEDED" && at(r.Data, "runConnector", "written") == 3.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runConnector after Neo4j came back: %s", r.Raw)
		}
		time.Sleep(time.Second)
	}
}
