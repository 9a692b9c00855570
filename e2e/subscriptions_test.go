package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var npmOnce sync.Once

// wsClient installs the npm clients of e2e/wsclient (graphql-ws and the
// legacy subscriptions-transport-ws) once per test binary.
func wsClient(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is needed for the subscription clients: %v", err)
	}
	var err error
	var out []byte
	npmOnce.Do(func() {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = "wsclient"
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("npm ci in e2e/wsclient: %v\n%s", err, out)
	}
}

// subscriber is a running node client printing one line per result.
type subscriber struct {
	t     *testing.T
	lines chan string
}

func startSubscriber(t *testing.T, client, url, query string, count int) *subscriber {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	cmd := exec.CommandContext(ctx, "node", "wsclient/subscribe.mjs", client, url, query, strconv.Itoa(count))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &subscriber{t: t, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("%s client stderr: %s", client, stderr.String())
		}
	})
	return s
}

func (s *subscriber) next() string {
	s.t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			s.t.Fatal("the client ended")
		}
		return l
	case <-time.After(30 * time.Second):
		s.t.Fatal("no line from the client within 30s")
	}
	return ""
}

func (s *subscriber) ready() {
	s.t.Helper()
	if l := s.next(); l != "ready" {
		s.t.Fatalf("client: %s", l)
	}
	time.Sleep(300 * time.Millisecond) // the subscribe message follows the acknowledgement
}

func (s *subscriber) result() map[string]any {
	s.t.Helper()
	l := s.next()
	var m map[string]any
	if err := json.Unmarshal([]byte(l), &m); err != nil {
		s.t.Fatalf("client printed %q", l)
	}
	return m
}

// Real third-party clients (graphql-ws, subscriptions-transport-ws from
// npm) subscribe to a running cityhub; an agency's push reaches them; a
// client that reconnects with since gets what it missed; a bad
// subscription is refused while the server stays up.
func TestSubscriptionsWithNpmClients(t *testing.T) {
	wsClient(t)
	t.Setenv("CITYHUB_OPERATOR_TOKEN", operatorToken)
	s := MustStart(t, t.TempDir(), "--connectors", "e2e/testdata/push.yaml")
	ws := "ws" + strings.TrimPrefix(s.URL, "http") + "/graphql"

	faults := startSubscriber(t, "graphql-ws", ws,
		`subscription { streetLightChanged(where: {status: {eq: FAULTY}}) { op cursor node { id name status } } }`, 1)
	every := startSubscriber(t, "legacy", ws,
		`subscription { changes(classes: [STREET_LIGHT]) { op cursor id } }`, 2)
	faults.ready()
	every.ready()
	// real poles of the Cambridge street-light register
	s.MustPush(t, "lighting-faults", `[{"pole": "471-M39.5", "state": "fault", "watts": 100, "lat": 42.3626, "lon": -71.0843},
	       {"pole": "1-M1", "state": "ok", "lat": 42.3736, "lon": -71.1097}]`)

	got := faults.result()
	ev, _ := at(got, "data", "streetLightChanged").(map[string]any)
	if ev == nil || at(ev, "op") != "CREATE" || at(ev, "node", "status") != "FAULTY" || at(ev, "node", "name") != "Pole 471-M39.5" {
		t.Fatalf("graphql-ws client got %v", got)
	}
	cursor, _ := at(ev, "cursor").(string)
	if l := faults.next(); l != "complete" && l != "" {
		// the client disposes itself after one result; nothing else is expected
		t.Logf("after the first result: %s", l)
	}
	var ids []any
	for range 2 {
		r := every.result()
		ids = append(ids, at(r, "data", "changes", "id"))
	}
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Errorf("legacy client got ids %v", ids)
	}

	// while no one listens, the fault is repaired and another pole fails
	s.MustPush(t, "lighting-faults", `[{"pole": "471-M39.5", "state": "ok"}, {"pole": "1-M1", "state": "fault"}]`)
	// the graphql-ws client reconnects with since: it gets the failure it missed
	again := startSubscriber(t, "graphql-ws", ws,
		`subscription { streetLightChanged(where: {status: {eq: FAULTY}}, since: "`+cursor+`") { op changed node { name status } } }`, 1)
	again.ready()
	got = again.result()
	if at(got, "data", "streetLightChanged", "node", "name") != "Pole 1-M1" || at(got, "data", "streetLightChanged", "op") != "UPDATE" {
		t.Fatalf("resumed client got %v", got)
	}

	// a subscription to an unknown field, and one with a bad filter
	bad := startSubscriber(t, "graphql-ws", ws, `subscription { unicornChanged { op } }`, 1)
	bad.ready()
	if l := bad.next(); !strings.HasPrefix(l, "error") || !strings.Contains(l, "unicornChanged") {
		t.Errorf("unknown field: %s", l)
	}
	bad = startSubscriber(t, "graphql-ws", ws, `subscription { streetLightChanged(since: "yesterday") { op } }`, 1)
	bad.ready()
	if l := bad.next(); !strings.Contains(l, "since") || !strings.Contains(l, "not a change cursor") {
		t.Errorf("bad cursor: %s", l)
	}
	// the server is still up
	r := s.MustQuery(t, `{ streetLights(first: 5) { totalCount } }`, nil)
	if n, _ := at(r.Data, "streetLights", "totalCount").(float64); n != 2 {
		t.Errorf("street lights after the pushes: %v", r.Data)
	}
}
