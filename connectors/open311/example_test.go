package open311_test

import (
	"context"
	"fmt"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/open311"
)

// Read the saved Bloomington requests, then resume after the last one.
func ExampleNewSource() {
	ctx := context.Background()
	cfg := open311.DefaultConfig()
	cfg.URL = "testdata/bloomington_requests.json" // or https://…/open311/v2
	cfg.Resource = open311.Requests
	src, err := open311.NewSource(cfg)
	if err != nil {
		panic(err)
	}
	var last connectors.Record
	n := 0
	if err := src.Read(ctx, func(r connectors.Record) error { n, last = n+1, r; return nil }); err != nil {
		panic(err)
	}
	fmt.Println(n, "requests, the last updated:", last.Fields["service_request_id"])
	fmt.Println("checkpoint:", last.Checkpoint)

	newer := 0
	err = src.(connectors.Resumer).ReadFrom(ctx, last.Checkpoint, func(connectors.Record) error { newer++; return nil })
	fmt.Println(newer, "newer", err)
	// Output:
	// 21 requests, the last updated: 4fbd40b2b1fe2c4b02000001
	// checkpoint: 2012-05-23T15:55:30-04:00 4fbd40b2b1fe2c4b02000001
	// 0 newer <nil>
}
