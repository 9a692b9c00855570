package gtfsrt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rt "github.com/MobilityData/gtfs-realtime-bindings/golang/gtfs"
	"google.golang.org/protobuf/proto"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/graph/sqlite"
	"github.com/cityhub/cityhub/ontology"
)

const (
	vehiclesPB = "testdata/caltrain_vehicle-positions.pb"
	updatesPB  = "testdata/caltrain_trip-updates.pb"
	alertsPB   = "testdata/caltrain_service-alerts.pb"
)

// MustRead reads a test file.
func MustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// MustSource builds a source for tests.
func MustSource(t testing.TB, cfg Config) *Source {
	t.Helper()
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fileConfig(path, feed string) Config {
	cfg := DefaultConfig()
	cfg.Path, cfg.Feed, cfg.FeedID = path, feed, "CT"
	return cfg
}

func readAll(t testing.TB, s connectors.Source) ([]connectors.Record, error) {
	t.Helper()
	var out []connectors.Record
	err := s.Read(t.Context(), func(r connectors.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// pbJSON is the JSON rendering of a feed stored beside the .pb file.
type pbJSON struct {
	Header struct {
		Timestamp string `json:"timestamp"`
	} `json:"header"`
	Entity []map[string]any `json:"entity"`
}

func loadJSON(t testing.TB, path string) pbJSON {
	t.Helper()
	var v pbJSON
	dec := json.NewDecoder(bytes.NewReader(MustRead(t, path+".json")))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// at walks a JSON object by member names.
func at(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// asInt64 reads a JSON number or decimal string as int64.
func asInt64(t testing.TB, v any) int64 {
	t.Helper()
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func asFloat(t testing.TB, v any) float64 {
	t.Helper()
	f, err := v.(json.Number).Float64()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDecodeVehiclePositions(t *testing.T) {
	recs, err := readAll(t, MustSource(t, fileConfig(vehiclesPB, VehiclePositions)))
	if err != nil {
		t.Fatal(err)
	}
	want := loadJSON(t, vehiclesPB)
	if len(recs) != 14 || len(want.Entity) != 14 {
		t.Fatalf("%d records, %d entities in the JSON; want 14", len(recs), len(want.Entity))
	}
	header := asInt64(t, want.Header.Timestamp)
	for i, r := range recs {
		e := want.Entity[i]
		if r.Err != nil {
			t.Fatalf("entity %d: %v", i, r.Err)
		}
		f := r.Fields
		checks := map[string][2]any{
			"entity_id":        {f["entity_id"], e["id"]},
			"trip_id":          {f["trip_id"], at(e, "vehicle", "trip", "tripId")},
			"route_id":         {f["route_id"], at(e, "vehicle", "trip", "routeId")},
			"direction_id":     {f["direction_id"], asInt64(t, at(e, "vehicle", "trip", "directionId"))},
			"vehicle_id":       {f["vehicle_id"], at(e, "vehicle", "vehicle", "id")},
			"vehicle_key":      {f["vehicle_key"], at(e, "vehicle", "vehicle", "id")},
			"lat":              {f["lat"], asFloat(t, at(e, "vehicle", "position", "latitude"))},
			"lon":              {f["lon"], asFloat(t, at(e, "vehicle", "position", "longitude"))},
			"timestamp":        {f["timestamp"], asInt64(t, at(e, "vehicle", "timestamp"))},
			"updated_at":       {f["updated_at"], asInt64(t, at(e, "vehicle", "timestamp"))},
			"header_timestamp": {f["header_timestamp"], header},
			"feed_id":          {f["feed_id"], "CT"},
		}
		for name, c := range checks {
			if c[0] != c[1] {
				t.Errorf("entity %d %s = %#v, want %#v", i, name, c[0], c[1])
			}
		}
		if _, ok := f["vehicle_label"]; ok {
			t.Errorf("entity %d: empty label kept", i)
		}
		wantGeo := fmt.Sprintf(`{"type":"Point","coordinates":[%v,%v]}`, f["lon"], f["lat"])
		if string(r.Geometry) != wantGeo {
			t.Errorf("entity %d geometry %s, want %s", i, r.Geometry, wantGeo)
		}
		if r.Pos.File != vehiclesPB || r.Pos.Index != i || r.Pos.Path != fmt.Sprintf("entity[%d]", i) || !strings.Contains(r.Pos.String(), e["id"].(string)) {
			t.Errorf("entity %d position %+v", i, r.Pos)
		}
	}
}

func TestDecodeTripUpdates(t *testing.T) {
	recs, err := readAll(t, MustSource(t, fileConfig(updatesPB, TripUpdates)))
	if err != nil {
		t.Fatal(err)
	}
	want := loadJSON(t, updatesPB)
	if len(recs) != 19 || len(want.Entity) != 19 {
		t.Fatalf("%d records, %d entities in the JSON; want 19", len(recs), len(want.Entity))
	}
	for i, r := range recs {
		e := at(want.Entity[i], "tripUpdate")
		if r.Err != nil {
			t.Fatalf("entity %d: %v", i, r.Err)
		}
		f := r.Fields
		for name, c := range map[string][2]any{
			"trip_id":               {f["trip_id"], at(e, "trip", "tripId")},
			"start_date":            {f["start_date"], at(e, "trip", "startDate")},
			"start_time":            {f["start_time"], at(e, "trip", "startTime")},
			"schedule_relationship": {f["schedule_relationship"], at(e, "trip", "scheduleRelationship")},
			"vehicle_id":            {f["vehicle_id"], at(e, "vehicle", "id")},
			"timestamp":             {f["timestamp"], asInt64(t, at(e, "timestamp"))},
			"header_timestamp":      {f["header_timestamp"], asInt64(t, want.Header.Timestamp)},
		} {
			if c[0] != c[1] {
				t.Errorf("entity %d %s = %#v, want %#v", i, name, c[0], c[1])
			}
		}
		if r.Geometry != nil {
			t.Errorf("entity %d has a geometry", i)
		}
		updates, _ := f["stop_time_updates"].([]any)
		wantUpdates, _ := at(e, "stopTimeUpdate").([]any)
		if len(updates) != len(wantUpdates) || len(updates) == 0 {
			t.Fatalf("entity %d: %d stop time updates, want %d", i, len(updates), len(wantUpdates))
		}
		for j, u := range updates {
			got, w := u.(map[string]any), wantUpdates[j]
			if got["stop_id"] != at(w, "stopId") || got["stop_sequence"] != asInt64(t, at(w, "stopSequence")) || got["schedule_relationship"] != at(w, "scheduleRelationship") {
				t.Errorf("entity %d update %d = %v, want %v", i, j, got, w)
			}
			for _, ev := range []string{"arrival", "departure"} {
				wt := at(w, ev, "time")
				if (wt == nil) != (got[ev+"_time"] == nil) || (wt != nil && got[ev+"_time"] != asInt64(t, wt)) {
					t.Errorf("entity %d update %d %s_time = %v, want %v", i, j, ev, got[ev+"_time"], wt)
				}
			}
		}
	}
}

func TestDecodeEmptyAlerts(t *testing.T) {
	s := MustSource(t, fileConfig(alertsPB, Alerts))
	recs, err := readAll(t, s)
	if err != nil || len(recs) != 0 {
		t.Fatalf("Read = %d records, %v; want an empty feed", len(recs), err)
	}
	m, err := Decode(MustRead(t, alertsPB), Alerts, "CT", alertsPB)
	if err != nil || m.HeaderTimestamp != uint64(asInt64(t, loadJSON(t, alertsPB).Header.Timestamp)) || m.Entities != 0 {
		t.Errorf("Decode = %+v, %v", m, err)
	}
	if err := s.Check(t.Context()); err != nil {
		t.Errorf("Check of an empty feed: %v", err)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	data := MustRead(t, updatesPB)
	badWire := append(bytes.Clone(data), 0x0F) // field 1 with wire type 7, which does not exist
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", data[:len(data)/2], "not a GTFS-realtime feed"},
		{"html", []byte("<html><body>Service unavailable</body></html>"), "not a GTFS-realtime feed"},
		{"empty", nil, "not a GTFS-realtime feed: no header"},
		{"invalid wire type", badWire, "not a GTFS-realtime feed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "feed.pb")
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := readAll(t, MustSource(t, fileConfig(path, TripUpdates)))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Read = %v, want %q naming %s", err, tt.want, path)
			}
		})
	}
}

// A feed built in memory for what the real files lack: alerts, bad
// entities, mixed kinds.
func syntheticFeed(t testing.TB) []byte {
	t.Helper()
	text := func(s, lang string) *rt.TranslatedString {
		return &rt.TranslatedString{Translation: []*rt.TranslatedString_Translation{{Text: proto.String(s), Language: proto.String(lang)}, {Text: proto.String("other")}}}
	}
	m := &rt.FeedMessage{
		Header: &rt.FeedHeader{GtfsRealtimeVersion: proto.String("2.0"), Timestamp: proto.Uint64(1700000000)},
		Entity: []*rt.FeedEntity{
			{Id: proto.String("a1"), Alert: &rt.Alert{
				Cause: rt.Alert_CONSTRUCTION.Enum(), Effect: rt.Alert_DETOUR.Enum(),
				HeaderText: text("Stop moved", "en"), DescriptionText: text("Use the stop across the street", "en"),
				ActivePeriod:   []*rt.TimeRange{{Start: proto.Uint64(1700000100), End: proto.Uint64(1700003600)}, {Start: proto.Uint64(1700090000), End: proto.Uint64(1700093600)}},
				InformedEntity: []*rt.EntitySelector{{RouteId: proto.String("L1")}, {StopId: proto.String("70021"), Trip: &rt.TripDescriptor{TripId: proto.String("124")}}},
			}},
			{Id: proto.String("a2"), Alert: &rt.Alert{Effect: rt.Alert_NO_SERVICE.Enum(), ActivePeriod: []*rt.TimeRange{{Start: proto.Uint64(1700000000)}}}},
			{Alert: &rt.Alert{}}, // no id
			{Id: proto.String("v1"), Vehicle: &rt.VehiclePosition{
				Vehicle:       &rt.VehicleDescriptor{Label: proto.String("Bus 12")},
				Position:      &rt.Position{Latitude: proto.Float32(42.37), Longitude: proto.Float32(-71.11), Bearing: proto.Float32(90), Speed: proto.Float32(7.5)},
				CurrentStatus: rt.VehiclePosition_STOPPED_AT.Enum(), CurrentStopSequence: proto.Uint32(4), StopId: proto.String("S4"),
				OccupancyStatus: rt.VehiclePosition_FEW_SEATS_AVAILABLE.Enum(), CongestionLevel: rt.VehiclePosition_STOP_AND_GO.Enum(),
			}},
			{Id: proto.String("v2"), Vehicle: &rt.VehiclePosition{Position: &rt.Position{Latitude: proto.Float32(42.37)}}},
			{Id: proto.String("v3"), Vehicle: &rt.VehiclePosition{Position: &rt.Position{Latitude: proto.Float32(95), Longitude: proto.Float32(0)}}},
			{Id: proto.String("gone"), IsDeleted: proto.Bool(true)},
		},
	}
	// entity "" lacks its required id on purpose
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeSynthetic(t *testing.T) {
	data := syntheticFeed(t)
	describe := func(r connectors.Record) string {
		if r.Err != nil {
			return "error: " + r.Err.Error()
		}
		b, _ := json.Marshal(r.Fields)
		return string(b) + " " + string(r.Geometry)
	}
	tests := []struct {
		kind string
		want []string
	}{
		{Alerts, []string{
			`{"active_end":1700093600,"active_periods":[{"end":1700003600,"start":1700000100},{"end":1700093600,"start":1700090000}],"active_start":1700000100,"cause":"CONSTRUCTION","description_text":"Use the stop across the street","effect":"DETOUR","entity_id":"a1","feed_id":"CT","header_text":"Stop moved","header_timestamp":1700000000,"informed_entities":[{"route_id":"L1"},{"stop_id":"70021","trip_id":"124"}],"language":"en","updated_at":1700000000} `,
			`{"active_periods":[{"start":1700000000}],"active_start":1700000000,"effect":"NO_SERVICE","entity_id":"a2","feed_id":"CT","header_timestamp":1700000000,"informed_entities":[],"updated_at":1700000000} `,
			`error: entity "": entity has no id`,
			`{"entity_id":"gone","feed_id":"CT","header_timestamp":1700000000,"is_deleted":true,"updated_at":1700000000} `,
		}},
		{VehiclePositions, []string{
			`{"bearing":90,"congestion_level":"STOP_AND_GO","current_status":"STOPPED_AT","current_stop_sequence":4,"entity_id":"v1","feed_id":"CT","header_timestamp":1700000000,"lat":42.37,"lon":-71.11,"occupancy_status":"FEW_SEATS_AVAILABLE","speed":7.5,"stop_id":"S4","updated_at":1700000000,"vehicle_key":"Bus 12","vehicle_label":"Bus 12"} {"type":"Point","coordinates":[-71.11,42.37]}`,
			`error: entity "v2": position without latitude or longitude`,
			`error: entity "v3": position (95, 0) is not a WGS84 position`,
			`{"entity_id":"gone","feed_id":"CT","header_timestamp":1700000000,"is_deleted":true,"updated_at":1700000000} `,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			m, err := Decode(data, tt.kind, "CT", "feed.pb")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range m.Records {
				got = append(got, describe(r))
				if r.Err != nil && len(r.Raw) == 0 {
					t.Errorf("error record without raw entity: %v", r.Err)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("records =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if m.Entities != 7 {
				t.Errorf("entities = %d", m.Entities)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name, path, feed, want string
	}{
		{"vehicles", vehiclesPB, VehiclePositions, ""},
		{"trip updates", updatesPB, TripUpdates, ""},
		{"wrong kind", vehiclesPB, TripUpdates, "no trip_updates among its 14 entities (14 vehicle_positions)"},
		{"missing file", "testdata/none.pb", Alerts, "no such file"},
		{"not a feed", "testdata/caltrain_service-alerts.pb.json", Alerts, "not a GTFS-realtime feed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := MustSource(t, fileConfig(tt.path, tt.feed)).Check(t.Context())
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check = %v, want %q", err, tt.want)
			}
		})
	}
}

// feedServer serves the bodies of steps one request after another (the
// last one again and again); a step of nil answers 503, a step of
// "404" answers 404.
type feedServer struct {
	mu       sync.Mutex
	steps    [][]byte
	requests int
	keys     []string
}

func (fs *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	i := min(fs.requests, len(fs.steps)-1)
	fs.requests++
	fs.keys = append(fs.keys, r.Header.Get("X-Api-Key")+r.URL.Query().Get("key"))
	body := fs.steps[i]
	fs.mu.Unlock()
	switch string(body) {
	case "":
		http.Error(w, "busy", http.StatusServiceUnavailable)
	case "404":
		http.NotFound(w, r)
	default:
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(body)
	}
}

func (fs *feedServer) count() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.requests
}

func TestHTTPRead(t *testing.T) {
	fs := &feedServer{steps: [][]byte{MustRead(t, vehiclesPB)}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	cfg := fileConfig("", VehiclePositions)
	cfg.URL = srv.URL + "/vp"
	cfg.APIKeyEnv, cfg.APIKeyHeader = "CITYHUB_TEST_RT_KEY", "X-Api-Key"
	s := MustSource(t, cfg)
	s.getenv = func(string) string { return "k1" }
	recs, err := readAll(t, s)
	if err != nil || len(recs) != 14 || fs.keys[0] != "k1" || recs[0].Pos.File != srv.URL+"/vp" {
		t.Fatalf("Read = %d records, %v, key %q", len(recs), err, fs.keys)
	}

	t.Run("unavailable is transient", func(t *testing.T) {
		srv := httptest.NewServer(&feedServer{steps: [][]byte{nil}})
		defer srv.Close()
		cfg := fileConfig("", VehiclePositions)
		cfg.URL = srv.URL
		_, err := readAll(t, MustSource(t, cfg))
		if !connectors.IsTransient(err) {
			t.Errorf("Read = %v, want transient", err)
		}
	})
	t.Run("larger than max_bytes", func(t *testing.T) {
		cfg := cfg
		cfg.MaxBytes = 100
		s := MustSource(t, cfg)
		s.getenv = func(string) string { return "k1" }
		_, err := readAll(t, s)
		if err == nil || !strings.Contains(err.Error(), "larger than max_bytes (100)") {
			t.Errorf("Read = %v", err)
		}
	})
	t.Run("key in the query is hidden", func(t *testing.T) {
		srv := httptest.NewServer(&feedServer{steps: [][]byte{[]byte("404")}})
		defer srv.Close()
		cfg := fileConfig("", VehiclePositions)
		cfg.URL, cfg.APIKeyEnv, cfg.APIKeyQuery = srv.URL+"/vp?format=pb", "K", "key"
		s := MustSource(t, cfg)
		s.getenv = func(string) string { return "top secret" }
		_, err := readAll(t, s)
		if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "404") {
			t.Errorf("Read = %v", err)
		}
	})
}

// bumped returns the vehicle feed with a later header and later
// timestamps for the first n vehicles.
func bumped(t testing.TB, by uint64, n int) []byte {
	t.Helper()
	var m rt.FeedMessage
	if err := proto.Unmarshal(MustRead(t, vehiclesPB), &m); err != nil {
		t.Fatal(err)
	}
	m.Header.Timestamp = proto.Uint64(m.Header.GetTimestamp() + by)
	for _, e := range m.Entity[:n] {
		e.Vehicle.Timestamp = proto.Uint64(e.Vehicle.GetTimestamp() + by)
		e.Vehicle.Position.Latitude = proto.Float32(e.Vehicle.Position.GetLatitude() + 0.001)
	}
	b, err := proto.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syncBuffer is a log destination safe for the poller and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSubscribe(t *testing.T) {
	first := MustRead(t, vehiclesPB)
	second := bumped(t, 30, 3)
	fs := &feedServer{steps: [][]byte{first, nil, second, second}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	cfg := fileConfig("", VehiclePositions)
	cfg.URL, cfg.PollInterval = srv.URL, 10*time.Millisecond
	s := MustSource(t, cfg)
	var logs syncBuffer
	s.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mu sync.Mutex
	var got []connectors.Record
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, "", func(r connectors.Record) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, r)
			return nil
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for fs.count() < 6 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Subscribe = %v, want nil when ctx ends", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return after ctx ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 17 {
		t.Fatalf("%d records, want 14 + 3", len(got))
	}
	for i, r := range got {
		wantCP, wantTS := "1699405559", int64(1699405549)
		if i >= 14 {
			wantCP, wantTS = "1699405589", 1699405579
		}
		if r.Err != nil || r.Checkpoint != wantCP || r.Fields["updated_at"] != wantTS {
			t.Errorf("record %d: checkpoint %q, updated_at %v, err %v", i, r.Checkpoint, r.Fields["updated_at"], r.Err)
		}
	}
	if got[14].Fields["entity_id"] != "124" || got[16].Fields["entity_id"] != "126" {
		t.Errorf("new entities %v, %v", got[14].Fields["entity_id"], got[16].Fields["entity_id"])
	}
	if !strings.Contains(logs.String(), "feed poll failed, retrying at the next poll") || !strings.Contains(logs.String(), "503") {
		t.Errorf("logs = %s", logs.String())
	}
}

func TestSubscribeResumeAndFail(t *testing.T) {
	feed := MustRead(t, vehiclesPB)
	run := func(t *testing.T, steps [][]byte, checkpoint string) (int, error) {
		fs := &feedServer{steps: steps}
		srv := httptest.NewServer(fs)
		defer srv.Close()
		cfg := fileConfig("", VehiclePositions)
		cfg.URL, cfg.PollInterval = srv.URL, 5*time.Millisecond
		// these streams end on their own; the timeout only stops a
		// regression from hanging the suite
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		n := 0
		err := MustSource(t, cfg).Subscribe(ctx, checkpoint, func(connectors.Record) error {
			n++
			return nil
		})
		return n, err
	}
	t.Run("after the feed's checkpoint nothing is new", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		fs := &feedServer{steps: [][]byte{feed}}
		srv := httptest.NewServer(fs)
		defer srv.Close()
		cfg := fileConfig("", VehiclePositions)
		cfg.URL, cfg.PollInterval = srv.URL, 5*time.Millisecond
		n := 0
		err := MustSource(t, cfg).Subscribe(ctx, "1699405559", func(connectors.Record) error { n++; return nil })
		if err != nil || n != 0 || fs.count() < 2 {
			t.Errorf("Subscribe = %v, %d records after %d polls", err, n, fs.count())
		}
	})
	t.Run("404 ends the stream", func(t *testing.T) {
		n, err := run(t, [][]byte{feed, []byte("404")}, "")
		var se interface{ Unwrap() error }
		if n != 14 || err == nil || !strings.Contains(err.Error(), "404") || connectors.IsTransient(err) || !errors.As(err, &se) {
			t.Errorf("Subscribe = %v after %d records", err, n)
		}
	})
	t.Run("a body that is not a feed ends the stream", func(t *testing.T) {
		_, err := run(t, [][]byte{[]byte("<html>maintenance</html>")}, "")
		if err == nil || !strings.Contains(err.Error(), "not a GTFS-realtime feed") {
			t.Errorf("Subscribe = %v", err)
		}
	})
	t.Run("bad checkpoint", func(t *testing.T) {
		_, err := run(t, [][]byte{feed}, "yesterday")
		if err == nil || !strings.Contains(err.Error(), `checkpoint "yesterday"`) {
			t.Errorf("Subscribe = %v", err)
		}
	})
	t.Run("emit errors end the stream", func(t *testing.T) {
		fs := &feedServer{steps: [][]byte{feed}}
		srv := httptest.NewServer(fs)
		defer srv.Close()
		cfg := fileConfig("", VehiclePositions)
		cfg.URL = srv.URL
		stop := errors.New("stop")
		err := MustSource(t, cfg).Subscribe(t.Context(), "", func(connectors.Record) error { return stop })
		if !errors.Is(err, stop) {
			t.Errorf("Subscribe = %v", err)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	reg := connectors.NewRegistry()
	Register(reg)
	src := `connectors:
  - name: x
    source: xx
    kind: gtfs_rt
    config:
      path: a.pb
      feed: positions
      feed_id: ""
      poll_interval: 0s
      api_key_env: "1X"
    mapping: {nodes: [{class: Vehicle, key: "{entity_id}", properties: {status: OK}}]}
`
	_, err := connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
	for _, want := range []string{
		`f.yaml:7: connectors[0].config.feed: feed "positions" is not vehicle_positions, trip_updates or alerts`,
		"f.yaml:8: connectors[0].config.feed_id: feed_id is required",
		"f.yaml:9: connectors[0].config.poll_interval: poll_interval must be positive",
		"f.yaml:6: connectors[0].config.url: headers and api_key_* apply to url only",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want %q", err, want)
		}
	}
}

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	cfg := sqlite.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "graph.db")
	store, err := sqlite.Open(context.Background(), cfg, ontology.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func runFile(t testing.TB, name string, data []byte, store *sqlite.Store) ([]connectors.RunStats, *connectortest.DeadLetters) {
	t.Helper()
	reg := connectors.NewRegistry()
	Register(reg)
	conns, err := connectors.Parse(name, data, ontology.Default(), reg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	dead := &connectortest.DeadLetters{}
	r := connectors.NewRunner(connectors.RunnerConfig{Logger: connectortest.Logger(t), Now: connectortest.Now, DeadLetters: dead})
	stats, err := r.RunAll(context.Background(), conns, store)
	if err != nil {
		t.Fatal(err)
	}
	return stats, dead
}

func mustNode(t testing.TB, s graph.Store, id string) *graph.Node {
	t.Helper()
	ns, err := s.Nodes(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	if ns[0] == nil {
		t.Fatalf("no node %s", id)
	}
	return ns[0]
}

func count(t testing.TB, s graph.Store, class string) int {
	t.Helper()
	p, err := s.Find(context.Background(), graph.FindQuery{Class: class, First: 1, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	return p.Total
}

func TestSampleSQLite(t *testing.T) {
	store := openStore(t)
	// a scheduled trip loaded before, as the gtfs connectors would
	sched := graph.Node{ID: "urn:city:trip:caltrain:CT~124", Class: "Trip", Props: map[string]any{"gtfsTripId": "124", "headsign": "San Jose Diridon"},
		Prov: graph.Provenance{Source: "caltrain", SourceKey: "CT~124", SrcUpdatedAt: time.Date(2023, 9, 22, 21, 3, 36, 0, time.UTC)}}
	if _, err := store.Apply(context.Background(), graph.Batch{Nodes: []graph.Node{sched}}); err != nil {
		t.Fatal(err)
	}
	stats, dead := runFile(t, "sample.yaml", Kind().Sample, store)
	if len(dead.Letters) != 0 || stats[0].Read != 14 || stats[0].Written != 14 {
		t.Fatalf("stats %+v, dead letters %+v", stats, dead.Letters)
	}
	for class, want := range map[string]int{"VehiclePosition": 14, "Vehicle": 14, "Trip": 14} {
		if got := count(t, store, class); got != want {
			t.Errorf("%s nodes: %d, want %d", class, got, want)
		}
	}
	vp := mustNode(t, store, "urn:city:vehicle-position:caltrain:CT~124~1699405549")
	if vp.Props["observedAt"] != time.Unix(1699405549, 0).UTC() || vp.Geometry == nil || vp.Geometry.Point != (graph.Point{Lat: 37.37046, Lon: -121.99604}) {
		t.Errorf("position = %+v %+v", vp.Props, vp.Geometry)
	}
	for rel, want := range map[string]string{"ON_TRIP": sched.ID, "FEATURE_OF_INTEREST": "urn:city:vehicle:caltrain:CT~124"} {
		pages, err := store.Neighbors(context.Background(), graph.NeighborQuery{IDs: []string{vp.ID}, Rel: rel, Dir: ontology.Out, First: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(pages[0].Nodes) != 1 || pages[0].Nodes[0].ID != want {
			t.Errorf("%s of %s: %+v", rel, vp.ID, pages[0].Nodes)
		}
	}
	if v := mustNode(t, store, "urn:city:vehicle:caltrain:CT~124"); v.Props["status"] != "UNKNOWN" || v.Geometry == nil || v.Prov.SrcUpdatedAt.Unix() != 1699405549 {
		t.Errorf("vehicle = %+v %+v", v.Props, v.Prov)
	}
	// the stub did not erase the scheduled trip
	if tr := mustNode(t, store, sched.ID); tr.Props["headsign"] != "San Jose Diridon" {
		t.Errorf("scheduled trip = %+v", tr.Props)
	}
}

func TestSampleCheck(t *testing.T) {
	_, stats, dead := connectortest.CheckSample(t, Kind(), ontology.Default())
	if len(stats) != 1 || stats[0].Written != 14 || len(dead.Letters) != 0 {
		t.Errorf("stats %+v, dead letters %+v", stats, dead.Letters)
	}
}

// The alerts mapping of the README, on a feed built in memory (the real
// Caltrain alerts feed is empty).
func TestAlertsMapping(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alerts.pb"), syntheticFeed(t), 0o644); err != nil {
		t.Fatal(err)
	}
	readme := string(MustRead(t, "README.md"))
	start := strings.Index(readme, "```yaml\n")
	end := strings.Index(readme[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("README.md has no yaml block")
	}
	file := strings.Replace(readme[start+8:start+8+end], "path: alerts.pb", "path: "+filepath.Join(dir, "alerts.pb"), 1)
	store := openStore(t)
	stats, dead := runFile(t, "alerts.yaml", []byte(file), store)
	if stats[0].Read != 4 || stats[0].Written != 2 || stats[0].Skipped != 1 || len(dead.Letters) != 1 || !strings.Contains(dead.Letters[0].Reason, "entity has no id") {
		t.Fatalf("stats %+v, dead letters %+v", stats, dead.Letters)
	}
	a := mustNode(t, store, "urn:city:alert:caltrain:CT~a1")
	if a.Props["name"] != "Stop moved" || a.Props["status"] != "ACTIVE" || a.Props["subCategory"] != "DETOUR" ||
		a.Props["reportedAt"] != time.Unix(1700000000, 0).UTC() || a.Prov.ValidFrom.Unix() != 1700000100 || a.Prov.ValidTo.Unix() != 1700093600 {
		t.Errorf("alert a1 = %+v %+v", a.Props, a.Prov)
	}
	if a2 := mustNode(t, store, "urn:city:alert:caltrain:CT~a2"); !a2.Prov.ValidTo.IsZero() || a2.Props["subCategory"] != "NO_SERVICE" {
		t.Errorf("alert a2 = %+v %+v", a2.Props, a2.Prov)
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct{ name, path, kind string }{
		{"vehicle_positions", vehiclesPB, VehiclePositions},
		{"trip_updates", updatesPB, TripUpdates},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := MustRead(b, bc.path)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				m, err := Decode(data, bc.kind, "CT", bc.path)
				if err != nil {
					b.Fatal(err)
				}
				n = len(m.Records)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	s := MustSource(b, fileConfig(updatesPB, TripUpdates))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Read(context.Background(), func(connectors.Record) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
