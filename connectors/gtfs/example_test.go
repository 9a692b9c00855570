package gtfs_test

import (
	"context"
	"fmt"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/gtfs"
)

// Read streams one table of a feed; every record carries the feed id.
func ExampleSource_Read() {
	cfg := gtfs.DefaultConfig()
	cfg.Path, cfg.FeedID, cfg.Table = "testdata/caltrain_gtfs.zip", "CT", "routes"
	src, err := gtfs.NewSource(cfg)
	if err != nil {
		panic(err)
	}
	err = src.Read(context.Background(), func(r connectors.Record) error {
		if r.Fields["route_type"] == "3" {
			fmt.Println(r.Pos, r.Pos.File, r.Fields["feed_id"], r.Fields["route_id"], r.Fields["route_long_name"])
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// line 10 routes.txt CT Bus Bridge SamTrans Bus Bridge
}

// The shapes table yields one record per shape, with its LineString.
func ExampleSource_Read_shapes() {
	cfg := gtfs.DefaultConfig()
	cfg.Path, cfg.FeedID, cfg.Table = "testdata/caltrain_gtfs.zip", "CT", "shapes"
	src, err := gtfs.NewSource(cfg)
	if err != nil {
		panic(err)
	}
	shapes := 0
	err = src.Read(context.Background(), func(r connectors.Record) error {
		if shapes == 0 {
			fmt.Println(r.Fields["shape_id"], r.Fields["point_count"], string(r.Geometry[:60]))
		}
		shapes++
		return nil
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(shapes, "shapes")
	// Output:
	// p_1277284 418 {"type":"LineString","coordinates":[[-121.5661454201,37.0035
	// 33 shapes
}
