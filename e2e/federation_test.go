package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// federationDir is the Node project of the federation test: a second
// subgraph (road permits per Neighbourhood) and Apollo Gateway.
const federationDir = "federation"

// TestFederation composes cityhub, as an Apollo Federation 2 subgraph, with
// a second subgraph written in Node (@apollo/subgraph: road permits keyed by
// cityhub Neighbourhood ID, from federation/permits.json; the permits are
// made up, the neighbourhoods are the demo city's) through Apollo Gateway
// (IntrospectAndCompose over both subgraphs' URLs), and queries the
// supergraph: fields of both subgraphs on one Neighbourhood, in both
// directions (cityhub's list extended by the permits subgraph; the permits
// subgraph's list completed by cityhub's _entities). It also checks
// cityhub's _service and _entities directly.
func TestFederation(t *testing.T) {
	node, npm := mustNodeTools(t)
	mustNpmCI(t, npm, federationDir)
	s := MustStart(t, t.TempDir(), "--connectors", "e2e/federation/connectors.yaml")

	// what cityhub itself says about every neighbourhood
	direct := s.MustQuery(t, `{ neighbourhoods(first: 100) { nodes { id name officialCode } } }`, nil)
	if len(direct.Errors) > 0 {
		t.Fatalf("errors: %s", direct.Raw)
	}
	hoods := map[string]map[string]any{}
	for _, n := range at(direct.Data, "neighbourhoods", "nodes").([]any) {
		hoods[at(n, "id").(string)] = n.(map[string]any)
	}
	if len(hoods) != 13 {
		t.Fatalf("cityhub has %d neighbourhoods, want the demo city's 13", len(hoods))
	}

	t.Run("cityhub _service sdl", func(t *testing.T) {
		r := s.MustQuery(t, `{ _service { sdl } }`, nil)
		sdl, _ := at(r.Data, "_service", "sdl").(string)
		if len(r.Errors) > 0 || sdl == "" {
			t.Fatalf("no sdl: %s", r.Raw)
		}
		for _, re := range []string{
			`(?m)^extend schema @link\(url: "https://specs\.apollo\.dev/federation/v2\.\d+", import: \["@key"\]\)$`,
			`(?m)^type StreetLight implements [A-Za-z& ]+ @key\(fields: "id"\) \{$`,
			`(?m)^type Neighbourhood implements [A-Za-z& ]+ @key\(fields: "id"\) \{$`,
			`(?m)^interface Place implements [A-Za-z& ]+ \{$`,
		} {
			if !regexp.MustCompile(re).MatchString(sdl) {
				t.Errorf("sdl does not match %s", re)
			}
		}
	})

	permits := mustPermits(t)
	t.Run("cityhub _entities", func(t *testing.T) {
		known := slices.Sorted(maps.Keys(permits))[0]
		reps := []map[string]any{
			{"__typename": "Neighbourhood", "id": known},
			{"__typename": "Neighbourhood", "id": "urn:city:neighbourhood:cambridge-gis:99"},
		}
		r := s.MustQuery(t, `query($reps: [_Any!]!) { _entities(representations: $reps) { __typename ... on Neighbourhood { id name } } }`,
			map[string]any{"reps": reps})
		if len(r.Errors) > 0 {
			t.Fatalf("errors: %s", r.Raw)
		}
		list, _ := at(r.Data, "_entities").([]any)
		if len(list) != 2 {
			t.Fatalf("_entities = %v, want 2 entries", list)
		}
		if at(list[0], "__typename") != "Neighbourhood" || at(list[0], "id") != known || at(list[0], "name") != hoods[known]["name"] {
			t.Errorf("_entities[0] = %v, want Neighbourhood %s %v", list[0], known, hoods[known]["name"])
		}
		if list[1] != nil {
			t.Errorf("_entities[1] = %v for an unknown ID, want null", list[1])
		}
	})

	subgraph := MustStartNode(t, node, federationDir, "subgraph.mjs", "--permits", "permits.json")
	gateway := MustStartNode(t, node, federationDir, "gateway.mjs",
		"--subgraph", "cityhub="+s.URL+"/graphql", "--subgraph", "permits="+subgraph)

	t.Run("neighbourhoods with their road permits", func(t *testing.T) {
		r := mustPost(t, gateway, `{ neighbourhoods(first: 3, orderBy: [{field: NAME}]) {
			nodes { id name officialCode roadPermits { number street work } } } }`, nil)
		nodes, _ := at(r.Data, "neighbourhoods", "nodes").([]any)
		if len(nodes) != 3 {
			t.Fatalf("neighbourhoods = %d, want 3\n%s", len(nodes), r.Raw)
		}
		var names []string
		withPermits := 0
		for _, n := range nodes {
			id, _ := at(n, "id").(string)
			h := hoods[id]
			if h == nil || at(n, "name") != h["name"] || at(n, "officialCode") != h["officialCode"] {
				t.Errorf("neighbourhood %v, want cityhub's %v", n, h)
			}
			names = append(names, at(n, "name").(string))
			got, _ := at(n, "roadPermits").([]any)
			want := permits[id]
			if len(got) != len(want) {
				t.Errorf("%s: %d permits, want %d: %v", id, len(got), len(want), got)
				continue
			}
			if len(want) > 0 {
				withPermits++
			}
			for i, p := range want {
				if at(got[i], "number") != p.Number || at(got[i], "street") != p.Street || at(got[i], "work") != p.Work {
					t.Errorf("%s: permit %d = %v, want %+v", id, i, got[i], p)
				}
			}
		}
		if !slices.IsSorted(names) {
			t.Errorf("names %q are not in order", names)
		}
		if withPermits == 0 {
			t.Errorf("none of %q has permits: the test checks nothing of the permits subgraph", names)
		}
	})

	t.Run("road permits with their neighbourhoods", func(t *testing.T) {
		r := mustPost(t, gateway, `{ roadPermits { number neighbourhood { id name officialCode } } }`, nil)
		got, _ := at(r.Data, "roadPermits").([]any)
		var want []permit
		for _, ps := range permits {
			want = append(want, ps...)
		}
		slices.SortFunc(want, func(a, b permit) int { return strings.Compare(a.Number, b.Number) })
		if len(got) != len(want) {
			t.Fatalf("roadPermits = %d, want %d\n%s", len(got), len(want), r.Raw)
		}
		for i, p := range want {
			h := hoods[p.neighbourhood]
			n := at(got[i], "neighbourhood")
			if at(got[i], "number") != p.Number || at(n, "id") != p.neighbourhood ||
				at(n, "name") != h["name"] || at(n, "officialCode") != h["officialCode"] {
				t.Errorf("permit %d = %v, want %s in %v", i, got[i], p.Number, h)
			}
		}
	})
}

// permit is one road permit of federation/permits.json.
type permit struct {
	Number, Street, Work string
	neighbourhood        string
}

// mustPermits reads federation/permits.json: permits by neighbourhood ID,
// each list in number order (as the subgraph answers).
func mustPermits(t testing.TB) map[string][]permit {
	t.Helper()
	var out map[string][]permit
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(federationDir, "permits.json"))), &out); err != nil {
		t.Fatal(err)
	}
	for id, ps := range out {
		for i := range ps {
			ps[i].neighbourhood = id
		}
		slices.SortFunc(ps, func(a, b permit) int { return strings.Compare(a.Number, b.Number) })
	}
	return out
}

// mustNodeTools finds node and npm, which the end-to-end tests need (as
// the subscription clients of subscriptions_test.go do).
func mustNodeTools(t testing.TB) (node, npm string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		npm, err = exec.LookPath("npm")
	}
	if err != nil {
		t.Fatalf("the federation test needs Node.js and npm: %v", err)
	}
	return node, npm
}

// mustNpmCI installs the Node project in dir from its package-lock.json
// with npm ci, unless node_modules holds that lock file's install already.
func mustNpmCI(t testing.TB, npm, dir string) {
	t.Helper()
	sum := sha256.Sum256([]byte(mustRead(t, filepath.Join(dir, "package-lock.json"))))
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", ".cityhub-lock-sha256")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == want {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in e2e/%s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
}

// MustStartNode runs a Node script of dir that prints "ready <url>" once it
// serves, and returns that URL. The process is stopped with SIGTERM when the
// test ends.
func MustStartNode(t testing.TB, node, dir, script string, args ...string) string {
	t.Helper()
	out, errs := &syncBuffer{}, &syncBuffer{}
	cmd := exec.Command(node, append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("%s did not stop on SIGTERM\n%s%s", script, out, errs)
		}
	})
	ready := regexp.MustCompile(`(?m)^ready (\S+)$`)
	deadline := time.After(3 * time.Minute)
	for {
		if m := ready.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready\n%s%s", script, out, errs)
		case <-deadline:
			t.Fatalf("%s was not ready within 3 minutes\n%s%s", script, out, errs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// mustPost posts a query to a GraphQL endpoint URL and decodes the
// response, failing on errors.
func mustPost(t testing.TB, url, query string, vars map[string]any) Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Response{Status: resp.StatusCode, Raw: string(raw)}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("response is not JSON (status %d): %v\n%s", resp.StatusCode, err, raw)
	}
	if len(r.Errors) > 0 || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, errors: %s", resp.StatusCode, raw)
	}
	return r
}
