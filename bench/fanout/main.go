// Command fanout measures cityhub's subscription fan-out from a separate
// load process on loopback: it starts cityhub (SQLite, a push connector),
// opens N graphql-ws (graphql-transport-ws) subscribers, reads cityhub's
// resident memory before and after (memory per idle subscriber), then
// pushes street-light changes at a fixed rate and measures, for every
// event each subscriber receives, the time from the commit (the event's
// `at`) to its receipt, and whether every subscriber got every event it
// should. Subscribers are spread over -groups filter groups (64 street
// lights each, or with -filter prefix|contains a poleNumber part each), so each
// change goes to N/groups subscribers; -groups 1 sends every change to
// every subscriber.
//
//	go run ./bench/fanout -subs 1,1000,10000 -rate 200 -duration 20s
//	go run ./bench/fanout -store bolt://127.0.0.1:7687 -replicas 2   # through NATS JetStream
//
// The first run is the baseline the others are compared with (with fewer
// subscribers than groups, each subscriber gets its own group: one
// subscriber gets every change). Results are printed as a table.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

func main() {
	subs := flag.String("subs", "1,1000,10000", "comma-separated subscriber counts, one run each")
	rate := flag.Int("rate", 200, "changes per second")
	duration := flag.Duration("duration", 20*time.Second, "how long changes are written per run")
	groups := flag.Int("groups", 100, "filter groups the subscribers are spread over (1: every subscriber gets every change)")
	batch := flag.Int("batch", 10, "changes per push request")
	store := flag.String("store", "sqlite", "store of the cityhub processes: sqlite, or a Neo4j URI (needed for -replicas 2)")
	filter := flag.String("filter", "eq", "how subscribers pick their group's changes: eq (each group is 64 street lights whose states flip; poleNumber in those, which the hub finds by value), prefix (each change a new street light; poleNumber startsWith, which the hub finds by the value's prefixes) or contains (the same street lights; poleNumber contains, which the hub tests against every change)")
	replicas := flag.Int("replicas", 1, "cityhub processes: with 2, changes are pushed to the first and subscribers listen on the second, through NATS JetStream (an in-process NATS server)")
	flag.Parse()
	if *filter != "eq" && *filter != "prefix" && *filter != "contains" {
		fail(errors.New("-filter is eq, prefix or contains"))
	}
	if *replicas < 1 || *replicas > 2 || (*replicas == 2 && *store == "sqlite") {
		fail(errors.New("-replicas is 1, or 2 with -store a Neo4j URI"))
	}
	var counts []int
	for _, s := range strings.Split(*subs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail(fmt.Errorf("-subs: %q is not a positive count", s))
		}
		counts = append(counts, n)
	}
	ctx := context.Background()
	var env []string
	if *replicas == 2 {
		ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: filepath.Join(os.TempDir(), fmt.Sprintf("cityhub-fanout-nats-%d", os.Getpid())), NoLog: true, NoSigs: true})
		if err != nil {
			fail(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			fail(errors.New("NATS did not start"))
		}
		defer ns.Shutdown()
		env = append(env, "CITYHUB_NATS_URL="+ns.ClientURL())
	}
	bin, dir, err := build(ctx)
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	if *store != "sqlite" {
		cmd := exec.CommandContext(ctx, bin, "migrate", "--store", *store)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fail(fmt.Errorf("migrate: %w", err))
		}
	}
	var procs []*cityhub
	for i := range *replicas {
		c, err := startCityhub(bin, filepath.Join(dir, fmt.Sprint(i)), *store, env)
		if err != nil {
			fail(err)
		}
		defer c.stop()
		procs = append(procs, c)
	}
	ch := procs[0]
	ch.subs = procs[len(procs)-1]
	fmt.Printf("cityhub ×%d (%s): writes to %s, subscribers on %s (pid %d); %d changes/s for %s per run, %d per push, %d filter groups\n\n",
		*replicas, *store, ch.url, ch.subs.url, ch.subs.cmd.Process.Pid, *rate, *duration, *batch, *groups)
	fmt.Printf("| subscribers | changes/s written | deliveries | missing | p50 ms | p99 ms | max ms | p99 ÷ baseline | RSS per idle subscriber |\n|---|---|---|---|---|---|---|---|---|\n")
	var baseP99 float64
	// run numbers name the street lights: new ones in a store kept from
	// an earlier benchmark
	runBase := int(time.Now().Unix()%1_000_000) * 100
	for i, n := range counts {
		g := *groups
		if n < g {
			g = n // a lone subscriber (the baseline) gets every change
		}
		r, err := run(ctx, ch, n, g, *rate, *batch, *duration, runBase+i, *filter)
		if err != nil {
			fail(err)
		}
		if i == 0 {
			baseP99 = r.p99
		}
		perSub := "—" // too few subscribers to tell from the noise
		if n >= 100 {
			perSub = fmt.Sprintf("%.1f KiB", r.perSubKiB)
		}
		fmt.Printf("| %d | %.0f | %d | %d | %.1f | %.1f | %.1f | %.2f | %s |\n", n, r.rate, r.delivered, r.missing, r.p50, r.p99, r.max, r.p99/baseP99, perSub)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fanout:", err)
	os.Exit(1)
}

type cityhub struct {
	cmd   *exec.Cmd
	url   string
	token string
	subs  *cityhub // where subscribers connect (itself with one replica)
}

func (c *cityhub) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
	}
}

// build compiles cityhub into a new temporary directory.
func build(ctx context.Context) (bin, dir string, err error) {
	dir, err = os.MkdirTemp("", "cityhub-fanout-")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "cityhub")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/cityhub")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("build cityhub (run from the repository root): %w", err)
	}
	return bin, dir, nil
}

func startCityhub(bin, dataDir, store string, env []string) (*cityhub, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	c := &cityhub{url: "http://" + addr, token: "fanout-token"}
	c.subs = c
	c.cmd = exec.Command(bin, "serve", "--listen", addr, "--data-dir", dataDir, "--store", store,
		"--connectors", "e2e/testdata/push.yaml", "--log-level", "warn")
	c.cmd.Env = append(append(os.Environ(), "CITYHUB_OPERATOR_TOKEN="+c.token), env...)
	c.cmd.Stderr = os.Stderr
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	for range 300 {
		resp, err := http.Get(c.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.stop()
	return nil, errors.New("cityhub did not become ready in 30s")
}

// rss returns the resident memory of the process in KiB.
func rss(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			return strconv.ParseFloat(f[0], 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

// groupLights is the number of street lights of a group with -filter eq.
const groupLights = 64

type result struct {
	delivered, missing int
	p50, p99, max      float64
	perSubKiB          float64
	rate               float64 // changes written per second
}

// subscriber holds one websocket subscription and what it received.
type subscriber struct {
	group int
	conn  *websocket.Conn
	got   atomic.Int64
	mu    sync.Mutex
	lat   []float64 // ms
}

func run(ctx context.Context, ch *cityhub, n, groups, rate, batch int, d time.Duration, runNo int, filter string) (result, error) {
	var r result
	before, err := rss(ch.subs.cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	ws := "ws" + strings.TrimPrefix(ch.subs.url, "http") + "/graphql"
	subs := make([]*subscriber, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64) // connect 64 at a time
	for i := range subs {
		s := &subscriber{group: i % groups}
		subs[i] = s
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.open(ctx, ws, runNo, filter); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return r, err
	default:
	}
	time.Sleep(2 * time.Second) // subscriptions registered, memory settled
	after, err := rss(ch.subs.cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	r.perSubKiB = (after - before) / float64(n)
	readCtx, stopReading := context.WithCancel(ctx)
	for _, s := range subs {
		go s.read(readCtx)
	}
	// write: rate changes per second, batch per push, rotating over groups;
	// pushes leave on schedule, up to 4 at a time (as several agencies'
	// systems would push), so the rate holds whenever cityhub can take it
	perGroup := make([]int, groups)
	every := time.Second * time.Duration(batch) / time.Duration(rate)
	start := time.Now()
	seq := 0
	inFlight := make(chan struct{}, 4)
	pushErr := make(chan error, 1)
	var pushes sync.WaitGroup
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * every)
		if due.After(start.Add(d)) {
			break
		}
		time.Sleep(time.Until(due))
		var recs []map[string]any
		for range batch {
			g := seq % groups
			perGroup[g]++
			if filter != "eq" {
				recs = append(recs, map[string]any{"pole": fmt.Sprintf("g%d-r%d-%d", g, runNo, seq), "state": "ok"})
			} else {
				// the group's lights take turns and flip: every record is a
				// change, and one light's changes are pushes apart
				k := perGroup[g] - 1
				state := "ok"
				if (k/groupLights)%2 == 1 {
					state = "fault"
				}
				recs = append(recs, map[string]any{"pole": fmt.Sprintf("g%d-r%d-%d", g, runNo, k%groupLights), "state": state})
			}
			seq++
		}
		inFlight <- struct{}{}
		pushes.Add(1)
		go func() {
			defer pushes.Done()
			defer func() { <-inFlight }()
			if err := push(ch, recs); err != nil {
				select {
				case pushErr <- err:
				default:
				}
			}
		}()
	}
	pushes.Wait()
	r.rate = float64(seq) / time.Since(start).Seconds()
	select {
	case err := <-pushErr:
		stopReading()
		return r, err
	default:
	}
	// wait for the last deliveries
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		done := true
		for _, s := range subs {
			if int(s.got.Load()) < perGroup[s.group] {
				done = false
				break
			}
		}
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopReading()
	var all []float64
	for _, s := range subs {
		s.mu.Lock()
		all = append(all, s.lat...)
		s.mu.Unlock()
		if miss := perGroup[s.group] - int(s.got.Load()); miss > 0 {
			r.missing += miss
		}
		s.conn.CloseNow()
	}
	r.delivered = len(all)
	slices.Sort(all)
	if len(all) > 0 {
		r.p50 = all[len(all)/2]
		r.p99 = all[min(len(all)-1, len(all)*99/100)]
		r.max = all[len(all)-1]
	}
	time.Sleep(time.Second) // the server lets go of the connections
	return r, nil
}

func (s *subscriber) open(ctx context.Context, url string, runNo int, filter string) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	c.SetReadLimit(1 << 20)
	s.conn = c
	if err := writeJSON(dctx, c, map[string]any{"type": "connection_init"}); err != nil {
		return err
	}
	if _, b, err := c.Read(dctx); err != nil || !bytes.Contains(b, []byte("connection_ack")) {
		return fmt.Errorf("connection_init: %s %v", b, err)
	}
	poles := make([]string, groupLights)
	for k := range poles {
		poles[k] = fmt.Sprintf("%q", fmt.Sprintf("g%d-r%d-%d", s.group, runNo, k))
	}
	q := fmt.Sprintf(`subscription { streetLightChanged(where: {poleNumber: {in: [%s]}}) { cursor at } }`, strings.Join(poles, ", "))
	switch filter {
	case "prefix":
		q = fmt.Sprintf(`subscription { streetLightChanged(where: {poleNumber: {startsWith: "g%d-r%d-"}}) { cursor at } }`, s.group, runNo)
	case "contains":
		q = fmt.Sprintf(`subscription { streetLightChanged(where: {poleNumber: {contains: "g%d-r%d-"}}) { cursor at } }`, s.group, runNo)
	}
	return writeJSON(dctx, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": q}})
}

func writeJSON(ctx context.Context, c *websocket.Conn, v any) error {
	b, _ := json.Marshal(v)
	return c.Write(ctx, websocket.MessageText, b)
}

func (s *subscriber) read(ctx context.Context) {
	for {
		_, b, err := s.conn.Read(ctx)
		if err != nil {
			return
		}
		now := time.Now()
		var m struct {
			Type    string
			Payload struct {
				Data struct {
					StreetLightChanged struct{ At time.Time }
				}
			}
		}
		if json.Unmarshal(b, &m) != nil || m.Type != "next" {
			continue
		}
		at := m.Payload.Data.StreetLightChanged.At
		s.mu.Lock()
		s.lat = append(s.lat, float64(now.Sub(at).Microseconds())/1000)
		s.mu.Unlock()
		s.got.Add(1)
	}
}

func push(ch *cityhub, recs []map[string]any) error {
	b, _ := json.Marshal(recs)
	req, _ := http.NewRequest(http.MethodPost, ch.url+"/push/lighting-faults", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+ch.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		return fmt.Errorf("push: %s %s", resp.Status, body.String())
	}
	return nil
}
