package open311

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

func TestSample(t *testing.T) {
	store, stats, dead := connectortest.CheckSample(t, Kind(), ontology.Default())
	if len(stats) != 2 || stats[0].Written != 46 || stats[1].Written != 21 || len(dead.Letters) != 0 {
		t.Fatalf("stats = %+v, dead letters = %+v", stats, dead.Letters)
	}
	// 46 services and their 7 groups; 21 requests, 17 of them with an address (all distinct), 6 agencies
	for class, want := range map[string]int{"Service": 53, "ServiceRequest": 21, "Address": 17, "Agency": 6} {
		if got := store.Count(class); got != want {
			t.Errorf("%d %s nodes, want %d", got, class, want)
		}
	}
	for rel, want := range map[string]int{"PART_OF": 46, "FOR_SERVICE": 21, "ASSIGNED_TO": 21, "HAS_ADDRESS": 17} {
		if got := store.CountEdges(rel); got != want {
			t.Errorf("%d %s edges, want %d", got, rel, want)
		}
	}
}

// The sample runs into the embedded SQLite graph: the services, then the
// requests with their FOR_SERVICE edges, 13 of them with a location.
func TestSampleSQLite(t *testing.T) {
	ctx := context.Background()
	ont := ontology.Default()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	store, err := sqlite.Open(ctx, cfg, ont)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := connectors.NewRegistry()
	Register(reg)
	conns, err := connectors.Parse("sample.yaml", Kind().Sample, ont, reg)
	if err != nil {
		t.Fatal(err)
	}
	dead := &connectortest.DeadLetters{}
	r := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), Now: connectortest.Now, DeadLetters: dead})
	stats, err := r.RunAll(ctx, conns, store)
	if err != nil {
		t.Fatal(err)
	}
	if stats[0].Read != 46 || stats[0].Written != 46 || stats[1].Read != 21 || stats[1].Written != 21 || len(dead.Letters) != 0 {
		t.Fatalf("stats = %+v, dead letters %+v", stats, dead.Letters)
	}

	find := func(class string) []*graph.Node {
		t.Helper()
		p, err := store.Find(ctx, graph.FindQuery{Class: class, First: 100, Count: true})
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != len(p.Nodes) {
			t.Fatalf("%s: total %d, page %d", class, p.Total, len(p.Nodes))
		}
		return p.Nodes
	}
	services := find("Service")
	requests := find("ServiceRequest")
	if len(services) != 53 || len(requests) != 21 {
		t.Fatalf("%d services, %d requests; want 53, 21", len(services), len(requests))
	}
	located, statuses := 0, map[string]int{}
	var reqIDs []string
	for _, n := range requests {
		if n.Geometry != nil {
			located++
		}
		statuses[n.Props["status"].(string)+"/"+n.Props["statusRaw"].(string)]++
		reqIDs = append(reqIDs, n.ID)
	}
	if located != 13 || statuses["SUBMITTED/open"] != 18 || statuses["CLOSED/closed"] != 3 {
		t.Errorf("%d located (want 13), statuses %v", located, statuses)
	}

	nodes, err := store.Nodes(ctx, []string{"urn:city:service-request:bloomington-311:4fbd3beeb1fe2c9f5c000001", "urn:city:service:bloomington-311:4e090d24992b941e78000027"})
	if err != nil || nodes[0] == nil || nodes[1] == nil {
		t.Fatalf("nodes = %v, %v", nodes, err)
	}
	req, svc := nodes[0], nodes[1]
	if req.Props["requestNumber"] != "4fbd3beeb1fe2c9f5c000001" || req.Props["description"] != "Graffiti on mailboxes" ||
		req.Geometry == nil || req.Geometry.Point.Lat != 39.146551871103 || req.Geometry.Point.Lon != -86.485448337464 ||
		req.Prov.SrcUpdatedAt.Format("2006-01-02T15:04:05Z07:00") != "2012-05-23T19:35:10Z" {
		t.Errorf("request = %+v, geometry %+v", req, req.Geometry)
	}
	if svc.Props["serviceCode"] != "4e090d24992b941e78000027" || svc.Props["name"] != "Graffiti" || svc.Props["group"] != "Most Popular" || svc.Props["requestable"] != true {
		t.Errorf("service = %+v", svc.Props)
	}

	if media, err := store.Nodes(ctx, []string{"urn:city:service-request:bloomington-311:4fbd12bcb1fe2c1c7d000001"}); err != nil || media[0] == nil {
		t.Errorf("request with media: %v", err)
	} else if urls, _ := media[0].Props["mediaUrls"].([]any); len(urls) != 1 || urls[0] != "https://bloomington.in.gov/crm/media/2012/05/23/4fbd12bcb1fe2c1c7d000001/media.jpg" {
		t.Errorf("mediaUrls = %#v", media[0].Props["mediaUrls"])
	}

	// every request points at its service
	pages, err := store.Neighbors(ctx, graph.NeighborQuery{IDs: reqIDs, Rel: "FOR_SERVICE", Dir: ontology.Out, First: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pages {
		if len(p.Nodes) != 1 || p.Nodes[0].Class != "Service" {
			t.Errorf("%s FOR_SERVICE %d nodes", reqIDs[i], len(p.Nodes))
		}
	}
	pages, err = store.Neighbors(ctx, graph.NeighborQuery{IDs: []string{svc.ID}, Rel: "FOR_SERVICE", Dir: ontology.In, First: 10})
	if err != nil || len(pages[0].Nodes) != 1 || pages[0].Nodes[0].ID != req.ID {
		t.Errorf("requests for Graffiti = %v, %v", pages, err)
	}
}
